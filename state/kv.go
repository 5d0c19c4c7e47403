package state

import (
	"bytes"
	"fmt"
	"time"

	"github.com/google/btree"

	"github.com/rifflestream/riffle/serde"
	"github.com/rifflestream/riffle/topology"
)

// KeyValueStore is a typed key-value store of one task. Keys are ordered by their serialized
// bytes (as in Kafka Streams), which is what Range and PrefixScan follow.
//
// Writes are buffered in the task and become durable at the next commit: their changelog records
// are produced (at once, or at the commit when caching), and once Kafka has acknowledged them the
// writes and the changelog offset reached are written locally in one atomic batch. Reads see the
// task's own writes at once.
type KeyValueStore[K, V any] interface {
	Name() string
	// Get returns the value of key, and false if there is none.
	Get(key K) (V, bool, error)
	// Put sets the value of key. A value that serializes to nil (Nullable's nil) deletes the key.
	Put(key K, value V) error
	// Delete removes key.
	Delete(key K) error
	// Range iterates over the keys from from to to, both included, in serialized-key order.
	Range(from, to K) (Iterator[K, V], error)
	// PrefixScan iterates over the keys whose serialized bytes start with prefix.
	PrefixScan(prefix []byte) (Iterator[K, V], error)
	// All iterates over every key.
	All() (Iterator[K, V], error)
	// ApproximateCount returns the number of keys. The first call counts them (a scan); later
	// calls are kept up to date as the task commits.
	ApproximateCount() (int64, error)
}

// Iterator walks over a store's entries in key order. Iterators see the store as it was when
// they were made; the caller MUST Close them.
type Iterator[K, V any] interface {
	Next() bool
	Key() K
	Value() V
	// Timestamp is the timestamp of the write that set the value.
	Timestamp() time.Time
	Err() error
	Close() error
}

// TableStore is a KeyValueStore whose flushed writes can be forwarded downstream: what the DSL's
// aggregations and tables use to emit one update per key per commit when caching.
type TableStore[K, V any] interface {
	KeyValueStore[K, V]
	// Caching reports whether writes are buffered and deduplicated until the commit (so updates
	// go downstream through the flush listener), or passed on at once.
	Caching() bool
	// SetFlushListener sets the function called, at each commit, for each key written since the
	// last one, with its new and previous values.
	SetFlushListener(func(Flushed[K, V]) error)
	// GetWithTimestamp is Get with the timestamp of the write that set the value.
	GetWithTimestamp(key K) (V, time.Time, bool, error)
}

// Flushed is one key's update at a commit.
type Flushed[K, V any] struct {
	Key       K
	New       V
	HasNew    bool // false: the key was deleted
	Old       V
	HasOld    bool // false: the key did not exist before
	Timestamp time.Time
	// Headers are those of the last record that wrote the key (Kafka Streams' caches keep the
	// writing record's context too).
	Headers topology.Headers
}

// KeyValue returns the key-value store named name connected to the processor of ctx, typed
// (K, V). It is an error if the store holds other types.
func KeyValue[K, V any](ctx topology.ProcessorContext, name string) (KeyValueStore[K, V], error) {
	s, err := ctx.StateStore(name)
	if err != nil {
		return nil, err
	}
	kv, ok := s.(KeyValueStore[K, V])
	if !ok {
		var k *K
		var v *V
		return nil, fmt.Errorf("state: store %q is a %T, not a key-value store of (%T, %T)", name, s, k, v)
	}
	return kv, nil
}

// KeyValueSpec declares a key-value store: add it to a topology (the DSL does it for you).
type KeyValueSpec[K, V any] struct {
	name  string
	key   serde.Serde[K]
	value serde.Serde[V]
	opts  options
}

// NewKeyValue declares a key-value store named name. By default it lives in Pebble, caches
// writes until the commit, and has a compacted changelog topic "<appID>-<name>-changelog".
func NewKeyValue[K, V any](name string, key serde.Serde[K], value serde.Serde[V], opts ...Option) *KeyValueSpec[K, V] {
	s := &KeyValueSpec[K, V]{name: name, key: key, value: value, opts: defaultOptions()}
	for _, o := range opts {
		o(&s.opts)
	}
	return s
}

