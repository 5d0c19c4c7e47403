package serde_test

import (
	"bytes"
	"errors"
	"math"
	"testing"

	"github.com/rifflestream/riffle/serde"
)

// Every deserializer must give a value or a *serde.Error for any bytes, never panic. The seeds
// are the Java vectors of the type (corrupt ones included); `go test -fuzz=FuzzInt64 ./serde/`
// explores from there.

// fuzzFixed checks a fixed-width serde: what it reads, it writes back as the same bytes, or as
// canonical(data) when Java's serializer normalizes (Float64's NaN).
func fuzzFixed[T any](f *testing.F, name string, s serde.Serde[T], canonical func([]byte) []byte) {
	for _, seed := range javaSeeds(f, name) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := s.Deserialize("fuzz", data)
		if err != nil {
			wantSerdeError(t, err, name, data)
			return
		}
		b, err := s.Serialize("fuzz", v)
		if err != nil {
			t.Fatalf("Serialize(Deserialize(%x)): %v", data, err)
		}
		want := data
		if canonical != nil {
			want = canonical(data)
		}
		if !bytes.Equal(b, want) {
			t.Fatalf("Serialize(Deserialize(%x)) = %x, want %x", data, b, want)
		}
	})
}

func wantSerdeError(t *testing.T, err error, name string, data []byte) {
	t.Helper()
	var se *serde.Error
	if !errors.As(err, &se) || se.Serde != name || se.Op != "deserialize" {
		t.Fatalf("Deserialize(%x) error = %v, want a *serde.Error of %s", data, err, name)
	}
}

func FuzzInt16(f *testing.F)   { fuzzFixed(f, "int16", serde.Int16(), nil) }
func FuzzInt32(f *testing.F)   { fuzzFixed(f, "int32", serde.Int32(), nil) }
func FuzzInt64(f *testing.F)   { fuzzFixed(f, "int64", serde.Int64(), nil) }
func FuzzFloat32(f *testing.F) { fuzzFixed(f, "float32", serde.Float32(), nil) }
func FuzzBool(f *testing.F)    { fuzzFixed(f, "bool", serde.Bool(), nil) }

func FuzzFloat64(f *testing.F) {
	fuzzFixed(f, "float64", serde.Float64(), func(data []byte) []byte {
		if v, _ := serde.Float64().Deserialize("fuzz", data); math.IsNaN(v) {
			return []byte{0x7f, 0xf8, 0, 0, 0, 0, 0, 0} // Java's doubleToLongBits NaN
		}
		return data
	})
}

func FuzzUUID(f *testing.F) {
	fuzzFixed(f, "uuid", serde.UUID[[16]byte](), bytes.ToLower)
}

// FuzzString and FuzzBytes: every input is a value, kept as it is.
func FuzzString(f *testing.F) {
	for _, seed := range javaSeeds(f, "string") {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := serde.String().Deserialize("fuzz", data)
		if err != nil {
			t.Fatalf("Deserialize(%x): %v", data, err)
		}
		if b, err := serde.String().Serialize("fuzz", v); err != nil || !bytes.Equal(b, data) || b == nil {
			t.Fatalf("Serialize(Deserialize(%x)) = %#v, %v", data, b, err)
		}
	})
}

func FuzzBytes(f *testing.F) {
	for _, seed := range javaSeeds(f, "bytes") {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := serde.Bytes().Deserialize("fuzz", data)
		if err != nil {
			t.Fatalf("Deserialize(%x): %v", data, err)
		}
		if b, err := serde.Bytes().Serialize("fuzz", v); err != nil || !bytes.Equal(b, data) || b == nil {
			t.Fatalf("Serialize(Deserialize(%x)) = %#v, %v", data, b, err)
		}
	})
}

// FuzzNullable: non-nil bytes never read as nil, and what is read is written back.
func FuzzNullable(f *testing.F) {
	for _, seed := range javaSeeds(f, "int64") {
		f.Add(seed)
	}
	s := serde.Nullable(serde.Int64())
	f.Fuzz(func(t *testing.T, data []byte) {
		if data == nil {
			data = []byte{}
		}
		v, err := s.Deserialize("fuzz", data)
		if err != nil {
			wantSerdeError(t, err, "int64", data)
			return
		}
		if v == nil {
			t.Fatalf("Deserialize(%x) = nil, want a value", data)
		}
		if b, err := s.Serialize("fuzz", v); err != nil || !bytes.Equal(b, data) {
			t.Fatalf("Serialize(Deserialize(%x)) = %x, %v", data, b, err)
		}
	})
}

// fuzzRoundTrip checks a serde whose encoding is not unique: what it reads, it writes, and reads
// back as a value that it writes as the same bytes. (Comparing values would fail on what the
// encoding does not keep, like an empty map that JSON's omitempty drops.)
func fuzzRoundTrip[T any](f *testing.F, name string, s serde.Serde[T], seeds ...[]byte) {
	for _, seed := range seeds {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := s.Deserialize("fuzz", data)
		if err != nil {
			wantSerdeError(t, err, name, data)
			return
		}
		b, err := s.Serialize("fuzz", v)
		if err != nil {
			t.Fatalf("Serialize(Deserialize(%x)): %v", data, err)
		}
		again, err := s.Deserialize("fuzz", b)
		if err != nil {
			t.Fatalf("Deserialize(%x) = %v, written as %x, which does not read: %v", data, v, b, err)
		}
		if b2, err := s.Serialize("fuzz", again); err != nil || !bytes.Equal(b2, b) {
			t.Fatalf("Deserialize(%x) = %v, written as %x, read back as %v, written as %x, %v", data, v, b, again, b2, err)
		}
	})
}

func FuzzListInt32(f *testing.F) {
	fuzzRoundTrip(f, "list[*int32]", serde.List(serde.Nullable(serde.Int32())), javaSeeds(f, "list[int32]")...)
}

func FuzzListString(f *testing.F) {
	fuzzRoundTrip(f, "list[*string]", serde.List(serde.Nullable(serde.String())), javaSeeds(f, "list[string]")...)
}

func FuzzJSON(f *testing.F) {
	seeds := [][]byte{
		[]byte(`{"id":1,"kind":"a","tags":["x"],"attrs":{"k":"v"}}`), []byte(`{}`), []byte(`null`),
		[]byte(`{"id":"1"}`), []byte(`{"id":1e400}`), []byte(`{"kind":"\ud800"}`), []byte("{\"kind\":\"\xff\"}"), []byte(`[`),
	}
	fuzzRoundTrip(f, "json[serde_test.event]", serde.JSON[event](), seeds...)
}

func FuzzJSONAny(f *testing.F) {
	seeds := [][]byte{[]byte(`{"a":[1,2.5,"x",null,true,{}]}`), []byte(`"s"`), []byte(`-0`), []byte(`1e308`), []byte(`{"a":1,"a":2}`)}
	fuzzRoundTrip(f, "json[interface {}]", serde.JSON[any](), seeds...)
}
