package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rifflestream/riffle/connectors/kafka"
	"github.com/rifflestream/riffle/internal/kafkatest"
	"github.com/rifflestream/riffle/serde"
	"github.com/rifflestream/riffle/stream"
	"github.com/rifflestream/riffle/topology"
)

// owners checks that a task is active on one instance at a time: a task's processor records its
// instance on Init and clears it on Close; Init while another instance holds the task is a
// violation.
type owners struct {
	mu         sync.Mutex
	owner      map[topology.TaskID]string
	violations []string
	inits      int
}

func (o *owners) acquire(id topology.TaskID, instance string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.inits++
	if cur, ok := o.owner[id]; ok && cur != instance {
		o.violations = append(o.violations, fmt.Sprintf("task %s started on %s while active on %s", id, instance, cur))
	}
	o.owner[id] = instance
}

func (o *owners) release(id topology.TaskID, instance string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.owner[id] == instance {
		delete(o.owner, id)
	}
}

type echoProc struct {
	instance string
	owners   *owners
	ctx      topology.Context[string, echo]
}

func (p *echoProc) Init(ctx topology.Context[string, echo]) error {
	p.ctx = ctx
	if p.owners != nil {
		p.owners.acquire(ctx.TaskID(), p.instance)
	}
	return nil
}

func (p *echoProc) Process(r topology.Record[string, int64]) error {
	return p.ctx.Forward(topology.DeriveValue(r, echo{Seq: r.Value, Instance: p.instance, Partition: r.Origin.Partition, Offset: r.Origin.Offset}))
}

func (p *echoProc) Close() error {
	if p.owners != nil {
		p.owners.release(p.ctx.TaskID(), p.instance)
	}
	return nil
}

