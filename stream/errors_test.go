package stream_test

import (
	"strings"
	"testing"
	"time"

	"github.com/rifflestream/riffle/serde"
	"github.com/rifflestream/riffle/stream"
	"github.com/rifflestream/riffle/topology"
)

// DSL misuse is a build error that names the node, never a panic.
func TestMisuseIsABuildError(t *testing.T) {
	tests := []struct {
		name  string
		build func(b *stream.Builder)
		want  []string // substrings of the joined error
	}{
		{"nil predicate", func(b *stream.Builder) {
			stream.From(b, "in", serde.String(), serde.String()).Filter(nil, stream.Named("f")).To("out", nil, nil)
		}, []string{`Filter "f": the predicate is nil`}},
		{"nil mapper", func(b *stream.Builder) {
			stream.MapValues[string, string, int](stream.From(b, "in", serde.String(), serde.String()), nil)
		}, []string{`MapValues "KSTREAM-MAPVALUES-0000000001": the function is nil`}},
		{"missing serde for a sink", func(b *stream.Builder) {
			s := stream.From(b, "in", serde.String(), serde.String())
			stream.MapValues(s, func(v string) (int, error) { return len(v), nil }).To("out", nil, nil, stream.Named("out-sink"))
		}, []string{`To "out-sink": needs a key and a value serde`}},
		{"missing serde for a repartition", func(b *stream.Builder) {
			s := stream.From(b, "in", serde.String(), serde.String())
			stream.SelectKey(s, func(k, v string) (int, error) { return len(v), nil }).Repartition(stream.Named("by-len"))
		}, []string{`Repartition "by-len": the repartition topic needs a key (WithKeySerde) serde`}},
		{"option of the wrong type", func(b *stream.Builder) {
			stream.From(b, "in", serde.String(), serde.String()).Repartition(stream.WithKeySerde(serde.Int64()), stream.Named("r"))
		}, []string{`Repartition "r": the key serde is a serde.int64Serde, which is not a serde.Serde[string]`}},
		{"extractor of the wrong type", func(b *stream.Builder) {
			stream.From(b, "in", serde.String(), serde.String(), stream.Named("src"), stream.WithTimestampExtractor(
				func(k string, v int64, _, _ time.Time) (time.Time, error) { return time.Time{}, nil }))
		}, []string{`From "src": the timestamp extractor is a topology.TimestampExtractor[string,int64], which is not a topology.TimestampExtractor[string,string]`}},
		{"option an operation does not take", func(b *stream.Builder) {
			stream.From(b, "in", serde.String(), serde.String()).Filter(func(k, v string) bool { return true }, stream.WithPartitions(3))
		}, []string{"Filter does not take WithPartitions"}},
		{"duplicate node names", func(b *stream.Builder) {
			s := stream.From(b, "in", serde.String(), serde.String())
			s.Filter(func(k, v string) bool { return true }, stream.Named("x"))
			s.Filter(func(k, v string) bool { return true }, stream.Named("x"))
		}, []string{`processor "x": a node with this name already exists`}},
		{"a topic read twice", func(b *stream.Builder) {
			stream.From(b, "in", serde.String(), serde.String(), stream.Named("a"))
			stream.From(b, "in", serde.String(), serde.String(), stream.Named("b"))
		}, []string{`source "b": topic "in" is already read by source "a"`}},
		{"branch after default", func(b *stream.Builder) {
			sp := stream.From(b, "in", serde.String(), serde.String()).Split(stream.Named("sp-"))
			sp.Default("rest")
			sp.Branch("late", func(k, v string) bool { return true })
		}, []string{`Split "sp-": branch "late": added after Default`}},
		{"a failed stream reports where it is used", func(b *stream.Builder) {
			s := stream.From(b, "in", serde.String(), serde.String()).Filter(nil)
			s.To("out", nil, nil)
		}, []string{"the predicate is nil", "To on a stream whose declaration failed"}},
		{"an invalid name", func(b *stream.Builder) {
			stream.From(b, "in", serde.String(), serde.String(), stream.Named("bad name"))
		}, []string{`source name "bad name": use only letters, digits`}},
		{"a store nobody uses", func(b *stream.Builder) {
			stream.From(b, "in", serde.String(), serde.String()).Foreach(func(k, v string) error { return nil })
			stream.Process(stream.From(b, "in2", serde.String(), serde.String()), topology.ProcessorFunc(
				func(ctx topology.Context[string, string], r topology.Record[string, string]) error { return nil }), stream.WithStores("nope"))
		}, []string{`no store "nope"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := stream.NewBuilder()
			tt.build(b)
			_, err := b.Build()
			if err == nil {
				t.Fatal("Build succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestZeroStreamDoesNotPanic(t *testing.T) {
	var s stream.Stream[string, string]
	s.Filter(func(k, v string) bool { return true }).To("out", serde.String(), serde.String())
	stream.MapValues(s, func(v string) (string, error) { return v, nil })
	s.Split().Branch("x", func(k, v string) bool { return true })
}
