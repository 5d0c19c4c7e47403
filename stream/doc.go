// Package stream is Riffle's typed DSL for stream processing on Kafka, and the App that runs it.
//
// Declare a topology with a Builder: read topics as streams, transform them, write them out.
// Methods keep the key and value types (Filter, Peek, Merge, Split, Repartition, To); functions
// change them (Map, MapValues, FlatMap, FlatMapValues, SelectKey, Process), because Go has no
// generic methods. Functions given to operations return errors, which go to the processing error
// handler with the record's coordinates:
//
//	b := stream.NewBuilder()
//	orders := stream.From(b, "orders", serde.String(), serde.JSON[Order]())
//	big := orders.Filter(func(_ string, o Order) bool { return o.Total >= 1000 })
//	totals := stream.MapValues(big, func(o Order) (float64, error) { return o.Total, nil })
//	totals.To("big-order-totals", nil, serde.Float64())
//
// Options (Named, WithKeySerde, WithPartitions, ...) are the same type for every operation; an
// operation reports an option it does not take, or one of the wrong type, as a build error. DSL
// mistakes never panic: Builder.Build returns them joined, each naming its node.
//
// Node names and internal topic names follow Kafka Streams ("KSTREAM-FILTER-0000000001",
// "<appID>-<name>-repartition"), so Describe output reads the same.
//
// Test a topology without a broker with package streamtest.
package stream
