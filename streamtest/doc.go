// Package streamtest runs a topology deterministically in memory, without a broker: Riffle's
// TopologyTestDriver, able to use several partitions per topic.
//
// A whole test of a stateless topology:
//
//	func TestShout(t *testing.T) {
//		b := stream.NewBuilder()
//		in := stream.From(b, "messages", serde.String(), serde.String())
//		loud := in.Filter(func(_, msg string) bool { return msg != "" })
//		stream.MapValues(loud, func(msg string) (string, error) {
//			return strings.ToUpper(msg) + "!", nil
//		}).To("shouts", nil, nil)
//
//		d := streamtest.New(t, b, streamtest.Partitions(3))
//		messages := streamtest.Input(d, "messages", serde.String(), serde.String())
//		shouts := streamtest.Output(d, "shouts", serde.String(), serde.String())
//
//		messages.Pipe("ann", "hi")
//		messages.Pipe("bob", "")
//		messages.Pipe("cid", "hello")
//
//		got := shouts.ReadKeyValues()
//		want := []streamtest.KeyValue[string, string]{{Key: "ann", Value: "HI!"}, {Key: "cid", Value: "HELLO!"}}
//		if !reflect.DeepEqual(got, want) {
//			t.Fatalf("got %v, want %v", got, want)
//		}
//	}
//
// Each piped record is processed at once, through every sub-topology (repartition topics are
// followed), then every task commits, so outputs are there to read. Keyed records land in the
// partition Kafka's default partitioner would choose, so tasks see what they would see on Kafka.
// The driver runs the same Task executor as the Kafka engine.
package streamtest
