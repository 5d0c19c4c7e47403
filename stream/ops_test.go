package stream_test

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rifflestream/riffle/serde"
	"github.com/rifflestream/riffle/stream"
	"github.com/rifflestream/riffle/streamtest"
	"github.com/rifflestream/riffle/topology"
)

type kv = streamtest.KeyValue[string, string]

func p(k, v string) kv { return kv{Key: k, Value: v} }

// TestStatelessOperators pipes the same input through each operator and compares the output with
// values written by hand from the operator's definition.
func TestStatelessOperators(t *testing.T) {
	input := []kv{p("a", "1"), p("b", "22"), p("c", "333"), p("a", "4444")}
	upper := func(s string) (string, error) { return strings.ToUpper(s), nil }
	tests := []struct {
		name  string
		build func(s stream.Stream[string, string])
		want  []kv
	}{
		{"Filter", func(s stream.Stream[string, string]) {
			s.Filter(func(k, v string) bool { return len(v) > 1 }).To("out", nil, nil)
		}, []kv{p("b", "22"), p("c", "333"), p("a", "4444")}},
		{"FilterNot", func(s stream.Stream[string, string]) {
			s.FilterNot(func(k, v string) bool { return k == "a" }).To("out", nil, nil)
		}, []kv{p("b", "22"), p("c", "333")}},
		{"Map", func(s stream.Stream[string, string]) {
			stream.Map(s, func(k, v string) (string, string, error) { return v, k, nil }).To("out", nil, nil)
		}, []kv{p("1", "a"), p("22", "b"), p("333", "c"), p("4444", "a")}},
		{"MapValues", func(s stream.Stream[string, string]) {
			stream.MapValues(s, func(v string) (string, error) { return v + "!", nil }).To("out", nil, nil)
		}, []kv{p("a", "1!"), p("b", "22!"), p("c", "333!"), p("a", "4444!")}},
		{"MapValuesWithKey", func(s stream.Stream[string, string]) {
			stream.MapValuesWithKey(s, func(k, v string) (string, error) { return k + v, nil }).To("out", nil, nil)
		}, []kv{p("a", "a1"), p("b", "b22"), p("c", "c333"), p("a", "a4444")}},
		{"MapValues to another type", func(s stream.Stream[string, string]) {
			n := stream.MapValues(s, func(v string) (int64, error) { return int64(len(v)), nil })
			stream.MapValues(n, func(v int64) (string, error) { return strconv.FormatInt(v*10, 10), nil }).To("out", nil, serde.String())
		}, []kv{p("a", "10"), p("b", "20"), p("c", "30"), p("a", "40")}},
		{"FlatMap", func(s stream.Stream[string, string]) {
			stream.FlatMap(s, func(k, v string) ([]stream.KeyValue[string, string], error) {
				if len(v) > 2 {
					return nil, nil
				}
				return []stream.KeyValue[string, string]{stream.KV(k+"1", v), stream.KV(k+"2", v)}, nil
			}).To("out", nil, nil)
		}, []kv{p("a1", "1"), p("a2", "1"), p("b1", "22"), p("b2", "22")}},
		{"FlatMapValues", func(s stream.Stream[string, string]) {
			stream.FlatMapValues(s, func(v string) ([]string, error) { return strings.Split(v[:min(len(v), 2)], ""), nil }).To("out", nil, nil)
		}, []kv{p("a", "1"), p("b", "2"), p("b", "2"), p("c", "3"), p("c", "3"), p("a", "4"), p("a", "4")}},
		{"FlatMapValuesWithKey", func(s stream.Stream[string, string]) {
			stream.FlatMapValuesWithKey(s, func(k, v string) ([]string, error) {
				if k != "a" {
					return nil, nil
				}
				return []string{v, v}, nil
			}).To("out", nil, nil)
		}, []kv{p("a", "1"), p("a", "1"), p("a", "4444"), p("a", "4444")}},
		{"SelectKey", func(s stream.Stream[string, string]) {
			stream.SelectKey(s, func(k, v string) (string, error) { return strconv.Itoa(len(v)), nil }).To("out", nil, nil)
		}, []kv{p("1", "1"), p("2", "22"), p("3", "333"), p("4", "4444")}},
		{"Peek sees every record and passes it on", func(s stream.Stream[string, string]) {
			var seen []string
			s.Peek(func(k, v string) { seen = append(seen, k) }).
				Filter(func(k, v string) bool { return len(seen) > 2 }).To("out", nil, nil)
		}, []kv{p("c", "333"), p("a", "4444")}},
		{"Merge keeps both streams", func(s stream.Stream[string, string]) {
			a := s.Filter(func(k, v string) bool { return k == "a" })
			b := stream.MapValues(s.Filter(func(k, v string) bool { return k == "b" }), upper)
			a.Merge([]stream.Stream[string, string]{b}).To("out", nil, nil)
		}, []kv{p("a", "1"), p("b", "22"), p("a", "4444")}},
		{"Split: first matching branch wins, default takes the rest", func(s stream.Stream[string, string]) {
			sp := s.Split(stream.Named("s-"))
			sp.Branch("short", func(k, v string) bool { return len(v) < 3 }).To("out", nil, nil)
			sp.Branch("a", func(k, v string) bool { return k == "a" }).To("out-a", nil, nil)
			stream.MapValues(sp.Default("rest"), upper).To("out", nil, nil)
		}, []kv{p("a", "1"), p("b", "22"), p("c", "333")}},
		{"Split without default drops the rest", func(s stream.Stream[string, string]) {
			sp := s.Split()
			sp.Branch("a", func(k, v string) bool { return k == "a" }).To("out", nil, nil)
		}, []kv{p("a", "1"), p("a", "4444")}},
		{"Repartition", func(s stream.Stream[string, string]) {
			stream.SelectKey(s, func(k, v string) (string, error) { return v[:1], nil }).Repartition().To("out", nil, nil)
		}, []kv{p("1", "1"), p("2", "22"), p("3", "333"), p("4", "4444")}},
		{"ToDynamic", func(s stream.Stream[string, string]) {
			s.ToDynamic(func(r stream.Record[string, string]) (string, error) {
				if r.Key == "a" {
					return "out", nil
				}
				return "other", nil
			}, "by key", nil, nil)
		}, []kv{p("a", "1"), p("a", "4444")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := stream.NewBuilder()
			tt.build(stream.From(b, "in", serde.String(), serde.String()))
			d := streamtest.New(t, b)
			in := streamtest.Input(d, "in", serde.String(), serde.String())
			out := streamtest.Output(d, "out", serde.String(), serde.String())
			for _, r := range input {
				in.Pipe(r.Key, r.Value)
			}
			if got := out.ReadKeyValues(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %v\nwant %v", got, tt.want)
			}
		})
	}
}

