package avro

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"

	"github.com/linkedin/goavro/v2"

	"github.com/rifflestream/riffle/serde"
)

// Serde converts values of T to and from Avro records. It implements serde.Serde[T] and is
// safe for concurrent use. Make one with Generic, Mapped or Struct.
//
// Serialize writes deterministic bytes: the same value always encodes to the same bytes (map
// entries are written sorted by key), so a Serde works as a key serde for grouping and joins.
type Serde[T any] struct {
	c    *core
	to   func(T) (map[string]any, error)
	from func(map[string]any) (T, error)
}

var _ serde.Serde[map[string]any] = (*Serde[map[string]any])(nil)

// Generic returns a Serde for records in goavro's native form: a record is a map[string]any
// from field name to value; long is int64, int int32, float float32, double float64, bytes and
// fixed []byte, enum string, array []any, map map[string]any, a union value nil (for null) or
// map[string]any{"<branch type name>": value}; logical types follow goavro (time.Time for
// timestamps and dates, time.Duration for times of day, *big.Rat for decimals). schema must be
// an Avro record schema.
func Generic(schema string, opts ...Opt) (*Serde[map[string]any], error) {
	c, err := newCore(schema, opts)
	if err != nil {
		return nil, err
	}
	same := func(m map[string]any) (map[string]any, error) { return m, nil }
	return &Serde[map[string]any]{c: c, to: same, from: same}, nil
}

// Mapped returns a Serde for T through a mapping the caller writes: toAvro turns a T into
// goavro's native form of the record (see Generic), fromAvro turns the native form back into a
// T. Errors from either are returned from Serialize and Deserialize, wrapped.
func Mapped[T any](schema string, toAvro func(T) (map[string]any, error), fromAvro func(map[string]any) (T, error), opts ...Opt) (*Serde[T], error) {
	if toAvro == nil || fromAvro == nil {
		return nil, errors.New("avro: Mapped needs both toAvro and fromAvro")
	}
	c, err := newCore(schema, opts)
	if err != nil {
		return nil, err
	}
	return &Serde[T]{c: c, to: toAvro, from: fromAvro}, nil
}

// Struct returns a Serde for the struct type T, mapped to the record schema field by field:
// an exported Go field maps to the Avro field named by its tag `avro:"name"`, or by its Go name
// when untagged; `avro:"-"` leaves a Go field out. The constructor checks the whole mapping, so
// a field that does not fit fails here, named, and not at run time:
//
//   - every mapped Go field must exist in the record, and every record field that no Go field
//     maps to must have a default (Serialize writes the default);
//   - boolean: bool; int and long: any signed integer type (Serialize fails on values that do not
//     fit an int); float and double: float32 or float64; string and enum: any string type;
//     bytes: []byte; fixed: [size]byte or []byte; array: a slice; map: a map with string keys;
//     record: a struct; the union [null, T] (either order): a pointer to T, nil for null;
//   - logical types: time.Time for date, timestamp-millis and timestamp-micros, time.Duration for
//     time-millis and time-micros (or any signed integer for these, as the raw number), *big.Rat
//     for decimal;
//   - any holds goavro's native form of any type (see Generic), including other unions.
func Struct[T any](schema string, opts ...Opt) (*Serde[T], error) {
	c, err := newCore(schema, opts)
	if err != nil {
		return nil, err
	}
	t := reflect.TypeFor[T]()
	cv, err := compileStruct(t, c.schema)
	if err != nil {
		return nil, err
	}
	to := func(v T) (map[string]any, error) {
		n, err := cv.enc(reflect.ValueOf(v))
		if err != nil {
			return nil, err
		}
		return n.(map[string]any), nil
	}
	from := func(n map[string]any) (T, error) {
		var v T
		err := cv.dec(n, reflect.ValueOf(&v).Elem())
		return v, err
	}
	return &Serde[T]{c: c, to: to, from: from}, nil
}

// Schema returns the serde's own schema: the one it writes with (unless UseLatestVersion) and
// reads into.
func (s *Serde[T]) Schema() string { return s.c.text }

// Serialize encodes v as Avro binary, behind the Confluent wire format's header when the serde
// has a SchemaRegistry. With a registry, the first write to a subject registers or looks up the
// schema (see AutoRegisterSchemas, UseLatestVersion); later writes use the cached id.
func (s *Serde[T]) Serialize(topic string, v T) ([]byte, error) {
	native, err := s.to(v)
	if err != nil {
		return nil, s.c.fail("serialize", topic, "", -1, err)
	}
	return s.c.encode(topic, native)
}

