package state

import (
	"encoding/binary"
	"time"

	"github.com/rifflestream/riffle/topology"
)

// Window and session stores keep their observed time (the stream time that their expiry, and the
// windowed processors' decisions which windows are closed, are relative to) in the local
// checkpoint and in the changelog. Data records carry their timestamps, from which a restore
// takes the largest; when the observed time runs ahead of every timestamp the changelog holds
// (stream time moved by a punctuation, AdvanceStreamTime or an idle close), a flush writes a time
// marker, so that a task restored on another instance (or from scratch) does not reopen the
// windows that time closed, and emit their final results again.

// timeMarkerKey is the changelog key of a store partition's time marker; its value is the time,
// 8 bytes big-endian, in milliseconds. One byte: no window key (at least 17 bytes) or session key
// (25) is that short, so a restore tells it apart (and earlier restores skipped it as a
// malformed key). Compaction keeps the latest.
var timeMarkerKey = []byte{0}

// restoredTime returns the time a changelog record carries: a time marker's value, or the
// record's timestamp.
func restoredTime(r topology.ChangelogEntry) int64 {
	if len(r.Key) == 1 && r.Key[0] == timeMarkerKey[0] && len(r.Value) == 8 {
		return int64(binary.BigEndian.Uint64(r.Value))
	}
	return r.Timestamp
}

// segmented is what window and session stores share: the byte-keyed store they are built on,
// cut into segments of interval ms (keys start with their segment), of which those holding
// only expired entries are dropped; and the observed time, kept in checkpoints and changelogs.
type segmented[V any] struct {
	*kvStore[[]byte, V]
	retention int64 // ms
	interval  int64
	observed  int64 // the largest timestamp put, or stream time (AdvanceObserved)
	expired   int64 // segments below this are deleted
}

func newSegmented[V any](inner *kvStore[[]byte, V], retention time.Duration) (*segmented[V], error) {
	s := &segmented[V]{kvStore: inner, retention: retention.Milliseconds(), interval: segmentInterval(retention), expired: -1}
	s.observedTime = func() int64 { return s.observed }
	c, ok, err := s.view.Checkpoint()
	if err != nil {
		return nil, err
	}
	if ok {
		s.observed = c.Time
	}
	// The checkpoint's time was in the changelog when it was written (data records' timestamps,
	// or a time marker written before the commit).
	s.logged = max(s.logged, s.observed)
	return s, nil
}

// Observed returns the largest timestamp the store has seen (kept across restarts).
func (s *segmented[V]) Observed() time.Time { return time.UnixMilli(s.observed) }

// AdvanceObserved raises the store's observed time to t without a write (kept across restarts,
// like a put's): stream time moved by a punctuation or AdvanceStreamTime, past the windows it
// closed. It drops nothing: the segments it expires go with the next put, after a flush has
// emitted what the cache holds of them.
func (s *segmented[V]) AdvanceObserved(t time.Time) { s.observed = max(s.observed, t.UnixMilli()) }

func (s *segmented[V]) seg(ts int64) int64 { return ts / s.interval }

// minLive is the oldest time still kept: a window's start, a session's end.
func (s *segmented[V]) minLive() int64 { return s.observed - s.retention + 1 }

// observe raises the observed time to ts (a put's) and drops the segments that hold only
// expired entries.
func (s *segmented[V]) observe(ts int64) {
	s.observed = max(s.observed, ts) // AdvanceObserved may have raised it already
	if live := s.seg(max(s.minLive(), 0)); live > s.expired {
		s.deleteRange(segStart(0), segStart(live))
		s.expired = live
	}
}

// markerDue reports whether the observed time is ahead of what the changelog carries.
func (s *segmented[V]) markerDue() bool { return s.ctx.Changelog != "" && s.observed > s.logged }

// Dirty reports whether a flush has something to write: cached writes, or a time marker.
func (s *segmented[V]) Dirty() bool { return s.kvStore.Dirty() || s.markerDue() }

// Flush writes the cached writes and then, if the observed time is still ahead of what the
// changelog carries, a time marker. Its record timestamp is the time, or now if that is in the
// future (sendChangelog): the time itself is in the value.
func (s *segmented[V]) Flush() error {
	if err := s.kvStore.Flush(); err != nil {
		return err
	}
	if s.markerDue() {
		s.sendChangelog(timeMarkerKey, binary.BigEndian.AppendUint64(nil, uint64(s.observed)), s.observed)
		s.logged = s.observed
	}
	return nil
}

// restoreObserved raises the observed time to the largest time restored records carry.
func (s *segmented[V]) restoreObserved(recs []topology.ChangelogEntry) {
	for _, r := range recs {
		s.observed = max(s.observed, restoredTime(r))
	}
	s.logged = max(s.logged, s.observed)
}
