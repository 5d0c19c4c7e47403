// Package avro provides Avro serdes for Riffle, plain or with a schema registry in the Confluent
// wire format, so records interoperate with Java's KafkaAvroSerializer and KafkaAvroDeserializer.
//
// Three constructors, one per way of holding a record in Go, each returning a *Serde[T] that
// implements serde.Serde[T]:
//
//	avro.Generic(schema, opts...)                  // map[string]any, goavro's native form
//	avro.Struct[Order](schema, opts...)            // a struct, mapped by `avro:"field"` tags
//	avro.Mapped(schema, toAvro, fromAvro, opts...) // any T, through two functions you write
//
// Without options a serde writes plain Avro binary. With SchemaRegistry it writes the wire
// format (magic byte 0, the schema id as 4 bytes big-endian, the Avro payload), registers its
// schema under the subject on first use (AutoRegisterSchemas, SubjectName, ForKeys), and reads
// any record whose writer's schema the registry holds, resolving it to the serde's own schema:
//
//	rc, _ := sr.NewClient(sr.URLs("http://registry:8081"))
//	orders, err := avro.Struct[Order](orderSchema, avro.SchemaRegistry(rc))
//	b, err := orders.Serialize("orders", Order{ID: "o-1", Amount: 995}) // 0x00, id, payload
//	o, err := orders.Deserialize("orders", b)
//
// # Schema resolution
//
// Deserialize reads data written with an older or newer schema (the writer's) into the serde's
// schema (the reader's) per the Avro specification: record fields are matched by name or the
// reader field's aliases, in any order; writer fields the reader lacks are skipped; reader fields
// the writer lacks take their defaults; int promotes to long, float and double, long to float
// and double, float to double; string and bytes read as each other; enum symbols map by name,
// unknown ones to the reader's enum default; unions resolve branch by branch (writer union to
// reader union, to a single type, or a single type to a reader union); named types match by
// unqualified name or the reader's aliases; all of this recursively, through arrays, maps and
// recursive types. A resolution that can never succeed fails with ErrIncompatibleSchema when the
// writer's schema is first seen; one that fails only for some values (an enum symbol or union
// branch the reader cannot take) fails with ErrIncompatibleSchema for those values.
//
// Not covered: schema references (a registry schema that imports others), aliases on the
// writer's side (the spec only asks for the reader's), and the logical types' own evolution
// rules (a logical type reads as its underlying type: a decimal's scale is not converted).
//
// # Keys
//
// Serialize is deterministic: the same value always gives the same bytes (map entries are
// written sorted by key), so a Serde serves as a key serde for grouping and joins. Use ForKeys
// so the topic-name strategies use the "<topic>-key" subject.
//
// # Errors and limits
//
// Every error from Serialize and Deserialize is an *Error naming the topic, and the subject,
// schema id and field where they apply; errors.Is finds its class (ErrBadMagicByte,
// ErrTruncated, ErrMalformed, ErrUnknownSchemaID, ErrIncompatibleSchema,
// ErrSchemaNotRegistered). Bad bytes never panic: before goavro sees them, every length and
// block count is checked against the bytes left, nesting is bounded to 10000 levels and items
// that encode to no bytes at all (nulls, empty records) to 65536 per value.
package avro
