package serde_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"testing"

	"github.com/rifflestream/riffle/serde"
)

// roundTrip serializes v, checks the bytes against want (hex), and reads them back.
func roundTrip[T comparable](t *testing.T, s serde.Serde[T], v T, want string) {
	t.Helper()
	b, err := s.Serialize("topic", v)
	if err != nil {
		t.Fatalf("Serialize(%v): %v", v, err)
	}
	if b == nil {
		t.Fatalf("Serialize(%v) = nil: Kafka null, want a value", v)
	}
	if got := hex.EncodeToString(b); got != want {
		t.Errorf("Serialize(%v) = %s, want %s", v, got, want)
	}
	back, err := s.Deserialize("topic", b)
	if err != nil {
		t.Fatalf("Deserialize(%x): %v", b, err)
	}
	if back != v && !(back != back && v != v) { // NaN != NaN
		t.Errorf("Deserialize(Serialize(%v)) = %v", v, back)
	}
}

func TestString(t *testing.T) {
	for _, tc := range []struct{ v, hex string }{
		{"", ""},
		{"a", "61"},
		{"café", "636166c3a9"},
		{"日本", "e697a5e69cac"},
		{"\x00\xff", "00ff"}, // not UTF-8: kept as it is
	} {
		roundTrip(t, serde.String(), tc.v, tc.hex)
	}
	if b, _ := serde.String().Serialize("t", ""); b == nil || len(b) != 0 {
		t.Errorf(`Serialize("") = %#v, want an empty, non-nil slice`, b)
	}
	if s, _ := serde.String().Deserialize("t", []byte{0xc3}); s != "\xc3" {
		t.Errorf("Deserialize(c3) = %q, want the byte as it is", s)
	}
}

func TestBytes(t *testing.T) {
	s := serde.Bytes()
	in := []byte{1, 2, 3}
	out, err := s.Serialize("t", in)
	if err != nil || !bytes.Equal(out, in) {
		t.Fatalf("Serialize = %x, %v", out, err)
	}
	if &out[0] != &in[0] {
		t.Error("Serialize returned a copy, want the caller's slice (Kafka's ByteArraySerializer)")
	}
	for _, v := range [][]byte{nil, {}} {
		if b, err := s.Serialize("t", v); err != nil || b == nil || len(b) != 0 {
			t.Errorf("Serialize(%#v) = %#v, %v; want an empty, non-nil slice", v, b, err)
		}
	}
	data := []byte{4, 5}
	got, err := s.Deserialize("t", data)
	if err != nil || !bytes.Equal(got, data) || &got[0] != &data[0] {
		t.Errorf("Deserialize = %x, %v; want data itself, not a copy", got, err)
	}
}

func TestIntegers(t *testing.T) {
	for _, tc := range []struct {
		v   int16
		hex string
	}{{0, "0000"}, {1, "0001"}, {-1, "ffff"}, {256, "0100"}, {math.MaxInt16, "7fff"}, {math.MinInt16, "8000"}} {
		roundTrip(t, serde.Int16(), tc.v, tc.hex)
	}
	for _, tc := range []struct {
		v   int32
		hex string
	}{{0, "00000000"}, {-1, "ffffffff"}, {0x12345678, "12345678"}, {math.MaxInt32, "7fffffff"}, {math.MinInt32, "80000000"}} {
		roundTrip(t, serde.Int32(), tc.v, tc.hex)
	}
	for _, tc := range []struct {
		v   int64
		hex string
	}{{0, "0000000000000000"}, {-1, "ffffffffffffffff"}, {42, "000000000000002a"}, {math.MaxInt64, "7fffffffffffffff"}, {math.MinInt64, "8000000000000000"}} {
		roundTrip(t, serde.Int64(), tc.v, tc.hex)
	}
}

