package engine

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rifflestream/riffle/internal/strs"
	"github.com/rifflestream/riffle/topology"
)

// runner runs one active task on its own goroutine: it takes records from the task's partition
// queues (filled by the poll loop), lowest timestamp first across partitions, processes them one
// by one, and serves control requests (commit snapshots, stop) between records.
type runner struct {
	e    *Engine
	id   topology.TaskID
	task *topology.Task

	mu sync.Mutex // guards queues and paused state, shared with the poll loop
	// procMu is held by whichever goroutine processes the task: its own, which holds it while it
	// processes a batch or runs a control request, or the poll loop (processInline). The fields
	// below marked "owned by the runner goroutine" are owned by procMu's holder.
	procMu   sync.Mutex
	queues   []*partQueue
	byTopic  map[string]*partQueue
	signal   chan struct{} // records arrived
	ctrl     chan func()   // run on the runner goroutine between records
	quit     chan struct{} // stop without committing (lost partitions, hard shutdown)
	exited   chan struct{}
	stopping bool // set on the runner goroutine by a stop request
	gone     bool // the runner goroutine has returned (under procMu): the task may be closed

	// Owned by the runner goroutine (by procMu's holder).
	epoch *epoch
	// reserved counts the references of epoch reserved and not yet used by a send
	// (epoch.reserve); given back when the epoch closes.
	reserved int64
	origin   topology.Origin // of the record being processed, for produce errors
	raw      topology.RawRecord
	failed   error // the fatal error that stopped this task, if any
	batch    []*kgo.Record
	// produced counts the records sent since the engine's counter was last updated: the engine's
	// counters are shared by every runner, so they are added to once per batch, not per record.
	produced int64
	block    *metaBlock   // see newMetaElem
	recSlab  []kgo.Record // see newRecord
	// inNext is 1 + the index in batch of the input record being processed, until its
	// kgo.Record is reused for the first record sent because of it (see runnerCollector.Send);
	// 0: none. An index, not a pointer: two stores per record that need no write barrier.
	inNext int
	// inBatch counts the records of the current batch processed so far: the progress a commit
	// round watches for (Engine.progress) while the engine's counter is only added to per batch.
	// The runner alone writes it, every 32 records: enough for a stall detector counting in
	// tens of milliseconds, and no atomic store per record.
	inBatch atomic.Int64
	// lastQueue is the queue of the last processed record's topic (see process), and lastTopic
	// that record's topic string: the next record's queue is looked up only when its topic is
	// another string in memory (once per fetch response), not compared byte by byte per record.
	lastQueue *partQueue
	lastTopic string
	lastPunc  time.Time
	// pendingApply is the epoch whose acknowledgement the task's stores wait for: once it is
	// done, the flushed writes and the changelog offsets reached are applied locally.
	pendingApply *epoch
	slots        map[string]*atomic.Int64 // changelog topic -> offset after the last acked record
	slotsMu      sync.Mutex
	stateful     bool
	// ready is set once state is restored and processors started: until then the runner serves no
	// control requests, so commits skip it and a revocation aborts it.
	ready atomic.Bool
	// inline is set once ready, for a stateless task of an engine with Config.InlineStateless:
	// the poll loop processes its records (processInline).
	inline atomic.Bool
	// listed: the poll loop has listed the task to process after this poll (the poll loop's own).
	listed bool
}

// changelogSlot returns the acknowledged-offset tracker of a changelog topic.
func (r *runner) changelogSlot(topic string) *atomic.Int64 {
	r.slotsMu.Lock()
	defer r.slotsMu.Unlock()
	s, ok := r.slots[topic]
	if !ok {
		s = new(atomic.Int64)
		s.Store(-1)
		r.slots[topic] = s
	}
	return s
}

// applyPending waits until the task's last snapshot is acknowledged, then applies its stores'
// flushed writes with their checkpoints. The task does not process meanwhile (its reads must see
// those writes), which costs it the acknowledgement latency once per commit.
func (r *runner) applyPending(ctx context.Context) {
	ep := r.pendingApply
	if ep == nil {
		return
	}
	r.pendingApply = nil
	ok, err := ep.wait(ctx)
	if err != nil || !ok {
		// Not acknowledged: leave the local state at its last checkpoint; the changelog holds
		// whatever did arrive, and a restore replays it.
		r.fail(fmt.Errorf("task %s: state changes were not acknowledged by Kafka: %v", r.id, err))
		return
	}
	next := map[string]int64{}
	r.slotsMu.Lock()
	for topic, s := range r.slots {
		if v := s.Load(); v >= 0 {
			next[topic] = v
		}
	}
	r.slotsMu.Unlock()
	if err := r.task.CommitStores(next); err != nil {
		r.fail(err)
	}
}

