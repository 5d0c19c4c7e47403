package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rifflestream/riffle/internal/engine"
	"github.com/rifflestream/riffle/topology"
)

// Guarantee is an app's processing guarantee.
type Guarantee = engine.Guarantee

const (
	// AtLeastOnce (the default): an input record's offset is committed only after everything it
	// caused is acknowledged by Kafka; after a crash, records since the last commit are processed
	// again, so outputs may repeat. Kafka Streams' at_least_once.
	AtLeastOnce = engine.AtLeastOnce
	// ExactlyOnce: outputs, state changes and input offsets are committed in one Kafka
	// transaction. Kafka Streams' exactly_once_v2.
	ExactlyOnce = engine.ExactlyOnce
)

// ErrorHandler decides what happens to a record that failed; see topology.ErrorHandler.
type ErrorHandler = topology.ErrorHandler

// Fail stops the app cleanly with the error (the default for every stage).
func Fail(e *topology.RecordError) topology.Action { return topology.Fail(e) }

// Skip drops the failed record, counting and logging it with its coordinates.
func Skip(e *topology.RecordError) topology.Action { return topology.Skip(e) }

// DeadLetter drops the failed record after writing it, with headers naming the error, stage, node
// and source coordinates, to the dead-letter topic ("<appID>-dlq" unless set with DeadLetterTopic).
func DeadLetter(e *topology.RecordError) topology.Action { return topology.DeadLetter(e) }

// AppOption configures an App.
type AppOption interface{ applyApp(*appConfig) }

type appOptionFunc func(*appConfig)

func (f appOptionFunc) applyApp(c *appConfig) { f(c) }

type appConfig struct {
	appID             string
	brokers           []string
	stateDir          string
	commitInterval    time.Duration
	guarantee         Guarantee
	logger            *slog.Logger
	clientOpts        []kgo.Opt
	handlers          topology.ErrorHandlers
	handlersSet       bool
	reset             topology.OffsetReset
	replication       int16
	maxBuffered       int
	commitIntervalSet bool
	purgeInterval     time.Duration
	cleanupDelay      time.Duration
	restoreConc       int
	restoreConcSet    bool
	inlineStateless   bool
}

// AppID sets the application id: the consumer group id and the prefix of the app's internal
// topics. Required. Kafka Streams' application.id.
func AppID(id string) AppOption { return appOptionFunc(func(c *appConfig) { c.appID = id }) }

// Brokers sets the bootstrap brokers ("host:port"). Required. Kafka's bootstrap.servers.
func Brokers(addrs ...string) AppOption {
	return appOptionFunc(func(c *appConfig) { c.brokers = append(c.brokers, addrs...) })
}

// StateDir sets the directory for local state; the app uses "<dir>/<appID>/". Default:
// "<os.TempDir()>/riffle". Kafka Streams' state.dir.
func StateDir(dir string) AppOption { return appOptionFunc(func(c *appConfig) { c.stateDir = dir }) }

// CommitInterval sets how often offsets are committed and caches flushed. Default 30s under
// AtLeastOnce and 100ms under ExactlyOnce, as in Kafka Streams (commit.interval.ms).
func CommitInterval(d time.Duration) AppOption {
	return appOptionFunc(func(c *appConfig) { c.commitInterval = d; c.commitIntervalSet = true })
}

// ProcessingGuarantee sets the guarantee. Default AtLeastOnce. Kafka Streams' processing.guarantee.
func ProcessingGuarantee(g Guarantee) AppOption {
	return appOptionFunc(func(c *appConfig) { c.guarantee = g })
}

// Logger sets the logger. Default: slog.Default().
func Logger(l *slog.Logger) AppOption { return appOptionFunc(func(c *appConfig) { c.logger = l }) }

// ClientOptions passes options to every franz-go client the app makes: TLS (kgo.DialTLSConfig),
// SASL (kgo.SASL), timeouts (kgo.SessionTimeout, kgo.RebalanceTimeout), and so on. Options that
// Riffle sets itself (the group, topics, balancer, commits) must not be overridden.
func ClientOptions(opts ...kgo.Opt) AppOption {
	return appOptionFunc(func(c *appConfig) { c.clientOpts = append(c.clientOpts, opts...) })
}