func TestFloats(t *testing.T) {
	for _, tc := range []struct {
		v   float32
		hex string
	}{
		{0, "00000000"}, {float32(math.Copysign(0, -1)), "80000000"}, {1, "3f800000"}, {-2.5, "c0200000"},
		{math.SmallestNonzeroFloat32, "00000001"}, {math.MaxFloat32, "7f7fffff"},
		{float32(math.Inf(1)), "7f800000"}, {float32(math.Inf(-1)), "ff800000"},
		{math.Float32frombits(0x7fc00001), "7fc00001"}, // NaN keeps its payload, as floatToRawIntBits
		{math.Float32frombits(0xffc00000), "ffc00000"}, // and its sign
	} {
		roundTrip(t, serde.Float32(), tc.v, tc.hex)
	}
	for _, tc := range []struct {
		v   float64
		hex string
	}{
		{0, "0000000000000000"}, {math.Copysign(0, -1), "8000000000000000"}, {1, "3ff0000000000000"},
		{math.SmallestNonzeroFloat64, "0000000000000001"}, {math.MaxFloat64, "7fefffffffffffff"},
		{math.Inf(1), "7ff0000000000000"}, {math.Inf(-1), "fff0000000000000"},
		{math.NaN(), "7ff8000000000000"}, // Go's NaN is 7ff8000000000001; doubleToLongBits writes one NaN
		{math.Float64frombits(0xfff0000000000001), "7ff8000000000000"},
	} {
		roundTrip(t, serde.Float64(), tc.v, tc.hex)
	}
	// Deserialize keeps the bits it reads, as Java's longBitsToDouble.
	if v, _ := serde.Float64().Deserialize("t", []byte{0x7f, 0xf0, 0, 0, 0, 0, 0, 1}); math.Float64bits(v) != 0x7ff0000000000001 {
		t.Errorf("Deserialize(7ff0000000000001) has bits %x", math.Float64bits(v))
	}
	// -0.0 stays -0.0 (== cannot tell it from 0.0).
	if v, _ := serde.Float64().Deserialize("t", []byte{0x80, 0, 0, 0, 0, 0, 0, 0}); !math.Signbit(v) {
		t.Error("Deserialize(8000000000000000) lost the sign of -0.0")
	}
}

func TestBool(t *testing.T) {
	roundTrip(t, serde.Bool(), true, "01")
	roundTrip(t, serde.Bool(), false, "00")
}

// TestWrongBytes checks that bytes a serde cannot decode give a *serde.Error naming the serde.
func TestWrongBytes(t *testing.T) {
	for _, tc := range []struct {
		name string
		de   func([]byte) error
		data []byte
		want string
	}{
		{"int16", de(serde.Int16()), []byte{1}, "serde: int16: cannot deserialize: want 2 bytes, got 1"},
		{"int16", de(serde.Int16()), []byte{}, "serde: int16: cannot deserialize: want 2 bytes, got 0"},
		{"int32", de(serde.Int32()), []byte{1, 2, 3, 4, 5}, "serde: int32: cannot deserialize: want 4 bytes, got 5"},
		{"int64", de(serde.Int64()), []byte{1, 2, 3}, "serde: int64: cannot deserialize: want 8 bytes, got 3"},
		{"int64", de(serde.Int64()), nil, "serde: int64: cannot deserialize: want 8 bytes, got 0"},
		{"float32", de(serde.Float32()), []byte{1, 2, 3}, "serde: float32: cannot deserialize: want 4 bytes, got 3"},
		{"float64", de(serde.Float64()), make([]byte, 9), "serde: float64: cannot deserialize: want 8 bytes, got 9"},
		{"bool", de(serde.Bool()), []byte{2}, "serde: bool: cannot deserialize: want byte 0x00 or 0x01, got 0x02"},
		{"bool", de(serde.Bool()), []byte{0xff}, "serde: bool: cannot deserialize: want byte 0x00 or 0x01, got 0xff"},
		{"bool", de(serde.Bool()), []byte{0, 1}, "serde: bool: cannot deserialize: want 1 bytes, got 2"},
		{"uuid", de(serde.UUID[[16]byte]()), []byte("1-2-3-4-5"), `serde: uuid: cannot deserialize: want 36 characters, hex digits in groups 8-4-4-4-12, got "1-2-3-4-5"`},
	} {
		err := tc.de(tc.data)
		var se *serde.Error
		if !errors.As(err, &se) {
			t.Errorf("%s: Deserialize(%x) error = %v, want a *serde.Error", tc.name, tc.data, err)
			continue
		}
		if se.Serde != tc.name || se.Op != "deserialize" || err.Error() != tc.want {
			t.Errorf("%s: Deserialize(%x) error = %q (%+v), want %q", tc.name, tc.data, err, *se, tc.want)
		}
	}
}

func de[T any](s serde.Serde[T]) func([]byte) error {
	return func(data []byte) error {
		_, err := s.Deserialize("topic", data)
		return err
	}
}
