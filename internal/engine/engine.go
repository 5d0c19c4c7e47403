package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/rifflestream/riffle/state"
	"github.com/rifflestream/riffle/topology"
)

// Guarantee is the processing guarantee.
type Guarantee int

const (
	// AtLeastOnce: every input record's effects reach Kafka before its offset is committed; after a
	// failure some records are processed again.
	AtLeastOnce Guarantee = iota
	// ExactlyOnce: outputs, state changes and input offsets commit atomically in Kafka
	// transactions.
	ExactlyOnce
)

func (g Guarantee) String() string {
	if g == ExactlyOnce {
		return "exactly_once"
	}
	return "at_least_once"
}

// Config is what the engine needs; package stream builds it from the app's options.
type Config struct {
	AppID      string
	Brokers    []string
	ClientOpts []kgo.Opt
	Plan       *topology.Plan
	Handlers   topology.ErrorHandlers
	Guarantee  Guarantee
	// CommitInterval is how often offsets are committed (and caches flushed).
	CommitInterval time.Duration
	// OffsetReset is where partitions without a committed offset start, unless their source says
	// otherwise.
	OffsetReset topology.OffsetReset
	// MaxBufferedPerPartition is how many fetched records a partition may hold before fetching
	// pauses for it (Kafka Streams' buffered.records.per.partition); in total, the poll loop holds
	// at most half of it per assigned partition (see waitForRoom).
	MaxBufferedPerPartition int
	// ReplicationFactor of the internal topics the app creates; -1 for the broker's default.
	ReplicationFactor int16
	// InlineStateless makes the poll loop process the records of ready stateless tasks itself,
	// right after each poll, instead of handing them to the tasks' goroutines (at-least-once
	// only; see runner.processInline).
	InlineStateless bool
	// PurgeInterval is the least time between two purges of consumed repartition records.
	// Default 30s (Kafka Streams' repartition.purge.interval.ms).
	PurgeInterval time.Duration
	// CreateDeadLetterTopic makes start-up create Handlers.DeadLetterTopic if it is missing.
	CreateDeadLetterTopic bool
	// StateDir is this app's state dir ("<stateDir>/<appID>"): locked while the engine runs, it
	// holds the Pebble stores. Empty keeps every store in memory.
	StateDir string
	// StateCleanupDelay is how long local state of a task this instance no longer runs is kept,
	// for a sticky return, before it is deleted. Default 10 minutes (Kafka Streams'
	// state.cleanup.delay.ms).
	StateCleanupDelay time.Duration
	// RestoreConcurrency is how many tasks restore their stores from changelogs at once; the
	// others wait (they are not ready either way). Default: the CPUs the process may use
	// (GOMAXPROCS), at least 2. Each restore holds a client and up to two 16 MiB chunks (plus a
	// Pebble store's staging buffer), so without a bound an instance assigned a hundred tasks
	// with large changelogs would hold gigabytes and a hundred connections while restoring, and
	// go no faster: a restore is bound by CPU.
	RestoreConcurrency int
	Logger             *slog.Logger
}

// DefaultRestoreConcurrency is Config.RestoreConcurrency's default: the CPUs the process may use
// (GOMAXPROCS), at least 2.
func DefaultRestoreConcurrency() int { return max(2, runtime.GOMAXPROCS(0)) }

// State is where the engine is in its life.
type State int32

const (
	StateCreated State = iota
	StateStarting
	StateRunning
	StateStopping
	StateStopped
	StateFailed
)

func (s State) String() string {
	return [...]string{"created", "starting", "running", "stopping", "stopped", "failed"}[s]
}

// Engine runs a topology as a member of the app's consumer group.
type Engine struct {
	cfg Config
	log *slog.Logger

	cl   *kgo.Client
	sess *kgo.GroupTransactSession // exactly-once only
	adm  *kadm.Client
	// admin is adm once start-up made it: WaitIdle reads it from other goroutines.
	admin  atomic.Pointer[kadm.Client]
	mgr    *state.Manager
	stores topology.StoreOpener // the state manager, when the topology has stores

	produceCtx context.Context // canceled only on a hard stop
	hardStop   context.CancelFunc

	mu          sync.Mutex // guards tasks, byPartition, firstPolled
	tasks       map[topology.TaskID]*runner
	byPartition map[topicPartition]*runner
	// firstPolled is, under exactly-once, the offset of the first record polled of each
	// partition since it was assigned: where an abort rewinds a partition without a committed
	// offset (see rewind). Forgotten when the partition is revoked or lost.
	firstPolled map[topicPartition]int64
	wg          sync.WaitGroup // runner goroutines
	bg          sync.WaitGroup // background admin requests (purges)

	commitMu  sync.Mutex // one commit at a time: the committer, revocations and shutdown
	commitNow chan struct{}
	// clientSet is closed once e.cl is set: the group may call the rebalance callbacks before
	// the constructor has returned.
	clientSet chan struct{}

	// The poll loop pauses for exactly-once commits (see pausePolling).
	pollMu     sync.Mutex
	pollPause  chan struct{} // non-nil while a pause is asked; closed to resume
	pollPaused chan struct{} // closed by the poll loop once paused
	pollCancel context.CancelFunc
	pollExited bool // the poll loop has returned: nothing to pause
	// buffered counts the fetched records waiting in every task queue; the poll loop does not
	// poll while it is at the limit (see waitForRoom), and room is signalled when a task takes
	// records under it.
	buffered    atomic.Int64
	bufferLimit atomic.Int64
	room        chan struct{}
	// polled counts the records fetched since the last exactly-once round; txnForce asks the
	// next round to end the transaction even when nothing was polled or produced (a revocation).
	polled   atomic.Int64
	txnForce atomic.Bool
	// txnDoomed is set when a record of the open transaction could not be produced and was not
	// skipped by the production handler: the transaction must abort (eos.go, commitTxn).
	txnDoomed atomic.Bool
	// rewound is where the last rewind after an abort put each partition, until a transaction
	// commits (eos.go, polledGaps). Guarded by commitMu.
	rewound map[topicPartition]int64
	// roundTimeout bounds a commit round, except ending the transaction (endTxnTimeout).
	roundTimeout time.Duration
	// promiseFn is e.promise as a func value, made once: a method value passed to Produce
	// escapes, so writing e.promise there allocates a closure per record.
	promiseFn func(*kgo.Record, error)
	// afterPoll, when set (tests), sees every poll's result before the records are queued.
	afterPoll func(ctx context.Context, fs kgo.Fetches)
	// afterRound, when set (tests), runs after every exactly-once commit round, with the round's
	// error, on the committer's goroutine.
	afterRound func(err error)
	// beforeDeadLetterProduce, when set (tests), runs before a record refused by Kafka is
	// produced to the dead-letter topic.
	beforeDeadLetterProduce func()
	// deadLetters counts the dead-letter produces started from a promise that have not yet been
	// handed to the client: an exactly-once round waits for them before it flushes a second
	// time, so that they are in the transaction whose input offsets commit (commitTxn).
	deadLetters sync.WaitGroup
	// The transaction gate (eos.go).
	txnMu       sync.Mutex
	roundActive bool
	roundOver   chan struct{} // closed when the round ends
	inflight    int           // batches being processed
	drained     chan struct{} // closed when inflight drops to 0 during a round

	partMu     sync.Mutex
	partCounts map[string]int32

	// Repartition topics keep records until the app deletes them: after commits, the committed
	// offsets of internal source partitions are purged with DeleteRecords, at most every
	// purgeInterval (Kafka Streams' repartition.purge.interval.ms).
	idleMu    sync.Mutex
	idleSince map[state.StorePartition]time.Time

	purgeMu   sync.Mutex
	toPurge   map[string]map[int32]int64
	lastPurge time.Time

	failOnce sync.Once
	failErr  error
	failed   chan struct{}

	state atomic.Int32

	// metrics
	processed      atomic.Int64
	processedInl   atomic.Int64 // of processed, on the poll loop (InlineStateless)
	produced       atomic.Int64
	commits        atomic.Int64
	rebalances     atomic.Int64
	generation     atomic.Int32
	skippedProduce atomic.Int64
	deadLettered   atomic.Int64
	restored       atomic.Int64
	// changelogIDs are the changelog topics' IDs, listed once at start-up (listChangelogIDs).
	changelogIDs map[string]topology.ChangelogID
	// restoreSlots holds a token per running restore (Config.RestoreConcurrency).
	restoreSlots  chan struct{}
	aborts        atomic.Int64
	pauses        atomic.Int64
	closedMetrics taskCounters // of tasks closed on this instance; guarded by mu
}

// taskCounters sums topology.TaskMetrics.
type taskCounters struct {
	skipped      map[topology.Stage]int64
	deadLettered int64
}

var stages = []topology.Stage{topology.StageDeserialize, topology.StageProcess, topology.StagePunctuate,
	topology.StageSerialize, topology.StageProduce, topology.StageLate}

func (c *taskCounters) add(m *topology.TaskMetrics) {
	if c.skipped == nil {
		c.skipped = map[topology.Stage]int64{}
	}
	for _, s := range stages {
		c.skipped[s] += m.SkippedAt(s)
	}
	c.deadLettered += m.DeadLettered.Load()
}

// Metrics are an engine's counters since it started.
type Metrics struct {
	State            string
	Tasks            int
	RecordsProcessed int64
	// RecordsProcessedInline counts the input records of RecordsProcessed that the poll loop
	// processed itself (Config.InlineStateless), not their task's goroutine.
	RecordsProcessedInline int64
	RecordsProduced        int64
	Commits                int64
	// Rebalances counts the assignments this instance received; Generation is the group's
	// generation at the last one (each completed rebalance of the group increments it).
	Rebalances int64
	Generation int32
	// Skipped counts records dropped by an error handler (skip or dead-letter), by stage:
	// "deserialize", "process", "punctuate", "serialize", "produce", "late".
	Skipped map[string]int64
	// DeadLettered counts records written to the dead-letter topic.
	DeadLettered int64
	// RecordsRestored counts changelog records read back into stores (after a crash or a task
	// move; zero after a clean stop and restart on the same state dir).
	RecordsRestored int64
	// TransactionsAborted counts aborted transactions (exactly-once).
	TransactionsAborted int64
	// BufferedRecords is the number of fetched records waiting in task queues now (at most half
	// of MaxBufferedPerPartition per assigned partition, plus the records of paused partitions,
	// at most MaxBufferedPerPartition each), and
	// PausedPartitions the number of partitions whose fetching is paused because their task is
	// behind (backpressure).
	BufferedRecords  int
	PausedPartitions int
	// FetchPauses counts the times a partition's fetching was paused because its buffer stayed
	// over MaxBufferedPerPartition (its task is behind the others).
	FetchPauses int64
}

