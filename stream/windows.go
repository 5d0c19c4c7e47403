package stream

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/rifflestream/riffle/serde"
)

// Windowed is the key of a windowed aggregation's result: the record key and its window. For
// time windows (tumbling, hopping) End is excluded from the window; for sliding and session
// windows it is included (the last millisecond of the window), as in Kafka Streams.
type Windowed[K any] struct {
	Key   K
	Start time.Time
	End   time.Time
}

func (w Windowed[K]) String() string {
	return fmt.Sprintf("%v@[%d,%d]", w.Key, w.Start.UnixMilli(), w.End.UnixMilli())
}

// TimeWindows are fixed-size windows [start, start+size): tumbling (advancing by their size, so
// each record is in exactly one) or hopping (advancing by less, so windows overlap). Windows are
// aligned to the epoch. A window closes once stream time reaches its end plus the grace period;
// records for a closed window are late and dropped. Kafka Streams' TimeWindows.
type TimeWindows struct {
	size, advance, grace, retention time.Duration
}

// Tumbling returns non-overlapping windows of size, with no grace period.
func Tumbling(size time.Duration) TimeWindows { return TimeWindows{size: size, advance: size} }

// Hopping returns windows of size starting every advance (advance < size means overlap).
func Hopping(size, advance time.Duration) TimeWindows {
	return TimeWindows{size: size, advance: advance}
}

// WithGrace returns the windows with a grace period: how long after a window's end records may
// still arrive (out of order) and be counted. Default 0.
func (w TimeWindows) WithGrace(d time.Duration) TimeWindows { w.grace = d; return w }

// WithRetention returns the windows with how long their store keeps them (for queries and
// late updates); at least size + grace, which is the default.
func (w TimeWindows) WithRetention(d time.Duration) TimeWindows { w.retention = d; return w }

// Size returns the window size.
func (w TimeWindows) Size() time.Duration { return w.size }

func (w TimeWindows) validate() error {
	switch {
	case w.size <= 0 || w.size%time.Millisecond != 0:
		return fmt.Errorf("window size %v must be a positive number of milliseconds", w.size)
	case w.advance <= 0 || w.advance > w.size || w.advance%time.Millisecond != 0:
		return fmt.Errorf("window advance %v must be positive milliseconds, at most the size %v", w.advance, w.size)
	case w.grace < 0:
		return fmt.Errorf("grace %v must not be negative", w.grace)
	case w.retention != 0 && w.retention < w.size+w.grace:
		return fmt.Errorf("retention %v must be at least size + grace (%v)", w.retention, w.size+w.grace)
	}
	return nil
}

func (w TimeWindows) storeRetention() time.Duration {
	if w.retention != 0 {
		return w.retention
	}
	return w.size + w.grace
}

// starts returns the starts of the windows that contain ts (Kafka Streams' windowsFor).
func (w TimeWindows) starts(ts int64) []int64 {
	size, adv := w.size.Milliseconds(), w.advance.Milliseconds()
	start := (max(0, ts-size+adv) / adv) * adv
	var out []int64
	for ; start <= ts; start += adv {
		out = append(out, start)
	}
	return out
}

// SlidingWindows are Kafka Streams' SlidingWindows: windows [t, t+d] (both ends included) that
// exist where records are. For each record at time t there is the window ending at t (starting at
// t-d, or at 0 for records earlier than d) and, if another record comes within d after it, the
// window starting at t+1. Each holds the records within its bounds.
type SlidingWindows struct {
	diff, grace, retention time.Duration
}

// Sliding returns sliding windows with the given maximum time difference between two records of
// one window, and no grace period.
func Sliding(maxTimeDifference time.Duration) SlidingWindows {
	return SlidingWindows{diff: maxTimeDifference}
}

// WithGrace returns the windows with a grace period.
func (w SlidingWindows) WithGrace(d time.Duration) SlidingWindows { w.grace = d; return w }

// WithRetention returns the windows with a store retention (at least difference + grace).
func (w SlidingWindows) WithRetention(d time.Duration) SlidingWindows { w.retention = d; return w }

func (w SlidingWindows) validate() error {
	switch {
	case w.diff <= 0 || w.diff%time.Millisecond != 0:
		return fmt.Errorf("sliding window time difference %v must be a positive number of milliseconds", w.diff)
	case w.grace < 0:
		return fmt.Errorf("grace %v must not be negative", w.grace)
	case w.retention != 0 && w.retention < w.diff+w.grace:
		return fmt.Errorf("retention %v must be at least difference + grace (%v)", w.retention, w.diff+w.grace)
	}
	return nil
}

