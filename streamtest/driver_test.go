package streamtest_test

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rifflestream/riffle/serde"
	"github.com/rifflestream/riffle/stream"
	"github.com/rifflestream/riffle/streamtest"
	"github.com/rifflestream/riffle/topology"
)

// Keyed records land in the partition Kafka's producer would choose: the driver must agree with
// franz-go's default partitioner (which the engine uses), record by record.
func TestPartitioningMatchesTheProducer(t *testing.T) {
	b := stream.NewBuilder()
	stream.From(b, "in", serde.String(), serde.String()).To("out", nil, nil)
	d := streamtest.New(t, b, streamtest.TopicPartitions("in", 7), streamtest.Partitions(5))
	in := streamtest.Input(d, "in", serde.String(), serde.String())
	part := kgo.StickyKeyPartitioner(nil)
	inPart, outPart := part.ForTopic("in"), part.ForTopic("out")
	for i := 0; i < 200; i++ {
		k := fmt.Sprintf("key-%d", i)
		in.Pipe(k, "v")
	}
	// Read back every record of both topics.
	for _, tc := range []struct {
		topic string
		n     int
		p     kgo.TopicPartitioner
	}{{"in", 7, inPart}, {"out", 5, outPart}} {
		recs := streamtest.Output(d, tc.topic, serde.String(), serde.String()).ReadRecords()
		if len(recs) != 200 {
			t.Fatalf("%s has %d records", tc.topic, len(recs))
		}
		seen := map[int32]bool{}
		for _, r := range recs {
			want := int32(tc.p.Partition(&kgo.Record{Key: []byte(r.Key)}, tc.n))
			if r.Origin.Partition != want {
				t.Fatalf("%s: key %q in partition %d, the producer would choose %d", tc.topic, r.Key, r.Origin.Partition, want)
			}
			seen[r.Origin.Partition] = true
		}
		if len(seen) != tc.n {
			t.Fatalf("%s: only %d of %d partitions used", tc.topic, len(seen), tc.n)
		}
	}
	// One task per partition of the source topic.
	if got := len(d.Tasks()); got != 7 {
		t.Fatalf("%d tasks, want 7", got)
	}
}

// Records go through a repartition topic to the task that owns their new key, and each task
// sees only its partition's records in order.
func TestRepartitionIsFollowed(t *testing.T) {
	b := stream.NewBuilder()
	s := stream.From(b, "words", serde.String(), serde.String())
	byWord := stream.SelectKey(s, func(k, v string) (string, error) { return v, nil }).Repartition(stream.Named("by-word"))
	seen := map[int32][]string{}
	tagged := stream.Process(byWord, topology.ProcessorFunc(func(ctx topology.Context[string, string], r topology.Record[string, string]) error {
		p := ctx.TaskID().Partition
		seen[p] = append(seen[p], r.Value)
		return ctx.Forward(topology.DeriveValue(r, fmt.Sprintf("%s@task%s", r.Value, ctx.TaskID())))
	}))
	tagged.To("out", nil, nil)
	d := streamtest.New(t, b, streamtest.TopicPartitions("words", 2), streamtest.AppID("wc"), streamtest.Partitions(4))
	// The repartition topic takes the source's partition count (2), not the default 4.
	var internal []string
	for _, it := range d.Plan().InternalTopics {
		internal = append(internal, it.Name)
	}
	if !reflect.DeepEqual(internal, []string{"wc-by-word-repartition"}) {
		t.Fatalf("internal topics %v", internal)
	}
	if n := len(d.Tasks()); n != 4 {
		t.Fatalf("%d tasks, want 2 per sub-topology", n)
	}
	in := streamtest.Input(d, "words", serde.String(), serde.String())
	words := strings.Fields("the quick brown fox jumps over the lazy dog the end")
	for i, w := range words {
		in.Pipe(fmt.Sprint(i), w)
	}
	out := streamtest.Output(d, "out", serde.String(), serde.String()).ReadRecords()
	if len(out) != len(words) {
		t.Fatalf("%d outputs for %d words", len(out), len(words))
	}
	part := kgo.StickyKeyPartitioner(nil).ForTopic("wc-by-word-repartition")
	for _, r := range out {
		want := part.Partition(&kgo.Record{Key: []byte(r.Key)}, 2)
		if !strings.HasSuffix(r.Value, fmt.Sprintf("@task1_%d", want)) {
			t.Fatalf("%q was processed by the wrong task (want partition %d)", r.Value, want)
		}
	}
	// Every "the" went to one task, in input order with the others of its partition.
	var all []string
	for _, ws := range seen {
		all = append(all, ws...)
	}
	sort.Strings(all)
	sorted := append([]string(nil), words...)
	sort.Strings(sorted)
	if !reflect.DeepEqual(all, sorted) {
		t.Fatalf("tasks saw %v", all)
	}
}

