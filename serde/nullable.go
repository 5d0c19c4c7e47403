package serde

// Nullable returns a Serde that gives Kafka null a value of its own: a nil *T is written as
// null (nil bytes, a tombstone when it is a record value) and null is read as a nil *T. Other
// values go through s, including empty bytes, which are a value, not null: with
// Nullable(String()), "" and nil are different records.
//
// This is what Java's serdes do with a null reference: every Kafka serializer returns null for
// null, and every deserializer returns null for null.
//
// The Serde returned implements NullAware, so Riffle's runtime hands it null instead of treating
// null as "no value". Its Deserialize returns a new *T that the caller owns.
func Nullable[T any](s Serde[T]) Serde[*T] { return nullableSerde[T]{inner: s} }

// NullAware is implemented by a Serde that maps Kafka null to a value of its own, as Nullable
// does. Riffle's runtime passes nil bytes to a Serde whose HandlesNull reports true, and writes
// Kafka null when its Serialize returns nil, instead of treating null as "no value".
//
// A Serde that wraps another (to count, log or validate) should implement NullAware by asking the
// Serde it wraps.
type NullAware interface {
	HandlesNull() bool
}

type nullableSerde[T any] struct {
	inner Serde[T]
}

func (n nullableSerde[T]) Serialize(topic string, v *T) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	return n.inner.Serialize(topic, *v)
}

func (n nullableSerde[T]) Deserialize(topic string, data []byte) (*T, error) {
	if data == nil {
		return nil, nil
	}
	v, err := n.inner.Deserialize(topic, data)
	if err != nil {
		return nil, err
	}
	return &v, nil
}

func (nullableSerde[T]) HandlesNull() bool { return true }

// fixedSize passes the size of s on, so that List(Nullable(Int64())) writes Kafka's constant-size
// layout, null entries included, as Java's ListSerde of LongSerde does.
func (n nullableSerde[T]) fixedSize() int { return fixedSizeOf(n.inner) }

// handlesNull reports whether s gives Kafka null a value of its own.
func handlesNull(s any) bool {
	na, ok := s.(NullAware)
	return ok && na.HandlesNull()
}