// Metrics returns the engine's counters.
func (e *Engine) Metrics() Metrics {
	e.mu.Lock()
	var c taskCounters
	c.add(&topology.TaskMetrics{})
	for s, n := range e.closedMetrics.skipped {
		c.skipped[s] += n
	}
	c.deadLettered = e.closedMetrics.deadLettered
	var buffered, paused int
	for _, r := range e.tasks {
		if r.task != nil {
			c.add(r.task.Metrics())
		}
		b, p := r.buffered()
		buffered += b
		paused += p
	}
	tasks := len(e.tasks)
	e.mu.Unlock()
	m := Metrics{
		State: e.State().String(), Tasks: tasks,
		RecordsProcessed: e.processed.Load(), RecordsProcessedInline: e.processedInl.Load(), RecordsProduced: e.produced.Load(),
		Commits: e.commits.Load(), Rebalances: e.rebalances.Load(), Generation: e.generation.Load(),
		Skipped:         map[string]int64{},
		DeadLettered:    c.deadLettered + e.deadLettered.Load(),
		RecordsRestored: e.restored.Load(), TransactionsAborted: e.aborts.Load(),
		BufferedRecords: buffered, PausedPartitions: paused, FetchPauses: e.pauses.Load(),
	}
	for s, n := range c.skipped {
		m.Skipped[string(s)] = n
	}
	m.Skipped[string(topology.StageProduce)] += e.skippedProduce.Load()
	return m
}

// New checks the configuration. It starts nothing: Run does.
func New(cfg Config) (*Engine, error) {
	if cfg.Plan == nil {
		return nil, errors.New("engine: no topology plan")
	}
	if cfg.AppID == "" {
		return nil, errors.New("engine: no application id")
	}
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("engine: no brokers")
	}
	if cfg.CommitInterval <= 0 {
		return nil, fmt.Errorf("engine: commit interval %v must be positive", cfg.CommitInterval)
	}
	if cfg.InlineStateless && cfg.Guarantee == ExactlyOnce {
		return nil, errors.New("engine: inline stateless tasks are for at-least-once processing only")
	}
	if cfg.StateCleanupDelay <= 0 {
		cfg.StateCleanupDelay = 10 * time.Minute
	}
	if cfg.PurgeInterval <= 0 {
		cfg.PurgeInterval = 30 * time.Second
	}
	if cfg.MaxBufferedPerPartition <= 0 {
		cfg.MaxBufferedPerPartition = 10_000
	}
	if cfg.RestoreConcurrency <= 0 {
		cfg.RestoreConcurrency = DefaultRestoreConcurrency()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Engine{
		cfg:          cfg,
		log:          cfg.Logger.With("app", cfg.AppID),
		tasks:        map[topology.TaskID]*runner{},
		byPartition:  map[topicPartition]*runner{},
		firstPolled:  map[topicPartition]int64{},
		commitNow:    make(chan struct{}, 1),
		room:         make(chan struct{}, 1),
		clientSet:    make(chan struct{}),
		partCounts:   map[string]int32{},
		failed:       make(chan struct{}),
		restoreSlots: make(chan struct{}, cfg.RestoreConcurrency),
	}
	e.roundTimeout = max(cfg.CommitInterval*4, 30*time.Second)
	e.promiseFn = e.promise
	return e, nil
}

// State returns the engine's state.
func (e *Engine) State() State { return State(e.state.Load()) }

// Tasks returns the ids of the active tasks on this instance, sorted.
func (e *Engine) Tasks() []topology.TaskID {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]topology.TaskID, 0, len(e.tasks))
	for id := range e.tasks {
		out = append(out, id)
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Subtopology < out[j].Subtopology || out[i].Subtopology == out[j].Subtopology && out[i].Partition < out[j].Partition
	})
	return out
}

// fail records the first fatal error and makes Run shut down.
func (e *Engine) fail(err error) {
	e.failOnce.Do(func() {
		e.failErr = err
		e.log.Error("fatal error; shutting down", "error", err)
		close(e.failed)
	})
}

func (e *Engine) requestCommit() {
	select {
	case e.commitNow <- struct{}{}:
	default:
	}
}