// echoApp is the in-process twin of testapp -mode echo.
func echoApp(t *testing.T, brokers []string, appID, in, out, instance string, o *owners, opts ...stream.AppOption) *stream.App {
	t.Helper()
	b := stream.NewBuilder()
	src := stream.From(b, in, serde.String(), serde.Int64())
	stream.Process(src, func() topology.Processor[string, int64, string, echo] {
		return &echoProc{instance: instance, owners: o}
	}).
		To(out, serde.String(), serde.JSON[echo]())
	app, err := stream.NewApp(b, append([]stream.AppOption{stream.AppID(appID), stream.Brokers(brokers...),
		stream.CommitInterval(500 * time.Millisecond),
		stream.ClientOptions(kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(time.Second))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return app
}

type topics struct{ app, in, out string }

func setup(t *testing.T, brokers []string, partitions int32) topics {
	adm := kafkatest.Admin(t, brokers)
	tp := topics{app: kafkatest.Name(t, "app"), in: kafkatest.Name(t, "in"), out: kafkatest.Name(t, "out")}
	kafkatest.CreateTopic(t, adm, tp.in, partitions, 1, nil)
	kafkatest.CreateTopic(t, adm, tp.out, partitions, 1, nil)
	return tp
}

func TestEngineOneInstance(t *testing.T) { oneInstance(t, false) }

// The same with the stateless task processed on the poll loop (stream.InlineStatelessTasks).
func TestEngineOneInstanceInline(t *testing.T) { oneInstance(t, true, stream.InlineStatelessTasks()) }

func oneInstance(t *testing.T, inline bool, opts ...stream.AppOption) {
	brokers := kafkatest.Brokers(t)
	tp := setup(t, brokers, 4)
	p := newProducer(t, brokers, tp.in, 50)
	p.send(t, 2000)
	app := echoApp(t, brokers, tp.app, tp.in, tp.out, "solo", nil, opts...)
	stop := runApp(t, app)
	p.send(t, 1000) // while running
	out := waitComplete(t, brokers, tp.out, p, 60*time.Second)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if dups := verifyAtLeastOnce(t, p, out); dups != 0 {
		t.Fatalf("%d duplicates without any failure", dups)
	}
	// Every committed offset is at the end of its partition: a clean stop commits everything.
	lag := groupLag(t, brokers, tp.app, tp.in)
	if lag != 0 {
		t.Fatalf("lag %d after a clean stop", lag)
	}
	m := app.Metrics()
	if m.RecordsProcessed != int64(p.sent) || m.RecordsProduced != int64(p.sent) || m.Commits == 0 {
		t.Fatalf("metrics %+v", m)
	}
	if inline != (m.RecordsProcessedInline > 0) || m.RecordsProcessedInline > m.RecordsProcessed {
		t.Fatalf("%d of %d records processed on the poll loop, with inline %v", m.RecordsProcessedInline, m.RecordsProcessed, inline)
	}
}

// groupLag sums end offset - committed offset over the partitions of topic.
func groupLag(t *testing.T, brokers []string, group, topic string) int64 {
	t.Helper()
	adm := kafkatest.Admin(t, brokers)
	ctx := context.Background()
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var lag int64
	for _, ps := range ends {
		for p, o := range ps {
			c, ok := committed.Lookup(topic, p)
			if !ok {
				lag += o.Offset
				continue
			}
			lag += o.Offset - c.At
		}
	}
	return lag
}

// Three instances in one group share the work: everything arrives, per-key order holds, each task
// runs on one instance at a time, and the work is spread.
func TestEngineThreeInstances(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	tp := setup(t, brokers, 6)
	p := newProducer(t, brokers, tp.in, 60)
	o := &owners{owner: map[topology.TaskID]string{}}
	var stops []func() error
	var apps []*stream.App
	for i := 0; i < 3; i++ {
		app := echoApp(t, brokers, tp.app, tp.in, tp.out, fmt.Sprintf("i%d", i), o)
		apps = append(apps, app)
		stops = append(stops, runApp(t, app))
		p.send(t, 500) // records flow while members join
	}
	waitFor(t, "every instance to get two tasks", 60*time.Second, func() bool {
		for _, a := range apps {
			if len(a.Tasks()) != 2 {
				return false
			}
		}
		return true
	})
	p.send(t, 3000)
	out := waitComplete(t, brokers, tp.out, p, 90*time.Second)
	for _, s := range stops {
		if err := s(); err != nil {
			t.Fatal(err)
		}
	}
	dups := verifyAtLeastOnce(t, p, out)
	perInstance := map[string]int{}
	for _, r := range out {
		var e echo
		_ = json.Unmarshal(r.Value, &e)
		perInstance[e.Instance]++
	}
	if len(o.violations) > 0 {
		t.Fatalf("tasks active on two instances at once: %v", o.violations)
	}
	if len(perInstance) != 3 {
		t.Fatalf("work went to %v", perInstance)
	}
	t.Logf("%d records, %d duplicates, per instance %v, task starts %d", p.sent, dups, perInstance, o.inits)
}

// Scale 1 -> 3 -> 1 while records flow: nothing is lost, and the group rebalances a bounded number
// of times.
func TestEngineScaleOutAndIn(t *testing.T) { scaleOutAndIn(t) }

// The same with the stateless tasks processed on the poll loop (stream.InlineStatelessTasks):
// revocations and assignments land between polls, while no task is processed.
func TestEngineScaleOutAndInInline(t *testing.T) { scaleOutAndIn(t, stream.InlineStatelessTasks()) }

func scaleOutAndIn(t *testing.T, opts ...stream.AppOption) {
	brokers := kafkatest.Brokers(t)
	tp := setup(t, brokers, 6)
	p := newProducer(t, brokers, tp.in, 60)
	o := &owners{owner: map[topology.TaskID]string{}}

	flowing := make(chan struct{})
	var flow sync.WaitGroup
	flow.Add(1)
	go func() { // a steady trickle, so every rebalance happens under load
		defer flow.Done()
		for {
			select {
			case <-flowing:
				return
			default:
			}
			p.send(t, 100)
			time.Sleep(20 * time.Millisecond)
		}
	}()

	first := echoApp(t, brokers, tp.app, tp.in, tp.out, "first", o, opts...)
	stopFirst := runApp(t, first)
	waitFor(t, "the first instance to own all 6 tasks", 60*time.Second, func() bool { return len(first.Tasks()) == 6 })
	second := echoApp(t, brokers, tp.app, tp.in, tp.out, "second", o, opts...)
	third := echoApp(t, brokers, tp.app, tp.in, tp.out, "third", o, opts...)
	stopSecond, stopThird := runApp(t, second), runApp(t, third)
	waitFor(t, "2 tasks per instance", 60*time.Second, func() bool {
		return len(first.Tasks()) == 2 && len(second.Tasks()) == 2 && len(third.Tasks()) == 2
	})
	genAt3 := first.Metrics().Generation
	if err := stopSecond(); err != nil {
		t.Fatal(err)
	}
	if err := stopThird(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first instance to own all 6 tasks again", 60*time.Second, func() bool { return len(first.Tasks()) == 6 })
	genAt1 := first.Metrics().Generation
	close(flowing)
	flow.Wait()
	out := waitComplete(t, brokers, tp.out, p, 90*time.Second)
	if err := stopFirst(); err != nil {
		t.Fatal(err)
	}
	dups := verifyAtLeastOnce(t, p, out)
	if len(o.violations) > 0 {
		t.Fatalf("tasks active on two instances at once: %v", o.violations)
	}
	// Four membership changes; cooperative rebalancing takes at most two rounds for each (revoke,
	// then assign), and a join may coalesce with the next.
	if genAt1 > 1+4*2 {
		t.Fatalf("the group went through %d generations for 4 membership changes", genAt1)
	}
	t.Logf("scale 1->3->1: %d records, %d duplicates, group generation %d at 3 members and %d back at 1, first instance saw %d rebalances",
		p.sent, dups, genAt3, genAt1, first.Metrics().Rebalances)
}

// An instance killed with SIGKILL: the others take over its tasks after the session timeout, and
// nothing is lost.
func TestEngineKilledInstance(t *testing.T) { killedInstance(t) }

// The same with the stateless tasks processed on the poll loop (stream.InlineStatelessTasks).
func TestEngineKilledInstanceInline(t *testing.T) { killedInstance(t, "-inline") }

func killedInstance(t *testing.T, extra ...string) {
	brokers := kafkatest.Brokers(t)
	tp := setup(t, brokers, 6)
	p := newProducer(t, brokers, tp.in, 60)
	args := append([]string{"-brokers", strings.Join(brokers, ","), "-app-id", tp.app, "-input", tp.in, "-output", tp.out,
		"-session-timeout", "6s", "-commit-interval", "500ms"}, extra...)
	var procs []*proc
	for i := 0; i < 3; i++ {
		procs = append(procs, startProc(t, fmt.Sprintf("p%d", i), args...))
	}
	waitGroupMembers(t, brokers, tp.app, 3, 60*time.Second)
	p.send(t, 3000)
	waitComplete(t, brokers, tp.out, p, 90*time.Second)
	// No pause for a commit: what p1 processed since its last commit is replayed by its successor.
	lag := groupLag(t, brokers, tp.app, tp.in)
	procs[1].kill()
	p.send(t, 3000)
	out := waitComplete(t, brokers, tp.out, p, 90*time.Second)
	procs[0].stop(t)
	procs[2].stop(t)
	dups := verifyAtLeastOnce(t, p, out)
	byInstance := map[string]int{}
	for _, r := range out[len(out)-1000:] {
		var e echo
		_ = json.Unmarshal(r.Value, &e)
		byInstance[e.Instance]++
	}
	if byInstance["p1"] > 0 && len(byInstance) == 1 {
		t.Fatalf("only the killed instance produced the last records: %v", byInstance)
	}
	t.Logf("SIGKILL of 1 of 3 instances: %d records, %d duplicates (uncommitted at the kill: %d)", p.sent, dups, lag)
}

// Undecodable values, with each handler: skip drops exactly them, dead-letter sends exactly them
// to the DLQ with their coordinates, fail stops the app with an error naming the record.
func TestEngineBadInput(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	for _, mode := range []string{"skip", "dead-letter", "fail"} {
		t.Run(mode, func(t *testing.T) {
			tp := setup(t, brokers, 3)
			cl := kafkatest.Client(t, brokers, kgo.DefaultProduceTopic(tp.in))
			var good, bad []string
			for i := 0; i < 300; i++ {
				k := fmt.Sprintf("k%d", i)
				v := i64(int64(i))
				if i%37 == 5 {
					v = []byte("not an int64")
					bad = append(bad, k)
				} else {
					good = append(good, k)
				}
				if err := cl.ProduceSync(context.Background(), &kgo.Record{Key: []byte(k), Value: v}).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
			var opts []stream.AppOption
			switch mode {
			case "skip":
				opts = append(opts, stream.OnDeserializationError(stream.Skip))
			case "dead-letter":
				opts = append(opts, stream.OnDeserializationError(stream.DeadLetter))
			}
			app := echoApp(t, brokers, tp.app, tp.in, tp.out, "x", nil, opts...)
			stop := runApp(t, app)
			if mode == "fail" {
				var err error
				waitFor(t, "the app to fail", 60*time.Second, func() bool { return app.State() == "failed" || app.State() == "stopped" })
				err = stop()
				re, ok := topology.AsRecordError(err)
				if !ok || re.Stage != topology.StageDeserialize || re.Origin.Topic != tp.in || !strings.Contains(err.Error(), "want 8 bytes, got 12") {
					t.Fatalf("Run returned %v", err)
				}
				t.Logf("fail: %v", err)
				return
			}
			out := waitOutput(t, brokers, tp.out, len(good), 60*time.Second)
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			if got := keysOf(out); strings.Join(got, ",") != strings.Join(sortedCopy(good), ",") {
				t.Fatalf("output keys differ from the good ones")
			}
			m := app.Metrics()
			if m.Skipped["deserialize"] != int64(len(bad)) {
				t.Fatalf("skipped %d, want %d", m.Skipped["deserialize"], len(bad))
			}
			if mode == "dead-letter" {
				dlq := kafkatest.ReadAll(t, brokers, tp.app+"-dlq", false)
				if got := keysOf(dlq); strings.Join(got, ",") != strings.Join(sortedCopy(bad), ",") {
					t.Fatalf("DLQ keys %v, want %v", got, bad)
				}
				for _, r := range dlq {
					h := map[string]string{}
					for _, x := range r.Headers {
						h[x.Key] = string(x.Value)
					}
					if h[topology.HeaderErrorStage] != "deserialize" || h[topology.HeaderSourceTopic] != tp.in ||
						h[topology.HeaderSourceOffset] == "" || string(r.Value) != "not an int64" ||
						!strings.Contains(h[topology.HeaderErrorMessage], "want 8 bytes") {
						t.Fatalf("dead letter %s: value %q headers %v", r.Key, r.Value, h)
					}
				}
				if m.DeadLettered != int64(len(bad)) {
					t.Fatalf("dead-lettered %d, want %d", m.DeadLettered, len(bad))
				}
			}
		})
	}
}

// waitGroupMembers waits until group is stable with n members that each own partitions.
func waitGroupMembers(t *testing.T, brokers []string, group string, n int, within time.Duration) {
	t.Helper()
	adm := kafkatest.Admin(t, brokers)
	waitFor(t, fmt.Sprintf("group %s to be stable with %d busy members", group, n), within, func() bool {
		gs, err := adm.DescribeGroups(context.Background(), group)
		if err != nil {
			return false
		}
		g := gs[group]
		if g.State != "Stable" || len(g.Members) != n {
			return false
		}
		for _, m := range g.Members {
			a, ok := m.Assigned.AsConsumer()
			if !ok || len(a.Topics) == 0 {
				return false
			}
		}
		return true
	})
}

func keysOf(recs []*kgo.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = string(r.Key)
	}
	return sortedCopy(out)
}

func sortedCopy(xs []string) []string {
	out := append([]string(nil), xs...)
	sort.Strings(out)
	return out
}

// Through a repartition topic: records arrive, and consumed repartition records are purged.
func TestEngineRepartitionAndPurge(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	tp := setup(t, brokers, 4)
	p := newProducer(t, brokers, tp.in, 40)
	p.send(t, 2000)
	b := stream.NewBuilder()
	src := stream.From(b, tp.in, serde.String(), serde.Int64())
	rekeyed := stream.SelectKey(src, func(k string, v int64) (string, error) { return k + "!", nil }).Repartition(stream.Named("rekey"))
	stream.Process(rekeyed, func() topology.Processor[string, int64, string, echo] { return &echoProc{instance: "r"} }).
		To(tp.out, serde.String(), serde.JSON[echo]())
	app, err := stream.NewApp(b, stream.AppID(tp.app), stream.Brokers(brokers...), stream.CommitInterval(200*time.Millisecond),
		stream.RepartitionPurgeInterval(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	stop := runApp(t, app)
	want := &producer{seq: map[string]int64{}}
	for k, n := range p.seq {
		want.seq[k+"!"] = n
	}
	out := waitComplete(t, brokers, tp.out, want, 60*time.Second)
	repartition := tp.app + "-rekey-repartition"
	adm := kafkatest.Admin(t, brokers)
	waitFor(t, "consumed repartition records to be purged", 30*time.Second, func() bool {
		starts, err := adm.ListStartOffsets(context.Background(), repartition)
		if err != nil {
			return false
		}
		var purged int64
		starts.Each(func(o kadm.ListedOffset) { purged += o.Offset })
		return purged >= 2000
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	verifyAtLeastOnce(t, want, out)
	// The repartition topic was created with the source's partition count and Kafka Streams' configs.
	td, _ := adm.ListTopics(context.Background(), repartition)
	if n := len(td[repartition].Partitions); n != 4 {
		t.Fatalf("repartition topic has %d partitions, want 4", n)
	}
}

// Start-up checks on real Kafka: a missing source topic and a missing output topic each stop Run
// at once with an error naming the topic, before anything is consumed.
func TestEngineMissingTopics(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	adm := kafkatest.Admin(t, brokers)
	present := kafkatest.Name(t, "present")
	kafkatest.CreateTopic(t, adm, present, 2, 1, nil)
	absent := kafkatest.Name(t, "absent")
	for _, c := range []struct {
		name, in, out, kind string
	}{
		{"source", absent, present, "source"},
		{"output", present, absent, "output"},
	} {
		t.Run(c.name, func(t *testing.T) {
			app := echoApp(t, brokers, kafkatest.Name(t, "app"), c.in, c.out, "a", nil, stream.StateDir(t.TempDir()))
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			start := time.Now()
			err := app.Run(ctx)
			var missing *kafka.MissingTopicsError
			if !errors.As(err, &missing) {
				t.Fatalf("Run: %v, want a *kafka.MissingTopicsError", err)
			}
			if !reflect.DeepEqual(missing.Topics, []string{absent}) || missing.Kind != c.kind {
				t.Fatalf("missing %s topics %v, want %s %v", missing.Kind, missing.Topics, c.kind, []string{absent})
			}
			if !strings.Contains(err.Error(), absent) || !strings.Contains(err.Error(), c.kind+" topics do not exist") {
				t.Fatalf("the error %q does not say which %s topic is missing", err, c.kind)
			}
			t.Logf("%v (after %v)", err, time.Since(start).Round(time.Millisecond))
		})
	}
}

// Start-up checks of the topics the app owns or depends on, on real Kafka (kfake accepts any
// config): an existing repartition topic with another partition count, an existing changelog
// that is not compacted or has another partition count, and source topics declared co-partitioned
// with different partition counts each stop Run with an error naming the topic and both values,
// before a record is consumed (the group commits nothing) and without changing the topic.
func TestEngineTopicMismatches(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	adm := kafkatest.Admin(t, brokers)
	str := func(s string) *string { return &s }
	for _, c := range []struct {
		name string
		// existing is the topic made before the app starts (suffix of the app id), with its
		// partitions and configs; topology declares the app on source topic in (4 partitions).
		existing   string
		partitions int32
		configs    map[string]*string
		topology   func(b *stream.Builder, in, other string)
		want       []string // in the error, after the app id is put for "APP" and the topics for "IN", "OTHER"
	}{
		{
			name: "repartition partitions", existing: "-rekey-repartition", partitions: 2,
			configs: map[string]*string{"cleanup.policy": str("delete")},
			topology: func(b *stream.Builder, in, _ string) {
				src := stream.From(b, in, serde.String(), serde.Int64())
				stream.SelectKey(src, func(k string, _ int64) (string, error) { return k + "!", nil }).
					Repartition(stream.Named("rekey")).Foreach(func(string, int64) error { return nil })
			},
			want: []string{`topic "APP-rekey-repartition" exists with 2 partitions, but the app needs 4`},
		},
		{
			name: "changelog not compacted", existing: "-counts-changelog", partitions: 4,
			configs: map[string]*string{"cleanup.policy": str("delete")},
			topology: func(b *stream.Builder, in, _ string) {
				stream.Count(stream.GroupByKey(stream.From(b, in, serde.String(), serde.Int64())), stream.Materialized("counts"))
			},
			want: []string{`topic "APP-counts-changelog" has cleanup.policy="delete", but the app needs "compact"`},
		},
		{
			name: "changelog partitions", existing: "-counts-changelog", partitions: 3,
			configs: map[string]*string{"cleanup.policy": str("compact")},
			topology: func(b *stream.Builder, in, _ string) {
				stream.Count(stream.GroupByKey(stream.From(b, in, serde.String(), serde.Int64())), stream.Materialized("counts"))
			},
			want: []string{`topic "APP-counts-changelog" exists with 3 partitions, but the app needs 4`},
		},
		{
			name: "not co-partitioned",
			topology: func(b *stream.Builder, in, other string) {
				stream.FromTopics(b, []string{in, other}, serde.String(), serde.Int64()).Foreach(func(string, int64) error { return nil })
				b.Topology().CoPartition(in, other)
			},
			want: []string{"topics must be co-partitioned", "IN has 4", "OTHER has 3"},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			app := kafkatest.Name(t, "app")
			in, other := kafkatest.Name(t, "in"), kafkatest.Name(t, "other")
			kafkatest.CreateTopic(t, adm, in, 4, 1, nil)
			kafkatest.CreateTopic(t, adm, other, 3, 1, nil)
			if c.existing != "" {
				kafkatest.CreateTopic(t, adm, app+c.existing, c.partitions, 1, c.configs)
			}
			cl := kafkatest.Client(t, brokers, kgo.DefaultProduceTopic(in))
			if err := cl.ProduceSync(context.Background(), &kgo.Record{Key: []byte("a"), Value: []byte{0, 0, 0, 0, 0, 0, 0, 1}}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			b := stream.NewBuilder()
			c.topology(b, in, other)
			a, err := stream.NewApp(b, stream.AppID(app), stream.Brokers(brokers...), stream.StateDir(t.TempDir()))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			err = a.Run(ctx)
			if err == nil {
				t.Fatal("Run returned nil, want a start-up error")
			}
			for _, w := range c.want {
				w = strings.NewReplacer("APP", app, "IN", in, "OTHER", other).Replace(w)
				if !strings.Contains(err.Error(), w) {
					t.Errorf("the error %q does not say %q", err, w)
				}
			}
			offsets, ferr := adm.FetchOffsets(context.Background(), app)
			if ferr == nil && len(offsets) > 0 {
				t.Errorf("the group committed %v before the start-up check failed", offsets)
			}
			if c.existing != "" { // left as it was
				td, lerr := adm.ListTopics(context.Background(), app+c.existing)
				if lerr != nil {
					t.Fatal(lerr)
				}
				if n := int32(len(td[app+c.existing].Partitions)); n != c.partitions {
					t.Errorf("%s has %d partitions after the failed start, want %d as made", app+c.existing, n, c.partitions)
				}
			}
			t.Logf("%v", err)
		})
	}
}
