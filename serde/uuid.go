package serde

import "fmt"

// UUID returns the Serde of Kafka's UUIDSerde for any 16-byte array type U: [16]byte,
// github.com/google/uuid.UUID, github.com/gofrs/uuid.UUID, or your own. Riffle needs no UUID
// package of its own:
//
//	ids := serde.UUID[uuid.UUID]()
//
// U holds the 16 bytes in RFC 9562 order, most significant first (Java's UUID(msb, lsb) with
// msb in bytes 0-7 big-endian). The encoding is Java's UUID.toString in UTF-8, not the 16 bytes:
// 36 ASCII bytes, lowercase hex digits in groups of 8-4-4-4-12 joined by '-', for example
// "f47ac10b-58cc-4372-a567-0e02b2c3d479".
//
// Deserialize accepts that canonical form with hex digits in either case, as Java does. It rejects
// everything else with an *Error, including the non-canonical forms that Java's UUID.fromString
// lets through ("1-2-3-4-5", groups too short or with a '+' sign) and that no Kafka serializer
// writes.
func UUID[U ~[16]byte]() Serde[U] { return uuidSerde[U]{} }

type uuidSerde[U ~[16]byte] struct{}

// uuidLen is the length of a UUID's canonical text.
const uuidLen = 36

func (s uuidSerde[U]) Serialize(topic string, v U) ([]byte, error) {
	return s.AppendSerialize(make([]byte, 0, uuidLen), topic, v)
}

func (uuidSerde[U]) AppendSerialize(dst []byte, _ string, v U) ([]byte, error) {
	const digits = "0123456789abcdef"
	for i, b := range [16]byte(v) {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, digits[b>>4], digits[b&0x0f])
	}
	return dst, nil
}

func (uuidSerde[U]) Deserialize(_ string, data []byte) (U, error) {
	var u [16]byte
	if len(data) != uuidLen || data[8] != '-' || data[13] != '-' || data[18] != '-' || data[23] != '-' {
		return U(u), badUUID(data)
	}
	j := 0
	for i := range u {
		if j == 8 || j == 13 || j == 18 || j == 23 {
			j++
		}
		hi, ok1 := fromHex(data[j])
		lo, ok2 := fromHex(data[j+1])
		if !ok1 || !ok2 {
			return U(u), badUUID(data)
		}
		u[i] = hi<<4 | lo
		j += 2
	}
	return U(u), nil
}

func (uuidSerde[U]) fixedSize() int { return uuidLen }

func fromHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func badUUID(data []byte) *Error {
	const maxShown = 48
	shown := fmt.Sprintf("%q", data)
	if len(data) > maxShown {
		shown = fmt.Sprintf("%q... (%d bytes)", data[:maxShown], len(data))
	}
	return &Error{Serde: "uuid", Op: "deserialize", Reason: "want 36 characters, hex digits in groups 8-4-4-4-12, got " + shown}
}
