package avro_test

import (
	"bytes"
	"encoding/hex"
	"math/big"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/rifflestream/riffle/serde/avro"
)

// The fuzz targets feed arbitrary bytes to every deserializer: plain and wire format, generic,
// struct and mapped, with and without schema resolution. Bad bytes must give an error, never a
// panic or a runaway allocation; bytes that decode must re-encode, and that encoding must be
// stable (decode then encode again gives the same bytes).

// fuzzSchema reaches every kind of type, recursion, and a union of several branches.
const fuzzSchema = `{"type":"record","name":"F","namespace":"fz","fields":[
	{"name":"b","type":"boolean"},
	{"name":"i","type":"int"},
	{"name":"l","type":"long"},
	{"name":"f","type":"float"},
	{"name":"d","type":"double"},
	{"name":"s","type":"string"},
	{"name":"by","type":"bytes"},
	{"name":"e","type":{"type":"enum","name":"E","symbols":["A","B","C"]}},
	{"name":"fx","type":{"type":"fixed","name":"X","size":3}},
	{"name":"a","type":{"type":"array","items":{"type":"map","values":"long"}}},
	{"name":"n","type":{"type":"array","items":"null"}},
	{"name":"u","type":["null","int","string",{"type":"array","items":"F"}]},
	{"name":"next","type":["null","F"]},
	{"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}},
	{"name":"dec","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}}
]}`

// fuzzOld is an older version of fuzzSchema: resolution from it exercises promotions, skipped
// and defaulted fields, enum and union mapping.
const fuzzOld = `{"type":"record","name":"F","namespace":"fz","fields":[
	{"name":"gone","type":{"type":"map","values":["null","string"]}},
	{"name":"b","type":"boolean"},
	{"name":"i","type":"int"},
	{"name":"l","type":"int"},
	{"name":"f","type":"int"},
	{"name":"d","type":"float"},
	{"name":"s","type":"bytes"},
	{"name":"by","type":"string"},
	{"name":"e","type":{"type":"enum","name":"E","symbols":["C","A"]}},
	{"name":"fx","type":{"type":"fixed","name":"X","size":3}},
	{"name":"a","type":{"type":"array","items":{"type":"map","values":"int"}}},
	{"name":"n","type":{"type":"array","items":"null"}},
	{"name":"u","type":["string","int"]},
	{"name":"next","type":["null","F"]},
	{"name":"ts","type":"long"},
	{"name":"dec","type":"bytes"}
]}`

type fuzzStruct struct {
	B   bool               `avro:"b"`
	I   int32              `avro:"i"`
	L   int64              `avro:"l"`
	F   float32            `avro:"f"`
	D   float64            `avro:"d"`
	S   string             `avro:"s"`
	By  []byte             `avro:"by"`
	E   string             `avro:"e"`
	Fx  [3]byte            `avro:"fx"`
	A   []map[string]int64 `avro:"a"`
	N   []any              `avro:"n"`
	U   any                `avro:"u"`
	Nxt *fuzzStruct        `avro:"next"`
	Ts  int64              `avro:"ts"`
	Dec any                `avro:"dec"`
}

func fuzzSeeds(f *testing.F) {
	f.Helper()
	for _, s := range []string{
		"",
		"00",
		"01c60f01000000000000000000000000000006616263020061626302000000000000",
		"0002020202020202020202020202020202020202020202020202020202",
		"fffffffff0f0f0f0f0f0f0f0",
	} {
		b, err := hex.DecodeString(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	g, err := avro.Generic(fuzzSchema)
	if err != nil {
		f.Fatal(err)
	}
	good, err := g.Serialize("t", fuzzValue())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
}

func fuzzValue() map[string]any {
	return map[string]any{
		"b": true, "i": int32(-3), "l": int64(1 << 40), "f": float32(1.25), "d": 2.5, "s": "str",
		"by": []byte{0, 1}, "e": "B", "fx": []byte("xyz"),
		"a":    []any{map[string]any{"k": int64(1), "j": int64(2)}, map[string]any{}},
		"n":    []any{nil, nil},
		"u":    map[string]any{"array": []any{}},
		"next": nil, "ts": int64(1700000000000), "dec": big.NewRat(314, 100),
	}
}

// stable checks that a decoded value re-encodes, and that the encoding is a fixed point.
func stable[T any](t *testing.T, s *avro.Serde[T], v T) {
	t.Helper()
	b1, err := s.Serialize("t", v)
	if err != nil {
		t.Fatalf("decoded value does not re-encode: %v", err)
	}
	v2, err := s.Deserialize("t", b1)
	if err != nil {
		t.Fatalf("re-encoded value does not decode: %v", err)
	}
	b2, err := s.Serialize("t", v2)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b1, b2) {
		t.Fatalf("encoding is not stable:\n%x\n%x", b1, b2)
	}
}

func FuzzGeneric(f *testing.F) {
	fuzzSeeds(f)
	s, err := avro.Generic(fuzzSchema)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := s.Deserialize("t", data)
		if err != nil {
			return
		}
		stable(t, s, v)
	})
}

