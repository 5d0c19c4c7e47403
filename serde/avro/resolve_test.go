package avro_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/rifflestream/riffle/serde/avro"
)

// record wraps field definitions in a record schema named R.
func record(fields ...string) string {
	return `{"type":"record","name":"R","namespace":"test","fields":[` + strings.Join(fields, ",") + `]}`
}

// TestResolution writes a value with one schema and reads it with another, per the spec's
// schema resolution rules.
func TestResolution(t *testing.T) {
	cases := []struct {
		name           string
		writer, reader string
		in             map[string]any
		want           map[string]any
	}{
		{
			name:   "field added with default",
			writer: record(`{"name":"a","type":"int"}`),
			reader: record(`{"name":"a","type":"int"}`, `{"name":"b","type":"string","default":"none"}`,
				`{"name":"c","type":["null","long"],"default":null}`,
				`{"name":"d","type":{"type":"record","name":"D","fields":[{"name":"x","type":"double"},{"name":"y","type":{"type":"array","items":"int"}}]},"default":{"x":1.5,"y":[1,2]}}`,
				`{"name":"e","type":{"type":"map","values":"boolean"},"default":{"t":true}}`,
				`{"name":"f","type":{"type":"fixed","name":"F","size":2},"default":"\u0001a"}`,
				`{"name":"g","type":{"type":"enum","name":"G","symbols":["X","Y"]},"default":"Y"}`,
				`{"name":"h","type":"bytes","default":"\u0000a"}`),
			in: map[string]any{"a": int32(7)},
			want: map[string]any{"a": int32(7), "b": "none", "c": nil,
				"d": map[string]any{"x": 1.5, "y": []any{int32(1), int32(2)}},
				"e": map[string]any{"t": true}, "f": []byte{1, 'a'}, "g": "Y", "h": []byte{0, 'a'}},
		},
		{
			name:   "field removed",
			writer: record(`{"name":"a","type":"int"}`, `{"name":"gone","type":{"type":"map","values":{"type":"array","items":"string"}}}`, `{"name":"z","type":"string"}`),
			reader: record(`{"name":"a","type":"int"}`, `{"name":"z","type":"string"}`),
			in:     map[string]any{"a": int32(1), "gone": map[string]any{"k": []any{"v", "w"}}, "z": "zz"},
			want:   map[string]any{"a": int32(1), "z": "zz"},
		},
		{
			name:   "fields reordered and renamed through an alias",
			writer: record(`{"name":"a","type":"int"}`, `{"name":"old","type":"string"}`),
			reader: record(`{"name":"new","type":"string","aliases":["old"]}`, `{"name":"a","type":"int"}`),
			in:     map[string]any{"a": int32(1), "old": "x"},
			want:   map[string]any{"a": int32(1), "new": "x"},
		},
		{
			name: "numeric promotions",
			writer: record(`{"name":"il","type":"int"}`, `{"name":"if","type":"int"}`, `{"name":"id","type":"int"}`,
				`{"name":"lf","type":"long"}`, `{"name":"ld","type":"long"}`, `{"name":"fd","type":"float"}`),
			reader: record(`{"name":"il","type":"long"}`, `{"name":"if","type":"float"}`, `{"name":"id","type":"double"}`,
				`{"name":"lf","type":"float"}`, `{"name":"ld","type":"double"}`, `{"name":"fd","type":"double"}`),
			in: map[string]any{"il": int32(-5), "if": int32(3), "id": int32(1 << 30), "lf": int64(1 << 40),
				"ld": int64(-7), "fd": float32(0.25)},
			want: map[string]any{"il": int64(-5), "if": float32(3), "id": float64(1 << 30), "lf": float32(1 << 40),
				"ld": float64(-7), "fd": float64(0.25)},
		},
		{
			name:   "string and bytes",
			writer: record(`{"name":"s","type":"string"}`, `{"name":"b","type":"bytes"}`),
			reader: record(`{"name":"s","type":"bytes"}`, `{"name":"b","type":"string"}`),
			in:     map[string]any{"s": "text", "b": []byte("raw")},
			want:   map[string]any{"s": []byte("text"), "b": "raw"},
		},
		{
			name:   "enum symbols reordered, added, and unknown ones to the default",
			writer: record(`{"name":"e","type":{"type":"enum","name":"E","symbols":["A","B","C"]}}`, `{"name":"f","type":"E"}`),
			reader: record(`{"name":"e","type":{"type":"enum","name":"E","symbols":["Z","B","A","U"],"default":"U"}}`, `{"name":"f","type":"E"}`),
			in:     map[string]any{"e": "A", "f": "C"},
			want:   map[string]any{"e": "A", "f": "U"},
		},
		{
			name:   "single type to union",
			writer: record(`{"name":"a","type":"int"}`, `{"name":"s","type":"string"}`),
			reader: record(`{"name":"a","type":["null","long"]}`, `{"name":"s","type":["null","int","string"]}`),
			in:     map[string]any{"a": int32(4), "s": "x"},
			want:   map[string]any{"a": map[string]any{"long": int64(4)}, "s": map[string]any{"string": "x"}},
		},
		{
			name:   "union to single type",
			writer: record(`{"name":"a","type":["int","long"]}`),
			reader: record(`{"name":"a","type":"long"}`),
			in:     map[string]any{"a": map[string]any{"int": int32(9)}},
			want:   map[string]any{"a": int64(9)},
		},
		{
			name:   "union to union, branches reordered and promoted",
			writer: record(`{"name":"a","type":["null","int","string"]}`, `{"name":"b","type":["null","int","string"]}`),
			reader: record(`{"name":"a","type":["string","double","null"]}`, `{"name":"b","type":["string","double","null"]}`),
			in:     map[string]any{"a": map[string]any{"int": int32(2)}, "b": nil},
			want:   map[string]any{"a": map[string]any{"double": float64(2)}, "b": nil},
		},
		{
			name: "nested records, arrays and maps evolve too",
			writer: record(`{"name":"items","type":{"type":"array","items":{"type":"record","name":"Item","fields":[
				{"name":"qty","type":"int"},{"name":"sku","type":"string"}]}}}`,
				`{"name":"m","type":{"type":"map","values":"int"}}`),
			reader: record(`{"name":"items","type":{"type":"array","items":{"type":"record","name":"Item","fields":[
				{"name":"sku","type":"string"},{"name":"qty","type":"long"},{"name":"note","type":"string","default":""}]}}}`,
				`{"name":"m","type":{"type":"map","values":"double"}}`),
			in: map[string]any{"items": []any{map[string]any{"qty": int32(2), "sku": "a"}, map[string]any{"qty": int32(3), "sku": "b"}},
				"m": map[string]any{"x": int32(1)}},
			want: map[string]any{"items": []any{map[string]any{"qty": int64(2), "sku": "a", "note": ""}, map[string]any{"qty": int64(3), "sku": "b", "note": ""}},
				"m": map[string]any{"x": float64(1)}},
		},
		{
			name:   "recursive type with a field added",
			writer: `{"type":"record","name":"Node","fields":[{"name":"v","type":"int"},{"name":"next","type":["null","Node"]}]}`,
			reader: `{"type":"record","name":"Node","fields":[{"name":"v","type":"long"},{"name":"next","type":["null","Node"]},{"name":"w","type":"int","default":-1}]}`,
			in:     map[string]any{"v": int32(1), "next": map[string]any{"Node": map[string]any{"v": int32(2), "next": nil}}},
			want: map[string]any{"v": int64(1), "w": int32(-1),
				"next": map[string]any{"Node": map[string]any{"v": int64(2), "w": int32(-1), "next": nil}}},
		},
		{
			name:   "record renamed through an alias, in another namespace",
			writer: `{"type":"record","name":"old.Thing","fields":[{"name":"a","type":"int"}]}`,
			reader: `{"type":"record","name":"Renamed","namespace":"new","aliases":["old.Thing"],"fields":[{"name":"a","type":"int"}]}`,
			in:     map[string]any{"a": int32(1)},
			want:   map[string]any{"a": int32(1)},
		},
		{
			name:   "fixed by name and size",
			writer: record(`{"name":"f","type":{"type":"fixed","name":"F","size":3}}`),
			reader: record(`{"name":"f","type":{"type":"fixed","name":"F","size":3}}`, `{"name":"x","type":"int","default":0}`),
			in:     map[string]any{"f": []byte("abc")},
			want:   map[string]any{"f": []byte("abc"), "x": int32(0)},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w, err := avro.Generic(tc.writer)
			if err != nil {
				t.Fatal(err)
			}
			b, err := w.Serialize("t", tc.in)
			if err != nil {
				t.Fatal(err)
			}
			r, err := avro.Generic(tc.reader, avro.WriterSchema(tc.writer))
			if err != nil {
				t.Fatal(err)
			}
			got, err := r.Deserialize("t", b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %#v\nwant %#v", got, tc.want)
			}
		})
	}
}

