package engine

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rifflestream/riffle/internal/murmur2"
	"github.com/rifflestream/riffle/topology"
)

// epoch groups the records a task produced between two commit snapshots. A commit of the offsets
// taken at a snapshot is safe once the epoch closed at that snapshot (and every earlier one) has
// all its records acknowledged: whatever those input records caused is then durable in Kafka.
// Processing goes on meanwhile, into the next epoch.
//
// pending starts at 1 for the epoch being open; close drops that reference, each ack drops one,
// and whoever drops the last closes done.
type epoch struct {
	pending atomic.Int64
	sent    atomic.Bool // a record was handed to the producer in this epoch
	failed  atomic.Bool // a record of the epoch could not be produced and was not skipped
	done    chan struct{}
	// prev is the epoch before: done only counts once prev is done too. Several goroutines wait
	// on one chain (the committer, the runner applying its stores), so it is cut atomically.
	prev atomic.Pointer[epoch]
}

func newEpoch(prev *epoch) *epoch {
	e := &epoch{done: make(chan struct{})}
	e.prev.Store(prev)
	e.pending.Store(1)
	return e
}

// reserve takes n references for records about to be sent. The runner takes them in bulk
// (epochReserve): its sends then count against the reservation without touching pending, a
// cache line the producer's promise goroutine writes on every acknowledgement, and what is left
// is given back when the epoch closes (releaseN).
func (e *epoch) reserve(n int64) {
	e.pending.Add(n)
	if !e.sent.Load() {
		e.sent.Store(true)
	}
}

func (e *epoch) release() { e.releaseN(1) }

func (e *epoch) releaseN(n int64) {
	if e.pending.Add(-n) == 0 {
		close(e.done)
	}
}

// epochReserve is how many references a runner reserves at a time (epoch.reserve).
const epochReserve = 256

