package stream_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rifflestream/riffle/internal/kafkatest"
	"github.com/rifflestream/riffle/serde"
	"github.com/rifflestream/riffle/stream"
	"github.com/rifflestream/riffle/topology"
)

// The app end to end on the in-process fake broker: every input reaches the output, doubled, once,
// in each key's order; with the task goroutines and with the tasks processed on the poll loop.
func TestAppOnFakeBroker(t *testing.T) {
	t.Run("task goroutines", func(t *testing.T) { appOnFakeBroker(t, false) })
	t.Run("inline", func(t *testing.T) { appOnFakeBroker(t, true, stream.InlineStatelessTasks()) })
}

func appOnFakeBroker(t *testing.T, inline bool, opts ...stream.AppOption) {
	_, brokers := kafkatest.Fake(t, kfakeSeed("in", 4), kfakeSeed("out", 4))
	b := stream.NewBuilder()
	in := stream.From(b, "in", serde.String(), serde.Int64())
	stream.MapValues(in, func(v int64) (int64, error) { return v * 2, nil }).To("out", nil, nil)
	app, err := stream.NewApp(b, append([]stream.AppOption{stream.AppID("fake-app"), stream.Brokers(brokers...),
		stream.CommitInterval(100 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	_, stop := kafkatest.RunApp(t, app)
	const n = 1000
	produceInts(t, brokers, n, n)
	got := readAtLeast(t, brokers, n)
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	sum := int64(0)
	last := map[string]int64{} // per key, the last doubled input seen
	for _, r := range got {
		v, _ := serde.Int64().Deserialize("out", r.Value)
		sum += v
		if prev, ok := last[string(r.Key)]; ok && v <= prev {
			t.Fatalf("key %s: %d after %d, out of order", r.Key, v, prev)
		}
		last[string(r.Key)] = v
	}
	if len(got) != n || sum != int64(n*(n-1)) {
		t.Fatalf("got %d records summing to %d, want %d summing to %d", len(got), sum, n, n*(n-1))
	}
	m := app.Metrics()
	if m.RecordsProcessed != n || m.RecordsProduced != n {
		t.Fatalf("metrics: %d processed, %d produced; want %d each", m.RecordsProcessed, m.RecordsProduced, n)
	}
	// Inline, the poll loop processes the records, except those that come while the task's
	// goroutine holds the task (a commit's snapshot): that goroutine processes them.
	if inline && (m.RecordsProcessedInline <= 0 || m.RecordsProcessedInline > m.RecordsProcessed) ||
		!inline && m.RecordsProcessedInline != 0 {
		t.Fatalf("metrics: %d of %d records processed on the poll loop (inline: %v)", m.RecordsProcessedInline, m.RecordsProcessed, inline)
	}
}

func serde8(v int64) []byte { b, _ := serde.Int64().Serialize("", v); return b }

// produceInts writes 0..n-1 to topic "in", keyed by i%37, in bursts of burst records, each
// flushed and followed by a short pause.
func produceInts(t *testing.T, brokers []string, n, burst int) {
	t.Helper()
	cl := kafkatest.Client(t, brokers)
	for i := 0; i < n; i++ {
		cl.Produce(context.Background(), &kgo.Record{Topic: "in", Key: []byte(strconv.Itoa(i % 37)), Value: serde8(int64(i))}, nil)
		if i%burst == burst-1 || i == n-1 {
			if err := cl.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// readAtLeast reads topic "out" until it holds n records, for up to 30 s, and returns what it
// holds then (the caller checks the count).
func readAtLeast(t *testing.T, brokers []string, n int) []*kgo.Record {
	t.Helper()
	var got []*kgo.Record
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if got = kafkatest.ReadAll(t, brokers, "out", false); len(got) >= n {
			break
		}
	}
	return got
}

// Inline, with a processor that asks for a commit on every record: commits (snapshots on the
// task's goroutine) keep interleaving with the poll loop's processing, and the task's state is
// only ever touched by whoever holds it (run with -race). Every record arrives once.
func TestInlineWithRequestedCommits(t *testing.T) {
	_, brokers := kafkatest.Fake(t, kfakeSeed("in", 4), kfakeSeed("out", 4))
	b := stream.NewBuilder()
	in := stream.From(b, "in", serde.String(), serde.Int64())
	stream.Process(in, topology.ProcessorFunc(func(ctx topology.Context[string, int64], r topology.Record[string, int64]) error {
		ctx.RequestCommit()
		return ctx.Forward(r)
	})).To("out", nil, nil)
	app, err := stream.NewApp(b, stream.AppID("fake-inline-commits"), stream.Brokers(brokers...),
		stream.CommitInterval(5*time.Millisecond), stream.InlineStatelessTasks())
	if err != nil {
		t.Fatal(err)
	}
	_, stop := kafkatest.RunApp(t, app)
	const n = 5000
	produceInts(t, brokers, n, 500) // in bursts: many polls, each racing the commits
	got := readAtLeast(t, brokers, n)
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	seen := map[int64]bool{}
	for _, r := range got {
		v, _ := serde.Int64().Deserialize("out", r.Value)
		if seen[v] {
			t.Fatalf("record %d output twice without a failure", v)
		}
		seen[v] = true
	}
	if len(seen) != n {
		t.Fatalf("%d of %d records output", len(seen), n)
	}
	if m := app.Metrics(); m.Commits < 2 {
		t.Fatalf("%d commits: the requested commits did not happen", m.Commits)
	}
}