// Run joins the group and processes until ctx is done or a fatal error happens, then commits what
// is fully processed, leaves the group and returns (nil after ctx, else the error).
func (e *Engine) Run(ctx context.Context) (err error) {
	if !e.state.CompareAndSwap(int32(StateCreated), int32(StateStarting)) {
		return errors.New("engine: Run called twice")
	}
	defer func() {
		if err != nil {
			e.state.Store(int32(StateFailed))
		} else {
			e.state.Store(int32(StateStopped))
		}
	}()
	e.produceCtx, e.hardStop = context.WithCancel(context.Background())
	defer e.hardStop()

	if hasStores(e.cfg.Plan) || e.cfg.Guarantee == ExactlyOnce {
		m, err := state.OpenManager(state.ManagerOptions{Dir: e.cfg.StateDir})
		if err != nil {
			return err
		}
		defer m.Close()
		e.mgr, e.stores = m, m
		e.noteLocalState()
	}
	if err := e.prepare(ctx); err != nil {
		return err
	}
	e.admin.Store(e.adm)
	defer func() {
		e.admin.Store(nil)
		e.adm.Close()
	}()

	if err := e.newClient(); err != nil {
		return err
	}
	pollCtx, stopPolling := context.WithCancel(context.Background())
	pollDone := make(chan struct{})
	go func() {
		defer close(pollDone)
		e.pollLoop(pollCtx)
	}()
	commitDone := make(chan struct{})
	stopCommitter := make(chan struct{})
	go func() {
		defer close(commitDone)
		e.committer(stopCommitter)
	}()
	e.state.Store(int32(StateRunning))
	e.log.Info("running", "subtopologies", len(e.cfg.Plan.Subtopologies), "sources", e.cfg.Plan.SourceTopics())

	select {
	case <-ctx.Done():
	case <-e.failed:
	}
	e.state.Store(int32(StateStopping))
	stopPolling()
	<-pollDone
	close(stopCommitter)
	<-commitDone

	// Commit what is fully processed and close every task, then leave the group.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if e.sess != nil {
		select {
		case <-e.failed:
		default:
			if err := e.commitTxn(shutdownCtx); err != nil {
				e.log.Warn("final transaction failed; the last records will be processed again", "error", err)
			}
		}
		if _, err := e.sess.End(shutdownCtx, kgo.TryAbort); err != nil {
			e.log.Debug("aborting the empty last transaction", "error", err)
		}
	}
	all := e.runners()
	if e.sess != nil {
		for _, r := range all { // their state is committed and applied; nothing else may commit
			r.abort()
			e.closeRunner(r)
		}
	} else if cerr := e.commitAndClose(shutdownCtx, all); cerr != nil {
		e.log.Warn("final commit failed; the last records will be processed again", "error", cerr)
	}
	e.cl.Close()
	e.wg.Wait()
	e.bg.Wait()
	select {
	case <-e.failed:
		return e.failErr
	default:
		return nil
	}
}

// newClient makes the group member client.
func (e *Engine) newClient() error {
	opts := []kgo.Opt{
		kgo.SeedBrokers(e.cfg.Brokers...),
		kgo.ConsumerGroup(e.cfg.AppID),
		kgo.ConsumeTopics(e.cfg.Plan.SourceTopics()...),
		kgo.Balancers(newBalancer(e.cfg.Plan, e.localTasks, e.log)),
		kgo.BlockRebalanceOnPoll(),
		kgo.DisableAutoCommit(),
		kgo.OnPartitionsAssigned(e.onAssigned),
		kgo.OnPartitionsRevoked(e.onRevoked),
		kgo.OnPartitionsLost(e.onLost),
		kgo.RecordPartitioner(partitioner{}),
		kgo.ProducerLinger(5 * time.Millisecond),
		kgo.MaxBufferedRecords(100_000),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		// The Java consumer's fetch.max.wait.ms: kgo's 5s default delays the first fetch of a
		// partition that joins an idle fetch session.
		kgo.FetchMaxWait(500 * time.Millisecond),
		kgo.WithLogger(kgoLogger{e.log}),
	}
	if e.cfg.OffsetReset == topology.ResetLatest {
		opts = append(opts, kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()))
	} else {
		opts = append(opts, kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	}
	if e.cfg.Guarantee == ExactlyOnce {
		id, err := instanceID(e.cfg.StateDir)
		if err != nil {
			return err
		}
		opts = append(opts, kgo.TransactionalID(e.cfg.AppID+"-"+id), kgo.TransactionTimeout(transactionTimeout),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.RequireStableFetchOffsets())
	}
	opts = append(opts, e.cfg.ClientOpts...)
	if e.cfg.Guarantee == ExactlyOnce {
		sess, err := kgo.NewGroupTransactSession(opts...)
		if err != nil {
			return fmt.Errorf("engine: creating the transactional Kafka client: %w", err)
		}
		if err := sess.Begin(); err != nil {
			sess.Close()
			return fmt.Errorf("engine: beginning the first transaction: %w", err)
		}
		e.sess, e.cl = sess, sess.Client()
		close(e.clientSet)
		return nil
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("engine: creating the Kafka client: %w", err)
	}
	e.cl = cl
	close(e.clientSet)
	return nil
}

