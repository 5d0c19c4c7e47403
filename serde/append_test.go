package serde_test

import (
	"bytes"
	"math"
	"testing"

	"github.com/rifflestream/riffle/serde"
)

// appendsLikeSerialize checks that s is an Appender whose AppendSerialize appends exactly what
// Serialize returns, after a prefix it leaves alone, for every value in vs.
func appendsLikeSerialize[T any](t *testing.T, name string, s serde.Serde[T], vs ...T) {
	t.Helper()
	app, ok := s.(serde.Appender[T])
	if !ok {
		t.Fatalf("%s is not a serde.Appender", name)
	}
	for _, v := range vs {
		want, err := s.Serialize("t", v)
		if err != nil {
			t.Fatalf("%s: Serialize(%v): %v", name, v, err)
		}
		prefix := []byte("prefix")
		got, err := app.AppendSerialize(append([]byte(nil), prefix...), "t", v)
		if err != nil {
			t.Fatalf("%s: AppendSerialize(%v): %v", name, v, err)
		}
		if !bytes.Equal(got[:len(prefix)], prefix) || !bytes.Equal(got[len(prefix):], want) {
			t.Fatalf("%s: AppendSerialize(prefix, %v) = %x, want %x then %x", name, v, got, prefix, want)
		}
		back, err := s.Deserialize("t", got[len(prefix):])
		if err != nil {
			t.Fatalf("%s: Deserialize of the appended encoding of %v: %v", name, v, err)
		}
		again, _ := s.Serialize("t", back)
		if !bytes.Equal(again, want) {
			t.Fatalf("%s: %v does not round-trip through AppendSerialize", name, v)
		}
	}
}

func TestAppenders(t *testing.T) {
	appendsLikeSerialize(t, "String", serde.String(), "", "a", "héllo", string([]byte{0xff, 0}))
	appendsLikeSerialize(t, "Int16", serde.Int16(), 0, -1, math.MaxInt16, math.MinInt16)
	appendsLikeSerialize(t, "Int32", serde.Int32(), 0, -1, math.MaxInt32, math.MinInt32)
	appendsLikeSerialize(t, "Int64", serde.Int64(), 0, -1, math.MaxInt64, math.MinInt64)
	appendsLikeSerialize(t, "Float32", serde.Float32(), 0, float32(math.Copysign(0, -1)), 1.5, float32(math.Inf(-1)))
	appendsLikeSerialize(t, "Float64", serde.Float64(), 0, math.Copysign(0, -1), math.Pi, math.NaN(), math.Inf(1))
	appendsLikeSerialize(t, "Bool", serde.Bool(), true, false)
	appendsLikeSerialize(t, "UUID", serde.UUID[[16]byte](), [16]byte{}, [16]byte{0xde, 0xad, 0xbe, 0xef, 15: 0x01})

	pair := serde.NewAppending(
		func(dst []byte, topic string, v [2]byte) ([]byte, error) {
			return append(append(dst, topic...), v[0], v[1]), nil
		},
		func(topic string, data []byte) ([2]byte, error) {
			return [2]byte{data[len(topic)], data[len(topic)+1]}, nil
		}, 4)
	appendsLikeSerialize(t, "NewAppending", pair, [2]byte{1, 2}, [2]byte{})
	if got, _ := pair.Serialize("t", [2]byte{3, 4}); string(got) != "t\x03\x04" {
		t.Fatalf("NewAppending Serialize = %q", got)
	}
	// Bytes returns the value itself, and Nullable has null to say: neither appends.
	if _, ok := serde.Bytes().(serde.Appender[[]byte]); ok {
		t.Fatal("Bytes is an Appender: it would copy what it hands over for free")
	}
	if _, ok := serde.Nullable(serde.Int64()).(serde.Appender[*int64]); ok {
		t.Fatal("Nullable is an Appender, which cannot express null")
	}
}