// StoreName implements topology.StoreSpec.
func (s *KeyValueSpec[K, V]) StoreName() string { return s.name }

// Changelog implements topology.StoreSpec: compacted, plus the configs set with ChangelogConfig.
func (s *KeyValueSpec[K, V]) Changelog() (bool, map[string]string) {
	if !s.opts.changelog {
		return false, nil
	}
	cfg := map[string]string{"cleanup.policy": "compact"}
	for k, v := range s.opts.changelogConfigs {
		cfg[k] = v
	}
	return true, cfg
}

// Serdes returns the store's serdes.
func (s *KeyValueSpec[K, V]) Serdes() (serde.Serde[K], serde.Serde[V]) { return s.key, s.value }

func (s *KeyValueSpec[K, V]) open(m *Manager, ctx topology.StoreContext) (topology.StateStore, error) {
	if s.key == nil || s.value == nil {
		return nil, fmt.Errorf("state: store %q has no key or value serde", s.name)
	}
	view := m.view(s.opts.memory, s.name, ctx.Task.Partition)
	topic := ctx.Changelog
	if topic == "" {
		topic = s.name
	}
	return &kvStore[K, V]{spec: s, ctx: ctx, view: view, topic: topic, buf: btree.NewG(16, lessEntry[K, V]),
		caching: s.opts.caching, budget: s.opts.bufferBytes,
		out: topology.OutRecord{Topic: ctx.Changelog, Partition: ctx.Task.Partition, Changelog: true}}, nil
}

// kvStore is a KeyValueSpec opened for one task.
type kvStore[K, V any] struct {
	spec    *KeyValueSpec[K, V]
	out     topology.OutRecord // the changelog record sent: topic and partition set once, reused (see topology.Collector)
	ctx     topology.StoreContext
	view    View
	topic   string // the topic serdes are called with: the changelog, or the store name
	caching bool
	budget  int

	buf     *btree.BTreeG[*entry[K, V]]
	dirty   []*entry[K, V] // written since the last flush, in first-write order
	bytes   int
	onFlush func(Flushed[K, V]) error

	count      int64
	countKnown bool
	closed     bool

	// observedTime, set by window and session stores, is saved in the checkpoint.
	observedTime func() int64
	// changelogID is the changelog topic's ID, saved in the checkpoint (UseChangelog).
	changelogID topology.ChangelogID
	// logged is the largest time the changelog carries for this store partition: the timestamps
	// of the records sent, and what window and session stores know it holds (segmented).
	logged int64
	// nowBound is a recent time.Now (ms) at or after which changelog timestamps are clamped
	// (sendChangelog); refreshed only when a timestamp reaches it.
	nowBound int64

	// ranges are deletions of whole key ranges (expired window segments) applied at the next
	// commit, before the buffered writes. They write nothing to the changelog: the changelog's
	// own retention expires the same records.
	ranges []KeyRange
}

// entry is one buffered write.
type entry[K, V any] struct {
	kb      []byte
	k       K
	v       V
	enc     []byte // encodeValue(ts, value bytes); nil for a delete
	ts      int64
	hdr     topology.Headers // the headers of the record that wrote it (caching stores)
	dirty   bool
	existed int8 // whether the key existed in the backend: -1 unknown, 0 no, 1 yes
}

func lessEntry[K, V any](a, b *entry[K, V]) bool { return bytes.Compare(a.kb, b.kb) < 0 }

const entryOverhead = 96

func (s *kvStore[K, V]) Name() string  { return s.spec.name }
func (s *kvStore[K, V]) Caching() bool { return s.caching }

func (s *kvStore[K, V]) SetFlushListener(f func(Flushed[K, V]) error) { s.onFlush = f }

func (s *kvStore[K, V]) Get(key K) (V, bool, error) {
	v, _, ok, err := s.GetWithTimestamp(key)
	return v, ok, err
}