// pollLoop fetches records and hands them to the tasks' queues. With BlockRebalanceOnPoll, no
// rebalance callback runs between a poll and AllowRebalance, so records of a partition being
// revoked are never handed to a task that no longer owns it.
func (e *Engine) pollLoop(ctx context.Context) {
	var inline []*runner // the tasks this poll's records are for, to process here (InlineStateless)
	defer func() {
		e.pollMu.Lock()
		e.pollExited = true
		if e.pollPause != nil && e.pollPaused != nil {
			select {
			case <-e.pollPaused:
			default:
				close(e.pollPaused)
			}
		}
		e.pollMu.Unlock()
	}()
	for {
		e.pollMu.Lock()
		if pause := e.pollPause; pause != nil {
			paused := e.pollPaused
			e.pollMu.Unlock()
			close(paused)
			select {
			case <-pause:
			case <-ctx.Done():
				e.cl.AllowRebalance()
				return
			}
			continue
		}
		pctx, cancel := context.WithCancel(ctx)
		e.pollCancel = cancel
		e.pollMu.Unlock()
		if !e.waitForRoom(pctx) {
			// A pause was asked (or the engine is stopping) while the tasks were full.
			e.pollMu.Lock()
			e.pollCancel = nil
			e.pollMu.Unlock()
			cancel()
			if ctx.Err() != nil {
				e.cl.AllowRebalance()
				return
			}
			continue
		}
		// At most what fits: the client keeps the rest buffered for the next poll. Before the
		// first poll after an assignment sets the limit (0 until then), what fits one partition:
		// the poll that waits for the first assignment would otherwise take a single record.
		limit := e.bufferLimit.Load()
		if limit == 0 {
			limit = int64(max(1, e.cfg.MaxBufferedPerPartition/2))
		}
		fs := e.cl.PollRecords(pctx, int(max(1, limit-e.buffered.Load())))
		e.pollMu.Lock()
		e.pollCancel = nil
		e.pollMu.Unlock()
		cancel()
		if e.afterPoll != nil {
			e.afterPoll(ctx, fs)
		}
		// Records polled while the engine stops are still handed to their tasks: the poll moved
		// the positions an exactly-once commit takes (the uncommitted offsets) past them, so
		// the final round must process them. The loop's top returns once they are queued.
		if fs.IsClientClosed() {
			e.cl.AllowRebalance()
			return
		}
		fs.EachError(func(topic string, p int32, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			if isFatalFetchError(err) {
				e.fail(fmt.Errorf("engine: fetching %s[%d]: %w", topic, p, err))
				return
			}
			e.log.Warn("fetch error (retried)", "topic", topic, "partition", p, "error", err)
		})
		e.mu.Lock()
		// Half of each partition's buffer, across the partitions assigned: while every task is
		// behind, polling stops before any partition reaches its own limit and is paused.
		e.bufferLimit.Store(int64(max(1, len(e.byPartition)*e.cfg.MaxBufferedPerPartition/2)))
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) == 0 {
				return
			}
			e.polled.Add(int64(len(p.Records)))
			tp := topicPartition{p.Topic, p.Partition}
			if _, ok := e.firstPolled[tp]; !ok && e.sess != nil {
				e.firstPolled[tp] = p.Records[0].Offset
			}
			if r := e.byPartition[tp]; r != nil {
				if r.enqueue(p.Topic, p.Records) && !r.listed {
					r.listed = true
					inline = append(inline, r)
				}
			}
		})
		e.mu.Unlock()
		// Before AllowRebalance: no task is revoked while the poll loop processes its records.
		for i, r := range inline {
			r.listed = false
			r.processInline()
			inline[i] = nil
		}
		inline = inline[:0]
		e.cl.AllowRebalance()
	}
}

// waitForRoom blocks while the task queues hold their share of fetched records: the poll loop's
// backpressure. Not polling leaves at most one fetch per broker buffered in the client, which
// is kept; pausing partitions instead makes the client drop the data it had already fetched for
// them (to fetch it again on resume), so pausing is left to a partition far behind the others:
// while it waits, it pauses the partitions whose buffers stay over their limit (runner.checkHog),
// whose records then stop counting here. It returns false if ctx ends first.
func (e *Engine) waitForRoom(ctx context.Context) bool {
	var tick *time.Ticker
	defer func() {
		if tick != nil {
			tick.Stop()
		}
	}()
	for e.buffered.Load() >= e.bufferLimit.Load() && e.bufferLimit.Load() > 0 {
		if tick == nil {
			tick = time.NewTicker(hogAfter / 2)
		}
		select {
		case <-e.room:
		case <-tick.C:
			e.pauseHogs()
		case <-ctx.Done():
			return false
		}
	}
	return ctx.Err() == nil
}

// pauseHogs pauses the partitions whose buffers have stayed over their limit (runner.checkHog).
func (e *Engine) pauseHogs() {
	now := time.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range e.tasks {
		r.mu.Lock()
		for _, q := range r.queues {
			r.checkHog(q, now)
		}
		r.mu.Unlock()
	}
}

// took records that n records left the poll loop's count (processed, dropped, or their partition
// paused), and wakes the poll loop when that makes room.
func (e *Engine) took(n int) {
	if n == 0 {
		return
	}
	if e.buffered.Add(-int64(n)) < e.bufferLimit.Load() {
		select {
		case e.room <- struct{}{}:
		default:
		}
	}
}

func isFatalFetchError(err error) bool {
	return errors.Is(err, kerr.TopicAuthorizationFailed) || errors.Is(err, kerr.GroupAuthorizationFailed) ||
		errors.Is(err, kerr.ClusterAuthorizationFailed) || errors.Is(err, kerr.SaslAuthenticationFailed)
}

// committer commits every CommitInterval, or sooner when a task asks.
func (e *Engine) committer(stop <-chan struct{}) {
	t := time.NewTicker(e.cfg.CommitInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		case <-e.commitNow:
		}
		if e.sess != nil {
			// A round first lets every task process what was polled, which takes as long as
			// the tasks need: it fails only when they stop making progress.
			ctx, cancel := e.stallContext(e.roundTimeout)
			err := e.commitTxn(ctx)
			if err != nil {
				if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
					err = fmt.Errorf("%w: %w", err, cause)
				}
				e.fail(err)
			}
			cancel()
			if e.afterRound != nil {
				e.afterRound(err)
			}
			if err != nil {
				// The instance stops: no further round, which could only end a transaction the
				// failed one left in an unknown state.
				return
			}
			e.cleanupState()
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), e.roundTimeout)
		if err := e.commitAll(ctx); err != nil {
			e.log.Warn("commit failed; will retry at the next interval", "error", err)
		}
		cancel()
		e.cleanupState()
	}
}

// errStalled is the cause of a commit round given up because no task made progress.
var errStalled = errors.New("engine: the commit round gave up: no task processed a record")

