package avro

import (
	"errors"
	"fmt"
	"strings"
)

// The classes of failure a Serde reports. Every error from Serialize and Deserialize is an *Error
// whose Err wraps one of these when the failure belongs to a class, so callers branch with
// errors.Is:
//
//	if errors.Is(err, avro.ErrUnknownSchemaID) { ... }
//
// Errors that fit no class (the registry is unreachable, a value does not match the schema)
// wrap the underlying error instead.
var (
	// ErrBadMagicByte: the record does not start with the Confluent wire format's magic byte 0,
	// so it was not written by a registry-aware Avro serializer (or not with Avro at all).
	ErrBadMagicByte = errors.New("avro: wrong magic byte")

	// ErrTruncated: the bytes end before the value does: fewer than the 5 bytes of the wire
	// format's header, or an Avro payload cut short.
	ErrTruncated = errors.New("avro: truncated data")

	// ErrMalformed: the bytes are not Avro under the writer's schema (a union or enum index out
	// of range, a negative length, a varint that overflows, bytes left over after the value, or
	// a value nested or repeated beyond the decoder's limits).
	ErrMalformed = errors.New("avro: malformed data")

	// ErrUnknownSchemaID: the registry has no schema under the id in the record's header.
	ErrUnknownSchemaID = errors.New("avro: unknown schema id")

	// ErrIncompatibleSchema: the writer's schema cannot be read with the reader's (schema
	// resolution fails: a reader field without default that the writer lacks, a type that
	// cannot be promoted, an enum symbol the reader does not know), or the registry refused to
	// register the serde's schema because it breaks the subject's compatibility rule.
	ErrIncompatibleSchema = errors.New("avro: incompatible schema")

	// ErrSchemaNotRegistered: with AutoRegisterSchemas(false), the serde's schema (or, with
	// UseLatestVersion, any schema) is not registered under the subject.
	ErrSchemaNotRegistered = errors.New("avro: schema not registered")
)

// Error is what Serialize and Deserialize return. Err is the cause; errors.Is sees through it to
// the sentinels above.
type Error struct {
	Op       string // "serialize" or "deserialize"
	Topic    string // the topic passed to Serialize or Deserialize
	Subject  string // the registry subject, when the failure involves one
	SchemaID int    // the schema id read from or written to the record; -1 when none is involved
	Field    string // the dotted path of the record field at fault, when one is
	Err      error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("avro: cannot ")
	b.WriteString(e.Op)
	fmt.Fprintf(&b, " (topic %q", e.Topic)
	if e.Subject != "" {
		fmt.Fprintf(&b, ", subject %q", e.Subject)
	}
	if e.SchemaID >= 0 {
		fmt.Fprintf(&b, ", schema id %d", e.SchemaID)
	}
	b.WriteString(")")
	if e.Field != "" {
		fmt.Fprintf(&b, ": field %s", e.Field)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(strings.TrimPrefix(e.Err.Error(), "avro: "))
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// fieldError carries the path of the field at fault up through nested records; the top level
// moves the path into Error.Field.
type fieldError struct {
	path string
	err  error
}

func (e *fieldError) Error() string { return "field " + e.path + ": " + e.err.Error() }
func (e *fieldError) Unwrap() error { return e.err }

const maxPathLen = 256

// inField prefixes name to the path of err.
func inField(name string, err error) error {
	if fe, ok := err.(*fieldError); ok {
		sep := "."
		if strings.HasPrefix(fe.path, "[") {
			sep = ""
		}
		path := name + sep + fe.path
		if len(path) > maxPathLen {
			// A path through deeply nested data keeps its innermost part, bounded, so that an
			// error deep in a long recursive value costs no more than a short one.
			path = "..." + path[len(path)-maxPathLen:]
		}
		return &fieldError{path: path, err: fe.err}
	}
	return &fieldError{path: name, err: err}
}

// splitField takes the field path off err, if it carries one.
func splitField(err error) (string, error) {
	if fe, ok := err.(*fieldError); ok {
		return fe.path, fe.err
	}
	return "", err
}

// classError is an error of one of the classes above: its text leaves out the "avro: " prefix,
// which the outermost error carries.
type classError struct {
	class error
	msg   string
}

func (e *classError) Error() string {
	return strings.TrimPrefix(e.class.Error(), "avro: ") + ": " + e.msg
}

func (e *classError) Unwrap() error { return e.class }

func classed(class error, format string, args ...any) error {
	return &classError{class: class, msg: fmt.Sprintf(format, args...)}
}

func truncated(format string, args ...any) error { return classed(ErrTruncated, format, args...) }

func malformed(format string, args ...any) error { return classed(ErrMalformed, format, args...) }

func incompatible(format string, args ...any) error {
	return classed(ErrIncompatibleSchema, format, args...)
}