func (s *kvStore[K, V]) GetWithTimestamp(key K) (V, time.Time, bool, error) {
	var zero V
	kb, err := s.spec.key.Serialize(s.topic, key)
	if err != nil {
		return zero, time.Time{}, false, s.errf("serializing a key", err)
	}
	if e, ok := s.buf.Get(&entry[K, V]{kb: kb}); ok {
		if e.enc == nil {
			return zero, time.Time{}, false, nil
		}
		return e.v, time.UnixMilli(e.ts), true, nil
	}
	if len(s.ranges) > 0 && s.rangeDeleted(kb) {
		return zero, time.Time{}, false, nil
	}
	raw, ok, err := s.view.Get(kb)
	if err != nil || !ok {
		return zero, time.Time{}, false, err
	}
	return s.decode(raw)
}

func (s *kvStore[K, V]) decode(raw []byte) (V, time.Time, bool, error) {
	var zero V
	ts, vb, err := decodeValue(raw)
	if err != nil {
		return zero, time.Time{}, false, s.errf("reading a value", err)
	}
	v, err := s.spec.value.Deserialize(s.topic, vb)
	if err != nil {
		return zero, time.Time{}, false, s.errf("deserializing a value", err)
	}
	return v, time.UnixMilli(ts), true, nil
}

func (s *kvStore[K, V]) errf(what string, err error) error {
	return fmt.Errorf("state: store %q (task %s): %s: %w", s.spec.name, s.ctx.Task, what, err)
}

func (s *kvStore[K, V]) Put(key K, value V) error {
	return s.putAt(key, value, s.ctx.Timestamp())
}

// putAt is Put with the timestamp (ms) to stamp the value with.
func (s *kvStore[K, V]) putAt(key K, value V, ts int64) error {
	kb, err := s.spec.key.Serialize(s.topic, key)
	if err != nil {
		return s.errf("serializing a key", err)
	}
	vb, err := s.spec.value.Serialize(s.topic, value)
	if err != nil {
		return s.errf("serializing a value", err)
	}
	var enc []byte
	if vb != nil {
		enc = encodeValue(ts, vb)
	}
	return s.write(kb, key, value, enc, vb, ts)
}

func (s *kvStore[K, V]) Delete(key K) error {
	kb, err := s.spec.key.Serialize(s.topic, key)
	if err != nil {
		return s.errf("serializing a key", err)
	}
	var zero V
	return s.write(kb, key, zero, nil, nil, s.ctx.Timestamp())
}

func (s *kvStore[K, V]) write(kb []byte, k K, v V, enc, vb []byte, ts int64) error {
	if s.closed {
		return s.errf("writing", errClosed)
	}
	e, ok := s.buf.Get(&entry[K, V]{kb: kb})
	if ok {
		s.bytes -= len(e.enc)
		e.k, e.v, e.enc, e.ts = k, v, enc, ts
	} else {
		// The buffer keeps the key bytes beyond this call: own them (a Bytes key serde returns the
		// caller's slice, which the caller may reuse).
		kb = bytes.Clone(kb)
		e = &entry[K, V]{kb: kb, k: k, v: v, enc: enc, ts: ts, existed: -1}
		s.buf.ReplaceOrInsert(e)
		s.bytes += len(kb) + entryOverhead
	}
	if s.caching && s.ctx.Headers != nil {
		e.hdr = s.ctx.Headers()
	}
	s.bytes += len(enc)
	if !e.dirty {
		e.dirty = true
		s.dirty = append(s.dirty, e)
	}
	if !s.caching && s.ctx.Changelog != "" {
		s.sendChangelog(e.kb, vb, ts)
	}
	if s.bytes > s.budget && s.ctx.RequestCommit != nil {
		s.ctx.RequestCommit()
	}
	return nil
}

