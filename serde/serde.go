package serde

import "fmt"

// Serde converts values of type T to and from the bytes of a Kafka record key or value.
//
// Kafka null (a nil key or a tombstone value) reaches a Serde from Riffle's runtime only if it
// implements NullAware: otherwise a source treats nil bytes as "no value" (tables delete,
// aggregations skip, a stream passes the zero value of T and remembers the null, so a sink writes
// null again). To see nulls as values, use a pointer type through Nullable.
//
// Serialize must return a new slice the caller may keep: Riffle hands it to the producer. An empty,
// non-nil slice is an empty value, not null. Deserialize may keep data (it is not reused), and must
// return an error, never panic, for bytes it cannot decode.
//
// Implementations must be safe for concurrent use: one Serde serves every task of an app.
type Serde[T any] interface {
	Serialize(topic string, v T) ([]byte, error)
	Deserialize(topic string, data []byte) (T, error)
}

// Appender is implemented by a Serde that can encode a value into a buffer it is given:
// AppendSerialize appends the encoding of v to dst and returns the extended slice, as
// Serialize(topic, v) would return it (for an empty encoding, dst unchanged, which is an empty
// value, not null). It must not keep dst or read its bytes before len(dst).
//
// Riffle's sinks use it when a serde has it: keys and values are then cut from a buffer the task
// owns instead of one allocation each. Every primitive serde and UUID implement it; Bytes does
// not (it returns the value itself, which costs nothing), nor does Nullable. Make one from
// functions with NewAppending.
type Appender[T any] interface {
	AppendSerialize(dst []byte, topic string, v T) ([]byte, error)
}

// NewAppending returns a Serde, also an Appender, from an append-style encoder and a decoder:
// its Serialize appends to a new slice of capacity sizeHint.
func NewAppending[T any](appendTo func(dst []byte, topic string, v T) ([]byte, error), deserialize func(topic string, data []byte) (T, error), sizeHint int) Serde[T] {
	return &appendingSerde[T]{app: appendTo, de: deserialize, hint: max(sizeHint, 0)}
}

type appendingSerde[T any] struct {
	app  func([]byte, string, T) ([]byte, error)
	de   func(string, []byte) (T, error)
	hint int
}

func (a *appendingSerde[T]) Serialize(topic string, v T) ([]byte, error) {
	return a.app(make([]byte, 0, a.hint), topic, v)
}

func (a *appendingSerde[T]) AppendSerialize(dst []byte, topic string, v T) ([]byte, error) {
	return a.app(dst, topic, v)
}

func (a *appendingSerde[T]) Deserialize(topic string, data []byte) (T, error) {
	return a.de(topic, data)
}

// New returns a Serde from two functions. Either may ignore the topic.
func New[T any](serialize func(topic string, v T) ([]byte, error), deserialize func(topic string, data []byte) (T, error)) Serde[T] {
	return funcSerde[T]{ser: serialize, de: deserialize}
}

type funcSerde[T any] struct {
	ser func(string, T) ([]byte, error)
	de  func(string, []byte) (T, error)
}

func (f funcSerde[T]) Serialize(topic string, v T) ([]byte, error)      { return f.ser(topic, v) }
func (f funcSerde[T]) Deserialize(topic string, data []byte) (T, error) { return f.de(topic, data) }

// Error reports bytes a Serde could not decode (or a value it could not encode). Riffle's runtime
// wraps it with the record's coordinates (topic, partition, offset) and the node that failed.
type Error struct {
	Serde  string // the serde's name, e.g. "int64", "json[main.Event]"
	Op     string // "serialize" or "deserialize"
	Reason string // what is wrong, e.g. "want 8 bytes, got 3"
	Err    error  // the underlying error, if any
}

func (e *Error) Error() string {
	s := fmt.Sprintf("serde: %s: cannot %s: %s", e.Serde, e.Op, e.Reason)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }
