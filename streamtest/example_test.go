package streamtest_test

import (
	"fmt"
	"strings"

	"github.com/rifflestream/riffle/serde"
	"github.com/rifflestream/riffle/stream"
	"github.com/rifflestream/riffle/streamtest"
)

// Outside a test, Start returns errors instead of failing one. In a test, use New(t, ...).
func ExampleStart() {
	b := stream.NewBuilder()
	s := stream.From(b, "in", serde.String(), serde.String())
	stream.MapValues(s, func(v string) (string, error) { return strings.ToUpper(v), nil }).To("out", nil, nil)

	d, err := streamtest.Start(b, streamtest.Partitions(4))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Close()
	streamtest.Input(d, "in", serde.String(), serde.String()).Pipe("user-42", "hello")
	for _, r := range streamtest.Output(d, "out", serde.String(), serde.String()).ReadRecords() {
		fmt.Printf("%s=%s in partition %d\n", r.Key, r.Value, r.Origin.Partition)
	}
	// Output:
	// user-42=HELLO in partition 0
}