// partQueue is one input partition's buffer.
type partQueue struct {
	topic     string
	partition int32
	recs      []*kgo.Record
	head      int
	paused    bool // paused because the buffer stayed full (see checkHog)
	// overSince is when the buffer went over its limit; zero while it is under it.
	overSince time.Time
	// held: paused until the task is ready (restored). Records polled for a task that cannot
	// process them yet would be committed unprocessed under exactly-once (the transaction commits
	// what was polled), and only take memory otherwise. Kafka Streams pauses them too.
	held bool
	// next is the offset to commit: one past the last processed record; -1 until one is processed.
	next        int64
	leaderEpoch int32
}

func (q *partQueue) len() int { return len(q.recs) - q.head }

func newRunner(e *Engine, id topology.TaskID, task *topology.Task) *runner {
	return &runner{
		e: e, id: id, task: task,
		byTopic: map[string]*partQueue{},
		signal:  make(chan struct{}, 1),
		ctrl:    make(chan func()),
		quit:    make(chan struct{}),
		exited:  make(chan struct{}),
		epoch:   newEpoch(nil),
		slots:   map[string]*atomic.Int64{},
	}
}

// addPartition registers an input partition of the task. Called before the runner starts, or
// under e.mu from the assignment callback.
func (r *runner) addPartition(topic string, partition int32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.byTopic[topic]; ok {
		return
	}
	q := &partQueue{topic: topic, partition: partition, next: -1}
	r.byTopic[topic] = q
	r.queues = append(r.queues, q)
	if !r.ready.Load() {
		q.held = true
		if r.e.cl != nil {
			r.e.cl.PauseFetchPartitions(map[string][]int32{topic: {partition}})
		}
	}
}

// becomeReady marks the task ready and resumes fetching its held partitions.
func (r *runner) becomeReady() {
	r.inline.Store(r.e.cfg.InlineStateless && !r.stateful && r.e.sess == nil)
	r.mu.Lock()
	r.ready.Store(true)
	resume := map[string][]int32{}
	for _, q := range r.queues {
		if q.held {
			q.held = false
			if !q.paused {
				resume[q.topic] = append(resume[q.topic], q.partition)
			}
		}
	}
	r.mu.Unlock()
	if len(resume) > 0 {
		r.e.cl.ResumeFetchPartitions(resume)
	}
}

// enqueue adds fetched records; called by the poll loop. It returns true if the poll loop is to
// process them (processInline), and wakes the task's goroutine otherwise.
func (r *runner) enqueue(topic string, recs []*kgo.Record) (inline bool) {
	r.mu.Lock()
	q := r.byTopic[topic]
	if q == nil {
		r.mu.Unlock()
		return
	}
	if q.head > 0 && q.head == len(q.recs) {
		q.recs, q.head = q.recs[:0], 0
	}
	q.recs = append(q.recs, recs...)
	if !q.paused {
		r.e.buffered.Add(int64(len(recs)))
	}
	r.checkHog(q, time.Now())
	r.mu.Unlock()
	if r.inline.Load() {
		return true
	}
	r.wake()
	return false
}

// wake tells the runner goroutine that records arrived.
func (r *runner) wake() {
	select {
	case r.signal <- struct{}{}:
	default:
	}
}

// processInline processes the task's buffered records on the calling goroutine, the poll loop's
// (Config.InlineStateless), as the bare consume -> process -> produce loop does: no hand-off
// to the task's goroutine, and one goroutine producing instead of one per task. On the q1
// benchmark that is ~6% less CPU per record (bench/PROFILE.md, twelfth round): less contention
// on the client's producer locks, fewer pointer copies through the queue while the collector
// marks, no goroutine switches. Only for ready stateless tasks under at-least-once (r.inline):
// a stateful task may wait for a commit's acknowledgement before it processes on (applyPending),
// and exactly-once needs the transaction gate, neither of which may block the poll loop.
//
// If the task's goroutine holds the task (a commit's snapshot, a punctuation), it is woken to
// process the records itself once done.
func (r *runner) processInline() {
	if !r.procMu.TryLock() {
		r.wake()
		return
	}
	defer r.procMu.Unlock()
	var done int64
	for !r.gone && r.failed == nil && !r.stopping {
		r.take(batchSize)
		if len(r.batch) == 0 {
			break
		}
		done += int64(r.processTaken())
	}
	if done > 0 {
		r.e.processedInl.Add(done)
	}
}

