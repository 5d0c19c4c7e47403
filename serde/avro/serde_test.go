package avro_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/rifflestream/riffle/serde"
	"github.com/rifflestream/riffle/serde/avro"
)

// allTypes has one field of every kind whose encoding the test spells out byte by byte.
const allTypes = `{"type":"record","name":"All","namespace":"test","fields":[
	{"name":"b","type":"boolean"},
	{"name":"i","type":"int"},
	{"name":"l","type":"long"},
	{"name":"f","type":"float"},
	{"name":"d","type":"double"},
	{"name":"by","type":"bytes"},
	{"name":"s","type":"string"},
	{"name":"e","type":{"type":"enum","name":"Color","symbols":["RED","GREEN"]}},
	{"name":"fx","type":{"type":"fixed","name":"Two","size":2}},
	{"name":"a","type":{"type":"array","items":"int"}},
	{"name":"m","type":{"type":"map","values":"int"}},
	{"name":"u","type":["null","string"]},
	{"name":"n","type":["null","string"]},
	{"name":"r","type":{"type":"record","name":"Inner","fields":[{"name":"x","type":"int"}]}}
]}`

func allValue() map[string]any {
	return map[string]any{
		"b":  true,
		"i":  int32(995),
		"l":  int64(-1),
		"f":  float32(1.5),
		"d":  float64(2),
		"by": []byte{0xde, 0xad},
		"s":  "o-1",
		"e":  "GREEN",
		"fx": []byte("hi"),
		"a":  []any{int32(1), int32(2)},
		"m":  map[string]any{"b": int32(1), "a": int32(2)},
		"u":  map[string]any{"string": "x"},
		"n":  nil,
		"r":  map[string]any{"x": int32(64)},
	}
}

// allBytes is allValue in Avro binary, field by field.
const allBytes = "01" + // b: true
	"c60f" + // i: 995 zig-zag = 1990, varint
	"01" + // l: -1 zig-zag = 1
	"0000c03f" + // f: 1.5, IEEE 754 little-endian
	"0000000000000040" + // d: 2.0
	"04dead" + // by: length 2, bytes
	"066f2d31" + // s: length 3, "o-1"
	"02" + // e: index 1
	"6869" + // fx: "hi"
	"04020400" + // a: block of 2, 1, 2, end
	"0402610402620200" + // m: block of 2 sorted by key, "a"->2, "b"->1; end
	"020278" + // u: branch 1, "x"
	"00" + // n: branch 0, null
	"8001" // r.x: 64 zig-zag = 128

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGenericPlainBytes(t *testing.T) {
	s, err := avro.Generic(allTypes)
	if err != nil {
		t.Fatal(err)
	}
	want := mustHex(t, allBytes)
	got, err := s.Serialize("t", allValue())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Serialize:\n got %x\nwant %x", got, want)
	}
	back, err := s.Deserialize("t", want)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, allValue()) {
		t.Fatalf("Deserialize: got %#v\nwant %#v", back, allValue())
	}
	var _ serde.Serde[map[string]any] = s
}