func TestProcessTypes(t *testing.T) {
	b := stream.NewBuilder()
	s := stream.From(b, "in", serde.String(), serde.String())
	lengths := stream.Process(s, topology.ProcessorFunc(func(ctx topology.Context[string, int64], r topology.Record[string, string]) error {
		return ctx.Forward(topology.DeriveValue(r, int64(len(r.Value))))
	}))
	lengths.To("out", serde.String(), serde.Int64())
	d := streamtest.New(t, b)
	streamtest.Input(d, "in", serde.String(), serde.String()).Pipe("k", "hello")
	got := streamtest.Output(d, "out", serde.String(), serde.Int64()).ReadKeyValues()
	if want := []streamtest.KeyValue[string, int64]{{Key: "k", Value: 5}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// Headers and timestamps flow through stateless operators to the output unchanged.
func TestHeadersAndTimestampsFlow(t *testing.T) {
	b := stream.NewBuilder()
	s := stream.From(b, "in", serde.String(), serde.String())
	m := stream.MapValues(s.Filter(func(k, v string) bool { return true }), func(v string) (int32, error) { return int32(len(v)), nil })
	stream.SelectKey(m, func(k string, v int32) (string, error) { return k + "!", nil }).Repartition(stream.WithValueSerde(serde.Int32())).
		To("out", nil, serde.Int32())
	d := streamtest.New(t, b, streamtest.Partitions(3))
	ts := time.Date(2026, 3, 1, 12, 0, 0, 123_000_000, time.UTC)
	h := topology.Headers{{Key: "trace", Value: []byte("t-1")}, {Key: "trace", Value: []byte("t-2")}}
	streamtest.Input(d, "in", serde.String(), serde.String()).PipeRecord(topology.Record[string, string]{Key: "k", Value: "abc", Timestamp: ts, Headers: h})
	recs := streamtest.Output(d, "out", serde.String(), serde.Int32()).ReadRecords()
	if len(recs) != 1 {
		t.Fatalf("got %d records", len(recs))
	}
	r := recs[0]
	if r.Key != "k!" || r.Value != 3 || !r.Timestamp.Equal(ts) || !reflect.DeepEqual(r.Headers, h) {
		t.Fatalf("got key %q value %d ts %v headers %v; want k!, 3, %v, %v", r.Key, r.Value, r.Timestamp, r.Headers, ts, h)
	}
}

// Kafka nulls travel through operators that keep the record and are written as null again;
// operators that make a new value make it non-null.
func TestNullsFlow(t *testing.T) {
	b := stream.NewBuilder()
	s := stream.From(b, "in", serde.String(), serde.String())
	s.Filter(func(k, v string) bool { return true }).Repartition().To("kept", nil, nil)
	stream.MapValues(s, func(v string) (string, error) { return "was:" + v, nil }).To("mapped", nil, nil)
	d := streamtest.New(t, b)
	in := streamtest.Input(d, "in", serde.String(), serde.String())
	in.PipeTombstone("gone")
	in.PipeRecord(topology.Record[string, string]{Value: "keyless"}.WithNullKey())

	kept := streamtest.Output(d, "kept", serde.String(), serde.String()).ReadRecords()
	if len(kept) != 2 || !kept[0].ValueIsNull() || kept[0].Key != "gone" || !kept[1].KeyIsNull() || kept[1].Value != "keyless" {
		t.Fatalf("kept: %+v", kept)
	}
	mapped := streamtest.Output(d, "mapped", serde.String(), serde.String()).ReadRecords()
	if len(mapped) != 2 || mapped[0].ValueIsNull() || mapped[0].Value != "was:" || !mapped[1].KeyIsNull() {
		t.Fatalf("mapped: %+v", mapped)
	}
}

// An error from a user function is a processing error naming the node and the input record;
// with the default handler it stops processing.
func TestUserErrorNamesNodeAndRecord(t *testing.T) {
	b := stream.NewBuilder()
	s := stream.From(b, "in", serde.String(), serde.String())
	stream.MapValues(s, func(v string) (int, error) {
		n, err := strconv.Atoi(v)
		return n, err
	}, stream.Named("parse")).To("out", serde.String(), serde.JSON[int]())
	d := streamtest.New(t, b)
	in := streamtest.Input(d, "in", serde.String(), serde.String())
	in.Pipe("k", "1")
	err := in.TryPipe("k", "x")
	re, ok := topology.AsRecordError(err)
	if !ok {
		t.Fatalf("want a RecordError, got %v", err)
	}
	if re.Stage != topology.StageProcess || re.Node != "parse" || re.Origin != (topology.Origin{Topic: "in", Partition: 0, Offset: 1}) {
		t.Fatalf("got %+v", re)
	}
	var numErr *strconv.NumError
	if !errors.As(err, &numErr) {
		t.Fatalf("the user's error is not in the chain: %v", err)
	}
	for _, want := range []string{`"parse"`, `topic "in" partition 0 offset 1`, "task 0_0", "invalid syntax"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	// The driver has stopped: later records are refused with the same error.
	if err2 := in.TryPipe("k", "2"); err2 == nil || err2.Error() != err.Error() {
		t.Fatalf("after a fatal error: %v", err2)
	}
}

// A panic in user code is recovered and handled like an error, with the node and coordinates.
func TestPanicIsRecovered(t *testing.T) {
	b := stream.NewBuilder()
	s := stream.From(b, "in", serde.String(), serde.String())
	s.Filter(func(k, v string) bool {
		var m map[string]int
		m[k]++ // nil map write: panics
		return true
	}, stream.Named("boom")).To("out", nil, nil)
	d := streamtest.New(t, b, streamtest.ErrorHandlers(topology.ErrorHandlers{Processing: topology.Skip}))
	in := streamtest.Input(d, "in", serde.String(), serde.String())
	in.Pipe("k", "v")
	in.Pipe("k", "v")
	task, _ := d.Task(topology.TaskID{})
	if got := task.Metrics().SkippedAt(topology.StageProcess); got != 2 {
		t.Fatalf("skipped %d, want 2", got)
	}
	b2 := stream.NewBuilder()
	stream.From(b2, "in", serde.String(), serde.String()).Filter(func(k, v string) bool { panic("bad " + k) }, stream.Named("boom")).To("out", nil, nil)
	d2 := streamtest.New(t, b2)
	err := streamtest.Input(d2, "in", serde.String(), serde.String()).TryPipe("k", "v")
	re, ok := topology.AsRecordError(err)
	if !ok || !re.Panic || re.Node != "boom" || !strings.Contains(re.PanicStack, "ops_test.go") || !strings.Contains(err.Error(), "bad k") {
		t.Fatalf("got %v (%+v)", err, re)
	}
}

func TestErrorHandlers(t *testing.T) {
	build := func() *stream.Builder {
		b := stream.NewBuilder()
		s := stream.From(b, "in", serde.String(), serde.Int64(), stream.Named("src"))
		stream.MapValues(s, func(v int64) (int64, error) {
			if v < 0 {
				return 0, fmt.Errorf("negative: %d", v)
			}
			return v * 2, nil
		}, stream.Named("double")).To("out", nil, nil)
		return b
	}
	pipe := func(d *streamtest.Driver) {
		d.PipeRaw("in", 0, []byte("a"), []byte{0, 0, 0, 0, 0, 0, 0, 1}, streamtest.DefaultStartTime, nil)                                                              // 1
		d.PipeRaw("in", 0, []byte("b"), []byte{1, 2, 3}, streamtest.DefaultStartTime, nil)                                                                             // bad bytes
		d.PipeRaw("in", 0, []byte("c"), []byte{255, 255, 255, 255, 255, 255, 255, 255}, streamtest.DefaultStartTime, topology.Headers{{Key: "h", Value: []byte("x")}}) // -1: process error
		d.PipeRaw("in", 0, []byte("d"), []byte{0, 0, 0, 0, 0, 0, 0, 3}, streamtest.DefaultStartTime, nil)                                                              // 3
	}

	t.Run("skip counts and drops only the bad records", func(t *testing.T) {
		d := streamtest.New(t, build(), streamtest.ErrorHandlers(topology.ErrorHandlers{Deserialization: topology.Skip, Processing: topology.Skip}))
		pipe(d)
		got := streamtest.Output(d, "out", serde.String(), serde.Int64()).ReadKeyValues()
		if want := []streamtest.KeyValue[string, int64]{{Key: "a", Value: 2}, {Key: "d", Value: 6}}; !reflect.DeepEqual(got, want) {
			t.Fatalf("got %v, want %v", got, want)
		}
		m := d.Tasks()[0].Metrics()
		if m.SkippedAt(topology.StageDeserialize) != 1 || m.SkippedAt(topology.StageProcess) != 1 || m.DeadLettered.Load() != 0 {
			t.Fatalf("metrics: deserialize %d process %d dlq %d", m.SkippedAt(topology.StageDeserialize), m.SkippedAt(topology.StageProcess), m.DeadLettered.Load())
		}
	})

	t.Run("dead-letter sends the input record with error headers", func(t *testing.T) {
		d := streamtest.New(t, build(), streamtest.ErrorHandlers(topology.ErrorHandlers{
			Deserialization: topology.DeadLetter, Processing: topology.DeadLetter, DeadLetterTopic: "dlq"}))
		pipe(d)
		if got := streamtest.Output(d, "out", serde.String(), serde.Int64()).ReadValues(); !reflect.DeepEqual(got, []int64{2, 6}) {
			t.Fatalf("out: %v", got)
		}
		dlq := streamtest.Output(d, "dlq", serde.String(), serde.Bytes()).ReadRecords()
		if len(dlq) != 2 {
			t.Fatalf("dlq has %d records, want 2", len(dlq))
		}
		header := func(r topology.Record[string, []byte], k string) string {
			v, _ := r.Headers.Get(k)
			return string(v)
		}
		first, second := dlq[0], dlq[1]
		if first.Key != "b" || !reflect.DeepEqual(first.Value, []byte{1, 2, 3}) ||
			header(first, topology.HeaderErrorStage) != "deserialize" || header(first, topology.HeaderErrorNode) != "src" ||
			header(first, topology.HeaderSourceTopic) != "in" || header(first, topology.HeaderSourcePart) != "0" ||
			header(first, topology.HeaderSourceOffset) != "1" || header(first, topology.HeaderErrorTask) != "0_0" ||
			!strings.Contains(header(first, topology.HeaderErrorMessage), "want 8 bytes, got 3") {
			t.Fatalf("first dead letter: %+v", first)
		}
		if second.Key != "c" || header(second, "h") != "x" || header(second, topology.HeaderErrorStage) != "process" ||
			header(second, topology.HeaderErrorNode) != "double" || header(second, topology.HeaderSourceOffset) != "2" ||
			!strings.Contains(header(second, topology.HeaderErrorMessage), "negative: -1") {
			t.Fatalf("second dead letter: %+v", second)
		}
		if m := d.Tasks()[0].Metrics(); m.DeadLettered.Load() != 2 || m.SkippedTotal() != 2 {
			t.Fatalf("dead-lettered %d skipped %d", m.DeadLettered.Load(), m.SkippedTotal())
		}
	})

	t.Run("fail stops at the first bad record", func(t *testing.T) {
		d := streamtest.New(t, build())
		if err := d.PipeRaw("in", 0, []byte("b"), []byte{1}, streamtest.DefaultStartTime, nil); err == nil {
			t.Fatal("no error")
		} else if re, ok := topology.AsRecordError(err); !ok || re.Stage != topology.StageDeserialize || re.Node != "src" {
			t.Fatalf("got %v", err)
		}
	})

	t.Run("a handler may decide per error", func(t *testing.T) {
		var seen []string
		h := func(re *topology.RecordError) topology.Action {
			seen = append(seen, string(re.Stage)+"@"+strconv.FormatInt(re.Origin.Offset, 10))
			if re.Stage == topology.StageDeserialize {
				return topology.ActionSkip
			}
			return topology.ActionFail
		}
		d := streamtest.New(t, build(), streamtest.ErrorHandlers(topology.ErrorHandlers{Deserialization: h, Processing: h}))
		d.PipeRaw("in", 0, []byte("b"), []byte{1}, streamtest.DefaultStartTime, nil)
		if err := d.PipeRaw("in", 0, []byte("c"), []byte{255, 255, 255, 255, 255, 255, 255, 255}, streamtest.DefaultStartTime, nil); err == nil {
			t.Fatal("no error for the failing record")
		}
		if want := []string{"deserialize@0", "process@1"}; !reflect.DeepEqual(seen, want) {
			t.Fatalf("handler saw %v, want %v", seen, want)
		}
	})
}

// Records with a negative timestamp are rejected like bad bytes, unless an extractor says otherwise.
func TestTimestampExtraction(t *testing.T) {
	b := stream.NewBuilder()
	stream.From(b, "in", serde.String(), serde.Int64(), stream.WithTimestampExtractor(
		func(k string, v int64, recordTime, partitionTime time.Time) (time.Time, error) {
			if v < 0 {
				return time.Time{}, errors.New("no event time")
			}
			return time.UnixMilli(v), nil
		})).To("out", nil, nil)
	d := streamtest.New(t, b, streamtest.ErrorHandlers(topology.ErrorHandlers{Deserialization: topology.Skip}))
	in := streamtest.Input(d, "in", serde.String(), serde.Int64())
	in.Pipe("a", 5000)
	in.Pipe("b", -1)
	recs := streamtest.Output(d, "out", serde.String(), serde.Int64()).ReadRecords()
	if len(recs) != 1 || recs[0].Timestamp.UnixMilli() != 5000 {
		t.Fatalf("got %+v", recs)
	}
	if st, _ := d.Tasks()[0].StreamTime(); st.UnixMilli() != 5000 {
		t.Fatalf("stream time %v", st)
	}

	b2 := stream.NewBuilder()
	stream.From(b2, "in", serde.String(), serde.String()).To("out", nil, nil)
	d2 := streamtest.New(t, b2)
	err := d2.PipeRaw("in", 0, []byte("k"), []byte("v"), time.UnixMilli(-1), nil)
	if err == nil || !strings.Contains(err.Error(), "invalid timestamp -1") {
		t.Fatalf("negative timestamp: %v", err)
	}
}

// With a NullAware serde (Nullable), null is a value user code sees: nil.
func TestNullableValues(t *testing.T) {
	b := stream.NewBuilder()
	s := stream.From(b, "in", serde.String(), serde.Nullable(serde.Int64()))
	stream.MapValues(s, func(v *int64) (string, error) {
		if v == nil {
			return "null", nil
		}
		return strconv.FormatInt(*v, 10), nil
	}).To("out", nil, serde.String())
	s.To("copy", nil, nil)
	d := streamtest.New(t, b)
	in := streamtest.Input(d, "in", serde.String(), serde.Nullable(serde.Int64()))
	seven := int64(7)
	in.Pipe("a", &seven)
	in.Pipe("b", nil)
	if got := streamtest.Output(d, "out", serde.String(), serde.String()).ReadValues(); !reflect.DeepEqual(got, []string{"7", "null"}) {
		t.Fatalf("got %v", got)
	}
	copies := streamtest.Output(d, "copy", serde.String(), serde.Nullable(serde.Int64())).ReadRecords()
	if len(copies) != 2 || *copies[0].Value != 7 || !copies[1].ValueIsNull() || copies[1].Value != nil {
		t.Fatalf("copies: %+v", copies)
	}
}
