package serde_test

import (
	"errors"
	"testing"

	"github.com/rifflestream/riffle/serde"
)

func TestNullable(t *testing.T) {
	s := serde.Nullable(serde.String())
	if b, err := s.Serialize("t", nil); b != nil || err != nil {
		t.Errorf("Serialize(nil) = %#v, %v; want nil (Kafka null)", b, err)
	}
	if v, err := s.Deserialize("t", nil); v != nil || err != nil {
		t.Errorf("Deserialize(nil) = %v, %v; want nil", v, err)
	}
	empty := ""
	b, err := s.Serialize("t", &empty)
	if b == nil || len(b) != 0 || err != nil {
		t.Errorf(`Serialize(&"") = %#v, %v; want an empty value, not null`, b, err)
	}
	if v, err := s.Deserialize("t", []byte{}); v == nil || *v != "" || err != nil {
		t.Errorf(`Deserialize(empty) = %v, %v; want &""`, v, err)
	}
	if v, err := s.Deserialize("t", []byte("hi")); v == nil || *v != "hi" || err != nil {
		t.Errorf(`Deserialize("hi") = %v, %v`, v, err)
	}

	na, ok := s.(serde.NullAware)
	if !ok || !na.HandlesNull() {
		t.Error("Nullable's serde does not report that it handles null")
	}
	if _, ok := serde.String().(serde.NullAware); ok {
		t.Error("String's serde claims to handle null")
	}

	// The inner serde's errors pass through, still naming it.
	_, err = serde.Nullable(serde.Int64()).Deserialize("t", []byte{1})
	var se *serde.Error
	if !errors.As(err, &se) || se.Serde != "int64" {
		t.Errorf("Deserialize(01) error = %v, want int64's", err)
	}
}
