package stream_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/rifflestream/riffle/serde"
	"github.com/rifflestream/riffle/state"
	"github.com/rifflestream/riffle/stream"
	"github.com/rifflestream/riffle/streamtest"
	"github.com/rifflestream/riffle/topology"
)

type kvi = streamtest.KeyValue[string, int64]

func wordCount(opts ...stream.Option) *stream.Builder {
	b := stream.NewBuilder()
	lines := stream.From(b, "lines", serde.String(), serde.String())
	words := stream.FlatMapValues(lines, func(l string) ([]string, error) { return strings.Fields(strings.ToLower(l)), nil })
	counts := stream.Count(stream.GroupBy(words, func(_, w string) (string, error) { return w, nil }, serde.String()),
		append([]stream.Option{stream.Materialized("counts")}, opts...)...)
	counts.ToStream().To("word-counts", nil, nil)
	return b
}

func TestCountWithCaching(t *testing.T) {
	d := streamtest.New(t, wordCount(), streamtest.Partitions(3))
	in := streamtest.Input(d, "lines", serde.String(), serde.String())
	out := streamtest.Output(d, "word-counts", serde.String(), serde.Int64())
	// streamtest commits after each piped record: with caching, one update per key per commit.
	in.Pipe("l1", "a b a")
	if got := streamtest.LastByKey(out); !reflect.DeepEqual(got, map[string]int64{"a": 2, "b": 1}) {
		t.Fatalf("after line 1: %v", got)
	}
	in.Pipe("l2", "b c")
	in.Pipe("l3", "A")
	got := streamtest.ReadStore[string, int64](d, "counts")
	if want := map[string]int64{"a": 3, "b": 2, "c": 1}; !reflect.DeepEqual(got, want) {
		t.Fatalf("store: %v, want %v", got, want)
	}
}

