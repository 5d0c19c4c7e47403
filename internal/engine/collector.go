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
	"github.com/rifflestream/riffle/internal/strs"
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

// outMeta is what the produce promise needs to know of a record in flight: the form the error
// paths work with (a record sent by a task carries it packed in a metaBlock), and the Context of
// a dead-lettered record.
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

// metaBlock packs the outMetas of up to metaBlockSize records a runner sends in one epoch: what
// they share (the epoch, the runner, up to four source partitions and four changelog slots) once,
// in the block's header, and per record only its source offset and two small indexes, in an
// element with no pointers. A record's Context is its element (a context.Context that is never
// done), from which the promise finds the block. An outMeta per record (56 bytes, four pointers)
// was an allocation per record and four pointers for the garbage collector to follow per record
// in flight: measured on the q1 drain (2M events), process CPU 2.13 s with it against 2.01 s
// packed, and 2.09 s with one shared meta per epoch (a bound that loses the source coordinates).
type metaBlock struct {
	ep      *epoch
	r       *runner
	origins [4]topology.Origin // source partitions (their offsets unused)
	slots   [4]*atomic.Int64
	// Written by the runner goroutine only; the promise reads the header entries its element
	// names, written before its record was sent.
	nOrigins, nSlots, n int
	elems               [metaBlockSize]metaElem
}

const metaBlockSize = 256

// metaElem is one record's part of a metaBlock.
type metaElem struct {
	offset int64  // the source record's offset
	idx    uint16 // in the block's elems
	origin int8   // in the block's origins; -1: no source record (a punctuation, a flush)
	slot   int8   // in the block's slots; -1: not a changelog record
}

func (*metaElem) Deadline() (time.Time, bool) { return time.Time{}, false }
func (*metaElem) Done() <-chan struct{}       { return nil }
func (*metaElem) Err() error                  { return nil }
func (*metaElem) Value(any) any               { return nil }

// block returns the metaBlock m is an element of (pointer arithmetic within that one
// allocation: m is &b.elems[m.idx]).
func (m *metaElem) block() *metaBlock {
	back := int(unsafe.Offsetof(metaBlock{}.elems)) + int(m.idx)*int(unsafe.Sizeof(metaElem{}))
	return (*metaBlock)(unsafe.Add(unsafe.Pointer(m), -back))
}

// meta unpacks m.
func (m *metaElem) meta() outMeta {
	b := m.block()
	o := outMeta{ep: b.ep, r: b.r}
	if m.origin >= 0 {
		o.origin = b.origins[m.origin]
		o.origin.Offset = m.offset
	}
	if m.slot >= 0 {
		o.slot = b.slots[m.slot]
	}
	return o
}

// newMetaElem packs the meta of a record about to be sent into the runner's current block,
// starting a new block when it is full, of an earlier epoch, or has no room left in its tables
// for origin's partition or slot.
func (r *runner) newMetaElem(origin topology.Origin, slot *atomic.Int64) *metaElem {
	for {
		b := r.block
		if b == nil || b.n == metaBlockSize || b.ep != r.epoch {
			b = &metaBlock{ep: r.epoch, r: r}
			r.block = b
		}
		oi, si := int8(-1), int8(-1)
		if origin.Topic != "" {
			if oi = b.origin(origin); oi < 0 {
				r.block = nil
				continue
			}
		}
		if slot != nil {
			if si = b.slot(slot); si < 0 {
				r.block = nil
				continue
			}
		}
		e := &b.elems[b.n]
		e.offset, e.idx, e.origin, e.slot = origin.Offset, uint16(b.n), oi, si
		b.n++
		return e
	}
}

// origin returns the index of o's partition in b's origins, adding it if there is room (-1:
// none).
func (b *metaBlock) origin(o topology.Origin) int8 {
	return indexOrAdd(b.origins[:], &b.nOrigins, topology.Origin{Topic: o.Topic, Partition: o.Partition})
}

// slot is origin for changelog slots.
func (b *metaBlock) slot(s *atomic.Int64) int8 {
	return indexOrAdd(b.slots[:], &b.nSlots, s)
}

// indexOrAdd returns the index of v among the *n first entries of table, appending it if it is
// not there and there is room (-1: no room).
func indexOrAdd[T comparable](table []T, n *int, v T) int8 {
	for i := range *n {
		if table[i] == v {
			return int8(i)
		}
	}
	if *n == len(table) {
		return -1
	}
	table[*n] = v
	*n++
	return int8(*n - 1)
}

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

func (c runnerCollector) Send(o *topology.OutRecord) {
	r := c.r
	var slot *atomic.Int64
	if o.Changelog {
		slot = r.changelogSlot(o.Topic)
	}
	m := r.newMetaElem(r.origin, slot)
	// The first record a task sends for an input record reuses the input's kgo.Record, which
	// nothing reads once the record is being processed (as a bare consume-produce loop does):
	// in-flight records were the engine's largest allocation per record.
	var rec *kgo.Record
	if r.inNext > 0 {
		rec = r.batch[r.inNext-1]
		r.inNext = 0
	} else {
		rec = r.newRecord()
	}
	setOutRecord(rec, o, m)
	if r.reserved == 0 {
		r.epoch.reserve(epochReserve)
		r.reserved = epochReserve
	}
	r.reserved--
	r.produced++
	r.e.cl.Produce(r.e.produceCtx, rec, r.e.promiseFn)
}

