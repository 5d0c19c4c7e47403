package serde

import (
	"encoding/binary"
	"fmt"
	"math"
)

// String returns the Serde of Kafka's StringSerde (StringSerializer, StringDeserializer with the
// default UTF-8 encoding): the bytes of the string.
//
// Serialize("") returns an empty, non-nil slice: an empty value, not Kafka null.
//
// Deserialize keeps the bytes as they are, valid UTF-8 or not (a Go string may hold any bytes), so
// a String serde round-trips every input. Java decodes invalid UTF-8 differently: it replaces each
// malformed sequence with U+FFFD, so a Java consumer does not see such bytes as Riffle does.
func String() Serde[string] { return stringSerde{} }

type stringSerde struct{}

func (stringSerde) Serialize(_ string, v string) ([]byte, error) {
	if v == "" {
		return []byte{}, nil
	}
	return []byte(v), nil
}

func (stringSerde) AppendSerialize(dst []byte, _ string, v string) ([]byte, error) {
	return append(dst, v...), nil
}

func (stringSerde) Deserialize(_ string, data []byte) (string, error) { return string(data), nil }

// Bytes returns the Serde of Kafka's ByteArraySerde: the bytes as they are.
//
// Serialize returns v itself, not a copy, as Kafka's ByteArraySerializer does: a slice handed to
// Riffle as a key or value (returned from a Map, say) is written to Kafka as it is when the
// producer sends its batch, so it must not be modified afterwards. Copying every record's bytes
// cost a fifth of a pass-through's CPU. Nil and empty v both give an empty, non-nil slice (an
// empty value: write Kafka null with Nullable(Bytes())). Deserialize returns data itself, not a
// copy: Riffle hands each record's bytes to one deserializer and never reuses them, so the value
// is the caller's to keep or modify.
func Bytes() Serde[[]byte] { return bytesSerde{} }

type bytesSerde struct{}

func (bytesSerde) Serialize(_ string, v []byte) ([]byte, error) {
	if v == nil {
		return []byte{}, nil
	}
	return v, nil
}

func (bytesSerde) Deserialize(_ string, data []byte) ([]byte, error) { return data, nil }

// Int16 returns the Serde of Kafka's ShortSerde: 2 bytes, big-endian two's complement. Any other
// length is an *Error.
func Int16() Serde[int16] { return int16Serde{} }

type int16Serde struct{}

func (s int16Serde) Serialize(topic string, v int16) ([]byte, error) {
	return s.AppendSerialize(make([]byte, 0, 2), topic, v)
}

func (int16Serde) AppendSerialize(dst []byte, _ string, v int16) ([]byte, error) {
	return binary.BigEndian.AppendUint16(dst, uint16(v)), nil
}

func (int16Serde) Deserialize(_ string, data []byte) (int16, error) {
	if len(data) != 2 {
		return 0, wrongSize("int16", 2, data)
	}
	return int16(binary.BigEndian.Uint16(data)), nil
}

func (int16Serde) fixedSize() int { return 2 }

// Int32 returns the Serde of Kafka's IntegerSerde: 4 bytes, big-endian two's complement. Any
// other length is an *Error.
func Int32() Serde[int32] { return int32Serde{} }

type int32Serde struct{}

func (s int32Serde) Serialize(topic string, v int32) ([]byte, error) {
	return s.AppendSerialize(make([]byte, 0, 4), topic, v)
}

func (int32Serde) AppendSerialize(dst []byte, _ string, v int32) ([]byte, error) {
	return binary.BigEndian.AppendUint32(dst, uint32(v)), nil
}

func (int32Serde) Deserialize(_ string, data []byte) (int32, error) {
	if len(data) != 4 {
		return 0, wrongSize("int32", 4, data)
	}
	return int32(binary.BigEndian.Uint32(data)), nil
}

func (int32Serde) fixedSize() int { return 4 }

// Int64 returns the Serde of Kafka's LongSerde: 8 bytes, big-endian two's complement. Any other
// length is an *Error.
func Int64() Serde[int64] { return int64Serde{} }

type int64Serde struct{}

func (s int64Serde) Serialize(topic string, v int64) ([]byte, error) {
	return s.AppendSerialize(make([]byte, 0, 8), topic, v)
}

func (int64Serde) AppendSerialize(dst []byte, _ string, v int64) ([]byte, error) {
	return binary.BigEndian.AppendUint64(dst, uint64(v)), nil
}

func (int64Serde) Deserialize(_ string, data []byte) (int64, error) {
	if len(data) != 8 {
		return 0, wrongSize("int64", 8, data)
	}
	return int64(binary.BigEndian.Uint64(data)), nil
}