// sendChangelog writes a changelog record. Its timestamp is the write's, but never later than
// now: a write during a punctuation is stamped with stream time, which AdvanceStreamTime may put
// anywhere, and brokers refuse records stamped over an hour ahead of their clock
// (log.message.timestamp.after.max.ms, one hour by default since Kafka 4.0), which stopped the
// app. The timestamp only ages the record for a window changelog's time retention.
func (s *kvStore[K, V]) sendChangelog(kb, vb []byte, ts int64) {
	if ts > s.nowBound { // a timestamp before a past now needs no clock read
		s.nowBound = time.Now().UnixMilli()
		ts = min(ts, s.nowBound)
	}
	s.logged = max(s.logged, ts)
	s.out.Key, s.out.Value, s.out.Timestamp = kb, vb, time.UnixMilli(ts)
	s.ctx.Collector.Send(&s.out)
}

// Dirty reports whether writes wait for a flush.
func (s *kvStore[K, V]) Dirty() bool { return len(s.dirty) > 0 }

// Flush produces the changelog records of cached writes and calls the flush listener, once per
// key written since the last flush, in the order keys were first written.
func (s *kvStore[K, V]) Flush() error {
	dirty := s.dirty
	s.dirty = nil
	for _, e := range dirty {
		e.dirty = false
		if !s.caching {
			continue
		}
		var vb []byte
		if e.enc != nil {
			vb = e.enc[8:]
		}
		if s.ctx.Changelog != "" {
			s.sendChangelog(e.kb, vb, e.ts)
		}
		if s.onFlush == nil {
			continue
		}
		f := Flushed[K, V]{Key: e.k, New: e.v, HasNew: e.enc != nil, Timestamp: time.UnixMilli(e.ts), Headers: e.hdr}
		e.hdr = nil
		raw, ok, err := s.view.Get(e.kb)
		if err != nil {
			return s.errf("reading the previous value", err)
		}
		if ok {
			e.existed = 1
			old, _, _, err := s.decode(raw)
			if err != nil {
				return err
			}
			f.Old, f.HasOld = old, true
		} else {
			e.existed = 0
		}
		if err := s.onFlush(f); err != nil {
			return err
		}
	}
	return nil
}

// Commit applies every flushed write to the backend, with the checkpoint next, in one batch.
func (s *kvStore[K, V]) Commit(next int64) error {
	if s.closed {
		return nil
	}
	if len(s.dirty) > 0 {
		return s.errf("committing", fmt.Errorf("%d writes were not flushed", len(s.dirty)))
	}
	ws := &WriteSet{Writes: make([]Write, 0, s.buf.Len()), DeleteRanges: s.ranges}
	var delta int64
	var err error
	s.buf.Ascend(func(e *entry[K, V]) bool {
		ws.Writes = append(ws.Writes, Write{Key: e.kb, Value: e.enc})
		if s.countKnown {
			if e.existed < 0 {
				var ok bool
				_, ok, err = s.view.Get(e.kb)
				if err != nil {
					return false
				}
				e.existed = 0
				if ok {
					e.existed = 1
				}
			}
			switch {
			case e.existed == 0 && e.enc != nil:
				delta++
			case e.existed == 1 && e.enc == nil:
				delta--
			}
		}
		return true
	})
	if err != nil {
		return s.errf("committing", err)
	}
	if next >= 0 && s.ctx.Changelog != "" {
		c := s.checkpoint(next)
		ws.Checkpoint = &c
	}
	if len(ws.Writes) == 0 && ws.Checkpoint == nil && len(ws.DeleteRanges) == 0 {
		return nil
	}
	if len(ws.DeleteRanges) > 0 {
		s.countKnown = false
	}
	if err := s.view.Apply(ws); err != nil {
		return s.errf("writing a batch", err)
	}
	s.ranges = nil
	s.count += delta
	s.buf.Clear(false)
	s.bytes = 0
	return nil
}

// deleteRange drops every key in [lo, hi): buffered writes at once, stored keys at the commit.
// Reads see the deletion at once (the range hides the backend's keys).
func (s *kvStore[K, V]) deleteRange(lo, hi []byte) {
	var doomed []*entry[K, V]
	visit := func(e *entry[K, V]) bool { doomed = append(doomed, e); return true }
	if hi == nil {
		s.buf.AscendGreaterOrEqual(&entry[K, V]{kb: lo}, visit)
	} else {
		s.buf.AscendRange(&entry[K, V]{kb: lo}, &entry[K, V]{kb: hi}, visit)
	}
	for _, e := range doomed {
		s.buf.Delete(e)
		s.bytes -= len(e.kb) + entryOverhead + len(e.enc)
		if e.dirty {
			for i, d := range s.dirty {
				if d == e {
					s.dirty = append(s.dirty[:i], s.dirty[i+1:]...)
					break
				}
			}
		}
	}
	s.ranges = append(s.ranges, KeyRange{Lo: lo, Hi: hi})
}