func TestResolutionIncompatible(t *testing.T) {
	cases := []struct {
		name           string
		writer, reader string
		field          string // the field the error names
	}{
		{"reader field without default", record(`{"name":"a","type":"int"}`),
			record(`{"name":"a","type":"int"}`, `{"name":"b","type":"int"}`), "b"},
		{"type change", record(`{"name":"a","type":"string"}`), record(`{"name":"a","type":"int"}`), "a"},
		{"demotion", record(`{"name":"a","type":"long"}`), record(`{"name":"a","type":"int"}`), "a"},
		{"record renamed", record(`{"name":"a","type":{"type":"record","name":"X","fields":[]}}`),
			record(`{"name":"a","type":{"type":"record","name":"Y","fields":[]}}`), "a"},
		{"fixed resized", record(`{"name":"a","type":{"type":"fixed","name":"F","size":2}}`),
			record(`{"name":"a","type":{"type":"fixed","name":"F","size":3}}`), "a"},
		{"union with no readable branch", record(`{"name":"a","type":["null","string"]}`), record(`{"name":"a","type":"int"}`), "a"},
		{"nested", record(`{"name":"a","type":{"type":"array","items":{"type":"record","name":"I","fields":[{"name":"x","type":"int"}]}}}`),
			record(`{"name":"a","type":{"type":"array","items":{"type":"record","name":"I","fields":[{"name":"x","type":"int"},{"name":"y","type":"int"}]}}}`), "a.y"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := avro.Generic(tc.reader, avro.WriterSchema(tc.writer))
			if !errors.Is(err, avro.ErrIncompatibleSchema) {
				t.Fatalf("got %v, want ErrIncompatibleSchema", err)
			}
			if !strings.Contains(err.Error(), "field "+tc.field+":") {
				t.Fatalf("error does not name field %s: %v", tc.field, err)
			}
		})
	}
}

