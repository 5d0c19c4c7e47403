package streamtest

import (
	"fmt"
	"sort"
	"time"

	"github.com/rifflestream/riffle/serde"
	"github.com/rifflestream/riffle/topology"
)

// InputTopic writes typed records into a topic of the driver.
type InputTopic[K, V any] struct {
	d       *Driver
	topic   string
	key     serde.Serde[K]
	value   serde.Serde[V]
	next    time.Time
	advance time.Duration
}

// Input returns a typed writer for topic. Records piped without a timestamp get the driver's
// start time, advanced by AutoAdvance after each one.
func Input[K, V any](d *Driver, topic string, key serde.Serde[K], value serde.Serde[V]) *InputTopic[K, V] {
	return &InputTopic[K, V]{d: d, topic: topic, key: key, value: value, next: d.cfg.start}
}

// AutoAdvance makes each record piped without a timestamp get a timestamp step later than the
// previous one. It returns the topic for chaining.
func (in *InputTopic[K, V]) AutoAdvance(step time.Duration) *InputTopic[K, V] {
	in.advance = step
	return in
}

// Pipe writes key and value with the next automatic timestamp, and processes it.
func (in *InputTopic[K, V]) Pipe(key K, value V) {
	in.d.helper()
	in.d.fatal(in.TryPipe(key, value))
}

// PipeAt writes key and value with timestamp ts, and processes it.
func (in *InputTopic[K, V]) PipeAt(key K, value V, ts time.Time) {
	in.d.helper()
	in.d.fatal(in.TryPipeRecord(topology.Record[K, V]{Key: key, Value: value, Timestamp: ts}))
}

// PipeRecord writes a record (key, value, timestamp, headers, and null key or value as set with
// WithNullKey/WithNullValue), and processes it. A zero timestamp means the next automatic one.
func (in *InputTopic[K, V]) PipeRecord(rec topology.Record[K, V]) {
	in.d.helper()
	in.d.fatal(in.TryPipeRecord(rec))
}

// PipeTombstone writes key with a null value.
func (in *InputTopic[K, V]) PipeTombstone(key K) {
	in.d.helper()
	in.d.fatal(in.TryPipeRecord(topology.Record[K, V]{Key: key}.WithNullValue()))
}

// TryPipe is Pipe returning a fatal processing error instead of failing the test.
func (in *InputTopic[K, V]) TryPipe(key K, value V) error {
	return in.TryPipeRecord(topology.Record[K, V]{Key: key, Value: value})
}

// TryPipeRecord is PipeRecord returning a fatal processing error instead of failing the test.
func (in *InputTopic[K, V]) TryPipeRecord(rec topology.Record[K, V]) error {
	var kb, vb []byte
	var err error
	if !rec.KeyIsNull() {
		if kb, err = in.key.Serialize(in.topic, rec.Key); err != nil {
			return fmt.Errorf("streamtest: serializing the key for %q: %w", in.topic, err)
		}
	}
	if !rec.ValueIsNull() {
		if vb, err = in.value.Serialize(in.topic, rec.Value); err != nil {
			return fmt.Errorf("streamtest: serializing the value for %q: %w", in.topic, err)
		}
	}
	ts := rec.Timestamp
	if ts.IsZero() {
		ts = in.next
		in.next = in.next.Add(in.advance)
	}
	return in.d.PipeRaw(in.topic, -1, kb, vb, ts, rec.Headers)
}

// PipeRaw writes raw bytes (nil is Kafka null) to partition of topic (-1: by key, like Kafka's
// default partitioner) and processes the record; for testing bad input.
func (d *Driver) PipeRaw(topic string, partition int32, key, value []byte, ts time.Time, headers topology.Headers) error {
	if d.failed != nil {
		return d.failed
	}
	if err := d.append(topic, partition, stored{key: key, value: value, ts: ts, headers: headers}); err != nil {
		return d.fail(err)
	}
	return d.settle()
}

// OutputTopic reads typed records from a topic of the driver, in the order they were written
// (across partitions). Each read returns the records not read before.
type OutputTopic[K, V any] struct {
	d     *Driver
	topic string
	key   serde.Serde[K]
	value serde.Serde[V]
	read  int64 // the seq of the last record read
}