// rangeDeleted reports whether a backend key is hidden by a pending range deletion.
func (s *kvStore[K, V]) rangeDeleted(kb []byte) bool {
	for _, r := range s.ranges {
		if bytes.Compare(kb, r.Lo) >= 0 && (r.Hi == nil || bytes.Compare(kb, r.Hi) < 0) {
			return true
		}
	}
	return false
}

func (s *kvStore[K, V]) Close() error {
	s.closed = true
	s.buf.Clear(false)
	s.dirty = nil
	return nil
}

// RestoreFrom implements topology.Restorable.
func (s *kvStore[K, V]) RestoreFrom() (int64, bool, error) {
	c, ok, err := s.view.Checkpoint()
	return c.Offset, ok, err
}

// checkpoint is the checkpoint at changelog offset next: with the observed time of window and
// session stores, and the changelog's ID.
func (s *kvStore[K, V]) checkpoint(next int64) Checkpoint {
	c := Checkpoint{Offset: next, Changelog: s.changelogID}
	if s.observedTime != nil {
		c.Time = s.observedTime()
	}
	return c
}

// CheckpointChangelog implements topology.ChangelogTracking.
func (s *kvStore[K, V]) CheckpointChangelog() (topology.ChangelogID, error) {
	c, _, err := s.view.Checkpoint()
	return c.Changelog, err
}

// UseChangelog implements topology.ChangelogTracking.
func (s *kvStore[K, V]) UseChangelog(id topology.ChangelogID) { s.changelogID = id }

// Restore implements topology.Restorable.
func (s *kvStore[K, V]) Restore(recs []topology.ChangelogEntry, next int64) error {
	c := s.checkpoint(next)
	s.countKnown = false
	if r, ok := s.view.(restorer); ok {
		return r.Restore(recs, c)
	}
	ws := &WriteSet{Writes: make([]Write, len(recs)), Checkpoint: &c}
	for i, r := range recs {
		ws.Writes[i].Key = r.Key
		if r.Value != nil {
			ws.Writes[i].Value = encodeValue(r.Timestamp, r.Value)
		}
	}
	return s.view.Apply(ws)
}

// Wipe implements topology.Restorable.
func (s *kvStore[K, V]) Wipe() error {
	s.countKnown = false
	return s.view.Wipe()
}

func (s *kvStore[K, V]) ApproximateCount() (int64, error) {
	if !s.countKnown {
		it, err := s.view.Iter(nil, nil)
		if err != nil {
			return 0, err
		}
		var n int64
		for it.Next() {
			n++
		}
		if err := it.Err(); err != nil {
			it.Close()
			return 0, err
		}
		it.Close()
		s.count, s.countKnown = n, true
		// Buffered writes are counted as they are committed.
		s.buf.Ascend(func(e *entry[K, V]) bool { e.existed = -1; return true })
	}
	n := s.count
	var err error
	s.buf.Ascend(func(e *entry[K, V]) bool {
		if e.existed < 0 {
			var ok bool
			if _, ok, err = s.view.Get(e.kb); err != nil {
				return false
			}
			e.existed = 0
			if ok {
				e.existed = 1
			}
		}
		switch {
		case e.existed == 0 && e.enc != nil:
			n++
		case e.existed == 1 && e.enc == nil:
			n--
		}
		return true
	})
	return n, err
}

func (s *kvStore[K, V]) Range(from, to K) (Iterator[K, V], error) {
	lo, err := s.spec.key.Serialize(s.topic, from)
	if err != nil {
		return nil, s.errf("serializing a key", err)
	}
	hi, err := s.spec.key.Serialize(s.topic, to)
	if err != nil {
		return nil, s.errf("serializing a key", err)
	}
	if bytes.Compare(lo, hi) > 0 {
		return &mergeIter[K, V]{s: s, buffered: nil, backend: emptyIter{}}, nil
	}
	return s.iter(lo, append(bytes.Clone(hi), 0))
}