// OnDeserializationError sets what happens to records whose bytes cannot be decoded (or whose
// timestamp cannot be extracted). Default Fail. Kafka Streams' deserialization.exception.handler.
func OnDeserializationError(h ErrorHandler) AppOption {
	return appOptionFunc(func(c *appConfig) { c.handlers.Deserialization = h; c.handlersSet = c.handlersSet || mayDeadLetter(h) })
}

// OnProcessingError sets what happens to records a processor fails on (an error or a panic).
// Default Fail. Kafka Streams' processing.exception.handler.
func OnProcessingError(h ErrorHandler) AppOption {
	return appOptionFunc(func(c *appConfig) { c.handlers.Processing = h; c.handlersSet = c.handlersSet || mayDeadLetter(h) })
}

// OnProductionError sets what happens to output records that cannot be serialized or that Kafka
// rejects. It may run on the producer's goroutine. Default Fail. Kafka Streams'
// production.exception.handler.
func OnProductionError(h ErrorHandler) AppOption {
	return appOptionFunc(func(c *appConfig) { c.handlers.Production = h; c.handlersSet = c.handlersSet || mayDeadLetter(h) })
}

// OnLateRecord sets what happens to records a windowed operation drops because their window
// closed (stream time passed its end plus the grace period). Default Skip (counted under the
// "late" stage and logged, as in Kafka Streams); DeadLetter also writes them to the dead-letter
// topic.
func OnLateRecord(h ErrorHandler) AppOption {
	return appOptionFunc(func(c *appConfig) { c.handlers.Late = h; c.handlersSet = c.handlersSet || mayDeadLetter(h) })
}

// DeadLetterTopic sets the dead-letter topic. Default "<appID>-dlq". The app creates it at start-up
// (with the broker's default partition count) when a handler other than Skip and Fail is set.
func DeadLetterTopic(topic string) AppOption {
	return appOptionFunc(func(c *appConfig) { c.handlers.DeadLetterTopic = topic })
}

// mayDeadLetter tells whether a handler may answer DeadLetter: any but the built-in Skip and
// Fail (functions compare by their code pointer).
func mayDeadLetter(h ErrorHandler) bool {
	if h == nil {
		return false
	}
	p := reflect.ValueOf(h).Pointer()
	for _, known := range []ErrorHandler{Skip, Fail, topology.Skip, topology.Fail} {
		if reflect.ValueOf(known).Pointer() == p {
			return false
		}
	}
	return true
}

// OffsetReset sets where the app starts reading partitions that have no committed offset.
// Default topology.ResetEarliest. Sources may override it (WithOffsetReset). Kafka's
// auto.offset.reset.
func OffsetReset(r topology.OffsetReset) AppOption {
	return appOptionFunc(func(c *appConfig) { c.reset = r })
}

// ReplicationFactor sets the replication factor of the internal topics the app creates.
// Default -1: the broker's default.replication.factor. Kafka Streams' replication.factor.
func ReplicationFactor(n int16) AppOption {
	return appOptionFunc(func(c *appConfig) { c.replication = n })
}

// MaxBufferedRecordsPerPartition bounds the fetched records waiting for their tasks. Default
// 10,000; Kafka Streams' buffered.records.per.partition (default 1000).
//
// In total, an instance holds at most half of n per assigned partition: while its tasks are
// behind, it stops polling (and takes no more records than fit), and the client then keeps at
// most one fetch per broker. A partition that holds n on its own for 100 ms (its task is behind
// the others) has its fetching paused until it is down to half, and its records no longer count
// in that total, so the others are not stalled by it: with paused partitions an instance holds
// at most n per partition. Pausing is the exception because the client drops what it had already
// fetched for a paused partition and fetches it again later.
func MaxBufferedRecordsPerPartition(n int) AppOption {
	return appOptionFunc(func(c *appConfig) { c.maxBuffered = n })
}

// RepartitionPurgeInterval sets the least time between two deletions of consumed records from
// the app's repartition topics (which keep no retention of their own). Default 30s. Kafka
// Streams' repartition.purge.interval.ms.
func RepartitionPurgeInterval(d time.Duration) AppOption {
	return appOptionFunc(func(c *appConfig) { c.purgeInterval = d })
}

// StateCleanupDelay sets how long an instance keeps the local state of a task that moved away,
// for a cheap return, before deleting it. Default 10 minutes. Kafka Streams' state.cleanup.delay.ms.
func StateCleanupDelay(d time.Duration) AppOption {
	return appOptionFunc(func(c *appConfig) { c.cleanupDelay = d })
}

