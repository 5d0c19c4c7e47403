package state

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"time"

	"github.com/rifflestream/riffle/serde"
	"github.com/rifflestream/riffle/topology"
)

// WindowStore keeps a value per key and window (identified by its start), for windowed
// aggregations. Windows older than the retention (relative to the largest timestamp the store has
// seen) expire: whole time segments at once, without scanning the store.
type WindowStore[K, V any] interface {
	Name() string
	// Put sets the value of key's window starting at start. A value that serializes to nil
	// deletes it.
	Put(key K, start time.Time, value V) error
	// Fetch returns key's window starting at start, with the timestamp of its last update.
	Fetch(key K, start time.Time) (V, time.Time, bool, error)
	// FetchRange iterates over key's windows with a start in [from, to], oldest first.
	FetchRange(key K, from, to time.Time) (WindowIterator[K, V], error)
	// FetchAll iterates over every key's windows with a start in [from, to].
	FetchAll(from, to time.Time) (WindowIterator[K, V], error)
	// Retention is how long windows are kept, after the largest timestamp seen.
	Retention() time.Duration
}

// WindowIterator walks over windows. The caller MUST Close it.
type WindowIterator[K, V any] interface {
	Next() bool
	Key() K
	Start() time.Time
	Value() V
	Timestamp() time.Time
	Err() error
	Close() error
}

// WindowFlushed is one window's update at a commit.
type WindowFlushed[K, V any] struct {
	Key       K
	Start     time.Time
	New       V
	HasNew    bool
	Old       V
	HasOld    bool
	Timestamp time.Time
	Headers   topology.Headers // of the last record that wrote the window
}

// TableWindowStore is a WindowStore whose flushed updates can be forwarded downstream.
type TableWindowStore[K, V any] interface {
	WindowStore[K, V]
	Caching() bool
	// Observed returns the largest timestamp the store has seen, kept across restarts.
	Observed() time.Time
	// AdvanceObserved raises Observed to t (never lowers it) without a write: stream time moved
	// without a record (a punctuation, AdvanceStreamTime), kept across restarts.
	AdvanceObserved(t time.Time)
	// Delete removes key's window starting at start.
	Delete(key K, start time.Time) error
	// PutAt is Put stamping the value with ts (the latest timestamp it reflects).
	PutAt(key K, start time.Time, value V, ts time.Time) error
	SetFlushListener(func(WindowFlushed[K, V]) error)
}

// Window returns the window store named name connected to the processor of ctx, typed (K, V).
func Window[K, V any](ctx topology.ProcessorContext, name string) (WindowStore[K, V], error) {
	s, err := ctx.StateStore(name)
	if err != nil {
		return nil, err
	}
	ws, ok := s.(WindowStore[K, V])
	if !ok {
		return nil, fmt.Errorf("state: store %q is a %T, not a window store of the types asked", name, s)
	}
	return ws, nil
}

// WindowSpec declares a window store.
type WindowSpec[K, V any] struct {
	name      string
	key       serde.Serde[K]
	value     serde.Serde[V]
	retention time.Duration
	opts      options
}

// NewWindowStore declares a window store keeping windows for retention. Its changelog
// ("<appID>-<name>-changelog") is compacted and deleted after retention plus a day, as Kafka
// Streams does (windowstore.changelog.additional.retention.ms).
func NewWindowStore[K, V any](name string, key serde.Serde[K], value serde.Serde[V], retention time.Duration, opts ...Option) *WindowSpec[K, V] {
	s := &WindowSpec[K, V]{name: name, key: key, value: value, retention: retention, opts: defaultOptions()}
	for _, o := range opts {
		o(&s.opts)
	}
	return s
}

// StoreName implements topology.StoreSpec.
func (s *WindowSpec[K, V]) StoreName() string { return s.name }

// Changelog implements topology.StoreSpec.
func (s *WindowSpec[K, V]) Changelog() (bool, map[string]string) {
	return windowChangelog(s.opts, s.retention)
}

func windowChangelog(o options, retention time.Duration) (bool, map[string]string) {
	if !o.changelog {
		return false, nil
	}
	cfg := map[string]string{
		"cleanup.policy": "compact,delete",
		"retention.ms":   strconv.FormatInt((retention + 24*time.Hour).Milliseconds(), 10),
	}
	for k, v := range o.changelogConfigs {
		cfg[k] = v
	}
	return true, cfg
}

// segmentInterval is Kafka Streams' choice: half the retention, at least a minute.
func segmentInterval(retention time.Duration) int64 {
	return max(retention.Milliseconds()/2, 60_000)
}

