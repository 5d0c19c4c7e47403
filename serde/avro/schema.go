package avro

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// schema.go: a model of an Avro schema parsed from its JSON text. goavro encodes and decodes
// values but exposes no schema tree; schema resolution, the byte-level checks that run before
// goavro sees untrusted bytes, deterministic map order and the struct mapping all walk this one.

type kind uint8

const (
	kindNull kind = iota
	kindBoolean
	kindInt
	kindLong
	kindFloat
	kindDouble
	kindBytes
	kindString
	kindRecord
	kindEnum
	kindArray
	kindMap
	kindUnion
	kindFixed
)

func (k kind) String() string {
	switch k {
	case kindNull:
		return "null"
	case kindBoolean:
		return "boolean"
	case kindInt:
		return "int"
	case kindLong:
		return "long"
	case kindFloat:
		return "float"
	case kindDouble:
		return "double"
	case kindBytes:
		return "bytes"
	case kindString:
		return "string"
	case kindRecord:
		return "record"
	case kindEnum:
		return "enum"
	case kindArray:
		return "array"
	case kindMap:
		return "map"
	case kindUnion:
		return "union"
	case kindFixed:
		return "fixed"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

func primitiveKind(name string) (kind, bool) {
	switch name {
	case "null":
		return kindNull, true
	case "boolean":
		return kindBoolean, true
	case "int":
		return kindInt, true
	case "long":
		return kindLong, true
	case "float":
		return kindFloat, true
	case "double":
		return kindDouble, true
	case "bytes":
		return kindBytes, true
	case "string":
		return kindString, true
	}
	return 0, false
}

// schema is one node of a parsed schema. Named types (record, enum, fixed) are one node however
// often they are referenced, so recursive schemas are cyclic graphs.
type schema struct {
	kind     kind
	name     string    // full name of a record, enum or fixed
	aliases  []string  // full names
	logical  string    // the logicalType attribute, if any
	fields   []*field  // record
	symbols  []string  // enum
	enumDef  int       // enum: index of the default symbol, -1 for none
	items    *schema   // array items, map values
	branches []*schema // union
	size     int       // fixed

	min int // the fewest bytes a value of this type encodes to (a lower bound for recursive types)
}

type field struct {
	name    string
	aliases []string
	typ     *schema
	def     any // the default, decoded from JSON with json.Number for numbers
	hasDef  bool
}

// maxFixedSize bounds a fixed type's size so size arithmetic cannot overflow.
const maxFixedSize = 1 << 30

// parseSchema parses the JSON text of an Avro schema.
func parseSchema(text string) (*schema, error) {
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("schema is not JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("schema has text after its JSON value")
	}
	p := &parser{named: map[string]*schema{}}
	s, err := p.parse(v, "")
	if err != nil {
		return nil, err
	}
	computeMin(s, map[*schema]uint8{})
	return s, nil
}

type parser struct {
	named map[string]*schema
}

func (p *parser) parse(v any, ns string) (*schema, error) {
	switch v := v.(type) {
	case string:
		return p.ref(v, ns)
	case []any:
		return p.union(v, ns)
	case map[string]any:
		switch t := v["type"].(type) {
		case string:
			switch t {
			case "record", "error":
				return p.record(v, ns)
			case "enum":
				return p.enum(v, ns)
			case "fixed":
				return p.fixed(v, ns)
			case "array", "map":
				key := "items"
				k := kindArray
				if t == "map" {
					key, k = "values", kindMap
				}
				raw, ok := v[key]
				if !ok {
					return nil, fmt.Errorf("%s schema has no %q", t, key)
				}
				items, err := p.parse(raw, ns)
				if err != nil {
					return nil, err
				}
				return &schema{kind: k, items: items, logical: stringAttr(v, "logicalType")}, nil
			}
			s, err := p.ref(t, ns)
			if err != nil {
				return nil, err
			}
			if isPrimitive(s) {
				s.logical = stringAttr(v, "logicalType")
			}
			return s, nil
		case map[string]any, []any:
			return p.parse(t, ns)
		case nil:
			return nil, errors.New("schema object has no \"type\"")
		default:
			return nil, fmt.Errorf("schema \"type\" is a %T, want a string, object or array", t)
		}
	case nil:
		return nil, errors.New("schema is null")
	}
	return nil, fmt.Errorf("schema is a JSON %T, want a string, object or array", v)
}

func isPrimitive(s *schema) bool { return s.kind <= kindString }

func stringAttr(m map[string]any, key string) string {
	s, _ := m[key].(string)
	return s
}

// ref resolves a primitive type name or a reference to a named type defined earlier.
func (p *parser) ref(name, ns string) (*schema, error) {
	if k, ok := primitiveKind(name); ok {
		return &schema{kind: k, enumDef: -1}, nil
	}
	if !strings.Contains(name, ".") && ns != "" {
		if s, ok := p.named[ns+"."+name]; ok {
			// goavro looks the bare name up first, the spec the qualified one: a schema where
			// the two differ would decode differently from how it was checked.
			if other, ok := p.named[name]; ok && other != s {
				return nil, fmt.Errorf("reference %q is ambiguous: it names both %s and %s", name, name, s.name)
			}
			return s, nil
		}
	}
	if s, ok := p.named[name]; ok {
		return s, nil
	}
	return nil, fmt.Errorf("unknown type %q", name)
}

func (p *parser) union(v []any, ns string) (*schema, error) {
	if len(v) == 0 {
		return nil, errors.New("union has no branches")
	}
	u := &schema{kind: kindUnion, enumDef: -1}
	seen := map[string]bool{}
	for i, b := range v {
		s, err := p.parse(b, ns)
		if err != nil {
			return nil, fmt.Errorf("union branch %d: %w", i, err)
		}
		if s.kind == kindUnion {
			return nil, fmt.Errorf("union branch %d is a union", i)
		}
		id := s.kind.String()
		if s.name != "" {
			id = s.name
		}
		if seen[id] {
			return nil, fmt.Errorf("union has two branches of type %s", id)
		}
		seen[id] = true
		u.branches = append(u.branches, s)
	}
	return u, nil
}

// define registers a named type: its full name from name, namespace and the enclosing
// namespace, per the spec.
func (p *parser) define(v map[string]any, ns string, k kind) (*schema, string, error) {
	name, _ := v["name"].(string)
	if name == "" {
		return nil, "", fmt.Errorf("%s schema has no name", k)
	}
	full, space := fullName(name, v, ns)
	for _, part := range strings.Split(full, ".") {
		if !validName(part) {
			return nil, "", fmt.Errorf("%s name %q is not a valid Avro name", k, full)
		}
	}
	if _, ok := primitiveKind(full); ok {
		return nil, "", fmt.Errorf("%s name %q is a primitive type's", k, full)
	}
	if _, dup := p.named[full]; dup {
		return nil, "", fmt.Errorf("type %q is defined twice", full)
	}
	s := &schema{kind: k, name: full, enumDef: -1, logical: stringAttr(v, "logicalType")}
	if raw, ok := v["aliases"].([]any); ok {
		for _, a := range raw {
			if a, ok := a.(string); ok {
				af, _ := fullName(a, nil, space)
				s.aliases = append(s.aliases, af)
			}
		}
	}
	p.named[full] = s
	return s, space, nil
}

func fullName(name string, v map[string]any, enclosing string) (full, namespace string) {
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		return name, name[:i]
	}
	namespace = enclosing
	if ns, ok := v["namespace"].(string); ok {
		namespace = ns
	}
	if namespace == "" {
		return name, ""
	}
	return namespace + "." + name, namespace
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

func shortName(full string) string {
	return full[strings.LastIndexByte(full, '.')+1:]
}

func (p *parser) record(v map[string]any, ns string) (*schema, error) {
	s, space, err := p.define(v, ns, kindRecord)
	if err != nil {
		return nil, err
	}
	raw, ok := v["fields"].([]any)
	if !ok {
		return nil, fmt.Errorf("record %s has no fields array", s.name)
	}
	seen := map[string]bool{}
	for i, rf := range raw {
		fm, ok := rf.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("record %s field %d is not an object", s.name, i)
		}
		f := &field{}
		f.name, _ = fm["name"].(string)
		if !validName(f.name) {
			return nil, fmt.Errorf("record %s field %d has no valid name", s.name, i)
		}
		if seen[f.name] {
			return nil, fmt.Errorf("record %s has two fields named %q", s.name, f.name)
		}
		seen[f.name] = true
		t, ok := fm["type"]
		if !ok {
			return nil, fmt.Errorf("record %s field %q has no type", s.name, f.name)
		}
		if f.typ, err = p.parse(t, space); err != nil {
			return nil, fmt.Errorf("record %s field %q: %w", s.name, f.name, err)
		}
		f.def, f.hasDef = fm["default"]
		if raw, ok := fm["aliases"].([]any); ok {
			for _, a := range raw {
				if a, ok := a.(string); ok {
					f.aliases = append(f.aliases, a)
				}
			}
		}
		s.fields = append(s.fields, f)
	}
	return s, nil
}

func (p *parser) enum(v map[string]any, ns string) (*schema, error) {
	s, _, err := p.define(v, ns, kindEnum)
	if err != nil {
		return nil, err
	}
	raw, ok := v["symbols"].([]any)
	if !ok || len(raw) == 0 {
		return nil, fmt.Errorf("enum %s has no symbols", s.name)
	}
	seen := map[string]bool{}
	for _, r := range raw {
		sym, ok := r.(string)
		if !ok || !validName(sym) || seen[sym] {
			return nil, fmt.Errorf("enum %s has an invalid or repeated symbol %v", s.name, r)
		}
		seen[sym] = true
		s.symbols = append(s.symbols, sym)
	}
	if d, ok := v["default"]; ok {
		ds, _ := d.(string)
		s.enumDef = indexOf(s.symbols, ds)
		if s.enumDef < 0 {
			return nil, fmt.Errorf("enum %s default %v is not one of its symbols", s.name, d)
		}
	}
	return s, nil
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

func (p *parser) fixed(v map[string]any, ns string) (*schema, error) {
	s, _, err := p.define(v, ns, kindFixed)
	if err != nil {
		return nil, err
	}
	n, ok := v["size"].(json.Number)
	if !ok {
		return nil, fmt.Errorf("fixed %s has no size", s.name)
	}
	size, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil || size < 0 || size > maxFixedSize {
		return nil, fmt.Errorf("fixed %s has an invalid size %s", s.name, n)
	}
	s.size = int(size)
	return s, nil
}

// computeMin fills in s.min for s and everything it reaches. A type met again while its own
// minimum is being computed counts as 0: a lower bound, which is all the decoder's checks need.
func computeMin(s *schema, state map[*schema]uint8) int {
	switch state[s] {
	case 1:
		return 0
	case 2:
		return s.min
	}
	state[s] = 1
	switch s.kind {
	case kindNull:
		s.min = 0
	case kindBoolean, kindInt, kindLong, kindBytes, kindString, kindEnum:
		s.min = 1
	case kindFloat:
		s.min = 4
	case kindDouble:
		s.min = 8
	case kindFixed:
		s.min = s.size
	case kindArray, kindMap:
		computeMin(s.items, state)
		s.min = 1
	case kindUnion:
		for _, b := range s.branches {
			computeMin(b, state)
		}
		s.min = 1
	case kindRecord:
		n := 0
		for _, f := range s.fields {
			n += computeMin(f.typ, state)
			if n > maxFixedSize {
				n = maxFixedSize
			}
		}
		s.min = n
	}
	state[s] = 2
	return s.min
}

// canonical writes the schema in the spirit of Avro's Parsing Canonical Form: only what decides
// the binary layout and resolution (types, full names, field names and order, symbols, sizes).
// Two schemas with the same canonical text read each other's bytes unchanged.
func canonical(s *schema) string {
	var b strings.Builder
	writeCanonical(&b, s, map[*schema]bool{})
	return b.String()
}

func writeCanonical(b *strings.Builder, s *schema, seen map[*schema]bool) {
	quote := func(x string) { q, _ := json.Marshal(x); b.Write(q) }
	if s.name != "" {
		if seen[s] {
			quote(s.name)
			return
		}
		seen[s] = true
	}
	switch s.kind {
	case kindRecord:
		b.WriteString(`{"name":`)
		quote(s.name)
		b.WriteString(`,"type":"record","fields":[`)
		for i, f := range s.fields {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`{"name":`)
			quote(f.name)
			b.WriteString(`,"type":`)
			writeCanonical(b, f.typ, seen)
			b.WriteByte('}')
		}
		b.WriteString("]}")
	case kindEnum:
		b.WriteString(`{"name":`)
		quote(s.name)
		b.WriteString(`,"type":"enum","symbols":[`)
		for i, sym := range s.symbols {
			if i > 0 {
				b.WriteByte(',')
			}
			quote(sym)
		}
		b.WriteString("]}")
	case kindFixed:
		b.WriteString(`{"name":`)
		quote(s.name)
		fmt.Fprintf(b, `,"type":"fixed","size":%d}`, s.size)
	case kindArray:
		b.WriteString(`{"type":"array","items":`)
		writeCanonical(b, s.items, seen)
		b.WriteByte('}')
	case kindMap:
		b.WriteString(`{"type":"map","values":`)
		writeCanonical(b, s.items, seen)
		b.WriteByte('}')
	case kindUnion:
		b.WriteByte('[')
		for i, br := range s.branches {
			if i > 0 {
				b.WriteByte(',')
			}
			writeCanonical(b, br, seen)
		}
		b.WriteByte(']')
	default:
		quote(s.kind.String())
	}
}

// hasMap reports whether a map type is reachable from s: only then can goavro's encoding of a
// value depend on Go's map iteration order.
func hasMap(s *schema, seen map[*schema]bool) bool {
	if seen[s] {
		return false
	}
	seen[s] = true
	switch s.kind {
	case kindMap:
		return true
	case kindArray:
		return hasMap(s.items, seen)
	case kindUnion:
		for _, b := range s.branches {
			if hasMap(b, seen) {
				return true
			}
		}
	case kindRecord:
		for _, f := range s.fields {
			if hasMap(f.typ, seen) {
				return true
			}
		}
	}
	return false
}

// typeLabel names a type in error messages: its full name, or its kind.
func typeLabel(s *schema) string {
	if s.name != "" {
		return s.kind.String() + " " + s.name
	}
	if s.kind == kindUnion {
		parts := make([]string, len(s.branches))
		for i, b := range s.branches {
			parts[i] = typeLabel(b)
		}
		return "union [" + strings.Join(parts, ", ") + "]"
	}
	return s.kind.String()
}

// goavroBranchName is the key goavro uses for s in the map that holds a union's value.
func goavroBranchName(s *schema) string {
	if s.name != "" {
		return s.name
	}
	switch s.kind.String() + "." + s.logical {
	case "long.timestamp-millis", "long.timestamp-micros", "int.time-millis", "long.time-micros",
		"int.date", "bytes.decimal", "string.validated-string":
		return s.kind.String() + "." + s.logical
	}
	return s.kind.String()
}