func TestDeterministicKeys(t *testing.T) {
	const schema = `{"type":"record","name":"K","fields":[
		{"name":"id","type":"string"},
		{"name":"labels","type":{"type":"map","values":{"type":"map","values":"long"}}},
		{"name":"parts","type":{"type":"array","items":{"type":"record","name":"P","fields":[
			{"name":"attrs","type":{"type":"map","values":"string"}}]}}}
	]}`
	type part struct {
		Attrs map[string]string `avro:"attrs"`
	}
	type key struct {
		ID     string                      `avro:"id"`
		Labels map[string]map[string]int64 `avro:"labels"`
		Parts  []part                      `avro:"parts"`
	}
	labels := func() map[string]map[string]int64 {
		m := map[string]map[string]int64{}
		for i := range 20 {
			inner := map[string]int64{}
			for j := range 10 {
				inner[string(rune('a'+j))+strings.Repeat("x", i%3)] = int64(i * j)
			}
			m[string(rune('A'+i))] = inner
		}
		return m
	}
	k := key{ID: "k", Labels: labels(), Parts: []part{{Attrs: map[string]string{"z": "1", "y": "2", "x": "3", "w": "4"}}}}

	st, err := avro.Struct[key](schema, avro.ForKeys())
	if err != nil {
		t.Fatal(err)
	}
	gen, err := avro.Generic(schema, avro.ForKeys())
	if err != nil {
		t.Fatal(err)
	}
	first, err := st.Serialize("t", k)
	if err != nil {
		t.Fatal(err)
	}
	native, err := gen.Deserialize("t", first)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		// A fresh value each round: Go randomizes map iteration per map and per range.
		k.Labels = labels()
		got, err := st.Serialize("t", k)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, first) {
			t.Fatalf("struct round %d: bytes differ:\n%x\n%x", i, got, first)
		}
		g, err := gen.Serialize("t", native)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(g, first) {
			t.Fatalf("generic round %d: bytes differ from the struct's:\n%x\n%x", i, g, first)
		}
	}
	// Sorted means sorted: the map in the first part encodes its keys w, x, y, z in order.
	if i := bytes.Index(first, []byte("\x08\x02w\x024\x02x\x023\x02y\x022\x02z\x021\x00")); i < 0 {
		t.Fatalf("map entries not written in key order: %x", first)
	}
}

func TestSerializeErrors(t *testing.T) {
	s, err := avro.Generic(allTypes)
	if err != nil {
		t.Fatal(err)
	}
	v := allValue()
	v["e"] = "BLUE"
	_, err = s.Serialize("orders", v)
	var ae *avro.Error
	if !errors.As(err, &ae) || ae.Op != "serialize" || ae.Topic != "orders" || !strings.HasPrefix(err.Error(), "avro: ") {
		t.Fatalf("got %v", err)
	}
	if !strings.Contains(err.Error(), `"e"`) {
		t.Fatalf("error does not name the field: %v", err)
	}
}

func TestDeserializeErrors(t *testing.T) {
	s, err := avro.Generic(allTypes)
	if err != nil {
		t.Fatal(err)
	}
	good := mustHex(t, allBytes)
	cases := []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, avro.ErrTruncated},
		{"cut in a fixed", good[:25], avro.ErrTruncated},
		{"cut before the last field", good[:len(good)-2], avro.ErrTruncated},
		{"trailing byte", append(append([]byte{}, good...), 0), avro.ErrMalformed},
		{"boolean 2", append([]byte{2}, good[1:]...), avro.ErrMalformed},
		{"enum index 2", bytes.Replace(good, mustHex(t, "066f2d3102"), mustHex(t, "066f2d3104"), 1), avro.ErrMalformed},
		{"union index 5", bytes.Replace(good, mustHex(t, "02027800"), mustHex(t, "0a027800"), 1), avro.ErrMalformed},
		{"negative length", append([]byte{1, 0xc6, 0x0f, 1, 0, 0, 0xc0, 0x3f, 0, 0, 0, 0, 0, 0, 0, 0x40}, 0x03), avro.ErrMalformed},
		{"huge array count", append(good[:26:26], 0xfe, 0xff, 0xff, 0xff, 0x0f), avro.ErrTruncated},
		{"varint overflow", append([]byte{1}, bytes.Repeat([]byte{0xff}, 11)...), avro.ErrMalformed},
		{"int out of range", append([]byte{1}, 0x80, 0x80, 0x80, 0x80, 0x10), avro.ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Deserialize("t", tc.data)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			var ae *avro.Error
			if !errors.As(err, &ae) || ae.Op != "deserialize" || ae.Topic != "t" || ae.SchemaID != -1 {
				t.Fatalf("got %#v", err)
			}
		})
	}
}