// Output returns a typed reader for topic.
func Output[K, V any](d *Driver, topic string, key serde.Serde[K], value serde.Serde[V]) *OutputTopic[K, V] {
	return &OutputTopic[K, V]{d: d, topic: topic, key: key, value: value}
}

// ReadRecords returns the unread records. Each record's Origin is where it lies in the output
// topic (topic, partition, offset); null keys and values are marked (KeyIsNull, ValueIsNull).
// Undecodable bytes fail the test.
func (o *OutputTopic[K, V]) ReadRecords() []topology.Record[K, V] {
	o.d.helper()
	recs, err := o.TryReadRecords()
	o.d.fatal(err)
	return recs
}

// TryReadRecords is ReadRecords returning a decoding error instead of failing the test.
func (o *OutputTopic[K, V]) TryReadRecords() ([]topology.Record[K, V], error) {
	t := o.d.topic(o.topic)
	type at struct {
		p   int32
		off int64
		r   stored
	}
	var unread []at
	for p, recs := range t.partitions {
		for off, r := range recs {
			if r.seq > o.read {
				unread = append(unread, at{p: int32(p), off: int64(off), r: r})
			}
		}
	}
	sortBySeq(unread, func(a at) int64 { return a.r.seq })
	out := make([]topology.Record[K, V], 0, len(unread))
	for _, u := range unread {
		rec := topology.Record[K, V]{Timestamp: u.r.ts, Headers: u.r.headers,
			Origin: topology.Origin{Topic: o.topic, Partition: u.p, Offset: u.off}}
		if u.r.key == nil {
			rec = rec.WithNullKey()
		} else {
			k, err := o.key.Deserialize(o.topic, u.r.key)
			if err != nil {
				return nil, fmt.Errorf("streamtest: %s[%d]@%d: key: %w", o.topic, u.p, u.off, err)
			}
			rec = rec.WithKey(k)
		}
		if u.r.value == nil {
			rec = rec.WithNullValue()
		} else {
			v, err := o.value.Deserialize(o.topic, u.r.value)
			if err != nil {
				return nil, fmt.Errorf("streamtest: %s[%d]@%d: value: %w", o.topic, u.p, u.off, err)
			}
			rec = rec.WithValue(v)
		}
		out = append(out, rec)
		o.read = u.r.seq
	}
	return out, nil
}

// KeyValue is a key and a value read from an output topic.
type KeyValue[K, V any] struct {
	Key   K
	Value V
}

// ReadKeyValues returns the unread records' keys and values.
func (o *OutputTopic[K, V]) ReadKeyValues() []KeyValue[K, V] {
	o.d.helper()
	recs := o.ReadRecords()
	out := make([]KeyValue[K, V], len(recs))
	for i, r := range recs {
		out[i] = KeyValue[K, V]{Key: r.Key, Value: r.Value}
	}
	return out
}

// ReadValues returns the unread records' values.
func (o *OutputTopic[K, V]) ReadValues() []V {
	o.d.helper()
	recs := o.ReadRecords()
	out := make([]V, len(recs))
	for i, r := range recs {
		out[i] = r.Value
	}
	return out
}

// Len returns the number of unread records.
func (o *OutputTopic[K, V]) Len() int {
	n := 0
	for _, recs := range o.d.topic(o.topic).partitions {
		for _, r := range recs {
			if r.seq > o.read {
				n++
			}
		}
	}
	return n
}

// LastByKey reads the unread records and returns the last value of each key, the way a compacted
// topic or a table would keep them: a null value (tombstone) removes the key.
func LastByKey[K comparable, V any](o *OutputTopic[K, V]) map[K]V {
	o.d.helper()
	out := map[K]V{}
	for _, r := range o.ReadRecords() {
		if r.ValueIsNull() {
			delete(out, r.Key)
			continue
		}
		out[r.Key] = r.Value
	}
	return out
}

func sortBySeq[T any](xs []T, seq func(T) int64) {
	sort.Slice(xs, func(i, j int) bool { return seq(xs[i]) < seq(xs[j]) })
}
