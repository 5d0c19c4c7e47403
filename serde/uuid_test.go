package serde_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/rifflestream/riffle/serde"
)

// orderID stands for any UUID type with a 16-byte array underneath, like github.com/google/uuid's.
type orderID [16]byte

func TestUUID(t *testing.T) {
	s := serde.UUID[orderID]()
	id := orderID{0xf4, 0x7a, 0xc1, 0x0b, 0x58, 0xcc, 0x43, 0x72, 0xa5, 0x67, 0x0e, 0x02, 0xb2, 0xc3, 0xd4, 0x79}
	const text = "f47ac10b-58cc-4372-a567-0e02b2c3d479"
	b, err := s.Serialize("t", id)
	if err != nil || string(b) != text {
		t.Fatalf("Serialize = %q, %v; want %q", b, err, text)
	}
	for _, in := range []string{text, strings.ToUpper(text), "F47ac10b-58CC-4372-a567-0E02B2C3d479"} {
		if got, err := s.Deserialize("t", []byte(in)); err != nil || got != id {
			t.Errorf("Deserialize(%q) = %x, %v; want %x", in, got, err, id)
		}
	}
	for _, in := range []string{
		"", "f47ac10b58cc4372a5670e02b2c3d479", "{f47ac10b-58cc-4372-a567-0e02b2c3d479}",
		"f47ac10b-58cc-4372-a567-0e02b2c3d47g", "f47ac10b-58cc-4372-a567-0e02b2c3d47", "f47ac10b-58cc-4372-a567+0e02b2c3d479",
		"+f47ac10-58cc-4372-a567-0e02b2c3d479", "1-2-3-4-5", " f47ac10b-58cc-4372-a567-0e02b2c3d47",
		"f47ac10b-58cc-4372-a567-0e02b2c3d479" + strings.Repeat("0", 100),
	} {
		_, err := s.Deserialize("t", []byte(in))
		var se *serde.Error
		if !errors.As(err, &se) || se.Serde != "uuid" {
			t.Errorf("Deserialize(%q) error = %v, want a *serde.Error of uuid", in, err)
		}
		if len(err.Error()) > 200 {
			t.Errorf("Deserialize(%d bytes) error is %d bytes long", len(in), len(err.Error()))
		}
	}
	if b, _ := s.Serialize("t", orderID{}); string(b) != "00000000-0000-0000-0000-000000000000" {
		t.Errorf("Serialize(zero) = %q", b)
	}
}
