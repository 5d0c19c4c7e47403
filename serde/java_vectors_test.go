package serde_test

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/rifflestream/riffle/serde"
)

// javaVectorsFile is written by Kafka's own serdes: serde/testdata/java/SerdeVectors.java says how
// to regenerate it and the file's header says how to read it. The tests never run Java.
const javaVectorsFile = "testdata/java_vectors.txt"

// javaVector is one line of javaVectorsFile: "<type> <value> <hex>" (Java serializes value to
// hex) or "de <type> <hex> <value>" (Java deserializes hex to value, or value is "error").
type javaVector struct {
	line  int
	de    bool
	typ   string
	value string
	hex   string
	data  []byte // hex decoded: nil for "null", empty for "-"
}

func (v javaVector) String() string {
	if v.de {
		return fmt.Sprintf("line %d: de %s %s %s", v.line, v.typ, v.hex, v.value)
	}
	return fmt.Sprintf("line %d: %s %s %s", v.line, v.typ, v.value, v.hex)
}

func readJavaVectors(t testing.TB) []javaVector {
	t.Helper()
	f, err := os.Open(javaVectorsFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var vs []javaVector
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "murmur2 ") {
			continue // murmur2 lines are internal/murmur2's
		}
		v := javaVector{line: n}
		fields := strings.SplitN(line, " ", 5)
		if fields[0] == "de" && len(fields) >= 4 {
			v.de, v.typ, v.hex, v.value = true, fields[1], fields[2], fields[3]
		} else if len(fields) == 3 {
			v.typ, v.value, v.hex = fields[0], fields[1], fields[2]
		} else {
			t.Fatalf("%s:%d: cannot parse %q", javaVectorsFile, n, line)
		}
		if v.data, err = parseHex(v.hex); err != nil {
			t.Fatalf("%s:%d: %v", javaVectorsFile, n, err)
		}
		vs = append(vs, v)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return vs
}

// javaSeeds returns the bytes of every vector of type typ, for fuzz seed corpora.
func javaSeeds(f *testing.F, typ string) [][]byte {
	var seeds [][]byte
	for _, v := range readJavaVectors(f) {
		if v.typ == typ && v.data != nil {
			seeds = append(seeds, v.data)
		}
	}
	if len(seeds) == 0 {
		f.Fatalf("no Java vectors of type %s", typ)
	}
	return seeds
}

func parseHex(s string) ([]byte, error) {
	switch s {
	case "null":
		return nil, nil
	case "-":
		return []byte{}, nil
	}
	return hex.DecodeString(s)
}

// codec is how the test reads and compares the values of one type of the file. It parses Java's
// text on its own, without the serde under test.
type codec[T any] struct {
	serde serde.Serde[T]
	name  string                  // the name the serde's errors carry
	parse func(string) (T, error) // Java's text of a value
	keyOf func(T) string          // compares values: equal values, equal keys (NaN bits included)
}

// javaKind is a codec with its type erased, so that the test can look one up by name.
type javaKind interface {
	serialize(text string) ([]byte, error)
	deserialize(data []byte) (key string, err error)
	key(text string) (string, error)
	serdeName() string
}

func (c codec[T]) serialize(text string) ([]byte, error) {
	v, err := c.parse(text)
	if err != nil {
		return nil, fmt.Errorf("test cannot parse %q: %w", text, err)
	}
	return c.serde.Serialize("vectors", v)
}

func (c codec[T]) deserialize(data []byte) (string, error) {
	v, err := c.serde.Deserialize("vectors", data)
	if err != nil {
		return "", err
	}
	return c.keyOf(v), nil
}

func (c codec[T]) key(text string) (string, error) {
	v, err := c.parse(text)
	if err != nil {
		return "", fmt.Errorf("test cannot parse %q: %w", text, err)
	}
	return c.keyOf(v), nil
}

func (c codec[T]) serdeName() string { return c.name }

// nullableCodec reads "null" as nil: every Java serde maps null to null.
func nullableCodec[T any](c codec[T]) codec[*T] {
	return codec[*T]{
		serde: serde.Nullable(c.serde),
		name:  c.name,
		parse: func(s string) (*T, error) {
			if s == "null" {
				return nil, nil
			}
			v, err := c.parse(s)
			return &v, err
		},
		keyOf: func(v *T) string {
			if v == nil {
				return "null"
			}
			return c.keyOf(*v)
		},
	}
}