// RestoreConcurrency bounds how many tasks of an instance restore their state from changelogs
// at once; the others wait for a turn (a task processes only once restored, either way). Default:
// the CPUs the process may use (GOMAXPROCS), at least 2. A restore is bound by CPU, and each one
// holds a client and up to ~50 MiB of buffers, so an instance assigned many tasks at once
// restores as fast with the bound, in far less memory. A task with nothing to restore (a clean
// restart) does not wait.
func RestoreConcurrency(n int) AppOption {
	return appOptionFunc(func(c *appConfig) { c.restoreConc, c.restoreConcSet = n, true })
}

// InlineStatelessTasks processes the records of stateless tasks on the goroutine that polls
// Kafka, right after each poll, instead of on a goroutine per task: the shape of a hand-written
// consume -> transform -> produce loop, and of a Kafka Streams stream thread. At-least-once only
// (NewApp refuses it with ExactlyOnce); tasks with state stores keep their own goroutines.
//
// It saves the hand-off of each record between goroutines and, above all, the contention of
// several task goroutines producing through the one Kafka client: ~6% less CPU per record on the
// q1 benchmark on two cores (bench/PROFILE.md). What it costs: the stateless tasks of an instance
// no longer run in parallel with each other, and a slow one delays the others and the polling
// (which is then the backpressure). Use it for stateless apps on instances of one or two cores,
// and scale them with replicas; keep the default where one instance runs many tasks on many
// cores, or where one task's slow records must not hold up the others. Metrics'
// RecordsProcessedInline counts the records the poll loop processed (those that arrive while a
// task's own goroutine holds it, taking a commit's snapshot, are processed there).
func InlineStatelessTasks() AppOption {
	return appOptionFunc(func(c *appConfig) { c.inlineStateless = true })
}

