package avro

import (
	"errors"
	"fmt"
	"math/big"
	"reflect"
	"strings"
	"time"
)

// structmap.go: the struct-tag mapping between a Go struct and goavro's native form of a record,
// compiled once per (Go type, schema) and checked in the constructor, so that no type mismatch
// is left to surface at run time. Only values can still fail at run time (an int64 that does not
// fit an Avro int, an enum symbol the schema lacks, a nil *big.Rat).

// conv converts one Go type to and from goavro's native form of one schema type.
type conv struct {
	enc func(v reflect.Value) (any, error)
	dec func(n any, dst reflect.Value) error
}

type structMapper struct {
	memo map[convKey]*conv
}

type convKey struct {
	t reflect.Type
	s *schema
}

// compileStruct checks that struct type t fits record schema s and returns its conversions.
func compileStruct(t reflect.Type, s *schema) (*conv, error) {
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("avro: %s is not a struct type", t)
	}
	sm := &structMapper{memo: map[convKey]*conv{}}
	c, err := sm.compile(t, s)
	if err != nil {
		path, cause := splitField(err)
		if path != "" {
			return nil, fmt.Errorf("avro: %s does not fit the schema: field %s: %w", t, path, cause)
		}
		return nil, fmt.Errorf("avro: %s does not fit the schema: %w", t, cause)
	}
	return c, nil
}

func (sm *structMapper) compile(t reflect.Type, s *schema) (*conv, error) {
	key := convKey{t, s}
	if c, ok := sm.memo[key]; ok {
		return c, nil
	}
	c := &conv{}
	sm.memo[key] = c
	if err := sm.fill(c, t, s); err != nil {
		return nil, err
	}
	return c, nil
}

func mismatch(t reflect.Type, s *schema, hint string) error {
	msg := fmt.Sprintf("Go type %s cannot hold avro %s", t, typeLabel(s))
	if s.logical != "" {
		msg += " (logicalType " + s.logical + ")"
	}
	if hint != "" {
		msg += "; " + hint
	}
	return errors.New(msg)
}

func isInt(k reflect.Kind) bool {
	switch k {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return true
	}
	return false
}

func isBytes(t reflect.Type) bool {
	return t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8
}

func (sm *structMapper) fill(c *conv, t reflect.Type, s *schema) error {
	if t.Kind() == reflect.Interface && t.NumMethod() == 0 {
		// any holds goavro's native form as it is.
		c.enc = func(v reflect.Value) (any, error) { return v.Interface(), nil }
		c.dec = func(n any, dst reflect.Value) error {
			if n == nil {
				dst.SetZero()
				return nil
			}
			dst.Set(reflect.ValueOf(n))
			return nil
		}
		return nil
	}
	switch s.kind {
	case kindNull:
		return mismatch(t, s, "only any holds null")
	case kindBoolean:
		if t.Kind() != reflect.Bool {
			return mismatch(t, s, "")
		}
		c.enc = func(v reflect.Value) (any, error) { return v.Bool(), nil }
		c.dec = func(n any, dst reflect.Value) error {
			b, ok := n.(bool)
			if !ok {
				return nativeMismatch(n, "bool")
			}
			dst.SetBool(b)
			return nil
		}
	case kindInt, kindLong:
		return sm.integer(c, t, s)
	case kindFloat, kindDouble:
		if t.Kind() != reflect.Float32 && t.Kind() != reflect.Float64 {
			return mismatch(t, s, "")
		}
		double := s.kind == kindDouble
		c.enc = func(v reflect.Value) (any, error) {
			if double {
				return v.Float(), nil
			}
			return float32(v.Float()), nil
		}
		c.dec = func(n any, dst reflect.Value) error {
			switch f := n.(type) {
			case float32:
				dst.SetFloat(float64(f))
			case float64:
				dst.SetFloat(f)
			default:
				return nativeMismatch(n, "float")
			}
			return nil
		}
	case kindString, kindEnum:
		if t.Kind() != reflect.String {
			return mismatch(t, s, "")
		}
		c.enc = func(v reflect.Value) (any, error) { return v.String(), nil }
		c.dec = func(n any, dst reflect.Value) error {
			str, ok := n.(string)
			if !ok {
				return nativeMismatch(n, "string")
			}
			dst.SetString(str)
			return nil
		}
	case kindBytes, kindFixed:
		return sm.bytes(c, t, s)
	case kindArray:
		if t.Kind() != reflect.Slice {
			return mismatch(t, s, "")
		}
		elem, err := sm.compile(t.Elem(), s.items)
		if err != nil {
			return err
		}
		c.enc = func(v reflect.Value) (any, error) {
			out := make([]any, v.Len())
			for i := range out {
				x, err := elem.enc(v.Index(i))
				if err != nil {
					return nil, inField(fmt.Sprintf("[%d]", i), err)
				}
				out[i] = x
			}
			return out, nil
		}
		c.dec = func(n any, dst reflect.Value) error {
			items, ok := n.([]any)
			if !ok {
				return nativeMismatch(n, "[]any")
			}
			sl := reflect.MakeSlice(t, len(items), len(items))
			for i, it := range items {
				if err := elem.dec(it, sl.Index(i)); err != nil {
					return inField(fmt.Sprintf("[%d]", i), err)
				}
			}
			dst.Set(sl)
			return nil
		}
	case kindMap:
		if t.Kind() != reflect.Map || t.Key().Kind() != reflect.String {
			return mismatch(t, s, "use a map with string keys")
		}
		elem, err := sm.compile(t.Elem(), s.items)
		if err != nil {
			return err
		}
		c.enc = func(v reflect.Value) (any, error) {
			out := make(map[string]any, v.Len())
			for it := v.MapRange(); it.Next(); {
				x, err := elem.enc(it.Value())
				if err != nil {
					return nil, inField(fmt.Sprintf("[%q]", it.Key().String()), err)
				}
				out[it.Key().String()] = x
			}
			return out, nil
		}
		c.dec = func(n any, dst reflect.Value) error {
			entries, ok := n.(map[string]any)
			if !ok {
				return nativeMismatch(n, "map[string]any")
			}
			mv := reflect.MakeMapWithSize(t, len(entries))
			for k, x := range entries {
				ev := reflect.New(t.Elem()).Elem()
				if err := elem.dec(x, ev); err != nil {
					return inField(fmt.Sprintf("[%q]", k), err)
				}
				mv.SetMapIndex(reflect.ValueOf(k).Convert(t.Key()), ev)
			}
			dst.Set(mv)
			return nil
		}
	case kindRecord:
		if t.Kind() != reflect.Struct || t == reflect.TypeFor[time.Time]() {
			return mismatch(t, s, "use a struct")
		}
		return sm.record(c, t, s)
	case kindUnion:
		return sm.union(c, t, s)
	default:
		return mismatch(t, s, "")
	}
	return nil
}