// listCodec reads "[a,b,...]". Java's strings escape ',' so splitting at commas is safe.
func listCodec[T any](c codec[T]) codec[[]T] {
	return codec[[]T]{
		serde: serde.List(c.serde),
		name:  "list[" + reflect.TypeFor[T]().String() + "]",
		parse: func(s string) ([]T, error) {
			if len(s) < 2 || s[0] != '[' || s[len(s)-1] != ']' {
				return nil, errors.New("not [...]")
			}
			l := []T{}
			if s == "[]" {
				return l, nil
			}
			for _, e := range strings.Split(s[1:len(s)-1], ",") {
				v, err := c.parse(e)
				if err != nil {
					return nil, err
				}
				l = append(l, v)
			}
			return l, nil
		},
		keyOf: func(l []T) string {
			keys := make([]string, len(l))
			for i, v := range l {
				keys[i] = c.keyOf(v)
			}
			return "[" + strings.Join(keys, ",") + "]"
		},
	}
}

func parseInt[T int16 | int32 | int64](bits int) func(string) (T, error) {
	return func(s string) (T, error) {
		v, err := strconv.ParseInt(s, 10, bits)
		return T(v), err
	}
}

func formatInt[T int16 | int32 | int64](v T) string { return strconv.FormatInt(int64(v), 10) }

// parseJavaFloat reads "<Java toString>(<raw bits>)" and checks that both halves agree.
func parseJavaFloat(s string, bitSize int) (uint64, error) {
	i := strings.IndexByte(s, '(')
	if i < 0 || !strings.HasSuffix(s, ")") {
		return 0, errors.New("not <text>(<bits>)")
	}
	bits, err := strconv.ParseUint(s[i+1:len(s)-1], 16, bitSize)
	if err != nil {
		return 0, err
	}
	if s[:i] == "NaN" {
		if (bitSize == 64 && !math.IsNaN(math.Float64frombits(bits))) ||
			(bitSize == 32 && !math.IsNaN(float64(math.Float32frombits(uint32(bits))))) {
			return 0, errors.New("NaN with the bits of a number")
		}
		return bits, nil
	}
	f, err := strconv.ParseFloat(s[:i], bitSize)
	if err != nil {
		return 0, err
	}
	if (bitSize == 64 && math.Float64bits(f) != bits) || (bitSize == 32 && uint64(math.Float32bits(float32(f))) != bits) {
		return 0, fmt.Errorf("%s is not the float of bits %x", s[:i], bits)
	}
	return bits, nil
}

// parseJavaUUID reads Java's UUID.toString without the serde under test.
func parseJavaUUID(s string) ([16]byte, error) {
	var u [16]byte
	b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(b) != 16 || len(s) != 36 {
		return u, fmt.Errorf("not a UUID: %q", s)
	}
	return [16]byte(b), nil
}

func javaKinds() map[string]javaKind {
	kinds := map[string]javaKind{}
	str := codec[string]{serde: serde.String(), name: "string", parse: strconv.Unquote, keyOf: strconv.Quote}
	addKind(kinds, "string", str)
	byt := codec[[]byte]{serde: serde.Bytes(), name: "bytes", parse: parseHex, keyOf: hex.EncodeToString}
	addKind(kinds, "bytes", byt)
	i16 := codec[int16]{serde: serde.Int16(), name: "int16", parse: parseInt[int16](16), keyOf: formatInt[int16]}
	addKind(kinds, "int16", i16)
	i32 := codec[int32]{serde: serde.Int32(), name: "int32", parse: parseInt[int32](32), keyOf: formatInt[int32]}
	addKind(kinds, "int32", i32)
	i64 := codec[int64]{serde: serde.Int64(), name: "int64", parse: parseInt[int64](64), keyOf: formatInt[int64]}
	addKind(kinds, "int64", i64)
	f32 := codec[float32]{
		serde: serde.Float32(), name: "float32",
		parse: func(s string) (float32, error) {
			bits, err := parseJavaFloat(s, 32)
			return math.Float32frombits(uint32(bits)), err
		},
		keyOf: func(v float32) string { return fmt.Sprintf("%08x", math.Float32bits(v)) },
	}
	addKind(kinds, "float32", f32)
	f64 := codec[float64]{
		serde: serde.Float64(), name: "float64",
		parse: func(s string) (float64, error) {
			bits, err := parseJavaFloat(s, 64)
			return math.Float64frombits(bits), err
		},
		keyOf: func(v float64) string { return fmt.Sprintf("%016x", math.Float64bits(v)) },
	}
	addKind(kinds, "float64", f64)
	boo := codec[bool]{serde: serde.Bool(), name: "bool", parse: strconv.ParseBool, keyOf: strconv.FormatBool}
	addKind(kinds, "bool", boo)
	uid := codec[[16]byte]{
		serde: serde.UUID[[16]byte](), name: "uuid", parse: parseJavaUUID,
		keyOf: func(u [16]byte) string { return hex.EncodeToString(u[:]) },
	}
	addKind(kinds, "uuid", uid)
	return kinds
}

