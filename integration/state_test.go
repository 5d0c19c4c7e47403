package integration

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rifflestream/riffle/internal/kafkatest"
	"github.com/rifflestream/riffle/serde"
	"github.com/rifflestream/riffle/stream"
)

// countApp counts input records per key through a repartition (the keys are re-selected), with
// its state in dir.
func countApp(t *testing.T, brokers []string, tp topics, dir string, opts ...stream.AppOption) *stream.App {
	t.Helper()
	b := stream.NewBuilder()
	in := stream.From(b, tp.in, serde.String(), serde.Int64())
	counts := stream.Count(stream.GroupBy(in, func(k string, _ int64) (string, error) { return "c-" + k, nil }, serde.String()),
		stream.Materialized("counts"))
	counts.ToStream().To(tp.out, nil, nil)
	app, err := stream.NewApp(b, append([]stream.AppOption{stream.AppID(tp.app), stream.Brokers(brokers...), stream.StateDir(dir),
		stream.CommitInterval(300 * time.Millisecond),
		stream.ClientOptions(kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(time.Second))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return app
}

// lastCounts reads a count output (or changelog) topic: the last value per key.
func lastCounts(t *testing.T, brokers []string, topic string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, r := range kafkatest.ReadAll(t, brokers, topic, false) {
		if r.Value == nil {
			delete(out, string(r.Key))
			continue
		}
		n, err := serde.Int64().Deserialize(topic, r.Value)
		if err != nil {
			t.Fatalf("%s: %v", topic, err)
		}
		out[string(r.Key)] = n
	}
	return out
}

func expectedCounts(p *producer) map[string]int64 {
	out := map[string]int64{}
	for k, n := range p.seq {
		out["c-"+k] = n
	}
	return out
}

func sameCounts(got, want map[string]int64) error {
	if len(got) != len(want) {
		return fmt.Errorf("%d keys, want %d", len(got), len(want))
	}
	for k, n := range want {
		if got[k] != n {
			return fmt.Errorf("key %s: %d, want %d", k, got[k], n)
		}
	}
	return nil
}

// Counts on real Kafka equal counts computed from what was produced; a clean stop and restart on
// the same state dir restores nothing.
func TestStateCountsAndCleanRestart(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	tp := setup(t, brokers, 4)
	dir := t.TempDir()
	p := newProducer(t, brokers, tp.in, 100)
	p.send(t, 5000)

	app := countApp(t, brokers, tp, dir)
	stop := runApp(t, app)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := app.WaitIdle(ctx); err != nil {
		t.Fatalf("%v (Run: %v)", err, stop())
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if err := sameCounts(lastCounts(t, brokers, tp.out), expectedCounts(p)); err != nil {
		t.Fatalf("output: %v", err)
	}
	changelog := tp.app + "-counts-changelog"
	if err := sameCounts(lastCounts(t, brokers, changelog), expectedCounts(p)); err != nil {
		t.Fatalf("changelog: %v", err)
	}
	if m := app.Metrics(); m.RecordsRestored != 0 {
		t.Fatalf("first run restored %d records", m.RecordsRestored)
	}

	// Clean restart on the same state dir: the checkpoint is at the changelog's end.
	p.send(t, 1000)
	app2 := countApp(t, brokers, tp, dir)
	stop2 := runApp(t, app2)
	if err := app2.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	if err := stop2(); err != nil {
		t.Fatal(err)
	}
	if got := app2.Metrics().RecordsRestored; got != 0 {
		t.Fatalf("a clean restart restored %d records, want 0", got)
	}
	if err := sameCounts(lastCounts(t, brokers, tp.out), expectedCounts(p)); err != nil {
		t.Fatalf("after restart: %v", err)
	}

	// A new state dir (a new machine) restores everything from the changelog, and counts go on.
	p.send(t, 500)
	app3 := countApp(t, brokers, tp, t.TempDir())
	stop3 := runApp(t, app3)
	if err := app3.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	if err := stop3(); err != nil {
		t.Fatal(err)
	}
	if got := app3.Metrics().RecordsRestored; got == 0 {
		t.Fatal("a fresh state dir restored nothing")
	}
	if err := sameCounts(lastCounts(t, brokers, tp.out), expectedCounts(p)); err != nil {
		t.Fatalf("after restore: %v", err)
	}
	t.Logf("fresh state dir restored %d changelog records for %d keys", app3.Metrics().RecordsRestored, len(p.seq))
}

// waitGroupIdle waits until group has committed the end offset of every partition of topics.
func waitGroupIdle(t *testing.T, brokers []string, group string, within time.Duration, topics ...string) {
	t.Helper()
	adm := kafkatest.Admin(t, brokers)
	waitFor(t, "group "+group+" to process everything", within, func() bool {
		ends, err := adm.ListEndOffsets(context.Background(), topics...)
		if err != nil {
			return false
		}
		committed, err := adm.FetchOffsets(context.Background(), group)
		if err != nil {
			return false
		}
		idle := true
		ends.Each(func(o kadm.ListedOffset) {
			if c, ok := committed.Lookup(o.Topic, o.Partition); o.Offset > 0 && (!ok || c.At < o.Offset) {
				idle = false
			}
		})
		return idle
	})
}

// One of two stateful instances is killed with SIGKILL mid-stream: the survivor restores the dead
// one's tasks from their changelogs and goes on. Under at-least-once, counts may include replays,
// but the state and the output agree with the changelog, and nothing is missing.
func TestStateSurvivesKill(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	tp := setup(t, brokers, 4)
	p := newProducer(t, brokers, tp.in, 80)
	args := func(dir string) []string {
		return []string{"-mode", "count", "-state-dir", dir, "-brokers", strings.Join(brokers, ","), "-app-id", tp.app,
			"-input", tp.in, "-output", tp.out, "-session-timeout", "6s", "-commit-interval", "300ms"}
	}
	a := startProc(t, "a", args(t.TempDir())...)
	b := startProc(t, "b", args(t.TempDir())...)
	waitGroupMembers(t, brokers, tp.app, 2, 60*time.Second)
	p.send(t, 4000)
	time.Sleep(500 * time.Millisecond) // mid-stream
	b.kill()
	p.send(t, 4000)
	repartition := tp.app + "-" + "counts-repartition"
	waitGroupIdle(t, brokers, tp.app, 120*time.Second, tp.in, repartition)
	time.Sleep(time.Second) // the last commit's flush reaches the output
	a.stop(t)

	out, changelog := lastCounts(t, brokers, tp.out), lastCounts(t, brokers, tp.app+"-counts-changelog")
	if err := sameCounts(out, changelog); err != nil {
		t.Fatalf("the output's last counts differ from the changelog: %v", err)
	}
	over := int64(0)
	for k, want := range expectedCounts(p) {
		if out[k] < want {
			t.Fatalf("key %s: count %d < %d records: lost updates", k, out[k], want)
		}
		over += out[k] - want
	}
	t.Logf("SIGKILL of 1 of 2 stateful instances: %d records, counts over by %d in total (replays, at-least-once)", p.sent, over)
}

// Stateful migration 1 -> 2 -> 1 without failures: tasks move with their state (restored from the
// changelog where they land), and the final counts are exact.
func TestStateMigration(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	tp := setup(t, brokers, 4)
	p := newProducer(t, brokers, tp.in, 80)
	first := countApp(t, brokers, tp, t.TempDir())
	stopFirst := runApp(t, first)
	p.send(t, 3000)
	second := countApp(t, brokers, tp, t.TempDir())
	stopSecond := runApp(t, second)
	waitFor(t, "the tasks to spread", 60*time.Second, func() bool { return len(first.Tasks()) == 4 && len(second.Tasks()) == 4 })
	p.send(t, 3000)
	if err := stopSecond(); err != nil {
		t.Fatal(err)
	}
	p.send(t, 3000)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := first.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	if err := stopFirst(); err != nil {
		t.Fatal(err)
	}
	if err := sameCounts(lastCounts(t, brokers, tp.out), expectedCounts(p)); err != nil {
		t.Fatalf("after 1 -> 2 -> 1: %v", err)
	}
	t.Logf("migration 1 -> 2 -> 1: restored %d records on the second instance, %d on the first",
		second.Metrics().RecordsRestored, first.Metrics().RecordsRestored)
}

// A window store is restored from its changelog after its instance is killed: the survivor's
// window counts cover every event (at least once), and it logged the restore.
func TestWindowStoreSurvivesKill(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	tp := setup(t, brokers, 4)
	cl := kafkatest.Client(t, brokers, kgo.DefaultProduceTopic(tp.in))
	args := func(dir string) []string {
		return []string{"-mode", "window", "-state-dir", dir, "-brokers", strings.Join(brokers, ","), "-app-id", tp.app,
			"-input", tp.in, "-output", tp.out, "-session-timeout", "6s", "-commit-interval", "300ms"}
	}
	a := startProc(t, "a", args(t.TempDir())...)
	b := startProc(t, "b", args(t.TempDir())...)
	waitGroupMembers(t, brokers, tp.app, 2, 60*time.Second)
	// Event times near now: the windows' output and changelog records carry them, and Kafka's
	// time-based retention (compact,delete for window changelogs) would delete older ones.
	base := time.Now().Add(-time.Minute).Truncate(time.Minute).UnixMilli()
	want := map[string]int64{} // "key@windowStart" -> count
	send := func(from, n int) {
		for i := from; i < from+n; i++ {
			k := fmt.Sprintf("k%02d", i%20)
			ts := base + int64(i%7)*1000 + int64(i%1000) // seven 1s windows, out of order within the grace
			want[fmt.Sprintf("%s@%d", k, ts/1000*1000)]++
			if err := cl.ProduceSync(context.Background(), &kgo.Record{Key: []byte(k), Value: i64(ts)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	send(0, 1500)
	time.Sleep(time.Second) // a commit: the changelogs hold state to restore
	b.kill()
	send(1500, 1500)
	waitGroupIdle(t, brokers, tp.app, 120*time.Second, tp.in)
	time.Sleep(time.Second)
	a.stop(t)

	got := map[string]int64{}
	for _, r := range kafkatest.ReadAll(t, brokers, tp.out, false) {
		w, err := stream.TimeWindowedSerde(serde.String(), time.Second).Deserialize(tp.out, r.Key)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := serde.Int64().Deserialize(tp.out, r.Value)
		got[fmt.Sprintf("%s@%d", w.Key, w.Start.UnixMilli())] = n
	}
	for k, n := range want {
		if got[k] < n {
			t.Fatalf("window %s: count %d < %d events", k, got[k], n)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d windows, want %d", len(got), len(want))
	}
	logA, _ := os.ReadFile(a.log.Name())
	if !strings.Contains(string(logA), `msg=restored`) || !strings.Contains(string(logA), "store=w") {
		t.Fatalf("the survivor did not restore the window store:\n%s", tail(string(logA), 20))
	}
}
