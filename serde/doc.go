// Package serde converts keys and values between Go types and Kafka record bytes.
//
// The standard serdes are byte-compatible with Kafka's Java serdes
// (org.apache.kafka.common.serialization), so Java consumers read what Riffle writes and the other
// way round:
//
//	serde.String()   // StringSerde: UTF-8
//	serde.Bytes()    // ByteArraySerde: the bytes as they are
//	serde.Int16()    // ShortSerde: 2 bytes, big-endian
//	serde.Int32()    // IntegerSerde: 4 bytes, big-endian
//	serde.Int64()    // LongSerde: 8 bytes, big-endian
//	serde.Float32()  // FloatSerde: IEEE 754 bits, big-endian
//	serde.Float64()  // DoubleSerde: IEEE 754 bits, big-endian, every NaN as 7ff8000000000000
//	serde.Bool()     // BooleanSerde: 01 or 00
//	serde.UUID[U]()  // UUIDSerde: the 36-character text, for any U ~[16]byte
//	serde.List(s)    // ListSerde: a list of values of s
//	serde.JSON[T]()  // encoding/json
//
// Kafka null is not a value of these serdes: Riffle's runtime handles null records itself (see
// Serde). Nullable(s) makes it one, as a nil pointer, for Java-style nullable keys, values and list
// elements.
//
// Write your own with New, or implement Serde. Bad bytes give an *Error, never a panic.
//
// # Compatibility with Java
//
// The tests check every serde against vectors printed by Kafka's own Java serdes
// (testdata/java_vectors.txt; testdata/java/SerdeVectors.java writes it), both ways: Serialize
// gives Java's bytes, and Deserialize gives Java's value, or an error where Java throws. Riffle
// departs from Java on purpose in three places:
//   - String keeps bytes that are not UTF-8 as they are; Java's StringDeserializer replaces each
//     malformed sequence with U+FFFD.
//   - UUID reads only the canonical 8-4-4-4-12 text; Java's UUID.fromString also takes forms like
//     "1-2-3-4-5", which no Kafka serializer writes.
//   - Bytes writes a nil slice as an empty value, where Java's ByteArraySerializer writes null for
//     a null array: Go code makes nil slices by accident, tombstones should be on purpose. Write
//     Kafka null with Nullable.
package serde
