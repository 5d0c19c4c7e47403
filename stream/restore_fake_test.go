package stream_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
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

// countFixture is a count whose changelog holds the counts of 4,000 records (made by a first
// instance that ran to the end), with the kfake cluster holding the first fetch of each changelog
// partition from then on (holdFirstFetches).
type countFixture struct {
	brokers   []string
	firstDir  string // the state dir of the first instance
	changelog string
	adm       *kadm.Client
	g         stream.Guarantee
	want      map[string]int64 // the count of each key produced so far
	produceTo *kgo.Client
	heldCount func() int
	release   func()
	newApp    func(stateDir string) *stream.App
}

func newCountFixture(t *testing.T, g stream.Guarantee) *countFixture {
	const app, store = "restoring", "counts-store"
	c, brokers := kafkatest.Fake(t, kfakeSeed("words", 2), kfakeSeed("counts", 2))
	f := &countFixture{brokers: brokers, g: g, want: map[string]int64{},
		produceTo: kafkatest.Client(t, brokers, kgo.DefaultProduceTopic("words"))}
	f.newApp = func(stateDir string) *stream.App {
		b := stream.NewBuilder()
		stream.Count(stream.GroupByKey(stream.From(b, "words", serde.String(), serde.String())), stream.Materialized(store)).
			ToStream().To("counts", serde.String(), serde.Int64())
		a, err := stream.NewApp(b, stream.AppID(app), stream.Brokers(brokers...), stream.StateDir(stateDir),
			stream.CommitInterval(100*time.Millisecond), stream.ProcessingGuarantee(g),
			stream.ClientOptions(kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(500*time.Millisecond)))
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	f.produce(t, 4000, 40)
	f.firstDir = t.TempDir()
	kafkatest.RunToEnd(t, f.newApp(f.firstDir), time.Now())
	changelog := app + "-" + store + "-changelog"
	f.changelog, f.adm = changelog, kafkatest.Admin(t, brokers)
	td, err := f.adm.ListTopics(context.Background(), changelog)
	if err != nil || td[changelog].Err != nil {
		t.Fatalf("listing %s: %v %v", changelog, err, td[changelog].Err)
	}
	f.heldCount, f.release = holdFirstFetches(t, c, changelog, td[changelog].ID)
	return f
}

// produce sends n records over keys w00 to w(keys-1).
func (f *countFixture) produce(t *testing.T, n, keys int) {
	t.Helper()
	for i := range n {
		k := fmt.Sprintf("w%02d", i%keys)
		f.want[k]++
		f.produceTo.Produce(context.Background(), &kgo.Record{Key: []byte(k), Value: []byte("x")}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("producing: %v", err)
			}
		})
	}
	if err := f.produceTo.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// checkCounts compares the last count of each key in the output with the records produced.
func (f *countFixture) checkCounts(t *testing.T) {
	t.Helper()
	got := map[string]int64{}
	for _, r := range kafkatest.ReadAll(t, f.brokers, "counts", f.g == stream.ExactlyOnce) {
		n, err := serde.Int64().Deserialize("counts", r.Value)
		if err != nil {
			t.Fatal(err)
		}
		got[string(r.Key)] = n // the last update of each key is its count
	}
	for k, n := range f.want {
		if got[k] != n {
			t.Errorf("count of %s: %d, want %d", k, got[k], n)
		}
	}
}

func taskRevokedWhileRestoring(t *testing.T, g stream.Guarantee) {
	f := newCountFixture(t, g)
	a := f.newApp(t.TempDir())
	_, stopA := kafkatest.RunApp(t, a)
	waitUntil(t, "A's two restores to fetch their changelog", 30*time.Second, func() bool { return f.heldCount() == 2 })

	b := f.newApp(t.TempDir())
	ctxB, stopB := kafkatest.RunApp(t, b)
	// Within 10 s: a held fetch's connection is dropped by the client after ~15 s, and the
	// restore then completes; a revocation that waited for it would take that long.
	waitUntil(t, "B to take one task", 10*time.Second, func() bool { return len(b.Tasks()) == 1 && len(a.Tasks()) == 1 })
	moved := b.Tasks()[0]
	f.produce(t, 400, 40)
	// B restores the task it took (its fetches are not held) and counts the new records, while
	// A's restores still hang: the revocation did not wait for the restore it stopped.
	waitUntil(t, "B to count the new records of its task", 30*time.Second, func() bool {
		return b.Metrics().RecordsProcessed >= 100
	})
	// Under exactly-once the revocation aborts the instance's transaction, which rebuilds A's
	// other task too: that restore starts again, and its new fetch is not held.
	if n := a.Metrics().RecordsRestored; n != 0 && g == stream.AtLeastOnce {
		t.Fatalf("A restored %d records before its held fetches were released: the move waited for A's restore", n)
	}
	f.release()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := a.WaitIdle(ctx); err != nil {
		t.Fatalf("A: %v", err)
	}
	if err := b.WaitIdle(ctxB); err != nil {
		t.Fatalf("B: %v", err)
	}
	if err := stopB(); err != nil {
		t.Fatalf("B: %v", err)
	}
	if err := stopA(); err != nil {
		t.Fatalf("A: %v", err)
	}
	f.checkCounts(t)
	t.Logf("task %s moved to B while A restored it", moved)
}

