package topology_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rifflestream/riffle/serde"
	"github.com/rifflestream/riffle/topology"
)

// recorder is a Collector that keeps what a task emits.
type recorder struct {
	out    []topology.OutRecord
	counts map[string]int32
}

func (r *recorder) Send(rec *topology.OutRecord) { r.out = append(r.out, *rec) }
func (r *recorder) PartitionCount(topic string) (int32, error) {
	if n, ok := r.counts[topic]; ok {
		return n, nil
	}
	return 0, fmt.Errorf("unknown topic %q", topic)
}

func (r *recorder) values() []string {
	var vs []string
	for _, o := range r.out {
		vs = append(vs, string(o.Value))
	}
	return vs
}

type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

// punctuating forwards "<kind>@<ms>" at each punctuation and the value of each record.
type punctuating struct {
	ctx      topology.Context[string, string]
	interval time.Duration
	kind     topology.PunctuationType
	cancelAt int64
	cancel   func()
}

func (p *punctuating) Init(ctx topology.Context[string, string]) error {
	p.ctx = ctx
	var err error
	p.cancel, err = ctx.Schedule(p.interval, p.kind, func(ts time.Time) error {
		if p.cancelAt != 0 && ts.UnixMilli() >= p.cancelAt {
			p.cancel()
		}
		return ctx.Forward(topology.Record[string, string]{Key: "p", Value: fmt.Sprintf("%s@%d", p.kind, ts.UnixMilli()), Timestamp: ts})
	})
	return err
}

func (p *punctuating) Process(r topology.Record[string, string]) error { return p.ctx.Forward(r) }
func (p *punctuating) Close() error                                    { return nil }

func newPunctuatingTask(t *testing.T, p *punctuating, c *clock) (*topology.Task, *recorder) {
	t.Helper()
	topo := topology.New()
	src := topology.AddSource(topo, "src", []string{"in"}, serde.String(), serde.String())
	proc := topology.AddProcessor(topo, "proc", func() topology.Processor[string, string, string, string] { return p }, src)
	topology.AddSink(topo, "sink", "out", serde.String(), serde.String(), []topology.Node[string, string]{proc})
	rec := &recorder{}
	return startTask(t, topo, topology.TaskConfig{Collector: rec, Clock: c.Now}), rec
}