// setOutRecord makes rec the kgo.Record of o, as the composite literal kgo.Record{Topic: o.Topic,
// ..., Context: m} would, field by field: assigning a whole record copies all seven of its pointer
// words with a write barrier each while the collector marks, where a reused input record often
// already holds the output's key (passed through), timestamp and (no) headers. The fields the
// client sets when producing (Attrs, ProducerEpoch, ProducerID, LeaderEpoch, Offset) are zeroed
// as the literal would; kgoRecordSize below fails to compile if kgo.Record gains a field.
func setOutRecord(rec *kgo.Record, o *topology.OutRecord, m *metaElem) {
	if !strs.Same(rec.Topic, o.Topic) {
		rec.Topic = o.Topic
	}
	if !sameSlice(rec.Key, o.Key) {
		rec.Key = o.Key
	}
	rec.Value = o.Value
	if rec.Headers != nil || o.Headers != nil {
		rec.Headers = toKgoHeaders(o.Headers)
	}
	if rec.Timestamp != o.Timestamp { // == compares the location pointer too: then it is the same
		rec.Timestamp = o.Timestamp
	}
	rec.Partition, rec.Attrs, rec.ProducerEpoch, rec.ProducerID, rec.LeaderEpoch, rec.Offset = o.Partition, kgo.RecordAttrs{}, 0, 0, 0, 0
	rec.Context = m
}

// kgoRecordSize is the size of kgo.Record that setOutRecord sets every field of: a new field
// changes it, and the check below no longer compiles until setOutRecord handles the field.
const kgoRecordSize = 160

var _ = [1]struct{}{}[unsafe.Sizeof(kgo.Record{})-kgoRecordSize]

// sameSlice reports whether a and b are the same slice: the same memory, length and capacity.
func sameSlice(a, b []byte) bool {
	return len(a) == len(b) && cap(a) == cap(b) && unsafe.SliceData(a) == unsafe.SliceData(b)
}

func (c runnerCollector) PartitionCount(topic string) (int32, error) {
	return c.r.e.partitionCount(topic)
}

// promise is called by the client for each produced record, on the client's goroutine.
func (e *Engine) promise(rec *kgo.Record, err error) {
	m := rec.Context.(*metaElem)
	b := m.block()
	if err != nil {
		meta := m.meta()
		e.produceFailed(rec, &meta, err)
	} else if m.slot >= 0 {
		slot := b.slots[m.slot]
		for next := rec.Offset + 1; ; {
			cur := slot.Load()
			if cur >= next || slot.CompareAndSwap(cur, next) {
				break
			}
		}
	}
	b.ep.release()
}

// outSlabSize is how many kgo.Records a runner allocates at once.
const outSlabSize = 256

// newRecord cuts a zeroed kgo.Record from the runner's slab, for a record sent while no input
// record's can be reused (a second output of one input, a punctuation, a store flush). Cut one
// after the other from memory the runner's goroutine just zeroed, they are written where the
// cache is warm; pooled ones, freed by the client's promise goroutine on another core, cost a
// cache miss each on their first write (measured: a pool was slower). A slab is garbage once
// every record cut from it is acknowledged.
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
// until stickyBytes of them went there, then to another (the Java producer's uniform sticky
// partitioning, KIP-794).
//
// It does not implement kgo.TopicPartitionerOnNewBatch, on purpose: for a partitioner that does,
// kgo holds the topic's partitioner lock while it buffers each record, which serializes every
// task goroutine producing to the topic. (On the q1 benchmark's two cores, four tasks producing to
// one output, that lock's slow path was ~1.5% of the process's CPU; without it the contention
// moved to the producer's own lock and the total did not change measurably: bench/PROFILE.md,
// twelfth round. With more cores producing at once, the serialization is what costs.)
type partitioner struct{}

// stickyBytes is how many bytes of records without a key go to one partition before the next is
// chosen: kgo's default partitioner's figure (the Java producer's is its batch.size, 16 KiB).
const stickyBytes = 64 << 10

func (partitioner) ForTopic(string) kgo.TopicPartitioner { return &topicPartitioner{sticky: -1} }

// topicPartitioner is one topic's; kgo calls it under the topic's lock.
type topicPartitioner struct {
	sticky int
	left   int // bytes to send to sticky before the next partition is chosen
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
	if p.sticky < 0 || p.sticky >= n || p.left <= 0 {
		next := rand.IntN(n)
		if n > 1 && next == p.sticky {
			next = (next + 1 + rand.IntN(n-1)) % n // another partition, each alike
		}
		p.sticky, p.left = next, stickyBytes
	}
	p.left -= len(r.Value) + 1 // an empty value still takes a record's room
	return p.sticky
}