func (w SlidingWindows) storeRetention() time.Duration {
	if w.retention != 0 {
		return w.retention
	}
	return w.diff + w.grace + time.Millisecond
}

// SessionWindows group a key's records into sessions: a record within the inactivity gap of a
// session joins it, and a record that bridges two sessions merges them. A session [first, last]
// closes once stream time passes its last record plus the gap and the grace period. Kafka
// Streams' SessionWindows.
type SessionWindows struct {
	gap, grace, retention time.Duration
}

// Sessions returns session windows with the given inactivity gap and no grace period.
func Sessions(inactivityGap time.Duration) SessionWindows { return SessionWindows{gap: inactivityGap} }

// WithGrace returns the windows with a grace period.
func (w SessionWindows) WithGrace(d time.Duration) SessionWindows { w.grace = d; return w }

// WithRetention returns the windows with a store retention (at least gap + grace).
func (w SessionWindows) WithRetention(d time.Duration) SessionWindows { w.retention = d; return w }

func (w SessionWindows) validate() error {
	switch {
	case w.gap <= 0 || w.gap%time.Millisecond != 0:
		return fmt.Errorf("session inactivity gap %v must be a positive number of milliseconds", w.gap)
	case w.grace < 0:
		return fmt.Errorf("grace %v must not be negative", w.grace)
	case w.retention != 0 && w.retention < w.gap+w.grace:
		return fmt.Errorf("retention %v must be at least gap + grace (%v)", w.retention, w.gap+w.grace)
	}
	return nil
}

func (w SessionWindows) storeRetention() time.Duration {
	if w.retention != 0 {
		return w.retention
	}
	return w.gap + w.grace + time.Millisecond
}

// TimeWindowedSerde encodes windowed keys as Kafka Streams' TimeWindowedSerializer does: the
// key's bytes, then the window start (8 bytes, big-endian milliseconds). The end is not written;
// decoding sets it to start + size (give the windows' size; for sliding windows, the time
// difference).
func TimeWindowedSerde[K any](inner serde.Serde[K], size time.Duration) serde.Serde[Windowed[K]] {
	return serde.New(func(topic string, w Windowed[K]) ([]byte, error) {
		kb, err := inner.Serialize(topic, w.Key)
		if err != nil {
			return nil, err
		}
		return binary.BigEndian.AppendUint64(append(make([]byte, 0, len(kb)+8), kb...), uint64(w.Start.UnixMilli())), nil
	}, func(topic string, b []byte) (Windowed[K], error) {
		var w Windowed[K]
		if len(b) < 8 {
			return w, &serde.Error{Serde: "time-windowed", Op: "deserialize", Reason: fmt.Sprintf("want at least 8 bytes, got %d", len(b))}
		}
		k, err := inner.Deserialize(topic, b[:len(b)-8])
		if err != nil {
			return w, err
		}
		start := int64(binary.BigEndian.Uint64(b[len(b)-8:]))
		return Windowed[K]{Key: k, Start: time.UnixMilli(start), End: time.UnixMilli(start + size.Milliseconds())}, nil
	})
}

// SessionWindowedSerde encodes windowed keys as Kafka Streams' SessionWindowedSerializer does:
// the key's bytes, then the session end and start (8 bytes each, big-endian milliseconds).
func SessionWindowedSerde[K any](inner serde.Serde[K]) serde.Serde[Windowed[K]] {
	return serde.New(func(topic string, w Windowed[K]) ([]byte, error) {
		kb, err := inner.Serialize(topic, w.Key)
		if err != nil {
			return nil, err
		}
		out := append(make([]byte, 0, len(kb)+16), kb...)
		out = binary.BigEndian.AppendUint64(out, uint64(w.End.UnixMilli()))
		return binary.BigEndian.AppendUint64(out, uint64(w.Start.UnixMilli())), nil
	}, func(topic string, b []byte) (Windowed[K], error) {
		var w Windowed[K]
		if len(b) < 16 {
			return w, &serde.Error{Serde: "session-windowed", Op: "deserialize", Reason: fmt.Sprintf("want at least 16 bytes, got %d", len(b))}
		}
		k, err := inner.Deserialize(topic, b[:len(b)-16])
		if err != nil {
			return w, err
		}
		end := int64(binary.BigEndian.Uint64(b[len(b)-16:]))
		start := int64(binary.BigEndian.Uint64(b[len(b)-8:]))
		return Windowed[K]{Key: k, Start: time.UnixMilli(start), End: time.UnixMilli(end)}, nil
	})
}
