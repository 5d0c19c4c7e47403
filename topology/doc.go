// Package topology is Riffle's processor graph and the runtime of one task.
//
// A Topology is a graph of source, processor and sink nodes. Package stream builds one from its
// typed DSL; the Processor API here builds one by hand, with typed node handles so the compiler
// checks that each processor receives what its parents forward:
//
//	t := topology.New()
//	src := topology.AddSource(t, "src", []string{"orders"}, serde.String(), serde.JSON[Order]())
//	big := topology.AddProcessor(t, "big", topology.ProcessorFunc(
//		func(ctx topology.Context[string, Order], rec topology.Record[string, Order]) error {
//			if rec.Value.Total < 1000 {
//				return nil
//			}
//			return ctx.Forward(rec)
//		}), src)
//	topology.AddSink(t, "out", "big-orders", serde.String(), serde.JSON[Order](), []topology.Node[string, Order]{big})
//	fmt.Println(t.Describe())
//
// The topology splits into sub-topologies (connected parts of the graph; topics cut it), and each
// sub-topology runs as one task per partition of its source topics, named "<subtopology>_<partition>".
//
// A Task is I/O free: a driver feeds it raw records and receives the records it emits through a
// Collector. The consumer-group engine (internal/engine) drives tasks from Kafka; the streamtest
// package drives them from memory. One execution path, two drivers.
//
// Errors are values tied to records (RecordError: stage, node, task, topic, partition, offset) and
// go through ErrorHandlers that fail, skip, or dead-letter; panics in user code are recovered and
// handled the same way.
package topology