func (s *WindowSpec[K, V]) open(m *Manager, ctx topology.StoreContext) (topology.StateStore, error) {
	if s.key == nil || s.value == nil {
		return nil, fmt.Errorf("state: window store %q has no key or value serde", s.name)
	}
	if s.retention <= 0 {
		return nil, fmt.Errorf("state: window store %q: retention %v must be positive", s.name, s.retention)
	}
	inner, err := openInner(m, ctx, s.name, s.value, s.opts)
	if err != nil {
		return nil, err
	}
	seg, err := newSegmented(inner, s.retention)
	if err != nil {
		return nil, err
	}
	return &windowStore[K, V]{segmented: seg, spec: s}, nil
}

// openInner opens the byte-keyed store that window and session stores are built on.
func openInner[V any](m *Manager, ctx topology.StoreContext, name string, value serde.Serde[V], o options) (*kvStore[[]byte, V], error) {
	spec := &KeyValueSpec[[]byte, V]{name: name, key: serde.Bytes(), value: value, opts: o}
	st, err := spec.open(m, ctx)
	if err != nil {
		return nil, err
	}
	return st.(*kvStore[[]byte, V]), nil
}

// windowStore keys: segment (8 bytes) | uvarint len(key) | key | window start (8 bytes), all
// big-endian, so one segment is one contiguous range and a key's windows are in start order.
type windowStore[K, V any] struct {
	*segmented[V]
	spec    *WindowSpec[K, V]
	onFlush func(WindowFlushed[K, V]) error
}

func windowKey(seg int64, kb []byte, start int64) []byte {
	out := make([]byte, 0, 8+binary.MaxVarintLen32+len(kb)+8)
	out = binary.BigEndian.AppendUint64(out, uint64(seg))
	out = binary.AppendUvarint(out, uint64(len(kb)))
	out = append(out, kb...)
	return binary.BigEndian.AppendUint64(out, uint64(start))
}

func keyPrefix(seg int64, kb []byte) []byte {
	out := make([]byte, 0, 8+binary.MaxVarintLen32+len(kb))
	out = binary.BigEndian.AppendUint64(out, uint64(seg))
	out = binary.AppendUvarint(out, uint64(len(kb)))
	return append(out, kb...)
}

func segStart(seg int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(seg)) }

// splitWindowKey returns the key bytes and the trailing 8-byte time of a composite key, after the
// 8-byte segment.
func splitWindowKey(ck []byte, trailing int) (kb []byte, times []int64, err error) {
	if len(ck) < 8 {
		return nil, nil, fmt.Errorf("state: window store key of %d bytes", len(ck))
	}
	n, k := binary.Uvarint(ck[8:])
	if k <= 0 || uint64(len(ck)-8-k) != n+uint64(8*trailing) {
		return nil, nil, fmt.Errorf("state: malformed window store key %x", ck)
	}
	kb = ck[8+k : 8+k+int(n)]
	rest := ck[8+k+int(n):]
	for i := 0; i < trailing; i++ {
		times = append(times, int64(binary.BigEndian.Uint64(rest[8*i:])))
	}
	return kb, times, nil
}

func (w *windowStore[K, V]) Retention() time.Duration { return w.spec.retention }

func (w *windowStore[K, V]) Put(key K, start time.Time, value V) error {
	return w.PutAt(key, start, value, time.UnixMilli(w.ctx.Timestamp()))
}

// PutAt is Put stamping the value with ts instead of the current record's timestamp.
func (w *windowStore[K, V]) PutAt(key K, start time.Time, value V, ts time.Time) error {
	kb, err := w.spec.key.Serialize(w.topic, key)
	if err != nil {
		return w.errf("serializing a key", err)
	}
	st := start.UnixMilli()
	w.observe(w.ctx.Timestamp())
	if st < w.minLive() {
		return nil // already expired: Kafka Streams drops such writes too
	}
	return w.kvStore.putAt(windowKey(w.seg(st), kb, st), value, ts.UnixMilli())
}

func (w *windowStore[K, V]) Fetch(key K, start time.Time) (V, time.Time, bool, error) {
	var zero V
	kb, err := w.spec.key.Serialize(w.topic, key)
	if err != nil {
		return zero, time.Time{}, false, w.errf("serializing a key", err)
	}
	st := start.UnixMilli()
	if st < w.minLive() {
		return zero, time.Time{}, false, nil
	}
	return w.kvStore.GetWithTimestamp(windowKey(w.seg(st), kb, st))
}

func (w *windowStore[K, V]) Delete(key K, start time.Time) error {
	kb, err := w.spec.key.Serialize(w.topic, key)
	if err != nil {
		return w.errf("serializing a key", err)
	}
	st := start.UnixMilli()
	return w.kvStore.Delete(windowKey(w.seg(st), kb, st))
}