func TestWallClockAndStreamTimeDrivers(t *testing.T) {
	b := stream.NewBuilder()
	s := stream.From(b, "in", serde.String(), serde.String())
	ticks := stream.Process(s, func() topology.Processor[string, string, string, string] { return &ticker{} })
	ticks.To("out", nil, nil)
	d := streamtest.New(t, b, streamtest.StartTime(time.UnixMilli(1_000_000)))
	out := streamtest.Output(d, "out", serde.String(), serde.String())
	d.AdvanceWallClock(30 * time.Second)
	if got := out.ReadValues(); !reflect.DeepEqual(got, []string{"wall 1030000"}) {
		t.Fatalf("after 30s: %v", got)
	}
	d.AdvanceWallClock(10 * time.Second)
	if out.Len() != 0 {
		t.Fatal("punctuated before the interval")
	}
	d.AdvanceStreamTime(time.UnixMilli(5000))
	if got := out.ReadValues(); !reflect.DeepEqual(got, []string{"stream 5000"}) {
		t.Fatalf("after stream time advance: %v", got)
	}
	if got := d.WallClock(); !got.Equal(time.UnixMilli(1_040_000)) {
		t.Fatalf("wall clock %v", got)
	}
}

type ticker struct{}

func (t *ticker) Init(ctx topology.Context[string, string]) error {
	if _, err := ctx.Schedule(30*time.Second, topology.WallClockTime, func(ts time.Time) error {
		return ctx.Forward(topology.Record[string, string]{Key: "t", Value: fmt.Sprintf("wall %d", ts.UnixMilli()), Timestamp: ts})
	}); err != nil {
		return err
	}
	_, err := ctx.Schedule(10*time.Second, topology.StreamTime, func(ts time.Time) error {
		return ctx.Forward(topology.Record[string, string]{Key: "t", Value: fmt.Sprintf("stream %d", ts.UnixMilli()), Timestamp: ts})
	})
	return err
}
func (t *ticker) Process(topology.Record[string, string]) error { return nil }
func (t *ticker) Close() error                                  { return nil }

func TestOutputReading(t *testing.T) {
	b := stream.NewBuilder()
	stream.From(b, "in", serde.String(), serde.Int64()).To("out", nil, nil)
	d := streamtest.New(t, b, streamtest.Partitions(3))
	in := streamtest.Input(d, "in", serde.String(), serde.Int64()).AutoAdvance(time.Second)
	out := streamtest.Output(d, "out", serde.String(), serde.Int64())
	in.Pipe("a", 1)
	in.Pipe("b", 2)
	in.Pipe("a", 3)
	in.PipeTombstone("b")
	in.Pipe("c", 5)
	if out.Len() != 5 {
		t.Fatalf("Len %d", out.Len())
	}
	// Reads return records in write order across partitions, then only what is new.
	recs := out.ReadRecords()
	var ts []int64
	for _, r := range recs {
		ts = append(ts, r.Timestamp.Sub(streamtest.DefaultStartTime).Milliseconds())
	}
	if !reflect.DeepEqual(ts, []int64{0, 1000, 2000, 3000, 4000}) {
		t.Fatalf("timestamps %v", ts)
	}
	if out.Len() != 0 || len(out.ReadRecords()) != 0 {
		t.Fatal("records read twice")
	}
	// LastByKey applies tombstones.
	in.Pipe("b", 7)
	in.PipeTombstone("c")
	if got := streamtest.LastByKey(streamtest.Output(d, "out", serde.String(), serde.Int64())); !reflect.DeepEqual(got, map[string]int64{"a": 3, "b": 7}) {
		t.Fatalf("LastByKey %v", got)
	}
	// Undecodable output fails a read with the coordinates.
	if _, err := streamtest.Output(d, "out", serde.String(), serde.Int32()).TryReadRecords(); err == nil || !strings.Contains(err.Error(), "out[") {
		t.Fatalf("decoding int64 as int32: %v", err)
	}
}

func TestStartErrors(t *testing.T) {
	b := stream.NewBuilder()
	stream.From(b, "in", serde.String(), serde.String()).Filter(nil)
	if _, err := streamtest.Start(b); err == nil || !strings.Contains(err.Error(), "predicate is nil") {
		t.Fatalf("build error: %v", err)
	}
	if _, err := streamtest.Start(stream.NewBuilder(), streamtest.Partitions(0)); err == nil {
		t.Fatal("Partitions(0) accepted")
	}
}