func (s *kvStore[K, V]) PrefixScan(prefix []byte) (Iterator[K, V], error) {
	return s.iter(prefix, prefixEnd(prefix))
}

func (s *kvStore[K, V]) All() (Iterator[K, V], error) { return s.iter(nil, nil) }

// iter merges the buffered writes in [lo, hi) with the backend's keys.
func (s *kvStore[K, V]) iter(lo, hi []byte) (Iterator[K, V], error) {
	var buffered []*entry[K, V]
	visit := func(e *entry[K, V]) bool {
		c := *e
		buffered = append(buffered, &c)
		return true
	}
	switch {
	case lo == nil && hi == nil:
		s.buf.Ascend(visit)
	case hi == nil:
		s.buf.AscendGreaterOrEqual(&entry[K, V]{kb: lo}, visit)
	default:
		if lo == nil {
			lo = []byte{}
		}
		s.buf.AscendRange(&entry[K, V]{kb: lo}, &entry[K, V]{kb: hi}, visit)
	}
	backend, err := s.view.Iter(lo, hi)
	if err != nil {
		return nil, s.errf("iterating", err)
	}
	return &mergeIter[K, V]{s: s, buffered: buffered, backend: backend}, nil
}

// mergeIter walks buffered writes (which win, and may be deletes) and backend keys in key order.
type mergeIter[K, V any] struct {
	s        *kvStore[K, V]
	buffered []*entry[K, V]
	backend  RawIterator
	bValid   bool
	started  bool

	k   K
	v   V
	ts  int64
	err error
}

func (m *mergeIter[K, V]) Next() bool {
	if m.err != nil {
		return false
	}
	if !m.started {
		m.started = true
		m.bValid = m.backend.Next()
	}
	for {
		var fromBuf *entry[K, V]
		switch {
		case len(m.buffered) > 0 && m.bValid:
			c := bytes.Compare(m.buffered[0].kb, m.backend.Key())
			if c <= 0 {
				fromBuf = m.buffered[0]
				m.buffered = m.buffered[1:]
				if c == 0 {
					m.bValid = m.backend.Next()
				}
			}
		case len(m.buffered) > 0:
			fromBuf = m.buffered[0]
			m.buffered = m.buffered[1:]
		case !m.bValid:
			m.err = m.backend.Err()
			return false
		}
		if fromBuf != nil {
			if fromBuf.enc == nil {
				continue // deleted
			}
			m.k, m.v, m.ts = fromBuf.k, fromBuf.v, fromBuf.ts
			return true
		}
		kb, raw := m.backend.Key(), m.backend.Value()
		m.bValid = m.backend.Next()
		if len(m.s.ranges) > 0 && m.s.rangeDeleted(kb) {
			continue
		}
		k, err := m.s.spec.key.Deserialize(m.s.topic, kb)
		if err != nil {
			m.err = m.s.errf("deserializing a key", err)
			return false
		}
		v, ts, _, err := m.s.decode(raw)
		if err != nil {
			m.err = err
			return false
		}
		m.k, m.v, m.ts = k, v, ts.UnixMilli()
		return true
	}
}

func (m *mergeIter[K, V]) Key() K               { return m.k }
func (m *mergeIter[K, V]) Value() V             { return m.v }
func (m *mergeIter[K, V]) Timestamp() time.Time { return time.UnixMilli(m.ts) }
func (m *mergeIter[K, V]) Err() error           { return m.err }
func (m *mergeIter[K, V]) Close() error         { return m.backend.Close() }

type emptyIter struct{}

func (emptyIter) Next() bool    { return false }
func (emptyIter) Key() []byte   { return nil }
func (emptyIter) Value() []byte { return nil }
func (emptyIter) Err() error    { return nil }
func (emptyIter) Close() error  { return nil }

var errClosed = fmt.Errorf("the store is closed")