// processTaken processes the taken batch (returning how many records it processed), runs the
// punctuations it made due and passes on a commit a processor asked for. The caller holds procMu:
// the task's goroutine (run) or the poll loop (processInline).
func (r *runner) processTaken() int {
	done := r.processBatch()
	r.punctuate()
	if r.failed == nil && r.task.CommitRequested() {
		r.e.requestCommit()
	}
	return done
}

// checkHog pauses q's partition once its buffer has been over the limit for hogAfter: its task
// is behind the others, and without the pause it would take the whole buffer (the poll loop's
// limit across partitions) and stall them. A paused partition's records no longer count
// against the poll loop's limit; the task goes on processing them, and fetching resumes when
// half are left (take). Called with r.mu held, by the poll loop: from enqueue, and while the
// poll loop waits for room (Engine.pauseHogs).
//
// Not at once: pausing makes the client drop what it had already fetched for the partition, to
// fetch it again on resume, and a buffer goes over its limit whenever one poll hands it a large
// part of a fetch (a fetch holds up to FetchMaxPartitionBytes of one partition: thousands of
// small records, more than a low limit). Measured with a limit of 1,000 records on the q1
// benchmark: pausing at once fetched every byte 2.4 times over and took 3.5 times as long. A
// task keeping up drains such a burst in milliseconds; one behind stays over the limit.
func (r *runner) checkHog(q *partQueue, now time.Time) {
	if q.paused || q.held || q.len() < r.e.cfg.MaxBufferedPerPartition {
		return
	}
	if q.overSince.IsZero() {
		q.overSince = now
		return
	}
	if now.Sub(q.overSince) < hogAfter {
		return
	}
	q.paused = true
	r.e.pauses.Add(1)
	r.e.cl.PauseFetchPartitions(map[string][]int32{q.topic: {q.partition}})
	r.e.took(q.len())
}

// take moves up to max buffered records into r.batch, merging the task's partitions by record
// timestamp (the lowest first, Kafka Streams' choice rule), and resumes partitions that drained.
func (r *runner) take(max int) {
	r.batch = r.batch[:0]
	r.mu.Lock()
	defer r.mu.Unlock()
	counted := 0 // taken from partitions that are not paused: they leave the poll loop's count
	if len(r.queues) == 1 {
		q := r.queues[0]
		n := min(q.len(), max)
		r.batch = append(r.batch, q.recs[q.head:q.head+n]...)
		clear(q.recs[q.head : q.head+n])
		q.head += n
		if !q.paused {
			counted = n
		}
	} else {
		for len(r.batch) < max {
			var best *partQueue
			for _, q := range r.queues {
				if q.len() == 0 {
					continue
				}
				if best == nil || q.recs[q.head].Timestamp.Before(best.recs[best.head].Timestamp) {
					best = q
				}
			}
			if best == nil {
				break
			}
			r.batch = append(r.batch, best.recs[best.head])
			best.recs[best.head] = nil
			best.head++
			if !best.paused {
				counted++
			}
		}
	}
	r.e.took(counted)
	for _, q := range r.queues {
		if q.len() < r.e.cfg.MaxBufferedPerPartition {
			q.overSince = time.Time{}
		}
		if q.paused && q.len() <= r.e.cfg.MaxBufferedPerPartition/2 {
			q.paused = false
			r.e.buffered.Add(int64(q.len())) // counted again
			r.e.cl.ResumeFetchPartitions(map[string][]int32{q.topic: {q.partition}})
		}
	}
}

// buffered returns how many records wait in the task's queues, and how many partitions are paused.
func (r *runner) buffered() (records, paused int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, q := range r.queues {
		records += q.len()
		if q.paused {
			paused++
		}
	}
	return records, paused
}

// release forgets the task's partitions: buffered records are dropped (they were not processed,
// so their offsets are not committed) and paused partitions are resumed, since kgo keeps a pause
// across a revoke and a later reassignment would otherwise never fetch.
func (r *runner) release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	resume := map[string][]int32{}
	for _, q := range r.queues {
		if !q.paused {
			r.e.took(q.len()) // a paused partition's records are not counted
		}
		if q.paused || q.held {
			resume[q.topic] = append(resume[q.topic], q.partition)
			q.paused, q.held = false, false
		}
		q.recs, q.head = nil, 0
	}
	if len(resume) > 0 {
		r.e.cl.ResumeFetchPartitions(resume)
	}
}