// Deserialize decodes data written by Serialize (or by any Avro serializer using the same
// framing). With a registry, the writer's schema is found by the id in the header (once per id,
// then cached) and each value is resolved from it to the serde's schema. Bad bytes give an
// *Error wrapping ErrBadMagicByte, ErrTruncated, ErrMalformed, ErrUnknownSchemaID or
// ErrIncompatibleSchema; never a panic.
func (s *Serde[T]) Deserialize(topic string, data []byte) (T, error) {
	var zero T
	native, id, err := s.c.decode(topic, data)
	if err != nil {
		return zero, err
	}
	v, err := s.from(native)
	if err != nil {
		return zero, s.c.fail("deserialize", topic, "", id, err)
	}
	return v, nil
}

// core is the part of a Serde that does not depend on T.
type core struct {
	cfg    cfg
	text   string // the schema, compacted
	schema *schema
	codec  *goavro.Codec
	canon  string

	encPlan *plan // sorts map entries on the way out; nil when the schema has no maps
	plain   *readPlan

	mu     sync.Mutex
	reads  map[int]*flight[*readPlan]   // schema id -> how to read it
	writes map[string]*flight[*writeTo] // subject -> what to write with
}

// readPlan is how to read values written with one writer's schema.
type readPlan struct {
	p        *plan
	identity bool // the writer's schema is the reader's: check the bytes, decode them as they are
}

// writeTo is what Serialize writes for one subject.
type writeTo struct {
	id      int
	resolve *plan // UseLatestVersion with a latest schema other than the serde's; else nil
}

func newCore(text string, opts []Opt) (*core, error) {
	c := &core{cfg: defaultCfg(), reads: map[int]*flight[*readPlan]{}, writes: map[string]*flight[*writeTo]{}}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("avro: nil Opt")
		}
		o.apply(&c.cfg)
	}
	if err := c.cfg.validate(); err != nil {
		return nil, err
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, []byte(text)); err != nil {
		return nil, fmt.Errorf("avro: schema is not JSON: %w", err)
	}
	c.text = compact.String()
	var err error
	if c.codec, err = newCodec(c.text); err != nil {
		return nil, fmt.Errorf("avro: invalid schema: %w", err)
	}
	if c.schema, err = parseSchema(c.text); err != nil {
		return nil, fmt.Errorf("avro: invalid schema: %w", err)
	}
	if c.schema.kind != kindRecord {
		return nil, fmt.Errorf("avro: the schema is a %s; these serdes need a record", typeLabel(c.schema))
	}
	c.canon = canonical(c.schema)
	if hasMap(c.schema, map[*schema]bool{}) {
		if c.encPlan, err = newPlan(c.schema, c.schema); err != nil {
			return nil, fmt.Errorf("avro: %w", err)
		}
	}
	if c.cfg.registry == nil {
		writer := c.schema
		if c.cfg.writerSchemaSet {
			if writer, err = parseSchema(c.cfg.writerSchema); err != nil {
				return nil, fmt.Errorf("avro: invalid writer schema: %w", err)
			}
		}
		if c.plain, err = c.readPlanFor(writer); err != nil {
			if path, cause := splitField(err); path != "" {
				return nil, fmt.Errorf("avro: writer schema cannot be read with the serde's schema: field %s: %w", path, cause)
			}
			return nil, fmt.Errorf("avro: writer schema cannot be read with the serde's schema: %w", err)
		}
	}
	return c, nil
}

// newCodec, toBinary and fromBinary call goavro. goavro panics on a few malformed schemas (an
// unchecked type assertion on a decimal's attributes); should it panic on a value or on bytes
// that passed the checks in transcode.go, the serde still returns an error, as the Serde
// contract demands, rather than take the app down.
func newCodec(text string) (c *goavro.Codec, err error) {
	defer recoverGoavro(&err)
	return goavro.NewCodec(text)
}

func toBinary(c *goavro.Codec, buf []byte, native any) (out []byte, err error) {
	defer recoverGoavro(&err)
	return c.BinaryFromNative(buf, native)
}