func nativeMismatch(n any, want string) error {
	return fmt.Errorf("decoded value is %T, want %s", n, want)
}

func (sm *structMapper) integer(c *conv, t reflect.Type, s *schema) error {
	long := s.kind == kindLong
	logical := s.logical
	switch {
	case t == reflect.TypeFor[time.Time]() && ((!long && logical == "date") || (long && (logical == "timestamp-millis" || logical == "timestamp-micros"))):
		c.enc = func(v reflect.Value) (any, error) { return v.Interface(), nil }
		c.dec = func(n any, dst reflect.Value) error {
			tm, ok := n.(time.Time)
			if !ok {
				return nativeMismatch(n, "time.Time")
			}
			dst.Set(reflect.ValueOf(tm))
			return nil
		}
		return nil
	case t == reflect.TypeFor[time.Duration]() && ((!long && logical == "time-millis") || (long && logical == "time-micros")):
		c.enc = func(v reflect.Value) (any, error) { return time.Duration(v.Int()), nil }
		c.dec = func(n any, dst reflect.Value) error {
			d, ok := n.(time.Duration)
			if !ok {
				return nativeMismatch(n, "time.Duration")
			}
			dst.SetInt(int64(d))
			return nil
		}
		return nil
	case t == reflect.TypeFor[time.Time]():
		return mismatch(t, s, "time.Time needs logicalType date, timestamp-millis or timestamp-micros")
	case !isInt(t.Kind()):
		return mismatch(t, s, "")
	}
	c.enc = func(v reflect.Value) (any, error) {
		x := v.Int()
		if long {
			return x, nil
		}
		if x != int64(int32(x)) {
			return nil, fmt.Errorf("%d does not fit an avro int", x)
		}
		return int32(x), nil
	}
	c.dec = func(n any, dst reflect.Value) error {
		var x int64
		switch v := n.(type) {
		case int32:
			x = int64(v)
		case int64:
			x = v
		case time.Time: // goavro decodes the time logical types; the field wants the number
			switch logical {
			case "date":
				x = v.Unix() / 86400
			case "timestamp-micros":
				x = v.UnixMicro()
			default:
				x = v.UnixMilli()
			}
		case time.Duration:
			if logical == "time-micros" {
				x = v.Microseconds()
			} else {
				x = v.Milliseconds()
			}
		default:
			return nativeMismatch(n, "an integer")
		}
		if dst.OverflowInt(x) {
			return fmt.Errorf("%d overflows %s", x, dst.Type())
		}
		dst.SetInt(x)
		return nil
	}
	return nil
}