// addKind adds the type name, and list[name], as Java sees them: any value may be null.
func addKind[T any](kinds map[string]javaKind, name string, c codec[T]) {
	kinds[name] = nullableCodec(c)
	kinds["list["+name+"]"] = nullableCodec(listCodec(nullableCodec(c)))
}

// canonicalUUID is the form Java's UUIDSerializer writes (hex digits in either case).
var canonicalUUID = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// TestJavaVectors checks Riffle's serdes against the bytes of Kafka's Java serdes, both ways:
// Serialize(value) gives Java's bytes, and Deserialize(bytes) gives Java's value, or an error
// where Java throws. Riffle departs from Java on purpose in two places, checked here too:
//   - String keeps invalid UTF-8 as it is, where Java replaces it with U+FFFD;
//   - UUID reads only the canonical 8-4-4-4-12 form, where java.util.UUID.fromString also takes
//     forms like "1-2-3-4-5" that no Kafka serializer writes.
func TestJavaVectors(t *testing.T) {
	kinds := javaKinds()
	vectors := readJavaVectors(t)
	if len(vectors) < 200 {
		t.Fatalf("%s: only %d vectors", javaVectorsFile, len(vectors))
	}
	covered := map[string]bool{}
	var invalidUTF8, lenientUUID int
	for _, v := range vectors {
		k, ok := kinds[v.typ]
		if !ok {
			t.Errorf("%v: the test knows no type %q", v, v.typ)
			continue
		}
		covered[v.typ] = true

		if !v.de {
			got, err := k.serialize(v.value)
			if err != nil {
				t.Errorf("%v: Serialize: %v", v, err)
			} else if !bytes.Equal(got, v.data) || (got == nil) != (v.data == nil) {
				t.Errorf("%v: Serialize = %s, Java wrote %s", v, hexOrNull(got), v.hex)
			}
			continue
		}

		got, err := k.deserialize(v.data)
		switch {
		case v.typ == "string" && v.value != "error" && !utf8.Valid(v.data):
			invalidUTF8++
			if want := strconv.Quote(string(v.data)); err != nil || got != want {
				t.Errorf("%v: Deserialize = %s, %v; want the bytes as they are, %s", v, got, err, want)
			}
		case v.typ == "uuid" && v.value != "error" && v.data != nil && !canonicalUUID.Match(v.data):
			lenientUUID++
			if err == nil {
				t.Errorf("%v: Deserialize of a non-canonical UUID = %s, want an error", v, got)
			}
		case v.value == "error":
			if err == nil {
				t.Errorf("%v: Deserialize = %s, want an error as Java", v, got)
				break
			}
			var se *serde.Error
			if !errors.As(err, &se) || se.Op != "deserialize" || se.Serde != k.serdeName() ||
				!strings.HasPrefix(err.Error(), "serde: "+k.serdeName()+": cannot deserialize: ") {
				t.Errorf("%v: Deserialize error %q (%#v), want a *serde.Error of %s", v, err, se, k.serdeName())
			}
		default:
			want, kerr := k.key(v.value)
			if kerr != nil {
				t.Fatalf("%v: %v", v, kerr)
			}
			if err != nil || got != want {
				t.Errorf("%v: Deserialize = %s, %v; Java read %s", v, got, err, want)
			}
		}
	}
	for name := range kinds {
		if !covered[name] {
			t.Errorf("no Java vector for %s", name)
		}
	}
	if invalidUTF8 == 0 || lenientUUID == 0 {
		t.Errorf("the vectors no longer show the known differences from Java: %d invalid UTF-8 strings, %d non-canonical UUIDs", invalidUTF8, lenientUUID)
	}
}

func hexOrNull(b []byte) string {
	switch {
	case b == nil:
		return "null"
	case len(b) == 0:
		return "-"
	}
	return hex.EncodeToString(b)
}