// stallContext returns a context canceled (with cause errStalled) once no task has processed a
// record for d. A round under exactly-once waits for the tasks to process everything polled
// before the transaction ends; slow processing is progress, a task stuck on one record is not.
func (e *Engine) stallContext(d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(context.Background())
	go func() {
		tick := time.NewTicker(max(d/20, 10*time.Millisecond))
		defer tick.Stop()
		last, since := e.progress(), time.Now()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-tick.C:
				if p := e.progress(); p != last {
					last, since = p, now
				} else if now.Sub(since) >= d {
					cancel(fmt.Errorf("%w for %v", errStalled, d))
					return
				}
			}
		}
	}()
	return ctx, func() { cancel(nil) }
}

// progress sums the records every task has processed; it grows while any task makes progress.
func (e *Engine) progress() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := e.processed.Load()
	for _, r := range e.tasks {
		n += r.inBatch.Load()
	}
	return n
}

// commitAll commits the processed offsets of every task.
func (e *Engine) commitAll(ctx context.Context) error {
	e.commitMu.Lock()
	defer e.commitMu.Unlock()
	runners := e.runners()
	var snaps []snapshot
	for _, r := range runners {
		if !r.ready.Load() {
			continue // still restoring
		}
		var s snapshot
		if r.call(ctx, func() { s = r.takeSnapshot() }) && s.ok {
			snaps = append(snaps, s)
		}
	}
	return e.commit(ctx, snaps)
}

// commit waits until everything the snapshots' tasks produced is acknowledged, then commits their
// offsets in one request.
func (e *Engine) commit(ctx context.Context, snaps []snapshot) error {
	offsets := map[string]map[int32]kgo.EpochOffset{}
	for _, s := range snaps {
		ok, err := s.epoch.wait(ctx)
		if err != nil {
			return fmt.Errorf("engine: waiting for task %s's records to be acknowledged: %w", s.r.id, err)
		}
		if !ok {
			continue // a record failed to produce: this task's offsets must not move
		}
		for t, ps := range s.offsets {
			if offsets[t] == nil {
				offsets[t] = map[int32]kgo.EpochOffset{}
			}
			for p, o := range ps {
				offsets[t][p] = o
			}
		}
	}
	if len(offsets) == 0 {
		return nil
	}
	var cerr error
	e.cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			cerr = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil && cerr == nil {
					cerr = fmt.Errorf("committing %s[%d]: %w", t.Topic, p.Partition, err)
				}
			}
		}
	})
	if cerr != nil {
		return fmt.Errorf("engine: commit: %w", cerr)
	}
	e.commits.Add(1)
	e.notePurge(offsets)
	return nil
}

// notePurge remembers committed offsets of repartition topics and purges them when due.
func (e *Engine) notePurge(committed map[string]map[int32]kgo.EpochOffset) {
	e.purgeMu.Lock()
	defer e.purgeMu.Unlock()
	for _, s := range e.cfg.Plan.Subtopologies {
		for topic := range s.Internal {
			for p, o := range committed[topic] {
				if e.toPurge == nil {
					e.toPurge = map[string]map[int32]int64{}
				}
				if e.toPurge[topic] == nil {
					e.toPurge[topic] = map[int32]int64{}
				}
				e.toPurge[topic][p] = o.Offset
			}
		}
	}
	if len(e.toPurge) == 0 || time.Since(e.lastPurge) < e.cfg.PurgeInterval {
		return
	}
	e.lastPurge = time.Now()
	offsets := kadm.Offsets{}
	for t, ps := range e.toPurge {
		for p, o := range ps {
			offsets.Add(kadm.Offset{Topic: t, Partition: p, At: o, LeaderEpoch: -1})
		}
	}
	e.toPurge = nil
	e.bg.Add(1)
	go func() { // best effort, off the commit path: a failed purge is retried with the next one
		defer e.bg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		resp, err := e.adm.DeleteRecords(ctx, offsets)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			e.log.Debug("purging consumed repartition records failed; will retry", "error", err)
		}
	}()
}

// commitAndClose takes a final snapshot of each runner, stops it, commits, and closes the tasks.
func (e *Engine) commitAndClose(ctx context.Context, runners []*runner) error {
	if len(runners) == 0 {
		return nil
	}
	e.commitMu.Lock()
	defer e.commitMu.Unlock()
	var snaps []snapshot
	for _, r := range runners {
		if !r.ready.Load() {
			r.abort() // restoring: stop it; it has nothing to commit
			continue
		}
		s, ok := r.snapshotAndStop(ctx)
		if !ok {
			r.abort()
			continue
		}
		if s.ok {
			snaps = append(snaps, s)
		}
	}
	err := e.commit(ctx, snaps)
	for _, r := range runners {
		e.closeRunner(r)
	}
	return err
}

// closeRunner closes a stopped runner's task and forgets it.
func (e *Engine) closeRunner(r *runner) {
	r.release()
	e.markIdle(r)
	if err := r.task.Close(); err != nil {
		e.log.Warn("closing task", "task", r.id.String(), "error", err)
	}
	e.mu.Lock()
	e.closedMetrics.add(r.task.Metrics())
	if e.tasks[r.id] == r {
		delete(e.tasks, r.id)
	}
	for tp, x := range e.byPartition {
		if x == r {
			delete(e.byPartition, tp)
		}
	}
	e.mu.Unlock()
}