func (w *windowStore[K, V]) FetchRange(key K, from, to time.Time) (WindowIterator[K, V], error) {
	kb, err := w.spec.key.Serialize(w.topic, key)
	if err != nil {
		return nil, w.errf("serializing a key", err)
	}
	// No window starts after the largest timestamp seen (+1: a sliding window's right window).
	lo, hi := max(from.UnixMilli(), w.minLive(), 0), min(to.UnixMilli(), w.observed+1)
	it := &windowIter[K, V]{w: w, lo: lo, hi: hi}
	for seg := w.seg(lo); seg <= w.seg(hi) && lo <= hi; seg++ {
		p := keyPrefix(seg, kb)
		inner, err := w.kvStore.iter(append(append([]byte(nil), p...), binary.BigEndian.AppendUint64(nil, uint64(lo))...),
			append(append([]byte(nil), p...), binary.BigEndian.AppendUint64(nil, uint64(hi)+1)...))
		if err != nil {
			it.Close()
			return nil, err
		}
		it.parts = append(it.parts, inner)
	}
	return it, nil
}

func (w *windowStore[K, V]) FetchAll(from, to time.Time) (WindowIterator[K, V], error) {
	lo, hi := max(from.UnixMilli(), w.minLive(), 0), to.UnixMilli()
	it := &windowIter[K, V]{w: w, lo: lo, hi: hi}
	if lo > hi {
		return it, nil
	}
	// One iterator over the segments' range (empty segments cost nothing), filtered by start.
	inner, err := w.kvStore.iter(segStart(w.seg(lo)), segStart(w.seg(hi)+1))
	if err != nil {
		return nil, err
	}
	it.parts = append(it.parts, inner)
	return it, nil
}

// SetFlushListener sets the function told of each window updated since the last commit.
func (w *windowStore[K, V]) SetFlushListener(f func(WindowFlushed[K, V]) error) {
	w.onFlush = f
	w.kvStore.SetFlushListener(func(fl Flushed[[]byte, V]) error {
		kb, times, err := splitWindowKey(fl.Key, 1)
		if err != nil {
			return err
		}
		k, err := w.spec.key.Deserialize(w.topic, kb)
		if err != nil {
			return w.errf("deserializing a key", err)
		}
		return f(WindowFlushed[K, V]{Key: k, Start: time.UnixMilli(times[0]), New: fl.New, HasNew: fl.HasNew,
			Old: fl.Old, HasOld: fl.HasOld, Timestamp: fl.Timestamp, Headers: fl.Headers})
	})
}

// Restore implements topology.Restorable: records of expired windows, and time markers, are
// skipped; the observed time is the largest time the records carry.
func (w *windowStore[K, V]) Restore(recs []topology.ChangelogEntry, next int64) error {
	w.restoreObserved(recs)
	live := recs[:0:0]
	for _, r := range recs {
		if _, times, err := splitWindowKey(r.Key, 1); err == nil && times[0] >= w.minLive() {
			live = append(live, r)
		}
	}
	return w.kvStore.Restore(live, next)
}

// windowIter walks over the windows of several segments, one after another.
type windowIter[K, V any] struct {
	w      *windowStore[K, V]
	lo, hi int64
	parts  []Iterator[[]byte, V]
	i      int
	k      K
	start  int64
	err    error
}

func (it *windowIter[K, V]) Next() bool {
	for it.err == nil && it.i < len(it.parts) {
		p := it.parts[it.i]
		if !p.Next() {
			it.err = p.Err()
			it.i++
			continue
		}
		kb, times, err := splitWindowKey(p.Key(), 1)
		if err != nil {
			it.err = err
			return false
		}
		if times[0] < it.lo || times[0] > it.hi {
			continue
		}
		k, err := it.w.spec.key.Deserialize(it.w.topic, kb)
		if err != nil {
			it.err = it.w.errf("deserializing a key", err)
			return false
		}
		it.k, it.start = k, times[0]
		return true
	}
	return false
}

func (it *windowIter[K, V]) Key() K               { return it.k }
func (it *windowIter[K, V]) Start() time.Time     { return time.UnixMilli(it.start) }
func (it *windowIter[K, V]) Value() V             { return it.parts[it.i].Value() }
func (it *windowIter[K, V]) Timestamp() time.Time { return it.parts[it.i].Timestamp() }
func (it *windowIter[K, V]) Err() error           { return it.err }

func (it *windowIter[K, V]) Close() error {
	var first error
	for _, p := range it.parts {
		if err := p.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