func TestNestingLimits(t *testing.T) {
	const list = `{"type":"record","name":"Node","fields":[{"name":"next","type":["null","Node"]}]}`
	s, err := avro.Generic(list)
	if err != nil {
		t.Fatal(err)
	}
	// 100 levels decode; 20000 levels fail cleanly instead of exhausting goavro's stack.
	deep := func(n int) []byte { return append(bytes.Repeat([]byte{2}, n), 0) }
	if _, err := s.Deserialize("t", deep(100)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Deserialize("t", deep(20000)); !errors.Is(err, avro.ErrMalformed) {
		t.Fatalf("got %v", err)
	}

	// An array of nulls costs no bytes per item: its count is bounded separately.
	nulls, err := avro.Generic(`{"type":"record","name":"N","fields":[{"name":"a","type":{"type":"array","items":"null"}}]}`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nulls.Deserialize("t", []byte{0x08, 0x00}); err != nil {
		t.Fatal(err)
	}
	if _, err := nulls.Deserialize("t", []byte{0xfe, 0xff, 0xff, 0xff, 0x0f, 0x00}); !errors.Is(err, avro.ErrMalformed) {
		t.Fatalf("got %v", err)
	}
}

func TestConstructorErrors(t *testing.T) {
	cases := []struct {
		name   string
		schema string
		opts   []avro.Opt
		want   string
	}{
		{"not JSON", `{`, nil, "not JSON"},
		{"not a record", `"string"`, nil, "need a record"},
		{"unknown type", `{"type":"record","name":"R","fields":[{"name":"a","type":"Nope"}]}`, nil, "invalid schema"},
		{"registry option without registry", allTypes, []avro.Opt{avro.AutoRegisterSchemas(false)}, "AutoRegisterSchemas need a SchemaRegistry"},
		{"latest without registry", allTypes, []avro.Opt{avro.UseLatestVersion(), avro.SubjectName(avro.RecordNameStrategy)}, "UseLatestVersion, SubjectName need a SchemaRegistry"},
		{"nil option", allTypes, []avro.Opt{nil}, "nil Opt"},
		{"bad writer schema", allTypes, []avro.Opt{avro.WriterSchema(`{"type":"record"}`)}, "invalid writer schema"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := avro.Generic(tc.schema, tc.opts...)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "avro: ") {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestMapped(t *testing.T) {
	type point struct{ X, Y int32 }
	const schema = `{"type":"record","name":"Point","fields":[{"name":"x","type":"int"},{"name":"y","type":"int"}]}`
	s, err := avro.Mapped(schema,
		func(p point) (map[string]any, error) { return map[string]any{"x": p.X, "y": p.Y}, nil },
		func(m map[string]any) (point, error) { return point{X: m["x"].(int32), Y: m["y"].(int32)}, nil })
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Serialize("t", point{X: 1, Y: -1})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, []byte{2, 1}) {
		t.Fatalf("got %x", b)
	}
	p, err := s.Deserialize("t", b)
	if err != nil || p != (point{1, -1}) {
		t.Fatalf("got %v, %v", p, err)
	}

	boom := errors.New("boom")
	failing, err := avro.Mapped(schema,
		func(point) (map[string]any, error) { return nil, boom },
		func(map[string]any) (point, error) { return point{}, boom })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := failing.Serialize("t", point{}); !errors.Is(err, boom) {
		t.Fatalf("got %v", err)
	}
	if _, err := failing.Deserialize("t", b); !errors.Is(err, boom) {
		t.Fatalf("got %v", err)
	}
	if _, err := avro.Mapped[point](schema, nil, nil); err == nil {
		t.Fatal("nil mapping functions accepted")
	}
}

func TestAmbiguousReference(t *testing.T) {
	// Inside namespace ns, "Foo" could mean Foo or ns.Foo: goavro and the spec disagree.
	_, err := avro.Generic(`{"type":"record","name":"R","fields":[
		{"name":"a","type":{"type":"fixed","name":"Foo","size":1}},
		{"name":"b","type":{"type":"record","name":"In","namespace":"ns","fields":[
			{"name":"x","type":{"type":"fixed","name":"Foo","size":9}},
			{"name":"y","type":"Foo"}]}}]}`)
	if err == nil || !strings.Contains(err.Error(), "ambiguous") {
		t.Fatalf("got %v", err)
	}
}