// runners returns the runners of the current tasks (a copy of the list, taken under e.mu).
func (e *Engine) runners() []*runner {
	e.mu.Lock()
	defer e.mu.Unlock()
	all := make([]*runner, 0, len(e.tasks))
	for _, r := range e.tasks {
		all = append(all, r)
	}
	return all
}

// onAssigned creates the tasks of newly assigned partitions and starts them.
func (e *Engine) onAssigned(_ context.Context, cl *kgo.Client, assigned map[string][]int32) {
	<-e.clientSet
	e.rebalances.Add(1)
	_, gen := cl.GroupMetadata()
	e.generation.Store(gen)
	e.mu.Lock()
	defer e.mu.Unlock()
	var started []string
	for topic, parts := range assigned {
		sub, ok := e.cfg.Plan.SubtopologyOf(topic)
		if !ok {
			e.log.Warn("assigned a topic the topology does not read", "topic", topic)
			continue
		}
		for _, p := range parts {
			id := topology.TaskID{Subtopology: sub, Partition: p}
			r, ok := e.tasks[id]
			if !ok {
				r = newRunner(e, id, nil)
				task, err := e.cfg.Plan.NewTask(id, topology.TaskConfig{
					Collector: runnerCollector{r: r},
					Handlers:  e.cfg.Handlers,
					Logger:    e.log,
					Stores:    e.stores,
				})
				if err != nil {
					e.fail(fmt.Errorf("engine: starting task %s: %w", id, err))
					continue
				}
				r.task = task
				e.tasks[id] = r
				e.markActive(id)
				started = append(started, id.String())
				e.wg.Add(1)
				go func() {
					defer e.wg.Done()
					r.run()
				}()
			}
			r.addPartition(topic, p)
			e.byPartition[topicPartition{topic, p}] = r
		}
	}
	if len(started) > 0 {
		sort.Strings(started)
		e.log.Info("tasks assigned", "tasks", started)
	}
}

// onRevoked commits and closes the tasks of revoked partitions before they move to another member.
func (e *Engine) onRevoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	<-e.clientSet
	e.forgetFirstPolled(revoked)
	runners := e.runnersOf(revoked)
	if len(runners) == 0 {
		return
	}
	if e.sess != nil {
		// Exactly-once: the transaction in flight will abort (the session saw the revocation);
		// drop the revoked tasks now, without committing. This callback must not wait for the
		// commit lock: the session holds its own lock while calling it, and End needs that lock.
		for _, r := range runners {
			r.abort()
			e.closeRunner(r)
		}
		e.txnForce.Store(true)
		e.requestCommit()
		e.log.Info("tasks revoked; their uncommitted work is aborted", "tasks", ids(runners))
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := e.commitAndClose(cctx, runners); err != nil {
		e.log.Warn("commit on revocation failed; the next owner reprocesses from the last commit", "error", err)
	}
	e.log.Info("tasks revoked", "tasks", ids(runners))
}

// onLost drops the tasks of lost partitions without committing: another member may own them now.
func (e *Engine) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	<-e.clientSet
	e.forgetFirstPolled(lost)
	e.txnForce.Store(true) // exactly-once: the transaction in flight must end (aborted)
	runners := e.runnersOf(lost)
	for _, r := range runners {
		r.abort()
		e.closeRunner(r)
	}
	if len(runners) > 0 {
		e.log.Warn("tasks lost (the group moved on without this member); dropped without committing", "tasks", ids(runners))
	}
}

// forgetFirstPolled drops the first polled offsets of partitions leaving this member.
func (e *Engine) forgetFirstPolled(parts map[string][]int32) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for topic, ps := range parts {
		for _, p := range ps {
			delete(e.firstPolled, topicPartition{topic, p})
		}
	}
}

func (e *Engine) runnersOf(parts map[string][]int32) []*runner {
	e.mu.Lock()
	defer e.mu.Unlock()
	seen := map[*runner]bool{}
	var out []*runner
	for topic, ps := range parts {
		for _, p := range ps {
			if r := e.byPartition[topicPartition{topic, p}]; r != nil && !seen[r] {
				seen[r] = true
				out = append(out, r)
			}
		}
	}
	return out
}

func ids(rs []*runner) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.id.String()
	}
	sort.Strings(out)
	return out
}