// Without caching, every input record yields an update: the counts go 1, 2, 3.
func TestCountWithoutCaching(t *testing.T) {
	d := streamtest.New(t, wordCount(stream.WithoutCaching()))
	in := streamtest.Input(d, "lines", serde.String(), serde.String())
	in.Pipe("l1", "x x x")
	got := streamtest.Output(d, "word-counts", serde.String(), serde.Int64()).ReadKeyValues()
	if want := []kvi{{Key: "x", Value: 1}, {Key: "x", Value: 2}, {Key: "x", Value: 3}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestReduceAndAggregate(t *testing.T) {
	b := stream.NewBuilder()
	in := stream.From(b, "amounts", serde.String(), serde.Int64())
	g := stream.GroupByKey(in)
	stream.Reduce(g, func(acc, v int64) (int64, error) { return max(acc, v), nil }, stream.Materialized("max"), stream.WithoutCaching()).
		ToStream().To("maxima", nil, nil)
	type stats struct{ N, Sum int64 }
	stream.Aggregate(g, func() stats { return stats{} }, func(_ string, v int64, s stats) (stats, error) {
		return stats{N: s.N + 1, Sum: s.Sum + v}, nil
	}, serde.JSON[stats](), stream.Materialized("stats")).ToStream().To("stats", nil, nil)
	d := streamtest.New(t, b, streamtest.Partitions(2))
	amounts := streamtest.Input(d, "amounts", serde.String(), serde.Int64())
	for _, a := range []struct {
		k string
		v int64
	}{{"u1", 5}, {"u2", 7}, {"u1", 3}, {"u1", 9}, {"u2", 1}} {
		amounts.Pipe(a.k, a.v)
	}
	if got := streamtest.Output(d, "maxima", serde.String(), serde.Int64()).ReadKeyValues(); !reflect.DeepEqual(got,
		[]kvi{{Key: "u1", Value: 5}, {Key: "u2", Value: 7}, {Key: "u1", Value: 5}, {Key: "u1", Value: 9}, {Key: "u2", Value: 7}}) {
		t.Fatalf("maxima: %v", got)
	}
	if got := streamtest.LastByKey(streamtest.Output(d, "stats", serde.String(), serde.JSON[stats]())); !reflect.DeepEqual(got,
		map[string]stats{"u1": {N: 3, Sum: 17}, "u2": {N: 2, Sum: 8}}) {
		t.Fatalf("stats: %v", got)
	}
}

// Aggregations skip records without a key or a value, as Kafka Streams does.
func TestAggregationSkipsNulls(t *testing.T) {
	b := stream.NewBuilder()
	stream.Count(stream.GroupByKey(stream.From(b, "in", serde.String(), serde.String())), stream.Materialized("c")).
		ToStream().To("out", nil, serde.Int64())
	d := streamtest.New(t, b)
	in := streamtest.Input(d, "in", serde.String(), serde.String())
	in.Pipe("k", "v")
	in.PipeTombstone("k")
	in.PipeRecord(topology.Record[string, string]{Value: "no key"}.WithNullKey())
	in.Pipe("k", "v")
	if got := streamtest.ReadStore[string, int64](d, "c"); !reflect.DeepEqual(got, map[string]int64{"k": 2}) {
		t.Fatalf("store %v", got)
	}
}

func TestTableFromTopic(t *testing.T) {
	b := stream.NewBuilder()
	users := stream.TableFrom(b, "users", serde.String(), serde.String(), stream.Materialized("users-store"), stream.WithoutCaching())
	users.Filter(func(_, country string) bool { return country == "NO" }).ToStream().To("norwegians", nil, nil)
	stream.MapTableValues(users, func(_, c string) (string, error) { return strings.ToLower(c), nil }).ToStream().To("lower", nil, nil)
	d := streamtest.New(t, b)
	in := streamtest.Input(d, "users", serde.String(), serde.String())
	in.Pipe("ann", "NO")
	in.Pipe("bob", "SE")
	in.Pipe("ann", "DK") // leaves the filtered table: a delete
	in.Pipe("bob", "NO")
	in.PipeTombstone("bob") // deleted: a delete downstream too
	in.PipeTombstone("nobody")

	recs := streamtest.Output(d, "norwegians", serde.String(), serde.String()).ReadRecords()
	var got []string
	for _, r := range recs {
		if r.ValueIsNull() {
			got = append(got, r.Key+"=<tombstone>")
		} else {
			got = append(got, r.Key+"="+r.Value)
		}
	}
	if want := []string{"ann=NO", "ann=<tombstone>", "bob=NO", "bob=<tombstone>"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("norwegians: %v, want %v", got, want)
	}
	if got := streamtest.LastByKey(streamtest.Output(d, "lower", serde.String(), serde.String())); !reflect.DeepEqual(got, map[string]string{"ann": "dk"}) {
		t.Fatalf("lower: %v", got)
	}
	if got := streamtest.ReadStore[string, string](d, "users-store"); !reflect.DeepEqual(got, map[string]string{"ann": "DK"}) {
		t.Fatalf("store: %v", got)
	}
}

// Regrouping a table: moving a user from one country to another subtracts it from the old
// country's count and adds it to the new one's.
func TestTableGroupByWithSubtractor(t *testing.T) {
	b := stream.NewBuilder()
	users := stream.TableFrom(b, "users", serde.String(), serde.String())
	byCountry := stream.GroupTable(users, func(user, country string) (string, string, error) { return country, user, nil },
		serde.String(), serde.String())
	stream.CountTable(byCountry, stream.Materialized("per-country"), stream.WithoutCaching()).ToStream().To("counts", nil, nil)
	d := streamtest.New(t, b, streamtest.Partitions(3))
	in := streamtest.Input(d, "users", serde.String(), serde.String())
	in.Pipe("ann", "NO")
	in.Pipe("bob", "NO")
	in.Pipe("cid", "SE")
	in.Pipe("ann", "SE")
	in.PipeTombstone("bob")
	if got := streamtest.ReadStore[string, int64](d, "per-country"); !reflect.DeepEqual(got, map[string]int64{"NO": 0, "SE": 2}) {
		t.Fatalf("per-country: %v", got)
	}
	if got := streamtest.LastByKey(streamtest.Output(d, "counts", serde.String(), serde.Int64())); !reflect.DeepEqual(got, map[string]int64{"NO": 0, "SE": 2}) {
		t.Fatalf("counts: %v", got)
	}
}

// A custom processor uses a store through the Processor API.
func TestStoreFromProcessor(t *testing.T) {
	b := stream.NewBuilder()
	b.AddStore(state.NewKeyValue("seen", serde.String(), serde.Int64()))
	in := stream.From(b, "in", serde.String(), serde.String())
	firsts := stream.Process(in, func() topology.Processor[string, string, string, string] { return &firstSeen{} }, stream.WithStores("seen"))
	firsts.To("firsts", serde.String(), serde.String())
	d := streamtest.New(t, b)
	src := streamtest.Input(d, "in", serde.String(), serde.String())
	for _, k := range []string{"a", "b", "a", "c", "b"} {
		src.Pipe(k, "v")
	}
	if got := streamtest.Output(d, "firsts", serde.String(), serde.String()).ReadValues(); !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
		t.Fatalf("firsts: %v", got)
	}
	kv, err := streamtest.KeyValueStore[string, int64](d, "seen", 0)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := kv.ApproximateCount(); n != 3 {
		t.Fatalf("count %d", n)
	}
}

// firstSeen forwards a key the first time it is seen.
type firstSeen struct {
	ctx  topology.Context[string, string]
	seen state.KeyValueStore[string, int64]
}

func (p *firstSeen) Init(ctx topology.Context[string, string]) error {
	p.ctx = ctx
	var err error
	p.seen, err = state.KeyValue[string, int64](ctx, "seen")
	return err
}

func (p *firstSeen) Process(r topology.Record[string, string]) error {
	if _, ok, err := p.seen.Get(r.Key); err != nil || ok {
		return err
	}
	if err := p.seen.Put(r.Key, r.Timestamp.UnixMilli()); err != nil {
		return err
	}
	return p.ctx.Forward(r.WithValue(r.Key))
}

func (p *firstSeen) Close() error { return nil }

func TestStoreTypeMismatchIsAnError(t *testing.T) {
	b := stream.NewBuilder()
	b.AddStore(state.NewKeyValue("s", serde.String(), serde.Int64()))
	stream.Process(stream.From(b, "in", serde.String(), serde.String()), topology.ProcessorFunc(
		func(ctx topology.Context[string, string], r topology.Record[string, string]) error {
			_, err := state.KeyValue[string, string](ctx, "s")
			return err
		}), stream.WithStores("s"))
	d := streamtest.New(t, b)
	err := streamtest.Input(d, "in", serde.String(), serde.String()).TryPipe("k", "v")
	if err == nil || !strings.Contains(err.Error(), `store "s"`) {
		t.Fatalf("got %v", err)
	}
}

// A caching aggregation forwards each update with the headers of the last record that wrote the
// key (Kafka Streams' caches keep the writer's record context), through the repartition topic.
func TestCachedUpdatesCarryHeaders(t *testing.T) {
	d := streamtest.New(t, wordCount(), streamtest.Partitions(2))
	in := streamtest.Input(d, "lines", serde.String(), serde.String())
	out := streamtest.Output(d, "word-counts", serde.String(), serde.Int64())
	in.PipeRecord(topology.Record[string, string]{Key: "l1", Value: "a b a", Headers: topology.Headers{{Key: "trace", Value: []byte("t1")}}})
	in.PipeRecord(topology.Record[string, string]{Key: "l2", Value: "b c", Headers: topology.Headers{{Key: "trace", Value: []byte("t2")}}})
	got := map[string]string{}
	for _, r := range out.ReadRecords() {
		h, _ := r.Headers.Get("trace")
		got[fmt.Sprintf("%s=%d", r.Key, r.Value)] = string(h)
	}
	want := map[string]string{"a=2": "t1", "b=1": "t1", "b=2": "t2", "c=1": "t2"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("headers of the updates: %v, want %v", got, want)
	}
}