func (int64Serde) fixedSize() int { return 8 }

// Float32 returns the Serde of Kafka's FloatSerde: the 4 bytes of the IEEE 754 binary32 bits,
// big-endian. Like Java's Float.floatToRawIntBits, Serialize writes the bits as they are: a NaN
// keeps its sign and payload, and -0.0 stays -0.0. Any other length is an *Error.
func Float32() Serde[float32] { return float32Serde{} }

type float32Serde struct{}

func (s float32Serde) Serialize(topic string, v float32) ([]byte, error) {
	return s.AppendSerialize(make([]byte, 0, 4), topic, v)
}

func (float32Serde) AppendSerialize(dst []byte, _ string, v float32) ([]byte, error) {
	return binary.BigEndian.AppendUint32(dst, math.Float32bits(v)), nil
}

func (float32Serde) Deserialize(_ string, data []byte) (float32, error) {
	if len(data) != 4 {
		return 0, wrongSize("float32", 4, data)
	}
	return math.Float32frombits(binary.BigEndian.Uint32(data)), nil
}

func (float32Serde) fixedSize() int { return 4 }

// canonicalNaN64 is the one NaN that Java's Double.doubleToLongBits returns.
const canonicalNaN64 = 0x7ff8000000000000

// Float64 returns the Serde of Kafka's DoubleSerde: the 8 bytes of the IEEE 754 binary64 bits,
// big-endian. Any other length is an *Error.
//
// Unlike FloatSerde, Kafka's DoubleSerializer uses Double.doubleToLongBits, which writes every NaN
// as 7ff8000000000000; Serialize does the same (math.NaN() is 7ff8000000000001 in Go), so a NaN
// loses its sign and payload. Deserialize keeps the bits it reads, as Java does.
func Float64() Serde[float64] { return float64Serde{} }

type float64Serde struct{}

func (s float64Serde) Serialize(topic string, v float64) ([]byte, error) {
	return s.AppendSerialize(make([]byte, 0, 8), topic, v)
}

func (float64Serde) AppendSerialize(dst []byte, _ string, v float64) ([]byte, error) {
	bits := math.Float64bits(v)
	if math.IsNaN(v) {
		bits = canonicalNaN64
	}
	return binary.BigEndian.AppendUint64(dst, bits), nil
}

func (float64Serde) Deserialize(_ string, data []byte) (float64, error) {
	if len(data) != 8 {
		return 0, wrongSize("float64", 8, data)
	}
	return math.Float64frombits(binary.BigEndian.Uint64(data)), nil
}

func (float64Serde) fixedSize() int { return 8 }

// Bool returns the Serde of Kafka's BooleanSerde: one byte, 01 for true and 00 for false.
// Like Kafka's BooleanDeserializer, Deserialize rejects any other byte or length with an *Error.
func Bool() Serde[bool] { return boolSerde{} }

type boolSerde struct{}

func (boolSerde) Serialize(_ string, v bool) ([]byte, error) {
	if v {
		return []byte{1}, nil
	}
	return []byte{0}, nil
}

func (boolSerde) AppendSerialize(dst []byte, _ string, v bool) ([]byte, error) {
	if v {
		return append(dst, 1), nil
	}
	return append(dst, 0), nil
}

func (boolSerde) Deserialize(_ string, data []byte) (bool, error) {
	if len(data) != 1 {
		return false, wrongSize("bool", 1, data)
	}
	switch data[0] {
	case 0:
		return false, nil
	case 1:
		return true, nil
	}
	return false, &Error{Serde: "bool", Op: "deserialize", Reason: fmt.Sprintf("want byte 0x00 or 0x01, got 0x%02x", data[0])}
}

func wrongSize(serde string, want int, data []byte) *Error {
	return &Error{Serde: serde, Op: "deserialize", Reason: fmt.Sprintf("want %d bytes, got %d", want, len(data))}
}

// fixedSizer is implemented by serdes whose every value has the same encoded size. List uses it
// to choose Kafka's constant-size strategy, exactly for the serdes that Java's ListSerializer
// knows to be fixed-size (ShortSerde, IntegerSerde, LongSerde, FloatSerde, DoubleSerde, UUIDSerde).
type fixedSizer interface {
	fixedSize() int
}

// fixedSizeOf returns the encoded size of every value of s, or 0 if it varies or is unknown.
func fixedSizeOf(s any) int {
	if f, ok := s.(fixedSizer); ok {
		return f.fixedSize()
	}
	return 0
}
