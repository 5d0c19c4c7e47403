// Package serde converts keys and values between Go types and Kafka record bytes.
//
// The standard serdes are byte-compatible with Kafka's Java serdes (org.apache.kafka.common.
// serialization), so Java consumers read what Riffle writes and the other way round:
//
//	serde.String()   // StringSerde: UTF-8
//	serde.Bytes()    // ByteArraySerde: the bytes as they are
//	serde.Int32()    // IntegerSerde: 4 bytes, big-endian
//	serde.Int64()    // LongSerde: 8 bytes, big-endian
//	serde.Float64()  // DoubleSerde: IEEE 754 bits, big-endian
//	serde.JSON[T]()  // encoding/json
//
// Write your own with New, or implement Serde. Bad bytes give an *Error, never a panic.
package serde
