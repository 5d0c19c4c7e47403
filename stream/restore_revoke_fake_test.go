package stream_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/rifflestream/riffle/internal/kafkatest"
	"github.com/rifflestream/riffle/serde"
	"github.com/rifflestream/riffle/stream"
)

// A task revoked while it restores is given up at once: the rebalance does not wait for the
// restore. Instance A restores both tasks of a count from their changelog, and the broker holds
// the first changelog fetch of each restore (so both restores hang); instance B joins, takes one
// task, restores it and counts new records while A's restores still hang. Released, A finishes
// its remaining task; the final counts of both are those of all the input. Under both
// guarantees (exactly-once drops revoked tasks on another path, and rebuilds the others).
func TestTaskRevokedWhileRestoring(t *testing.T) {
	for _, g := range []stream.Guarantee{stream.AtLeastOnce, stream.ExactlyOnce} {
		t.Run(g.String(), func(t *testing.T) { taskRevokedWhileRestoring(t, g) })
	}
}

func taskRevokedWhileRestoring(t *testing.T, g stream.Guarantee) {
	const app, store = "revoke-restore", "counts-store"
	c, brokers := kafkatest.Fake(t, kfakeSeed("words", 2), kfakeSeed("counts", 2))
	changelog := app + "-" + store + "-changelog"
	newApp := func() *stream.App {
		b := stream.NewBuilder()
		stream.Count(stream.GroupByKey(stream.From(b, "words", serde.String(), serde.String())), stream.Materialized(store)).
			ToStream().To("counts", serde.String(), serde.Int64())
		a, err := stream.NewApp(b, stream.AppID(app), stream.Brokers(brokers...), stream.StateDir(t.TempDir()),
			stream.CommitInterval(100*time.Millisecond), stream.ProcessingGuarantee(g),
			stream.ClientOptions(kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(500*time.Millisecond)))
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	cl := kafkatest.Client(t, brokers, kgo.DefaultProduceTopic("words"))
	committed := g == stream.ExactlyOnce
	want := map[string]int64{}
	produce := func(n int) {
		t.Helper()
		for i := range n {
			k := fmt.Sprintf("w%02d", i%40)
			want[k]++
			cl.Produce(context.Background(), &kgo.Record{Key: []byte(k), Value: []byte("x")}, nil)
		}
		if err := cl.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	produce(4000)
	kafkatest.RunToEnd(t, newApp(), time.Now()) // the changelog now holds the counts

	td, err := kafkatest.Admin(t, brokers).ListTopics(context.Background(), changelog)
	if err != nil || td[changelog].Err != nil {
		t.Fatalf("listing %s: %v %v", changelog, err, td[changelog].Err)
	}
	id := td[changelog].ID
	var (
		mu      sync.Mutex
		held    = map[int32]bool{} // changelog partitions whose first fetch is held
		release = make(chan struct{})
	)
	c.ControlKey(int16(kmsg.Fetch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		hold := false
		mu.Lock()
		for _, ft := range req.(*kmsg.FetchRequest).Topics {
			if ft.Topic != changelog && ft.TopicID != id {
				continue
			}
			for _, fp := range ft.Partitions {
				if !held[fp.Partition] {
					held[fp.Partition], hold = true, true
				}
			}
		}
		mu.Unlock()
		if hold {
			c.SleepControl(func() { <-release })
		}
		return nil, nil, false
	})
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	heldCount := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(held)
	}

	a := newApp()
	_, stopA := kafkatest.RunApp(t, a)
	waitUntil(t, "A's two restores to fetch their changelog", 30*time.Second, func() bool { return heldCount() == 2 })

	bApp := newApp()
	ctxB, stopB := kafkatest.RunApp(t, bApp)
	// Within 10 s: a held fetch's connection is dropped by the client after ~15 s, and the
	// restore then completes; a revocation that waited for it would take that long.
	waitUntil(t, "B to take one task", 10*time.Second, func() bool { return len(bApp.Tasks()) == 1 && len(a.Tasks()) == 1 })
	moved := bApp.Tasks()[0]
	produce(400)
	// B restores the task it took (its fetches are not held) and counts the new records, while
	// A's restores still hang: the revocation did not wait for the restore it stopped.
	waitUntil(t, "B to count the new records of its task", 30*time.Second, func() bool {
		return bApp.Metrics().RecordsProcessed >= 100
	})
	// Under exactly-once the revocation aborts the instance's transaction, which rebuilds A's
	// other task too: that restore starts again, and its new fetch is not held.
	if n := a.Metrics().RecordsRestored; n != 0 && g == stream.AtLeastOnce {
		t.Fatalf("A restored %d records before its held fetches were released: the move waited for A's restore", n)
	}
	close(release)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := a.WaitIdle(ctx); err != nil {
		t.Fatalf("A: %v", err)
	}
	if err := bApp.WaitIdle(ctxB); err != nil {
		t.Fatalf("B: %v", err)
	}
	if err := stopB(); err != nil {
		t.Fatalf("B: %v", err)
	}
	if err := stopA(); err != nil {
		t.Fatalf("A: %v", err)
	}
	got := map[string]int64{}
	for _, r := range kafkatest.ReadAll(t, brokers, "counts", committed) {
		n, err := serde.Int64().Deserialize("counts", r.Value)
		if err != nil {
			t.Fatal(err)
		}
		got[string(r.Key)] = n // the last update of each key is its count
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("count of %s: %d, want %d", k, got[k], n)
		}
	}
	t.Logf("task %s moved to B while A restored it; %d keys counted", moved, len(got))
}

// waitUntil polls cond every 20 ms until it holds, failing the test after d.
func waitUntil(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
