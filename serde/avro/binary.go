package avro

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
)

// binary.go: Avro's binary encoding of the primitives, and of JSON default values (which the
// resolver writes for reader fields that the writer's schema lacks).

// appendLong appends v as a zig-zag varint: Avro's encoding of int and long alike.
func appendLong(b []byte, v int64) []byte {
	return binary.AppendUvarint(b, uint64(v<<1)^uint64(v>>63))
}

func appendFloat(b []byte, f float32) []byte {
	return binary.LittleEndian.AppendUint32(b, math.Float32bits(f))
}

func appendDouble(b []byte, f float64) []byte {
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
}

// encodeDefault encodes a field's JSON default value as a value of type s, per the spec's table
// of default values (a union's default is a value of its first branch; bytes and fixed defaults
// are strings of code points 0-255).
func encodeDefault(b []byte, s *schema, v any) ([]byte, error) {
	switch s.kind {
	case kindNull:
		if v != nil {
			return nil, fmt.Errorf("default %v for null is not null", v)
		}
		return b, nil
	case kindBoolean:
		x, ok := v.(bool)
		if !ok {
			return nil, fmt.Errorf("default %v for boolean is not true or false", v)
		}
		if x {
			return append(b, 1), nil
		}
		return append(b, 0), nil
	case kindInt, kindLong:
		n, ok := v.(json.Number)
		if !ok {
			return nil, fmt.Errorf("default %v for %s is not a number", v, s.kind)
		}
		bits := 64
		if s.kind == kindInt {
			bits = 32
		}
		x, err := strconv.ParseInt(string(n), 10, bits)
		if err != nil {
			f, ferr := strconv.ParseFloat(string(n), 64)
			if ferr != nil || f != math.Trunc(f) {
				return nil, fmt.Errorf("default %v for %s is not an integer in range", v, s.kind)
			}
			x = int64(f)
			if bits == 32 && int64(int32(x)) != x {
				return nil, fmt.Errorf("default %v for int is out of range", v)
			}
		}
		return appendLong(b, x), nil
	case kindFloat, kindDouble:
		f, err := jsonFloat(v)
		if err != nil {
			return nil, fmt.Errorf("default %v for %s: %w", v, s.kind, err)
		}
		if s.kind == kindFloat {
			return appendFloat(b, float32(f)), nil
		}
		return appendDouble(b, f), nil
	case kindString:
		x, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("default %v for string is not a string", v)
		}
		b = appendLong(b, int64(len(x)))
		return append(b, x...), nil
	case kindBytes, kindFixed:
		x, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("default %v for %s is not a string", v, s.kind)
		}
		raw := make([]byte, 0, len(x))
		for _, r := range x {
			if r > 255 {
				return nil, fmt.Errorf("default %q for %s has a code point above 255", x, s.kind)
			}
			raw = append(raw, byte(r))
		}
		if s.kind == kindFixed {
			if len(raw) != s.size {
				return nil, fmt.Errorf("default for fixed %s has %d bytes, want %d", s.name, len(raw), s.size)
			}
			return append(b, raw...), nil
		}
		b = appendLong(b, int64(len(raw)))
		return append(b, raw...), nil
	case kindEnum:
		x, _ := v.(string)
		i := indexOf(s.symbols, x)
		if i < 0 {
			return nil, fmt.Errorf("default %v is not a symbol of enum %s", v, s.name)
		}
		return appendLong(b, int64(i)), nil
	case kindArray:
		items, ok := v.([]any)
		if !ok {
			return nil, fmt.Errorf("default %v for array is not a JSON array", v)
		}
		if len(items) > 0 {
			b = appendLong(b, int64(len(items)))
			for i, it := range items {
				var err error
				if b, err = encodeDefault(b, s.items, it); err != nil {
					return nil, fmt.Errorf("item %d: %w", i, err)
				}
			}
		}
		return appendLong(b, 0), nil
	case kindMap:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("default %v for map is not a JSON object", v)
		}
		if len(m) > 0 {
			b = appendLong(b, int64(len(m)))
			for _, k := range slices.Sorted(maps.Keys(m)) {
				b = appendLong(b, int64(len(k)))
				b = append(b, k...)
				var err error
				if b, err = encodeDefault(b, s.items, m[k]); err != nil {
					return nil, fmt.Errorf("key %q: %w", k, err)
				}
			}
		}
		return appendLong(b, 0), nil
	case kindRecord:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("default %v for record %s is not a JSON object", v, s.name)
		}
		for _, f := range s.fields {
			fv, ok := m[f.name]
			if !ok {
				if !f.hasDef {
					return nil, fmt.Errorf("default for record %s lacks field %q, which has no default", s.name, f.name)
				}
				fv = f.def
			}
			var err error
			if b, err = encodeDefault(b, f.typ, fv); err != nil {
				return nil, fmt.Errorf("field %q: %w", f.name, err)
			}
		}
		return b, nil
	case kindUnion:
		// The spec: a union's default is a value of its first branch. Some writers put the
		// default of another branch; accept the first branch that fits.
		var first error
		for i, br := range s.branches {
			out, err := encodeDefault(appendLong(b, int64(i)), br, v)
			if err == nil {
				return out, nil
			}
			if first == nil {
				first = err
			}
		}
		return nil, first
	}
	return nil, fmt.Errorf("no default encoding for %s", s.kind)
}

func jsonFloat(v any) (float64, error) {
	switch x := v.(type) {
	case json.Number:
		return strconv.ParseFloat(string(x), 64)
	case string: // Java writes non-finite defaults as strings
		switch x {
		case "NaN":
			return math.NaN(), nil
		case "Infinity":
			return math.Inf(1), nil
		case "-Infinity":
			return math.Inf(-1), nil
		}
	}
	return 0, fmt.Errorf("not a number")
}