// Stopping an app while its tasks restore returns at once, without an error, and a restart on
// the same state dir completes the restores and counts on: the broker holds the restores' first
// fetches, Run returns within 10 s of the cancel (not after the client's ~15 s read timeout),
// and after the restart the final counts are exact.
func TestStopWhileRestoring(t *testing.T) {
	f := newCountFixture(t, stream.AtLeastOnce)
	dir := t.TempDir()
	a := f.newApp(dir)
	_, stop := kafkatest.RunApp(t, a)
	waitUntil(t, "the two restores to fetch their changelog", 30*time.Second, func() bool { return f.heldCount() == 2 })
	t0 := time.Now()
	err := stop()
	if took := time.Since(t0); took > 10*time.Second {
		t.Fatalf("Run returned %v after the cancel: the stop waited for the restores", took.Round(time.Millisecond))
	}
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n := a.Metrics().RecordsRestored; n != 0 {
		t.Fatalf("%d records restored before the held fetches were released", n)
	}
	f.release()
	f.produce(t, 400, 40)
	kafkatest.RunToEnd(t, f.newApp(dir), time.Now())
	f.checkCounts(t)
}

// An application reset (its changelog and its group deleted, as a reset tool does) with the state
// dir kept: the local store's checkpoint is past the end of the new, empty changelog, so the store
// is wiped instead of trusted, and the input processed again counts from zero. Kept, the old
// counts would be counted on (every count doubled).
func TestResetAppWipesLocalStateAheadOfItsChangelog(t *testing.T) {
	f := newCountFixture(t, stream.AtLeastOnce)
	f.release() // no fetch is held here
	ctx := context.Background()
	if _, err := f.adm.DeleteTopic(ctx, f.changelog); err != nil {
		t.Fatal(err)
	}
	if _, err := f.adm.DeleteGroups(ctx, "restoring"); err != nil {
		t.Fatal(err)
	}
	m := kafkatest.RunToEnd(t, f.newApp(f.firstDir), time.Now())
	if m.RecordsRestored != 0 {
		t.Errorf("%d records restored from the new changelog, want 0", m.RecordsRestored)
	}
	f.checkCounts(t) // the last count of each key: 100 (all the input once), not 200
}

// An environment wiped and set up again (the input, output and changelog topics and the group
// deleted and created anew) while an instance's state dir is kept: the stale store's checkpoint
// is an offset of the deleted changelog. The new changelog grows past that offset, so the offset
// check alone restored the new changelog's tail onto the old state: keys the tail does not
// update kept their old counts. The checkpoint keeps the changelog's topic ID, so the store is
// wiped and restored from the whole new changelog.
func TestStaleStateOfADeletedChangelogIsWiped(t *testing.T) {
	f := newCountFixture(t, stream.AtLeastOnce) // the first instance counted 100 of each key
	f.release()
	ctx := context.Background()
	for _, topic := range []string{"words", "counts", f.changelog} {
		if _, err := f.adm.DeleteTopic(ctx, topic); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.adm.DeleteGroups(ctx, "restoring"); err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{"words", "counts"} {
		kafkatest.CreateTopic(t, f.adm, topic, 2, 1, nil)
	}
	f.want = map[string]int64{}
	f.produceTo = kafkatest.Client(t, f.brokers, kgo.DefaultProduceTopic("words")) // no metadata of the old topics
	// Another instance counts the new input: all 40 keys first, then only w00-w19 over several
	// commits, so the new changelog runs past the stale checkpoint with w20-w39 only in its head.
	other := f.newApp(t.TempDir())
	otherCtx, stopOther := kafkatest.RunApp(t, other)
	f.produce(t, 400, 40)
	for range 6 {
		if err := other.WaitIdle(otherCtx); err != nil {
			t.Fatal(err)
		}
		f.produce(t, 200, 20)
	}
	if err := other.WaitIdle(otherCtx); err != nil {
		t.Fatal(err)
	}
	if err := stopOther(); err != nil {
		t.Fatal(err)
	}
	f.produce(t, 40, 40)
	m := kafkatest.RunToEnd(t, f.newApp(f.firstDir), time.Now()) // the stale state dir
	if m.RecordsRestored == 0 {
		t.Errorf("nothing restored from the new changelog")
	}
	f.checkCounts(t)
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

// holdFirstFetches makes the kfake cluster c hold its answer to the first fetch of each
// partition of topic (name, id) until release is called (or the test ends). heldCount returns how
// many partitions have had their first fetch held.
func holdFirstFetches(t *testing.T, c *kfake.Cluster, topic string, id [16]byte) (heldCount func() int, release func()) {
	var (
		mu   sync.Mutex
		held = map[int32]bool{}
		wake = make(chan struct{})
		once sync.Once
	)
	release = func() { once.Do(func() { close(wake) }) }
	t.Cleanup(release)
	c.ControlKey(int16(kmsg.Fetch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		hold := false
		mu.Lock()
		for _, ft := range req.(*kmsg.FetchRequest).Topics {
			if ft.Topic != topic && ft.TopicID != id {
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
			c.SleepControl(func() { <-wake })
		}
		return nil, nil, false
	})
	heldCount = func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(held)
	}
	return heldCount, release
}
