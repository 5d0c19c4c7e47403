package stream_test

import (
	"fmt"
	"strings"

	"github.com/rifflestream/riffle/serde"
	"github.com/rifflestream/riffle/stream"
	"github.com/rifflestream/riffle/streamtest"
)

// A stateless pipeline: split lines into words, keep the long ones, upper-case them.
func Example() {
	b := stream.NewBuilder()
	lines := stream.From(b, "lines", serde.String(), serde.String())
	words := stream.FlatMapValues(lines, func(line string) ([]string, error) { return strings.Fields(line), nil })
	long := words.Filter(func(_, w string) bool { return len(w) > 3 })
	stream.MapValues(long, func(w string) (string, error) { return strings.ToUpper(w), nil }).
		To("long-words", serde.String(), serde.String())

	d, err := streamtest.Start(b)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Close()
	streamtest.Input(d, "lines", serde.String(), serde.String()).Pipe("doc-1", "the quick brown fox")
	for _, kv := range streamtest.Output(d, "long-words", serde.String(), serde.String()).ReadKeyValues() {
		fmt.Println(kv.Key, kv.Value)
	}
	// Output:
	// doc-1 QUICK
	// doc-1 BROWN
}

// Split routes each record to the first branch that takes it.
func ExampleStream_Split() {
	b := stream.NewBuilder()
	events := stream.From(b, "events", serde.String(), serde.Int64())
	sp := events.Split(stream.Named("route-"))
	sp.Branch("negative", func(_ string, v int64) bool { return v < 0 }).To("rejected", nil, nil)
	sp.Branch("large", func(_ string, v int64) bool { return v >= 1000 }).To("large", nil, nil)
	sp.Default("rest").To("small", nil, nil)

	d, _ := streamtest.Start(b)
	defer d.Close()
	in := streamtest.Input(d, "events", serde.String(), serde.Int64())
	for _, v := range []int64{5, -1, 1000, 42} {
		in.Pipe("k", v)
	}
	for _, topic := range []string{"rejected", "large", "small"} {
		fmt.Println(topic, streamtest.Output(d, topic, serde.String(), serde.Int64()).ReadValues())
	}
	// Output:
	// rejected [-1]
	// large [1000]
	// small [5 42]
}

// DSL mistakes are build errors that name the node, never panics.
func ExampleBuilder_Build() {
	b := stream.NewBuilder()
	s := stream.From(b, "in", serde.String(), serde.String())
	lengths := stream.MapValues(s, func(v string) (int, error) { return len(v), nil })
	lengths.To("out", nil, nil, stream.Named("lengths-sink")) // no serde for int values
	_, err := b.Build()
	fmt.Println(err)
	// Output:
	// stream: To "lengths-sink": needs a key and a value serde: the stream's are not known after a type-changing operation, so pass them
}

// Describe prints the topology in Kafka Streams' format.
func ExampleBuilder_Describe() {
	b := stream.NewBuilder()
	clicks := stream.From(b, "clicks", serde.String(), serde.String())
	byPage := stream.SelectKey(clicks, func(user, page string) (string, error) { return page, nil }, stream.Named("by-page"))
	byPage.Repartition(stream.Named("clicks-by-page")).To("page-clicks", nil, nil)
	fmt.Print(b.Describe())
	// Output:
	// Topologies:
	//    Sub-topology: 0
	//     Source: KSTREAM-SOURCE-0000000000 (topics: [clicks])
	//       --> by-page
	//     Processor: by-page (stores: [])
	//       --> clicks-by-page-repartition-filter
	//       <-- KSTREAM-SOURCE-0000000000
	//     Processor: clicks-by-page-repartition-filter (stores: [])
	//       --> clicks-by-page-repartition-sink
	//       <-- by-page
	//     Sink: clicks-by-page-repartition-sink (topic: clicks-by-page-repartition)
	//       <-- clicks-by-page-repartition-filter
	//
	//   Sub-topology: 1
	//     Source: clicks-by-page-repartition-source (topics: [clicks-by-page-repartition])
	//       --> KSTREAM-SINK-0000000006
	//     Sink: KSTREAM-SINK-0000000006 (topic: page-clicks)
	//       <-- clicks-by-page-repartition-source
}

// A stateless app whose tasks run on the goroutine that polls Kafka: for small instances (one or
// two cores) scaled with replicas. NewApp connects to nothing; App.Run would.
func ExampleInlineStatelessTasks() {
	build := func() *stream.Builder {
		b := stream.NewBuilder()
		stream.From(b, "clicks", serde.String(), serde.String()).
			Filter(func(_, url string) bool { return strings.HasPrefix(url, "https://") }).
			To("secure-clicks", serde.String(), serde.String())
		return b
	}
	app, err := stream.NewApp(build(), stream.AppID("clicks"), stream.Brokers("localhost:9092"),
		stream.InlineStatelessTasks())
	fmt.Println(app != nil, err)

	// Exactly-once keeps the task goroutines: NewApp says so.
	_, err = stream.NewApp(build(), stream.AppID("clicks"), stream.Brokers("localhost:9092"),
		stream.InlineStatelessTasks(), stream.ProcessingGuarantee(stream.ExactlyOnce))
	fmt.Println(err)
	// Output:
	// true <nil>
	// stream: NewApp: InlineStatelessTasks is for at-least-once processing; it cannot be used with ExactlyOnce
}