const batchSize = 500

// hogAfter is how long a partition's buffer may stay over its limit before its fetching pauses
// (see checkHog).
const hogAfter = 100 * time.Millisecond

// run is the runner goroutine: it restores the task's state, starts its processors, then
// processes until stopped.
func (r *runner) run() {
	defer func() {
		// Under procMu, so that the poll loop processes nothing more once the task may be closed.
		r.procMu.Lock()
		r.gone = true
		r.procMu.Unlock()
		close(r.exited)
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-r.quit:
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := r.start(ctx); err != nil {
		if ctx.Err() == nil {
			r.fail(err)
		}
		r.becomeReady()
		r.serveUntilStopped()
		return
	}
	r.becomeReady()
	defer r.applyPending(ctx)
	wall := time.NewTimer(time.Hour)
	defer wall.Stop()
	for !r.stopping {
		r.applyPending(ctx) // stateful tasks only: never processed inline
		select {
		case f := <-r.ctrl:
			r.control(f)
			continue
		case <-r.quit:
			return
		default:
		}
		// Enter the transaction gate before taking records: while it waits it runs control
		// requests, and a commit round's drain takes and processes the queued records itself.
		if !r.e.txnEnter(r) {
			return
		}
		r.procMu.Lock()
		if r.failed == nil {
			r.take(batchSize)
		} else {
			r.batch = r.batch[:0]
		}
		if len(r.batch) == 0 {
			r.armWallTimer(wall)
			r.procMu.Unlock()
			r.e.txnExit()
			select {
			case <-r.signal:
			case f := <-r.ctrl:
				r.control(f)
			case <-r.quit:
				return
			case <-wall.C:
				if !r.e.txnEnter(r) {
					return
				}
				r.control(r.punctuate)
				r.e.txnExit()
			}
			continue
		}
		r.processTaken() // under procMu: the poll loop may process the task next (processInline)
		r.procMu.Unlock()
		r.e.txnExit()
	}
}

// control runs a control request (or a punctuation) on the runner goroutine, holding the task.
func (r *runner) control(f func()) {
	r.procMu.Lock()
	defer r.procMu.Unlock()
	f()
}

// start restores the task's stores and initializes its processors.
func (r *runner) start(ctx context.Context) error {
	r.stateful = len(r.task.Stores()) > 0
	if r.stateful {
		if err := r.restore(ctx); err != nil {
			return err
		}
	}
	return r.task.Init()
}

// serveUntilStopped answers control requests (with empty snapshots) after a failed start, so the
// engine can stop the runner as usual.
func (r *runner) serveUntilStopped() {
	for !r.stopping {
		select {
		case f := <-r.ctrl:
			r.control(f)
		case <-r.quit:
			return
		}
	}
}

func (r *runner) armWallTimer(t *time.Timer) {
	next, ok := r.task.NextWallClockPunctuation()
	d := time.Hour
	if ok {
		d = max(time.Until(next), time.Millisecond)
	}
	t.Reset(d)
}

func (r *runner) punctuate() {
	if r.failed != nil {
		return
	}
	now := time.Now()
	if now.Sub(r.lastPunc) < time.Millisecond {
		return
	}
	r.lastPunc = now
	r.origin = topology.Origin{}
	err := r.task.PunctuateWallClock(now)
	r.flushCounts()
	if err != nil {
		r.fail(err)
	}
}

// processBatch processes the taken records in order; the first error fails the task and drops the
// rest of the batch. It returns how many it processed.
func (r *runner) processBatch() int {
	done := len(r.batch)
	for i, rec := range r.batch {
		if err := r.process(rec, i); err != nil {
			r.fail(err)
			done = i
			break
		}
		if i&31 == 31 {
			r.inBatch.Store(int64(i + 1)) // progress, for the commit round's stall detection
		}
	}
	// Not kept past the batch: the records and the fetched bytes they point into can then be
	// collected. The raw record once per batch, not per record (see process); the batch whole,
	// since a shorter batch next would leave pointers to these records past its length, which
	// the collector still follows.
	r.raw.Key, r.raw.Value, r.raw.Headers = nil, nil, nil
	clear(r.batch)
	r.e.processed.Add(int64(done))
	r.inBatch.Store(0)
	r.flushCounts()
	return done
}

// flushCounts adds the runner's counts to the engine's.
func (r *runner) flushCounts() {
	if r.produced > 0 {
		r.e.produced.Add(r.produced)
		r.produced = 0
	}
}

// process runs one record, batch[i], through the task. The caller adds it to the engine's processed
// count.
//
// Every pointer stored into a heap object while the garbage collector marks goes through a write
// barrier, which queues the old and the new pointer for the collector to shade: a store of the
// same topic string, or of nil headers over nil, is skipped when the field already holds it, and
// the raw record is cleared once per batch rather than after each record (processBatch).
func (r *runner) process(rec *kgo.Record, i int) error {
	q := r.lastQueue
	if q == nil || !strs.Same(r.lastTopic, rec.Topic) {
		q = r.byTopic[rec.Topic]
		r.lastQueue, r.lastTopic = q, rec.Topic
	}
	// Field by field (a composite literal zeroes and copies the whole struct, with write
	// barriers, on every record).
	raw := &r.raw
	if !strs.Same(raw.Topic, rec.Topic) {
		raw.Topic = rec.Topic
	}
	if !strs.Same(r.origin.Topic, rec.Topic) {
		r.origin.Topic = rec.Topic
	}
	raw.Partition, raw.Offset, raw.Timestamp = rec.Partition, rec.Offset, rec.Timestamp
	raw.Key, raw.Value = rec.Key, rec.Value
	if rec.Headers != nil || raw.Headers != nil {
		raw.Headers = fromKgoHeaders(rec.Headers)
	}
	r.origin.Partition, r.origin.Offset = rec.Partition, rec.Offset
	next, leaderEpoch := rec.Offset+1, rec.LeaderEpoch
	// From here on rec may become an output record: read nothing more from it.
	r.inNext = i + 1
	err := r.task.Process(raw)
	r.inNext = 0 // if not reused as an output (runnerCollector.Send clears it)
	if err != nil {
		return err
	}
	q.next, q.leaderEpoch = next, leaderEpoch
	return nil
}

// fail records a fatal error: the task stops processing and the app shuts down.
func (r *runner) fail(err error) {
	if r.failed != nil {
		return
	}
	r.failed = err
	r.e.fail(fmt.Errorf("task %s: %w", r.id, err))
}

// snapshot is what a commit needs from one task.
type snapshot struct {
	r       *runner
	offsets map[string]map[int32]kgo.EpochOffset
	epoch   *epoch
	// ok is false when the task failed: its progress since the last commit is dropped.
	ok bool
	// produced tells whether the task produced anything (outputs, changelog, repartition
	// records) since the last snapshot.
	produced bool
}

// takeSnapshot runs on the runner goroutine: it flushes the task (emitting cached updates into the
// current epoch), records the offsets processed so far, and closes the epoch.
func (r *runner) takeSnapshot() snapshot {
	s := snapshot{r: r}
	if r.failed != nil {
		return s
	}
	r.origin = topology.Origin{}
	err := r.task.Flush()
	r.flushCounts()
	if err != nil {
		r.fail(err)
		return s
	}
	s.offsets = map[string]map[int32]kgo.EpochOffset{}
	for _, q := range r.queues {
		if q.next >= 0 {
			s.offsets[q.topic] = map[int32]kgo.EpochOffset{q.partition: {Epoch: q.leaderEpoch, Offset: q.next}}
		}
	}
	s.epoch = r.epoch
	s.produced = s.epoch.sent.Load()
	r.epoch = newEpoch(s.epoch)
	s.epoch.releaseN(1 + r.reserved) // the open epoch's reference and the unused reservation
	r.reserved = 0
	s.ok = true
	if r.stateful {
		r.pendingApply = s.epoch
	}
	return s
}

// call runs f on the runner goroutine and waits for it. It returns false if the runner has exited.
func (r *runner) call(ctx context.Context, f func()) bool {
	done := make(chan struct{})
	select {
	case r.ctrl <- func() { f(); close(done) }:
	case <-r.exited:
		return false
	case <-ctx.Done():
		return false
	}
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}

// snapshotAndStop takes a final snapshot and stops the runner goroutine.
func (r *runner) snapshotAndStop(ctx context.Context) (snapshot, bool) {
	var s snapshot
	ok := r.call(ctx, func() {
		s = r.takeSnapshot()
		r.stopping = true
	})
	if ok {
		<-r.exited
	}
	return s, ok
}

// abort stops the runner without a snapshot and waits for it.
func (r *runner) abort() {
	select {
	case <-r.quit:
	default:
		close(r.quit)
	}
	<-r.exited
}