func (sm *structMapper) bytes(c *conv, t reflect.Type, s *schema) error {
	if s.logical == "decimal" && t == reflect.TypeFor[*big.Rat]() {
		c.enc = func(v reflect.Value) (any, error) {
			if v.IsNil() {
				return nil, errors.New("nil *big.Rat for a decimal")
			}
			return v.Interface(), nil
		}
		c.dec = func(n any, dst reflect.Value) error {
			r, ok := n.(*big.Rat)
			if !ok {
				return nativeMismatch(n, "*big.Rat")
			}
			dst.Set(reflect.ValueOf(r))
			return nil
		}
		return nil
	}
	if s.logical == "decimal" {
		return mismatch(t, s, "use *big.Rat")
	}
	switch {
	case isBytes(t):
		c.enc = func(v reflect.Value) (any, error) { return v.Bytes(), nil }
		c.dec = func(n any, dst reflect.Value) error {
			b, ok := n.([]byte)
			if !ok {
				return nativeMismatch(n, "[]byte")
			}
			dst.SetBytes(append([]byte(nil), b...))
			return nil
		}
	case s.kind == kindFixed && t.Kind() == reflect.Array && t.Elem().Kind() == reflect.Uint8:
		if t.Len() != s.size {
			return mismatch(t, s, fmt.Sprintf("fixed size is %d", s.size))
		}
		c.enc = func(v reflect.Value) (any, error) {
			b := make([]byte, v.Len())
			reflect.Copy(reflect.ValueOf(b), v)
			return b, nil
		}
		c.dec = func(n any, dst reflect.Value) error {
			b, ok := n.([]byte)
			if !ok || len(b) != dst.Len() {
				return nativeMismatch(n, fmt.Sprintf("[%d]byte", dst.Len()))
			}
			reflect.Copy(dst, reflect.ValueOf(b))
			return nil
		}
	default:
		hint := "use []byte"
		if s.kind == kindFixed {
			hint = fmt.Sprintf("use [%d]byte or []byte", s.size)
		}
		return mismatch(t, s, hint)
	}
	return nil
}

func (sm *structMapper) union(c *conv, t reflect.Type, s *schema) error {
	var other *schema
	nulls := 0
	for _, b := range s.branches {
		if b.kind == kindNull {
			nulls++
		} else {
			other = b
		}
	}
	if nulls != 1 || len(s.branches) != 2 {
		return mismatch(t, s, "only any holds a union other than [null, T]")
	}
	if t.Kind() != reflect.Pointer {
		return mismatch(t, s, "a union with null needs a pointer (or any)")
	}
	elem, err := sm.compile(t.Elem(), other)
	if err != nil {
		return err
	}
	branch := goavroBranchName(other)
	c.enc = func(v reflect.Value) (any, error) {
		if v.IsNil() {
			return nil, nil
		}
		x, err := elem.enc(v.Elem())
		if err != nil {
			return nil, err
		}
		return map[string]any{branch: x}, nil
	}
	c.dec = func(n any, dst reflect.Value) error {
		if n == nil {
			dst.SetZero()
			return nil
		}
		m, ok := n.(map[string]any)
		if !ok || len(m) != 1 {
			return nativeMismatch(n, "a union value")
		}
		x, ok := m[branch]
		if !ok {
			return nativeMismatch(n, "union branch "+branch)
		}
		p := reflect.New(t.Elem())
		if err := elem.dec(x, p.Elem()); err != nil {
			return err
		}
		dst.Set(p)
		return nil
	}
	return nil
}

type structField struct {
	index []int
	name  string // the avro field's name
	c     *conv
}

func (sm *structMapper) record(c *conv, t reflect.Type, s *schema) error {
	byName := map[string]*field{}
	for _, f := range s.fields {
		byName[f.name] = f
	}
	var fields []structField
	mapped := map[string]string{} // avro field name -> Go field name
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		name := sf.Name
		if tag, ok := sf.Tag.Lookup("avro"); ok {
			if tag == "-" {
				continue
			}
			if tag == "" || strings.Contains(tag, ",") {
				return inField(sf.Name, fmt.Errorf("tag avro:%q is not a field name", tag))
			}
			name = tag
		}
		f, ok := byName[name]
		if !ok {
			return inField(sf.Name, fmt.Errorf("record %s has no field %q (tag the Go field avro:\"-\" to leave it out)", s.name, name))
		}
		if prev, dup := mapped[name]; dup {
			return inField(sf.Name, fmt.Errorf("Go fields %s and %s both map to avro field %q", prev, sf.Name, name))
		}
		mapped[name] = sf.Name
		fc, err := sm.compile(sf.Type, f.typ)
		if err != nil {
			return inField(name, err)
		}
		fields = append(fields, structField{index: sf.Index, name: name, c: fc})
	}
	for _, f := range s.fields {
		if _, ok := mapped[f.name]; !ok && !f.hasDef {
			return inField(f.name, fmt.Errorf("record %s field %q has no default and no Go field of %s maps to it", s.name, f.name, t))
		}
	}
	c.enc = func(v reflect.Value) (any, error) {
		out := make(map[string]any, len(fields))
		for _, f := range fields {
			x, err := f.c.enc(v.FieldByIndex(f.index))
			if err != nil {
				return nil, inField(f.name, err)
			}
			out[f.name] = x
		}
		return out, nil
	}
	c.dec = func(n any, dst reflect.Value) error {
		m, ok := n.(map[string]any)
		if !ok {
			return nativeMismatch(n, "map[string]any")
		}
		for _, f := range fields {
			if err := f.c.dec(m[f.name], dst.FieldByIndex(f.index)); err != nil {
				return inField(f.name, err)
			}
		}
		return nil
	}
	return nil
}