func FuzzStruct(f *testing.F) {
	fuzzSeeds(f)
	s, err := avro.Struct[fuzzStruct](fuzzSchema)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := s.Deserialize("t", data)
		if err != nil {
			return
		}
		stable(t, s, v)
	})
}

func FuzzMapped(f *testing.F) {
	fuzzSeeds(f)
	type wrapped struct{ m map[string]any }
	s, err := avro.Mapped(fuzzSchema,
		func(w wrapped) (map[string]any, error) { return w.m, nil },
		func(m map[string]any) (wrapped, error) { return wrapped{m}, nil })
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := s.Deserialize("t", data)
		if err != nil {
			return
		}
		stable(t, s, v)
	})
}

// FuzzResolve reads arbitrary bytes as written with fuzzOld into fuzzSchema.
func FuzzResolve(f *testing.F) {
	fuzzSeeds(f)
	old, err := avro.Generic(fuzzOld)
	if err != nil {
		f.Fatal(err)
	}
	b, err := old.Serialize("t", map[string]any{
		"gone": map[string]any{"x": nil, "y": map[string]any{"string": "s"}}, "b": false, "i": int32(1),
		"l": int32(2), "f": int32(3), "d": float32(4), "s": []byte("s"), "by": "by", "e": "A",
		"fx": []byte("abc"), "a": []any{map[string]any{"q": int32(5)}}, "n": []any{},
		"u": map[string]any{"int": int32(6)}, "next": nil, "ts": int64(7), "dec": []byte{1}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	s, err := avro.Generic(fuzzSchema, avro.WriterSchema(fuzzOld))
	if err != nil {
		f.Fatal(err)
	}
	same, err := avro.Generic(fuzzSchema)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := s.Deserialize("t", data)
		if err != nil {
			return
		}
		stable(t, same, v)
	})
}

// FuzzRegistry reads arbitrary wire-format records: the registry holds both schema versions,
// so the fuzzer reaches resolution through the header's id as well as the id lookups' errors.
func FuzzRegistry(f *testing.F) {
	reg, cl := newRegistry(f)
	oldID, _, err := reg.RegisterSchema("t-value", sr.Schema{Schema: fuzzOld})
	if err != nil {
		f.Fatal(err)
	}
	g, err := avro.Generic(fuzzSchema, avro.SchemaRegistry(cl))
	if err != nil {
		f.Fatal(err)
	}
	st, err := avro.Struct[fuzzStruct](fuzzSchema, avro.SchemaRegistry(cl))
	if err != nil {
		f.Fatal(err)
	}
	good, err := g.Serialize("t", fuzzValue())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(append(header(oldID), good[5:]...))
	f.Add(header(99))
	f.Add([]byte{1, 0, 0, 0, 1})
	f.Add([]byte{0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if v, err := g.Deserialize("t", data); err == nil {
			if _, err := g.Serialize("t", v); err != nil {
				t.Fatalf("decoded value does not re-encode: %v", err)
			}
		}
		if v, err := st.Deserialize("t", data); err == nil {
			if _, err := st.Serialize("t", v); err != nil {
				t.Fatalf("decoded value does not re-encode: %v", err)
			}
		}
	})
}