// wait blocks until this epoch and every earlier one are acknowledged, or ctx ends. It reports
// whether every record was produced (or skipped by the production handler).
func (e *epoch) wait(ctx context.Context) (bool, error) {
	ok := true
	for x := e; x != nil; x = x.prev.Load() {
		select {
		case <-x.done:
			ok = ok && !x.failed.Load()
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
	// Every earlier epoch is done: drop the chain so it does not grow. A failure stays recorded
	// in this epoch for later waiters.
	if !ok {
		e.failed.Store(true)
	}
	e.prev.Store(nil)
	return ok, nil
}

// outMeta is what the produce promise needs to know of a record in flight. It travels as the
// record's Context (it is a context.Context that is never done), so the promise, which gets only
// the *kgo.Record back, reaches it without a map lookup.
type outMeta struct {
	ep     *epoch
	r      *runner
	origin topology.Origin
	// slot, for a changelog record, tracks the offset after the last acknowledged record of its
	// changelog partition: the checkpoint the store may write once the epoch is done.
	slot *atomic.Int64
}

func (*outMeta) Deadline() (time.Time, bool) { return time.Time{}, false }
func (*outMeta) Done() <-chan struct{}       { return nil }
func (*outMeta) Err() error                  { return nil }
func (*outMeta) Value(any) any               { return nil }

func metaOf(r *kgo.Record) *outMeta { return r.Context.(*outMeta) }

// topology.Header and kgo.RecordHeader have the same layout, so header slices convert without
// copying; the check below fails to compile if either type changes shape.
var _ = [1]struct{}{}[unsafe.Sizeof(topology.Header{})-unsafe.Sizeof(kgo.RecordHeader{})]
var _ = [1]struct{}{}[unsafe.Offsetof(topology.Header{}.Value)-unsafe.Offsetof(kgo.RecordHeader{}.Value)]

func toKgoHeaders(h topology.Headers) []kgo.RecordHeader {
	return *(*[]kgo.RecordHeader)(unsafe.Pointer(&h))
}

func fromKgoHeaders(h []kgo.RecordHeader) topology.Headers {
	return *(*topology.Headers)(unsafe.Pointer(&h))
}

// runnerCollector is a task's topology.Collector: it produces through the engine's client into
// the runner's current epoch.
type runnerCollector struct{ r *runner }

func (c runnerCollector) Send(o topology.OutRecord) {
	r := c.r
	m := r.newMeta()
	m.ep, m.r, m.origin = r.epoch, r, r.origin
	if o.Changelog {
		m.slot = r.changelogSlot(o.Topic)
	}
	// The first record a task sends for an input record reuses the input's kgo.Record, which
	// nothing reads once the record is being processed (as a bare consume-produce loop does):
	// in-flight records were the engine's largest allocation per record.
	rec := r.in
	if rec != nil {
		r.in = nil
	} else {
		rec = r.newRecord()
	}
	*rec = kgo.Record{Topic: o.Topic, Partition: o.Partition, Key: o.Key, Value: o.Value,
		Timestamp: o.Timestamp, Headers: toKgoHeaders(o.Headers), Context: m}
	if r.reserved == 0 {
		m.ep.reserve(epochReserve)
		r.reserved = epochReserve
	}
	r.reserved--
	r.produced++
	r.e.cl.Produce(r.e.produceCtx, rec, r.e.promiseFn)
}

func (c runnerCollector) PartitionCount(topic string) (int32, error) {
	return c.r.e.partitionCount(topic)
}

// promise is called by the client for each produced record, on the client's goroutine.
func (e *Engine) promise(rec *kgo.Record, err error) {
	m := metaOf(rec)
	if err != nil {
		e.produceFailed(rec, m, err)
	} else if m.slot != nil {
		for next := rec.Offset + 1; ; {
			cur := m.slot.Load()
			if cur >= next || m.slot.CompareAndSwap(cur, next) {
				break
			}
		}
	}
	m.ep.release()
}

// outSlabSize is how many outMetas, or kgo.Records, a runner allocates at once.
const outSlabSize = 256

// newMeta cuts a zeroed outMeta from the runner's slab, and newRecord a kgo.Record, for a record
// sent while no input record's can be reused (a second output of one input, a punctuation, a
// store flush). Cut one after the other from memory the runner's goroutine just zeroed, they are
// written where the cache is warm; pooled ones, freed by the client's promise goroutine on
// another core, cost a cache miss each on their first write (measured: a pool was slower). A
// slab is garbage once every record cut from it is acknowledged.
func (r *runner) newMeta() *outMeta {
	if len(r.metaSlab) == 0 {
		r.metaSlab = make([]outMeta, outSlabSize)
	}
	m := &r.metaSlab[0]
	r.metaSlab = r.metaSlab[1:]
	return m
}

func (r *runner) newRecord() *kgo.Record {
	if len(r.recSlab) == 0 {
		r.recSlab = make([]kgo.Record, outSlabSize)
	}
	rec := &r.recSlab[0]
	r.recSlab = r.recSlab[1:]
	return rec
}

// produceFailed applies the production error handler to a record Kafka did not take. It runs on
// the producer's goroutine, so the handler must be safe for that.
func (e *Engine) produceFailed(rec *kgo.Record, m *outMeta, err error) {
	re := &topology.RecordError{Stage: topology.StageProduce, Origin: m.origin,
		Err: fmt.Errorf("producing to topic %q: %w", rec.Topic, err)}
	if m.r != nil {
		re.Task = m.r.id
	}
	if errors.Is(err, kgo.ErrClientClosed) || errors.Is(err, context.Canceled) {
		// Shutting down hard: the record is not acknowledged, so the offsets are not committed.
		e.recordLost(m)
		return
	}
	if errors.Is(err, kgo.ErrAborting) {
		// Exactly-once: the transaction it belonged to is being aborted; the record goes with
		// it, and its input is processed again.
		e.recordLost(m)
		return
	}
	if e.sess != nil && isTransactionError(err) {
		// Exactly-once: the transaction cannot commit (the coordinator aborted it, or bumped
		// the producer's epoch); no handler decides about a record of it. The round aborts,
		// the tasks are rebuilt and the input is processed again; a fenced producer stops the
		// app when the round ends the transaction (commitTxn).
		e.recordLost(m)
		e.log.Warn("a record of the transaction was refused; the transaction will abort", "topic", rec.Topic,
			"task", re.Task.String(), "source_topic", re.Origin.Topic, "source_partition", re.Origin.Partition,
			"source_offset", re.Origin.Offset, "error", err)
		return
	}
	action := topology.ActionFail
	if h := e.cfg.Handlers.Production; h != nil {
		action = h(re)
	}
	if action == topology.ActionDeadLetter && e.cfg.Handlers.DeadLetterTopic == "" {
		action = topology.ActionFail
	}
	switch action {
	case topology.ActionSkip, topology.ActionDeadLetter:
		e.skippedProduce.Add(1)
		e.log.Warn("skipped a record Kafka did not take", "action", action.String(), "topic", rec.Topic,
			"task", re.Task.String(), "source_topic", re.Origin.Topic, "source_partition", re.Origin.Partition,
			"source_offset", re.Origin.Offset, "error", err)
		if action == topology.ActionDeadLetter {
			dm := &outMeta{ep: m.ep, r: m.r, origin: m.origin}
			dl := &kgo.Record{Topic: e.cfg.Handlers.DeadLetterTopic, Partition: -1, Key: rec.Key, Value: rec.Value,
				Timestamp: rec.Timestamp, Context: dm,
				Headers: toKgoHeaders(topology.DeadLetterHeaders(fromKgoHeaders(rec.Headers), re))}
			dm.ep.reserve(1)
			e.deadLettered.Add(1)
			// Not from here directly: this runs inside a promise, and franz-go says a Produce
			// from a promise can deadlock the client when its buffer is full (the promise
			// worker would wait on itself). A goroutine waits for space instead.
			e.bg.Add(1)
			e.deadLetters.Add(1)
			go func() {
				defer e.bg.Done()
				if e.beforeDeadLetterProduce != nil {
					e.beforeDeadLetterProduce()
				}
				e.cl.Produce(e.produceCtx, dl, e.deadLetterPromise)
				e.deadLetters.Done()
			}()
		}
	default:
		e.recordLost(m)
		e.fail(re)
	}
}

// recordLost marks that a record of m's epoch was not produced: the epoch's offsets must not be
// committed (at-least-once), and under exactly-once its transaction must abort.
func (e *Engine) recordLost(m *outMeta) {
	m.ep.failed.Store(true)
	if e.sess != nil {
		e.txnDoomed.Store(true)
	}
}

// isTransactionError tells whether a produce error means the open transaction cannot commit.
func isTransactionError(err error) bool {
	return errors.Is(err, kerr.InvalidProducerEpoch) || errors.Is(err, kerr.ProducerFenced) ||
		errors.Is(err, kerr.TransactionAbortable) || errors.Is(err, kerr.InvalidTxnState) ||
		errors.Is(err, kerr.InvalidProducerIDMapping)
}

// deadLetterPromise acknowledges a dead-lettered record; failing to dead-letter is fatal.
func (e *Engine) deadLetterPromise(rec *kgo.Record, err error) {
	m := metaOf(rec)
	if err != nil {
		e.recordLost(m)
		e.fail(fmt.Errorf("engine: writing to dead-letter topic %q: %w", rec.Topic, err))
	}
	m.ep.release()
}

// partitioner sends a record to the partition set on it (by a topology partitioner), keyed records
// to murmur2(key) mod n like Kafka's Java producer, and records without a key to one partition
// per batch (sticky, like the Java producer).
type partitioner struct{}

func (partitioner) ForTopic(string) kgo.TopicPartitioner { return &topicPartitioner{sticky: -1} }

type topicPartitioner struct {
	sticky int
}

func (p *topicPartitioner) RequiresConsistency(r *kgo.Record) bool {
	return r.Partition >= 0 || r.Key != nil
}

func (p *topicPartitioner) Partition(r *kgo.Record, n int) int {
	if r.Partition >= 0 {
		return int(r.Partition)
	}
	if r.Key != nil {
		return int(murmur2.Partition(r.Key, int32(n)))
	}
	if p.sticky < 0 || p.sticky >= n {
		p.sticky = rand.IntN(n)
	}
	return p.sticky
}

func (p *topicPartitioner) OnNewBatch() { p.sticky = -1 }
