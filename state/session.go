package state

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/rifflestream/riffle/serde"
	"github.com/rifflestream/riffle/topology"
)

// SessionStore keeps a value per key and session ([start, end], both included), for session
// windows. Sessions whose end is older than the retention (relative to the largest timestamp
// seen) expire, whole time segments at once.
type SessionStore[K, V any] interface {
	Name() string
	// FindSessions iterates over key's sessions that end at or after earliestEnd and start at or
	// before latestStart, oldest end first.
	FindSessions(key K, earliestEnd, latestStart time.Time) (SessionIterator[K, V], error)
	// Put sets the value of key's session [start, end].
	Put(key K, start, end time.Time, value V) error
	// Remove deletes key's session [start, end].
	Remove(key K, start, end time.Time) error
	// FetchEnded iterates over every key's sessions that end in [from, to].
	FetchEnded(from, to time.Time) (SessionIterator[K, V], error)
	Retention() time.Duration
}

// SessionIterator walks over sessions. The caller MUST Close it.
type SessionIterator[K, V any] interface {
	Next() bool
	Key() K
	Start() time.Time
	End() time.Time
	Value() V
	Timestamp() time.Time
	Err() error
	Close() error
}

// SessionFlushed is one session's update at a commit.
type SessionFlushed[K, V any] struct {
	Key        K
	Start, End time.Time
	New        V
	HasNew     bool
	Old        V
	HasOld     bool
	Timestamp  time.Time
	Headers    topology.Headers // of the last record that wrote the session
}

// TableSessionStore is a SessionStore whose flushed updates can be forwarded downstream.
type TableSessionStore[K, V any] interface {
	SessionStore[K, V]
	Caching() bool
	// Observed returns the largest timestamp the store has seen, kept across restarts.
	Observed() time.Time
	// AdvanceObserved raises Observed to t (never lowers it) without a write: stream time moved
	// without a record (a punctuation, AdvanceStreamTime), kept across restarts.
	AdvanceObserved(t time.Time)
	SetFlushListener(func(SessionFlushed[K, V]) error)
}

// SessionSpec declares a session store.
type SessionSpec[K, V any] struct {
	name      string
	key       serde.Serde[K]
	value     serde.Serde[V]
	retention time.Duration
	opts      options
}

// NewSessionStore declares a session store keeping sessions for retention after their end.
func NewSessionStore[K, V any](name string, key serde.Serde[K], value serde.Serde[V], retention time.Duration, opts ...Option) *SessionSpec[K, V] {
	s := &SessionSpec[K, V]{name: name, key: key, value: value, retention: retention, opts: defaultOptions()}
	for _, o := range opts {
		o(&s.opts)
	}
	return s
}

// StoreName implements topology.StoreSpec.
func (s *SessionSpec[K, V]) StoreName() string { return s.name }

// Changelog implements topology.StoreSpec: compact,delete with retention plus a day.
func (s *SessionSpec[K, V]) Changelog() (bool, map[string]string) {
	return windowChangelog(s.opts, s.retention)
}

func (s *SessionSpec[K, V]) open(m *Manager, ctx topology.StoreContext) (topology.StateStore, error) {
	if s.key == nil || s.value == nil {
		return nil, fmt.Errorf("state: session store %q has no key or value serde", s.name)
	}
	if s.retention <= 0 {
		return nil, fmt.Errorf("state: session store %q: retention %v must be positive", s.name, s.retention)
	}
	inner, err := openInner(m, ctx, s.name, s.value, s.opts)
	if err != nil {
		return nil, err
	}
	seg, err := newSegmented(inner, s.retention)
	if err != nil {
		return nil, err
	}
	return &sessionStore[K, V]{segmented: seg, spec: s}, nil
}

// sessionStore keys: segment of the end (8 bytes) | uvarint len(key) | key | end | start.
type sessionStore[K, V any] struct {
	*segmented[V]
	spec *SessionSpec[K, V]
}

func sessionKey(seg int64, kb []byte, start, end int64) []byte {
	out := keyPrefix(seg, kb)
	out = binary.BigEndian.AppendUint64(out, uint64(end))
	return binary.BigEndian.AppendUint64(out, uint64(start))
}

func (s *sessionStore[K, V]) Retention() time.Duration { return s.spec.retention }

func (s *sessionStore[K, V]) key(k K) ([]byte, error) {
	kb, err := s.spec.key.Serialize(s.topic, k)
	if err != nil {
		return nil, s.errf("serializing a key", err)
	}
	return kb, nil
}

func (s *sessionStore[K, V]) Put(k K, start, end time.Time, v V) error {
	kb, err := s.key(k)
	if err != nil {
		return err
	}
	s.observe(s.ctx.Timestamp())
	e := end.UnixMilli()
	if e < s.minLive() {
		return nil
	}
	// A session's timestamp is its end: the latest record it holds.
	return s.kvStore.putAt(sessionKey(s.seg(e), kb, start.UnixMilli(), e), v, e)
}