func fromBinary(c *goavro.Codec, data []byte) (native any, rest []byte, err error) {
	defer recoverGoavro(&err)
	return c.NativeFromBinary(data)
}

func recoverGoavro(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("goavro panicked: %v", r)
	}
}

func (c *core) readPlanFor(writer *schema) (*readPlan, error) {
	if canonical(writer) == c.canon {
		p, err := newPlan(c.schema, c.schema)
		if err != nil {
			return nil, err
		}
		return &readPlan{p: p, identity: true}, nil
	}
	p, err := newPlan(writer, c.schema)
	if err != nil {
		return nil, err
	}
	return &readPlan{p: p}, nil
}

func (c *core) fail(op, topic, subject string, id int, err error) error {
	field, cause := splitField(err)
	return &Error{Op: op, Topic: topic, Subject: subject, SchemaID: id, Field: field, Err: cause}
}

// encode writes native as Avro binary, with the wire format's header when there is a registry.
func (c *core) encode(topic string, native map[string]any) ([]byte, error) {
	var buf []byte
	var subject string
	id := -1
	var resolve *plan
	if c.cfg.registry != nil {
		subject = c.cfg.subject(topic, c.cfg.key, c.schema.name)
		w, err := c.writeTarget(subject)
		if err != nil {
			return nil, c.fail("serialize", topic, subject, -1, err)
		}
		id, resolve = w.id, w.resolve
		buf = appendHeader(make([]byte, 0, 64), id)
	}
	header := len(buf)
	out, err := toBinary(c.codec, buf, native)
	if err != nil {
		return nil, c.fail("serialize", topic, subject, id, fmt.Errorf("value does not match the schema: %w", err))
	}
	switch {
	case resolve != nil:
		// Converts to the latest schema and sorts map entries in one pass.
		if out, err = transcode(resolve, out[header:], out[:header:header], true); err != nil {
			return nil, c.fail("serialize", topic, subject, id, err)
		}
	case c.encPlan != nil:
		if out, err = transcode(c.encPlan, out[header:], out[:header:header], true); err != nil {
			return nil, c.fail("serialize", topic, subject, id, err)
		}
	}
	return out, nil
}

// decode reads data into goavro's native form; it returns the schema id from the header too
// (-1 without a registry).
func (c *core) decode(topic string, data []byte) (map[string]any, int, error) {
	rp, payload, id := c.plain, data, -1
	if c.cfg.registry != nil {
		var err error
		if id, payload, err = splitHeader(data); err != nil {
			return nil, id, c.fail("deserialize", topic, "", id, err)
		}
		if rp, err = c.readPlan(id); err != nil {
			return nil, id, c.fail("deserialize", topic, "", id, err)
		}
	}
	if rp.identity {
		if err := check(rp.p, payload); err != nil {
			return nil, id, c.fail("deserialize", topic, "", id, err)
		}
	} else {
		var err error
		if payload, err = transcode(rp.p, payload, make([]byte, 0, len(payload)+16), false); err != nil {
			return nil, id, c.fail("deserialize", topic, "", id, err)
		}
	}
	native, rest, err := fromBinary(c.codec, payload)
	if err == nil && len(rest) > 0 {
		err = fmt.Errorf("%d bytes left over", len(rest))
	}
	if err != nil {
		return nil, id, c.fail("deserialize", topic, "", id, malformed("goavro: %v", err))
	}
	m, ok := native.(map[string]any)
	if !ok {
		return nil, id, c.fail("deserialize", topic, "", id, malformed("decoded a %T, not a record", native))
	}
	return m, id, nil
}

// flight is one cache entry, filled once: callers that want it while it is being fetched wait
// for that fetch instead of starting their own. A failed fetch is forgotten, so the next caller
// tries again.
type flight[V any] struct {
	done chan struct{}
	v    V
	err  error
}

func load[K comparable, V any](mu *sync.Mutex, m map[K]*flight[V], k K, fetch func() (V, error)) (V, error) {
	mu.Lock()
	f, ok := m[k]
	if ok {
		mu.Unlock()
		<-f.done
		return f.v, f.err
	}
	f = &flight[V]{done: make(chan struct{})}
	m[k] = f
	mu.Unlock()
	f.v, f.err = fetch()
	if f.err != nil {
		mu.Lock()
		delete(m, k)
		mu.Unlock()
	}
	close(f.done)
	return f.v, f.err
}
