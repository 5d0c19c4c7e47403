package state

import (
	"encoding/binary"

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

// timeLog tracks the largest time the changelog carries for a store partition: its records'
// timestamps and its markers.
type timeLog struct {
	logged int64
}

func (l *timeLog) saw(ts int64) { l.logged = max(l.logged, ts) }

// flushTimeMarker writes a time marker for observed to kv's changelog if the changelog does not
// carry that time yet. Its record timestamp is observed, or now if observed is in the future
// (sendChangelog): the time is in the value.
func flushTimeMarker[V any](kv *kvStore[[]byte, V], l *timeLog, observed int64) {
	if !timeMarkerDue(kv, l, observed) {
		return
	}
	kv.sendChangelog(timeMarkerKey, binary.BigEndian.AppendUint64(nil, uint64(observed)), observed)
	l.saw(observed)
}

func timeMarkerDue[V any](kv *kvStore[[]byte, V], l *timeLog, observed int64) bool {
	return kv.ctx.Changelog != "" && observed > l.logged
}

// restoredTime returns the time a changelog record carries: a time marker's value, or the
// record's timestamp.
func restoredTime(r topology.ChangelogEntry) int64 {
	if len(r.Key) == 1 && r.Key[0] == timeMarkerKey[0] && len(r.Value) == 8 {
		return int64(binary.BigEndian.Uint64(r.Value))
	}
	return r.Timestamp
}