// startTask plans topo as app "app" and returns its task 0_0, initialized.
func startTask(t *testing.T, topo *topology.Topology, cfg topology.TaskConfig) *topology.Task {
	t.Helper()
	plan, err := topo.Plan("app")
	if err != nil {
		t.Fatal(err)
	}
	task, err := plan.NewTask(topology.TaskID{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Init(); err != nil {
		t.Fatal(err)
	}
	return task
}

func feed(t *testing.T, task *topology.Task, ms int64, v string) {
	t.Helper()
	off := int64(0)
	if err := task.Process(&topology.RawRecord{Topic: "in", Offset: off, Key: []byte("k"), Value: []byte(v), Timestamp: time.UnixMilli(ms)}); err != nil {
		t.Fatal(err)
	}
}

// Stream-time punctuation follows Kafka Streams: aligned to 0, first as soon as stream time is
// known, then whenever stream time passes the next multiple of the interval, once even if
// several intervals were skipped; out-of-order records do not move stream time back.
func TestStreamTimePunctuation(t *testing.T) {
	p := &punctuating{interval: 10 * time.Millisecond, kind: topology.StreamTime}
	task, rec := newPunctuatingTask(t, p, &clock{})
	feed(t, task, 3, "r3")   // stream time known: fires at 3 (schedule 0), next 10
	feed(t, task, 9, "r9")   // nothing
	feed(t, task, 10, "r10") // fires at 10, next 20
	feed(t, task, 5, "r5")   // late: stream time stays 10
	feed(t, task, 47, "r47") // fires once at 47 (20, 30, 40 missed), next 50
	feed(t, task, 50, "r50") // fires at 50
	want := []string{"r3", "stream-time@3", "r9", "r10", "stream-time@10", "r5", "r47", "stream-time@47", "r50", "stream-time@50"}
	if got := rec.values(); !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %v\nwant %v", got, want)
	}
	if st, ok := task.StreamTime(); !ok || st.UnixMilli() != 50 {
		t.Fatalf("stream time %v %v", st, ok)
	}
	// AdvanceStreamTime fires what it makes due, like a record would.
	if err := task.AdvanceStreamTime(time.UnixMilli(75)); err != nil {
		t.Fatal(err)
	}
	if got := rec.values(); got[len(got)-1] != "stream-time@75" {
		t.Fatalf("after advance: %v", got)
	}
}

func TestWallClockPunctuationAndCancel(t *testing.T) {
	c := &clock{now: time.UnixMilli(1000)}
	p := &punctuating{interval: 100 * time.Millisecond, kind: topology.WallClockTime, cancelAt: 1350}
	task, rec := newPunctuatingTask(t, p, c)
	if next, ok := task.NextWallClockPunctuation(); !ok || next.UnixMilli() != 1100 {
		t.Fatalf("next punctuation %v %v", next, ok)
	}
	for _, now := range []int64{1050, 1100, 1150, 1420, 1500} {
		if err := task.PunctuateWallClock(time.UnixMilli(now)); err != nil {
			t.Fatal(err)
		}
	}
	// 1100 fires; 1420 fires once (1200, 1300, 1400 missed) and cancels; 1500 nothing.
	want := []string{"wall-clock@1100", "wall-clock@1420"}
	if got := rec.values(); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if _, ok := task.NextWallClockPunctuation(); ok {
		t.Fatal("a cancelled schedule is still pending")
	}
	if got := task.Metrics().Punctuations.Load(); got != 2 {
		t.Fatalf("punctuations %d", got)
	}
}

func TestScheduleRejectsBadIntervals(t *testing.T) {
	p := &punctuating{interval: 500 * time.Microsecond, kind: topology.StreamTime}
	topo := topology.New()
	src := topology.AddSource(topo, "src", []string{"in"}, serde.String(), serde.String())
	topology.AddProcessor(topo, "proc", func() topology.Processor[string, string, string, string] { return p }, src)
	plan, err := topo.Plan("app")
	if err != nil {
		t.Fatal(err)
	}
	task, err := plan.NewTask(topology.TaskID{}, topology.TaskConfig{Collector: &recorder{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Init(); err == nil || !strings.Contains(err.Error(), "shorter than a millisecond") || !strings.Contains(err.Error(), `"proc"`) {
		t.Fatalf("Init: %v", err)
	}
}

// lifecycleProc records its lifecycle calls in a shared log.
type lifecycleProc struct {
	name string
	log  *[]string
	ctx  topology.Context[string, string]
}

func (p *lifecycleProc) Init(ctx topology.Context[string, string]) error {
	*p.log = append(*p.log, "init "+p.name+" task "+ctx.TaskID().String()+" app "+ctx.AppID()+" node "+ctx.NodeName())
	p.ctx = ctx
	return nil
}
func (p *lifecycleProc) Process(r topology.Record[string, string]) error {
	*p.log = append(*p.log, "process "+p.name+" "+r.Value)
	return p.ctx.Forward(r)
}
func (p *lifecycleProc) Close() error {
	*p.log = append(*p.log, "close "+p.name)
	return nil
}

func TestTaskLifecycleAndForwarding(t *testing.T) {
	var log []string
	mk := func(name string) topology.Supplier[string, string, string, string] {
		return func() topology.Processor[string, string, string, string] {
			return &lifecycleProc{name: name, log: &log}
		}
	}
	topo := topology.New()
	src := topology.AddSource(topo, "src", []string{"in"}, serde.String(), serde.String())
	a := topology.AddProcessor(topo, "a", mk("a"), src)
	b := topology.AddProcessor(topo, "b", mk("b"), a)
	c := topology.AddProcessor(topo, "c", mk("c"), a)
	topology.AddSink(topo, "sink", "out", serde.String(), serde.String(), []topology.Node[string, string]{b, c})
	plan, err := topo.Plan("app")
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	task, err := plan.NewTask(topology.TaskID{Subtopology: 0, Partition: 2}, topology.TaskConfig{Collector: rec})
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Init(); err != nil {
		t.Fatal(err)
	}
	if err := task.Process(&topology.RawRecord{Topic: "in", Partition: 2, Key: []byte("k"), Value: []byte("v"), Timestamp: time.UnixMilli(1)}); err != nil {
		t.Fatal(err)
	}
	if err := task.Close(); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"init a task 0_2 app app node a", "init b task 0_2 app app node b", "init c task 0_2 app app node c",
		"process a v", "process b v", "process c v", // depth first, children in the order added
		"close a", "close b", "close c",
	}
	if !reflect.DeepEqual(log, want) {
		t.Fatalf("got  %q\nwant %q", log, want)
	}
	if len(rec.out) != 2 {
		t.Fatalf("sink got %d records, want 2 (one from each parent)", len(rec.out))
	}
	// A record of another partition or topic is refused.
	if err := task.Process(&topology.RawRecord{Topic: "in", Partition: 0}); err == nil {
		t.Fatal("a record of partition 0 was accepted by task 0_2")
	}
	if err := task.Process(&topology.RawRecord{Topic: "other", Partition: 2}); err == nil {
		t.Fatal("a record of an unknown topic was accepted")
	}
}

func TestForwardToAndPartitioner(t *testing.T) {
	topo := topology.New()
	src := topology.AddSource(topo, "src", []string{"in"}, serde.String(), serde.String())
	router := topology.AddProcessor(topo, "router", topology.ProcessorFunc(
		func(ctx topology.Context[string, string], r topology.Record[string, string]) error {
			return ctx.ForwardTo(r.Key, r)
		}), src)
	evens := topology.AddProcessor(topo, "evens", topology.ProcessorFunc(
		func(ctx topology.Context[string, string], r topology.Record[string, string]) error {
			return ctx.Forward(r)
		}), router)
	topology.AddSink(topo, "to-evens", "evens-out", serde.String(), serde.String(), []topology.Node[string, string]{evens},
		topology.WithPartitioner(func(topic, k, v string, n int32) int32 { return int32(len(v)) % n }))
	plan, err := topo.Plan("app")
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{counts: map[string]int32{"evens-out": 4}}
	task, _ := plan.NewTask(topology.TaskID{}, topology.TaskConfig{Collector: rec, Handlers: topology.ErrorHandlers{Processing: topology.Skip}})
	if err := task.Init(); err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct{ k, v string }{{"evens", "abcdef"}, {"odds", "x"}} {
		if err := task.Process(&topology.RawRecord{Topic: "in", Key: []byte(r.k), Value: []byte(r.v), Timestamp: time.UnixMilli(1)}); err != nil {
			t.Fatal(err)
		}
	}
	if len(rec.out) != 1 || rec.out[0].Topic != "evens-out" || rec.out[0].Partition != 2 {
		t.Fatalf("got %+v", rec.out)
	}
	// ForwardTo an unknown child is a processing error of the router (skipped here).
	if got := task.Metrics().SkippedAt(topology.StageProcess); got != 1 {
		t.Fatalf("skipped %d", got)
	}
}

// A processor that drops the error Forward returned cannot hide a fatal failure downstream.
func TestFatalErrorIsSticky(t *testing.T) {
	topo := topology.New()
	src := topology.AddSource(topo, "src", []string{"in"}, serde.String(), serde.String())
	careless := topology.AddProcessor(topo, "careless", topology.ProcessorFunc(
		func(ctx topology.Context[string, string], r topology.Record[string, string]) error {
			_ = ctx.Forward(r)
			return nil
		}), src)
	topology.AddProcessor(topo, "failing", topology.ProcessorFunc(
		func(ctx topology.Context[string, string], r topology.Record[string, string]) error {
			return errors.New("downstream failure")
		}), careless)
	plan, _ := topo.Plan("app")
	task, _ := plan.NewTask(topology.TaskID{}, topology.TaskConfig{Collector: &recorder{}})
	_ = task.Init()
	err := task.Process(&topology.RawRecord{Topic: "in", Key: []byte("k"), Value: []byte("v"), Timestamp: time.UnixMilli(1)})
	if re, ok := topology.AsRecordError(err); !ok || re.Node != "failing" {
		t.Fatalf("got %v", err)
	}
}

func TestPlan(t *testing.T) {
	topo := topology.New()
	a := topology.AddSource(topo, "a", []string{"orders", "returns"}, serde.String(), serde.String(), topology.WithOffsetReset(topology.ResetLatest))
	topology.AddSink(topo, "to-r1", "r1", serde.String(), serde.String(), []topology.Node[string, string]{a})
	b := topology.AddSource(topo, "b", []string{"r1"}, serde.String(), serde.String())
	topology.AddSink(topo, "to-r2", "r2", serde.String(), serde.String(), []topology.Node[string, string]{b})
	c := topology.AddSource(topo, "c", []string{"r2"}, serde.String(), serde.String())
	d := topology.AddSource(topo, "d", []string{"customers"}, serde.String(), serde.String())
	m := topology.AddProcessor(topo, "m", topology.ProcessorFunc(
		func(ctx topology.Context[string, string], r topology.Record[string, string]) error {
			return ctx.Forward(r)
		}), c, d)
	topology.AddSink(topo, "out", "out", serde.String(), serde.String(), []topology.Node[string, string]{m})
	topo.AddInternalTopic(topology.InternalTopic{Name: "r1"})
	topo.AddInternalTopic(topology.InternalTopic{Name: "r2"})
	topo.CoPartition("r2", "customers")

	plan, err := topo.Plan("app")
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Subtopologies) != 3 {
		t.Fatalf("%d sub-topologies", len(plan.Subtopologies))
	}
	if got := plan.ExternalSourceTopics(); !reflect.DeepEqual(got, []string{"customers", "orders", "returns"}) {
		t.Fatalf("external sources %v", got)
	}
	if got := plan.Subtopologies[1].SourceTopics; !reflect.DeepEqual(got, []string{"app-r1"}) || !plan.Subtopologies[1].Internal["app-r1"] {
		t.Fatalf("sub-topology 1 reads %v", got)
	}
	if plan.Subtopologies[0].Reset["orders"] != topology.ResetLatest {
		t.Fatal("offset reset lost")
	}
	if got := plan.CoPartitioned; !reflect.DeepEqual(got, [][]string{{"app-r2", "customers"}}) {
		t.Fatalf("co-partitioned %v", got)
	}
	// r1 takes the larger of orders (6) and returns (3); r2 follows r1.
	counts, err := plan.InternalPartitions(map[string]int32{"orders": 6, "returns": 3, "customers": 6})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(counts, map[string]int32{"app-r1": 6, "app-r2": 6}) {
		t.Fatalf("internal partitions %v", counts)
	}
	tasks, err := plan.TaskCount(map[string]int32{"orders": 6, "returns": 3, "customers": 6, "app-r1": 6, "app-r2": 6})
	if err != nil || !reflect.DeepEqual(tasks, map[int]int32{0: 6, 1: 6, 2: 6}) {
		t.Fatalf("tasks %v %v", tasks, err)
	}
	if _, err := plan.InternalPartitions(map[string]int32{"customers": 2}); err == nil {
		t.Fatal("no error without the orders partition count")
	}
	// Sealed: later declarations fail.
	topology.AddSource(topo, "late", []string{"late"}, serde.String(), serde.String())
	if err := topo.Err(); err == nil || !strings.Contains(err.Error(), "already built") {
		t.Fatalf("late declaration: %v", err)
	}
}

func TestDeclarationErrors(t *testing.T) {
	tests := []struct {
		name  string
		build func(topo *topology.Topology)
		want  string
	}{
		{"no topics", func(topo *topology.Topology) {
			topology.AddSource(topo, "s", nil, serde.String(), serde.String())
		}, `source "s" reads no topic`},
		{"zero node as parent", func(topo *topology.Topology) {
			topology.AddProcessor(topo, "p", topology.ProcessorFunc(
				func(ctx topology.Context[string, string], r topology.Record[string, string]) error { return nil }), topology.Node[string, string]{})
		}, `processor "p": parent 0 is not a node of this topology`},
		{"processor without parent", func(topo *topology.Topology) {
			topology.AddProcessor[string, string, string, string](topo, "p", topology.ProcessorFunc(
				func(ctx topology.Context[string, string], r topology.Record[string, string]) error { return nil }))
		}, `processor "p" has no parent`},
		{"node of another topology", func(topo *topology.Topology) {
			other := topology.New()
			s := topology.AddSource(other, "s", []string{"x"}, serde.String(), serde.String())
			topology.AddSink(topo, "k", "out", serde.String(), serde.String(), []topology.Node[string, string]{s})
		}, `sink "k": parent "s" belongs to another topology`},
		{"internal topic nobody reads", func(topo *topology.Topology) {
			s := topology.AddSource(topo, "s", []string{"x"}, serde.String(), serde.String())
			topology.AddSink(topo, "k", "rep", serde.String(), serde.String(), []topology.Node[string, string]{s})
			topo.AddInternalTopic(topology.InternalTopic{Name: "rep"})
		}, `internal topic "rep" is read by no source`},
		{"nil supplier", func(topo *topology.Topology) {
			s := topology.AddSource(topo, "s", []string{"x"}, serde.String(), serde.String())
			topology.AddProcessor[string, string, string, string](topo, "p", nil, s)
		}, `processor "p" has no supplier`},
		{"empty topology", func(topo *topology.Topology) {}, "it has no nodes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			topo := topology.New()
			tt.build(topo)
			_, err := topo.Plan("app")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestTaskID(t *testing.T) {
	id := topology.TaskID{Subtopology: 3, Partition: 12}
	if id.String() != "3_12" {
		t.Fatal(id.String())
	}
	got, err := topology.ParseTaskID("3_12")
	if err != nil || got != id {
		t.Fatalf("%v %v", got, err)
	}
	for _, bad := range []string{"", "3", "3_", "_1", "a_1", "1_b", "-1_2", "1_-2"} {
		if _, err := topology.ParseTaskID(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
