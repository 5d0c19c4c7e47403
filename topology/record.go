package topology

import (
	"time"
)

// Record is what flows between the nodes of a topology: a typed key and value with the record's
// timestamp, headers and the coordinates of the input record it derives from.
//
// Records are values: a processor that forwards a changed record copies it. Headers are shared
// between copies, so treat them as read-only and use Headers.With/Without to change them.
type Record[K, V any] struct {
	Key       K
	Value     V
	Timestamp time.Time
	Headers   Headers
	// Origin is where the input record this one derives from was read: its topic, partition and
	// offset. It is zero for records created in a punctuation.
	Origin Origin

	flags recordFlags
}

// Origin locates an input record in Kafka.
type Origin struct {
	Topic     string
	Partition int32
	Offset    int64
}

type recordFlags uint8

const (
	nullKey recordFlags = 1 << iota
	nullValue
)

// KeyIsNull reports whether the key was Kafka null: Key is then the zero value of K. A sink
// writes a null key again.
func (r Record[K, V]) KeyIsNull() bool { return r.flags&nullKey != 0 }

// ValueIsNull reports whether the value is Kafka null (a tombstone): Value is then the zero value
// of V. A sink writes a null value again, tables treat it as a delete, and aggregations skip it.
//
// Nullness travels with the record: a copy of a null record whose Value is then set is still
// null. Set a value with WithValue, which clears it.
func (r Record[K, V]) ValueIsNull() bool { return r.flags&nullValue != 0 }

// WithValue returns a copy of r with value v (not null).
func (r Record[K, V]) WithValue(v V) Record[K, V] {
	r.Value = v
	r.flags &^= nullValue
	return r
}

// WithKey returns a copy of r with key k (not null).
func (r Record[K, V]) WithKey(k K) Record[K, V] {
	r.Key = k
	r.flags &^= nullKey
	return r
}

// WithNullValue returns a copy of r whose value is Kafka null: a tombstone when written to a
// topic, a delete when it reaches a table.
func (r Record[K, V]) WithNullValue() Record[K, V] {
	var zero V
	r.Value = zero
	r.flags |= nullValue
	return r
}

// WithNullKey returns a copy of r whose key is Kafka null.
func (r Record[K, V]) WithNullKey() Record[K, V] {
	var zero K
	r.Key = zero
	r.flags |= nullKey
	return r
}

// WithTimestamp returns a copy of r with timestamp ts.
func (r Record[K, V]) WithTimestamp(ts time.Time) Record[K, V] {
	r.Timestamp = ts
	return r
}

// WithHeaders returns a copy of r with headers h.
func (r Record[K, V]) WithHeaders(h Headers) Record[K, V] {
	r.Headers = h
	return r
}

// Derive returns a record with a new key and value that keeps r's timestamp, headers and origin:
// what a processor usually forwards. The result is not null.
func Derive[K, V, K2, V2 any](r Record[K, V], key K2, value V2) Record[K2, V2] {
	return Record[K2, V2]{Key: key, Value: value, Timestamp: r.Timestamp, Headers: r.Headers, Origin: r.Origin}
}

// DeriveValue returns a record with r's key (and its nullness) and a new value, keeping r's
// timestamp, headers and origin.
func DeriveValue[K, V, V2 any](r Record[K, V], value V2) Record[K, V2] {
	return Record[K, V2]{Key: r.Key, Value: value, Timestamp: r.Timestamp, Headers: r.Headers, Origin: r.Origin, flags: r.flags & nullKey}
}

// DeriveKey returns a record with a new key and r's value (and its nullness), keeping r's
// timestamp, headers and origin.
func DeriveKey[K, V, K2 any](r Record[K, V], key K2) Record[K2, V] {
	return Record[K2, V]{Key: key, Value: r.Value, Timestamp: r.Timestamp, Headers: r.Headers, Origin: r.Origin, flags: r.flags & nullValue}
}

// Header is one Kafka record header. Keys may repeat.
type Header struct {
	Key   string
	Value []byte
}

// Headers are a record's headers in order.
type Headers []Header

// Get returns the value of the last header with key, and whether there is one.
func (h Headers) Get(key string) ([]byte, bool) {
	for i := len(h) - 1; i >= 0; i-- {
		if h[i].Key == key {
			return h[i].Value, true
		}
	}
	return nil, false
}

// With returns new headers: h plus key=value at the end. h is not changed.
func (h Headers) With(key string, value []byte) Headers {
	out := make(Headers, len(h), len(h)+1)
	copy(out, h)
	return append(out, Header{Key: key, Value: value})
}

// Without returns new headers without any header named key. h is not changed.
func (h Headers) Without(key string) Headers {
	out := make(Headers, 0, len(h))
	for _, x := range h {
		if x.Key != key {
			out = append(out, x)
		}
	}
	return out
}

// RawRecord is an input record as read from Kafka, before deserialization: what a driver (the
// engine, or streamtest) feeds to a Task.
type RawRecord struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte // nil is Kafka null
	Value     []byte // nil is Kafka null (a tombstone)
	Timestamp time.Time
	Headers   Headers
}

// OutRecord is a serialized record a Task emits for a driver to produce.
type OutRecord struct {
	Topic string
	// Partition is the partition chosen by a partitioner, or -1 to let the driver partition by
	// key the way Kafka's default partitioner does (murmur2 of the key bytes).
	Partition int32
	Key       []byte
	Value     []byte
	Timestamp time.Time
	Headers   Headers
	// Changelog marks a store's changelog record: the driver tells the store the offset it got.
	Changelog bool
}
