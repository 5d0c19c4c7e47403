package engine

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"unsafe"

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

func (e *epoch) add() {
	e.pending.Add(1)
	e.sent.Store(true)
}

func (e *epoch) release() {
	if e.pending.Add(-1) == 0 {
		close(e.done)
	}
}

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

// outRec is one record in flight: the kgo.Record first, so the produce promise, which gets the
// *kgo.Record back, can reach the rest without a map lookup or a second allocation.
type outRec struct {
	rec    kgo.Record
	ep     *epoch
	r      *runner
	origin topology.Origin
	// slot, for a changelog record, tracks the offset after the last acknowledged record of its
	// changelog partition: the checkpoint the store may write once the epoch is done.
	slot *atomic.Int64
}

func outRecOf(r *kgo.Record) *outRec { return (*outRec)(unsafe.Pointer(r)) }

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
	or := r.newOutRec()
	or.ep, or.r, or.origin = r.epoch, r, r.origin
	if o.Changelog {
		or.slot = r.changelogSlot(o.Topic)
	}
	or.rec = kgo.Record{Topic: o.Topic, Partition: o.Partition, Key: o.Key, Value: o.Value,
		Timestamp: o.Timestamp, Headers: toKgoHeaders(o.Headers), Context: context.Background()}
	or.ep.add()
	r.produced++
	r.e.cl.Produce(r.e.produceCtx, &or.rec, r.e.promise)
}

func (c runnerCollector) PartitionCount(topic string) (int32, error) {
	return c.r.e.partitionCount(topic)
}

// promise is called by the client for each produced record, on the client's goroutine.
func (e *Engine) promise(rec *kgo.Record, err error) {
	or := outRecOf(rec)
	if err != nil {
		e.produceFailed(or, err)
	} else if or.slot != nil {
		for next := rec.Offset + 1; ; {
			cur := or.slot.Load()
			if cur >= next || or.slot.CompareAndSwap(cur, next) {
				break
			}
		}
	}
	or.ep.release()
}

// outSlabSize is how many outRecs a runner allocates at once.
const outSlabSize = 256

// newOutRec cuts a zeroed outRec from the runner's slab. Records in flight are the engine's
// largest per-record allocation. Cut one after the other from memory the runner's goroutine just
// zeroed, they are written where the cache is warm; pooled records, freed by the client's promise
// goroutine on another core, cost a cache miss each on their first write (measured: a pool was
// slower). A slab is garbage once every record cut from it is acknowledged.
func (r *runner) newOutRec() *outRec {
	if len(r.outSlab) == 0 {
		r.outSlab = make([]outRec, outSlabSize)
	}
	or := &r.outSlab[0]
	r.outSlab = r.outSlab[1:]
	return or
}

// produceFailed applies the production error handler to a record Kafka did not take. It runs on
// the producer's goroutine, so the handler must be safe for that.
func (e *Engine) produceFailed(or *outRec, err error) {
	re := &topology.RecordError{Stage: topology.StageProduce, Origin: or.origin,
		Err: fmt.Errorf("producing to topic %q: %w", or.rec.Topic, err)}
	if or.r != nil {
		re.Task = or.r.id
	}
	if errors.Is(err, kgo.ErrClientClosed) || errors.Is(err, context.Canceled) {
		// Shutting down hard: the record is not acknowledged, so the offsets are not committed.
		or.ep.failed.Store(true)
		return
	}
	if errors.Is(err, kgo.ErrAborting) {
		// Exactly-once: the transaction it belonged to is being aborted; the record goes with
		// it, and its input is processed again.
		or.ep.failed.Store(true)
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
		e.log.Warn("skipped a record Kafka did not take", "action", action.String(), "topic", or.rec.Topic,
			"task", re.Task.String(), "source_topic", re.Origin.Topic, "source_partition", re.Origin.Partition,
			"source_offset", re.Origin.Offset, "error", err)
		if action == topology.ActionDeadLetter {
			dl := &outRec{ep: or.ep, r: or.r, origin: or.origin}
			dl.rec = kgo.Record{Topic: e.cfg.Handlers.DeadLetterTopic, Partition: -1, Key: or.rec.Key, Value: or.rec.Value,
				Timestamp: or.rec.Timestamp, Context: context.Background(),
				Headers: toKgoHeaders(topology.DeadLetterHeaders(fromKgoHeaders(or.rec.Headers), re))}
			dl.ep.add()
			e.deadLettered.Add(1)
			// Not from here directly: this runs inside a promise, and franz-go says a Produce
			// from a promise can deadlock the client when its buffer is full (the promise
			// worker would wait on itself). A goroutine waits for space instead.
			e.bg.Add(1)
			go func() {
				defer e.bg.Done()
				e.cl.Produce(e.produceCtx, &dl.rec, e.deadLetterPromise)
			}()
		}
	default:
		or.ep.failed.Store(true)
		e.fail(re)
	}
}

// deadLetterPromise acknowledges a dead-lettered record; failing to dead-letter is fatal.
func (e *Engine) deadLetterPromise(rec *kgo.Record, err error) {
	or := outRecOf(rec)
	if err != nil {
		or.ep.failed.Store(true)
		e.fail(fmt.Errorf("engine: writing to dead-letter topic %q: %w", rec.Topic, err))
	}
	or.ep.release()
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