var appIDRE = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,200}$`)

// App runs a topology as a member of a Kafka consumer group: start as many replicas as you like
// with the same AppID, and Kafka spreads the tasks over them.
type App struct {
	cfg    appConfig
	plan   *topology.Plan
	engine *engine.Engine

	mu      sync.Mutex
	cancel  context.CancelFunc
	done    chan struct{}
	running bool
}

// NewApp checks the topology and the options and returns an app ready to Run. It starts nothing.
// Every problem is reported at once, joined.
func NewApp(b *Builder, opts ...AppOption) (*App, error) {
	cfg := appConfig{replication: -1, maxBuffered: 10_000}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("stream: NewApp: a nil option")
		}
		o.applyApp(&cfg)
	}
	var errs []error
	if cfg.appID == "" {
		errs = append(errs, errors.New("stream: NewApp: AppID is required"))
	} else if !appIDRE.MatchString(cfg.appID) {
		errs = append(errs, fmt.Errorf("stream: NewApp: AppID %q: use 1 to 200 letters, digits, '.', '_' or '-' (it names a group and topics)", cfg.appID))
	}
	if len(cfg.brokers) == 0 {
		errs = append(errs, errors.New("stream: NewApp: Brokers is required (or start one with connectors/kafka.StartEmbedded for a quick start)"))
	}
	if cfg.commitIntervalSet && cfg.commitInterval <= 0 {
		errs = append(errs, fmt.Errorf("stream: NewApp: CommitInterval(%v) must be positive", cfg.commitInterval))
	}
	if !cfg.commitIntervalSet {
		cfg.commitInterval = 30 * time.Second
		if cfg.guarantee == ExactlyOnce {
			cfg.commitInterval = 100 * time.Millisecond
		}
	}
	if cfg.guarantee != AtLeastOnce && cfg.guarantee != ExactlyOnce {
		errs = append(errs, fmt.Errorf("stream: NewApp: unknown processing guarantee %d", cfg.guarantee))
	}
	if cfg.inlineStateless && cfg.guarantee == ExactlyOnce {
		errs = append(errs, errors.New("stream: NewApp: InlineStatelessTasks is for at-least-once processing; it cannot be used with ExactlyOnce"))
	}
	if cfg.maxBuffered <= 0 {
		errs = append(errs, fmt.Errorf("stream: NewApp: MaxBufferedRecordsPerPartition(%d) must be positive", cfg.maxBuffered))
	}
	if cfg.restoreConcSet && cfg.restoreConc <= 0 {
		errs = append(errs, fmt.Errorf("stream: NewApp: RestoreConcurrency(%d) must be positive", cfg.restoreConc))
	}
	if cfg.replication == 0 || cfg.replication < -1 {
		errs = append(errs, fmt.Errorf("stream: NewApp: ReplicationFactor(%d) must be positive, or -1 for the broker's default", cfg.replication))
	}
	if cfg.stateDir == "" {
		cfg.stateDir = filepath.Join(os.TempDir(), "riffle")
	}
	if cfg.logger == nil {
		cfg.logger = slog.Default()
	}
	if cfg.handlers.DeadLetterTopic == "" && cfg.appID != "" {
		cfg.handlers.DeadLetterTopic = cfg.appID + "-dlq"
	}
	topo, err := b.Build()
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	plan, err := topo.Plan(cfg.appID)
	if err != nil {
		return nil, err
	}
	eng, err := engine.New(engine.Config{
		AppID:                   cfg.appID,
		Brokers:                 cfg.brokers,
		ClientOpts:              cfg.clientOpts,
		Plan:                    plan,
		Handlers:                cfg.handlers,
		Guarantee:               cfg.guarantee,
		CommitInterval:          cfg.commitInterval,
		OffsetReset:             cfg.reset,
		MaxBufferedPerPartition: cfg.maxBuffered,
		InlineStateless:         cfg.inlineStateless,
		ReplicationFactor:       cfg.replication,
		CreateDeadLetterTopic:   cfg.handlersSet,
		PurgeInterval:           cfg.purgeInterval,
		StateDir:                filepath.Join(cfg.stateDir, cfg.appID),
		StateCleanupDelay:       cfg.cleanupDelay,
		RestoreConcurrency:      cfg.restoreConc,
		Logger:                  cfg.logger,
	})
	if err != nil {
		return nil, fmt.Errorf("stream: NewApp: %w", err)
	}
	return &App{cfg: cfg, plan: plan, engine: eng}, nil
}

// Run joins the group and processes records until ctx is done (then it commits what is fully
// processed, leaves the group and returns nil) or a fatal error happens (then it closes the same
// way and returns the error, which says what failed and where). Run may be called once.
func (a *App) Run(ctx context.Context) error {
	a.mu.Lock()
	if a.running || a.done != nil {
		a.mu.Unlock()
		return errors.New("stream: Run called twice")
	}
	ctx, a.cancel = context.WithCancel(ctx)
	a.done = make(chan struct{})
	a.running = true
	a.mu.Unlock()
	defer close(a.done)
	defer a.cancel()
	return a.engine.Run(ctx)
}

// Close stops a running app as a cancelled context would, and waits until Run has returned.
func (a *App) Close() {
	a.mu.Lock()
	cancel, done := a.cancel, a.done
	a.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
}

// Describe describes the app's topology.
func (a *App) Describe() topology.Description { return a.plan.Describe() }

// Tasks returns the tasks active on this instance.
func (a *App) Tasks() []topology.TaskID { return a.engine.Tasks() }

// State returns the app's state: "created", "starting", "running", "stopping", "stopped" or
// "failed".
func (a *App) State() string { return a.engine.State().String() }

// Metrics returns the app's counters.
func (a *App) Metrics() Metrics { return Metrics(a.engine.Metrics()) }

// Metrics are an app instance's counters since it started.
type Metrics engine.Metrics

// WaitIdle returns once every record that was in the app's source topics when it was called has
// been processed and committed (repartition topics included, until they drain too). It asks for
// commits rather than waiting for the commit interval, and waits for this instance's tasks to
// finish restoring their state. Tests, batch jobs and examples with a fixed input use it to know
// when the output is complete. It returns the app's error if the app fails meanwhile; transient
// errors (a coordinator moving) are retried until ctx ends.
func (a *App) WaitIdle(ctx context.Context) error { return a.engine.WaitIdle(ctx) }

// AdvanceStreamTime moves the stream time of this instance's tasks forward to ts, closing the
// windows it closes (final results are emitted): for a finite input, after WaitIdle, so windows
// still open at the end are counted. Stream time never goes back. A topology whose windows lie
// after a repartition topic needs a second WaitIdle and AdvanceStreamTime for them. It commits
// before it returns: the final results it emitted are in Kafka (committed, under ExactlyOnce).
func (a *App) AdvanceStreamTime(ctx context.Context, ts time.Time) error {
	return a.engine.AdvanceStreamTime(ctx, ts)
}
