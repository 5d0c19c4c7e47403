package streamtest_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/rifflestream/riffle/serde"
	"github.com/rifflestream/riffle/stream"
	"github.com/rifflestream/riffle/streamtest"
)

// TestShout is the package doc's example, kept compiling and passing.
func TestShout(t *testing.T) {
	b := stream.NewBuilder()
	in := stream.From(b, "messages", serde.String(), serde.String())
	loud := in.Filter(func(_, msg string) bool { return msg != "" })
	stream.MapValues(loud, func(msg string) (string, error) {
		return strings.ToUpper(msg) + "!", nil
	}).To("shouts", nil, nil)

	d := streamtest.New(t, b, streamtest.Partitions(3))
	messages := streamtest.Input(d, "messages", serde.String(), serde.String())
	shouts := streamtest.Output(d, "shouts", serde.String(), serde.String())

	messages.Pipe("ann", "hi")
	messages.Pipe("bob", "")
	messages.Pipe("cid", "hello")

	got := shouts.ReadKeyValues()
	want := []streamtest.KeyValue[string, string]{{Key: "ann", Value: "HI!"}, {Key: "cid", Value: "HELLO!"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}