func (s *sessionStore[K, V]) Remove(k K, start, end time.Time) error {
	kb, err := s.key(k)
	if err != nil {
		return err
	}
	e := end.UnixMilli()
	return s.kvStore.Delete(sessionKey(s.seg(e), kb, start.UnixMilli(), e))
}

func (s *sessionStore[K, V]) FindSessions(k K, earliestEnd, latestStart time.Time) (SessionIterator[K, V], error) {
	kb, err := s.key(k)
	if err != nil {
		return nil, err
	}
	lo := max(earliestEnd.UnixMilli(), s.minLive(), 0)
	it := &sessionIter[K, V]{s: s, endFrom: lo, endTo: 1<<62 - 1, latestStart: latestStart.UnixMilli()}
	// A session can end at most at the largest timestamp seen.
	for seg := s.seg(lo); seg <= s.seg(max(s.observed, lo)); seg++ {
		p := keyPrefix(seg, kb)
		inner, err := s.kvStore.iter(append(append([]byte(nil), p...), binary.BigEndian.AppendUint64(nil, uint64(lo))...), prefixEnd(p))
		if err != nil {
			it.Close()
			return nil, err
		}
		it.parts = append(it.parts, inner)
	}
	return it, nil
}

func (s *sessionStore[K, V]) FetchEnded(from, to time.Time) (SessionIterator[K, V], error) {
	lo, hi := max(from.UnixMilli(), s.minLive(), 0), to.UnixMilli()
	it := &sessionIter[K, V]{s: s, endFrom: lo, endTo: hi, latestStart: 1<<62 - 1}
	if lo > hi {
		return it, nil
	}
	inner, err := s.kvStore.iter(segStart(s.seg(lo)), segStart(s.seg(hi)+1))
	if err != nil {
		return nil, err
	}
	it.parts = append(it.parts, inner)
	return it, nil
}

// SetFlushListener sets the function told of each session updated since the last commit.
func (s *sessionStore[K, V]) SetFlushListener(f func(SessionFlushed[K, V]) error) {
	s.kvStore.SetFlushListener(func(fl Flushed[[]byte, V]) error {
		kb, times, err := splitWindowKey(fl.Key, 2)
		if err != nil {
			return err
		}
		k, err := s.spec.key.Deserialize(s.topic, kb)
		if err != nil {
			return s.errf("deserializing a key", err)
		}
		return f(SessionFlushed[K, V]{Key: k, End: time.UnixMilli(times[0]), Start: time.UnixMilli(times[1]),
			New: fl.New, HasNew: fl.HasNew, Old: fl.Old, HasOld: fl.HasOld, Timestamp: fl.Timestamp, Headers: fl.Headers})
	})
}

// Restore implements topology.Restorable: records of expired sessions, and time markers, are
// skipped; the observed time is the largest time the records carry.
func (s *sessionStore[K, V]) Restore(recs []topology.ChangelogEntry, next int64) error {
	s.restoreObserved(recs)
	live := recs[:0:0]
	for _, r := range recs {
		if _, times, err := splitWindowKey(r.Key, 2); err == nil && times[0] >= s.minLive() {
			live = append(live, r)
		}
	}
	return s.kvStore.Restore(live, next)
}

type sessionIter[K, V any] struct {
	s              *sessionStore[K, V]
	endFrom, endTo int64
	latestStart    int64
	parts          []Iterator[[]byte, V]
	i              int
	k              K
	start, end     int64
	err            error
}

func (it *sessionIter[K, V]) Next() bool {
	for it.err == nil && it.i < len(it.parts) {
		p := it.parts[it.i]
		if !p.Next() {
			it.err = p.Err()
			it.i++
			continue
		}
		kb, times, err := splitWindowKey(p.Key(), 2)
		if err != nil {
			it.err = err
			return false
		}
		end, start := times[0], times[1]
		if end < it.endFrom || end > it.endTo || start > it.latestStart {
			continue
		}
		k, err := it.s.spec.key.Deserialize(it.s.topic, kb)
		if err != nil {
			it.err = it.s.errf("deserializing a key", err)
			return false
		}
		it.k, it.start, it.end = k, start, end
		return true
	}
	return false
}

func (it *sessionIter[K, V]) Key() K               { return it.k }
func (it *sessionIter[K, V]) Start() time.Time     { return time.UnixMilli(it.start) }
func (it *sessionIter[K, V]) End() time.Time       { return time.UnixMilli(it.end) }
func (it *sessionIter[K, V]) Value() V             { return it.parts[it.i].Value() }
func (it *sessionIter[K, V]) Timestamp() time.Time { return it.parts[it.i].Timestamp() }
func (it *sessionIter[K, V]) Err() error           { return it.err }

func (it *sessionIter[K, V]) Close() error {
	var first error
	for _, p := range it.parts {
		if err := p.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