// partitionCount returns a topic's partition count, from a cache filled on first use.
func (e *Engine) partitionCount(topic string) (int32, error) {
	e.partMu.Lock()
	n, ok := e.partCounts[topic]
	e.partMu.Unlock()
	if ok {
		return n, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	td, err := e.adm.ListTopics(ctx, topic)
	if err != nil {
		return 0, err
	}
	d, ok := td[topic]
	if !ok || d.Err != nil {
		return 0, fmt.Errorf("engine: topic %q does not exist", topic)
	}
	n = int32(len(d.Partitions))
	e.partMu.Lock()
	e.partCounts[topic] = n
	e.partMu.Unlock()
	return n, nil
}

// WaitIdle returns once every record that was in the app's source topics when it was called has
// been processed and committed, following repartition topics until they too are drained: the
// group's committed offsets reach the topics' end offsets twice in a row, and no task of this
// instance is still restoring its state. It asks for commits instead of waiting out the commit
// interval, and retries transient errors (a coordinator moving) until ctx ends. Useful for
// tests, batch jobs and examples that feed a fixed input.
func (e *Engine) WaitIdle(ctx context.Context) error {
	topics := e.cfg.Plan.SourceTopics()
	stable := 0
	for {
		if st := e.State(); st == StateFailed || st == StateStopped {
			select {
			case <-e.failed:
				return e.failErr
			default:
				return fmt.Errorf("engine: the app is %s, not running", st)
			}
		}
		select {
		case <-e.failed:
			return e.failErr
		default:
		}
		if adm := e.admin.Load(); adm != nil && e.State() == StateRunning {
			idle, err := e.caughtUp(ctx, adm, topics)
			if err != nil {
				if ctx.Err() != nil {
					return err
				}
				// Coordinators move, brokers restart: ask again, until ctx says stop.
				e.log.Debug("WaitIdle: checking progress failed; retrying", "error", err)
				idle = false
			}
			if idle && !e.allReady() {
				idle = false // a task is still restoring its state
			}
			if idle {
				stable++
			} else {
				stable = 0
			}
			if stable >= 2 {
				return nil
			}
			e.requestCommit()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-e.failed:
			return e.failErr
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// allReady reports whether every assigned task has restored its state and runs.
func (e *Engine) allReady() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range e.tasks {
		if !r.ready.Load() {
			return false
		}
	}
	return true
}

func (e *Engine) caughtUp(ctx context.Context, adm *kadm.Client, topics []string) (bool, error) {
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return false, fmt.Errorf("engine: listing end offsets: %w", err)
	}
	committed, err := adm.FetchOffsets(ctx, e.cfg.AppID)
	if err != nil {
		return false, fmt.Errorf("engine: fetching committed offsets: %w", err)
	}
	idle := true
	behind := map[string]map[int32][2]int64{} // partitions whose committed offset is before the end
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset == 0 {
			return
		}
		c, ok := committed.Lookup(o.Topic, o.Partition)
		if !ok {
			idle = false
			return
		}
		if c.At < o.Offset {
			if behind[o.Topic] == nil {
				behind[o.Topic] = map[int32][2]int64{}
			}
			behind[o.Topic][o.Partition] = [2]int64{c.At, o.Offset}
		}
	})
	if !idle || len(behind) == 0 {
		return idle && len(behind) == 0, nil
	}
	if e.cfg.Guarantee != ExactlyOnce {
		return false, nil
	}
	// Under exactly-once a committed offset stops before the transaction markers that end a
	// partition: caught up if only markers lie between it and the end.
	return e.onlyMarkers(ctx, behind)
}

// onlyMarkers reports whether the given offset ranges hold nothing but transaction markers (or
// aborted records).
func (e *Engine) onlyMarkers(ctx context.Context, ranges map[string]map[int32][2]int64) (bool, error) {
	starts := map[string]map[int32]kgo.Offset{}
	pending := map[string]map[int32]int64{}
	for t, ps := range ranges {
		starts[t], pending[t] = map[int32]kgo.Offset{}, map[int32]int64{}
		for p, r := range ps {
			starts[t][p] = kgo.NewOffset().At(r[0])
			pending[t][p] = r[1]
		}
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(e.cfg.Brokers...), kgo.ConsumePartitions(starts),
		kgo.KeepControlRecords(), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(200 * time.Millisecond),
		kgo.WithLogger(kgoLogger{e.log})}, e.cfg.ClientOpts...)...)
	if err != nil {
		return false, err
	}
	defer cl.Close()
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	left := 0
	for _, ps := range pending {
		left += len(ps)
	}
	for left > 0 {
		fs := cl.PollFetches(rctx)
		if rctx.Err() != nil {
			return false, nil // cannot tell yet: not idle
		}
		data := false
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := pending[r.Topic][r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			if !r.Attrs.IsControl() {
				data = true
			}
			if r.Offset+1 >= end {
				delete(pending[r.Topic], r.Partition)
				left--
			}
		})
		if data {
			return false, nil
		}
	}
	return true, nil
}

// AdvanceStreamTime moves the stream time of every active task on this instance forward to ts
// (never back), firing the stream-time punctuations that makes due: windows that ts closes are
// closed (and emitted, for final results). For batch runs over a finite input, after WaitIdle,
// to flush the windows still open. Records it causes downstream (through repartition topics)
// reach their tasks normally; advance again after a WaitIdle to close their windows too. It
// commits before it returns, so what it emitted is acknowledged by Kafka (and committed, under
// exactly-once).
func (e *Engine) AdvanceStreamTime(ctx context.Context, ts time.Time) error {
	if err := e.advanceStreamTime(ctx, ts); err != nil {
		return err
	}
	// Commit now, so what the closed windows emitted is acknowledged (and, under exactly-once,
	// committed) when this returns.
	if e.sess != nil {
		return e.commitTxn(ctx)
	}
	return e.commitAll(ctx)
}

func (e *Engine) advanceStreamTime(ctx context.Context, ts time.Time) error {
	// No commit round meanwhile: under exactly-once nothing may produce while a transaction ends.
	e.commitMu.Lock()
	defer e.commitMu.Unlock()
	runners := e.runners()
	for _, r := range runners {
		if !r.ready.Load() {
			continue
		}
		var err error
		if !r.call(ctx, func() {
			if r.failed == nil {
				r.origin = topology.Origin{}
				if err = r.task.AdvanceStreamTime(ts); err != nil {
					r.fail(err) // on the runner goroutine, like every failure
				}
			}
		}) {
			continue // the task closed meanwhile
		}
		if err != nil {
			return fmt.Errorf("engine: advancing stream time of task %s: %w", r.id, err)
		}
	}
	return nil
}