// TestResolutionPerValue: some resolutions fail only for the values that take them.
func TestResolutionPerValue(t *testing.T) {
	writer := record(`{"name":"e","type":{"type":"enum","name":"E","symbols":["A","B"]}}`, `{"name":"u","type":["null","string","int"]}`)
	reader := record(`{"name":"e","type":{"type":"enum","name":"E","symbols":["A"]}}`, `{"name":"u","type":["null","long"]}`)
	w, err := avro.Generic(writer)
	if err != nil {
		t.Fatal(err)
	}
	r, err := avro.Generic(reader, avro.WriterSchema(writer))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		in    map[string]any
		field string // "" when the value reads
	}{
		{map[string]any{"e": "A", "u": map[string]any{"int": int32(1)}}, ""},
		{map[string]any{"e": "A", "u": nil}, ""},
		{map[string]any{"e": "B", "u": nil}, "e"},
		{map[string]any{"e": "A", "u": map[string]any{"string": "s"}}, "u"},
	} {
		t.Run(fmt.Sprint(tc.in), func(t *testing.T) {
			b, err := w.Serialize("t", tc.in)
			if err != nil {
				t.Fatal(err)
			}
			_, err = r.Deserialize("t", b)
			if tc.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ae *avro.Error
			if !errors.Is(err, avro.ErrIncompatibleSchema) || !errors.As(err, &ae) || ae.Field != tc.field {
				t.Fatalf("got %v, want ErrIncompatibleSchema in field %s", err, tc.field)
			}
		})
	}
}
