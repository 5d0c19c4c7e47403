package engine

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rifflestream/riffle/topology"
)

// fakeRestorable records the chunks a restore applies.
type fakeRestorable struct {
	topology.StateStore
	recs   []topology.ChangelogEntry
	chunks []int64 // the checkpoint of each applied chunk
}

func (f *fakeRestorable) Name() string                      { return "fake" }
func (f *fakeRestorable) RestoreFrom() (int64, bool, error) { return 0, false, nil }
func (f *fakeRestorable) Wipe() error                       { return nil }
func (f *fakeRestorable) Restore(recs []topology.ChangelogEntry, next int64) error {
	for _, r := range recs { // the restore reuses its buffers: keep copies
		c := topology.ChangelogEntry{Key: bytes.Clone(r.Key), Timestamp: r.Timestamp}
		if r.Value != nil {
			c.Value = append([]byte{}, r.Value...)
		}
		f.recs = append(f.recs, c)
	}
	f.chunks = append(f.chunks, next)
	return nil
}

// changelogCluster starts a kfake cluster with topic (of partitions partitions) and returns its
// addresses, a context for the test and a client producing to topic (with opts).
func changelogCluster(t *testing.T, topic string, partitions int32, opts ...kgo.Opt) ([]string, context.Context, *kgo.Client) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic(topic)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return c.ListenAddrs(), ctx, cl
}

// TestChangelogRestorerChunks restores a changelog with tombstones, empty values, an aborted and
// a committed transaction, read_committed, in chunks far smaller than a fetch, and checks that
// the store got every committed record in order, with a checkpoint per chunk ending at the end.
func TestChangelogRestorerChunks(t *testing.T) {
	addrs, ctx, plain := changelogCluster(t, "rs-changelog", 1)
	var want []topology.ChangelogEntry
	produce := func(cl *kgo.Client, i int, keep bool) {
		r := &kgo.Record{Key: fmt.Appendf(nil, "k%04d", i%300), Timestamp: time.UnixMilli(int64(1000 + i))}
		switch i % 7 {
		case 3: // a tombstone
		case 5:
			r.Value = []byte{} // an empty value, not a tombstone
		default:
			r.Value = bytes.Repeat([]byte{byte(i)}, 50+i%100)
		}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if keep {
			want = append(want, topology.ChangelogEntry{Key: r.Key, Value: r.Value, Timestamp: r.Timestamp.UnixMilli()})
		}
	}
	for i := range 1000 {
		produce(plain, i, true)
	}
	txn, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DefaultProduceTopic("rs-changelog"), kgo.TransactionalID("rs-txn"))
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Close()
	for round, commit := range []bool{false, true} {
		if err := txn.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for i := range 200 {
			produce(txn, 1000+round*200+i, commit)
		}
		if err := txn.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 500 {
		produce(plain, 1400+i, true)
	}

	adm := kadm.NewClient(plain)
	var end int64
	bounds := func(ctx context.Context, topic string, p int32) (int64, int64, error) {
		ends, err := adm.ListCommittedOffsets(ctx, topic)
		if err != nil {
			return 0, 0, err
		}
		o, _ := ends.Lookup(topic, p)
		end = o.Offset
		return 0, o.Offset, o.Err
	}
	// Alone, a restore overlaps fetching with writing (two chunk buffers); with as many restores
	// as CPUs running, it fills one buffer and waits for its write (activeRestores).
	for _, others := range []int32{0, int32(runtime.GOMAXPROCS(0))} {
		t.Run(fmt.Sprintf("others=%d", others), func(t *testing.T) {
			activeRestores.Add(others)
			defer activeRestores.Add(-others)
			f := &fakeRestorable{}
			cr := &ChangelogRestorer{Brokers: addrs, Isolation: kgo.ReadCommitted(), Bounds: bounds, ChunkBytes: 4 << 10, FetchPartitionBytes: 64 << 10}
			n, err := cr.Restore(ctx, f, "rs-changelog", 0, "0_0")
			if err != nil {
				t.Fatal(err)
			}
			if n != int64(len(want)) || len(f.recs) != len(want) {
				t.Fatalf("restored %d (reported %d) records, want %d", len(f.recs), n, len(want))
			}
			for i, w := range want {
				g := f.recs[i]
				if !bytes.Equal(g.Key, w.Key) || !bytes.Equal(g.Value, w.Value) || (g.Value == nil) != (w.Value == nil) || g.Timestamp != w.Timestamp {
					t.Fatalf("record %d: %q=%q (nil %v) @%d, want %q=%q (nil %v) @%d", i, g.Key, g.Value, g.Value == nil, g.Timestamp, w.Key, w.Value, w.Value == nil, w.Timestamp)
				}
			}
			if len(f.chunks) < 10 {
				t.Fatalf("%d chunks: the chunk size did not split the restore", len(f.chunks))
			}
			for i := 1; i < len(f.chunks); i++ {
				if f.chunks[i] <= f.chunks[i-1] {
					t.Fatalf("checkpoints %v do not increase", f.chunks)
				}
			}
			if last := f.chunks[len(f.chunks)-1]; last != end {
				t.Fatalf("last checkpoint %d, want the end %d", last, end)
			}
		})
	}
}

// A chunk's arena is sized for what is left of the changelog, not for a whole chunk: every
// restore used to allocate 18 MiB up front, so an instance restoring a hundred small stores at
// once allocated ~1.8 GB. Records larger than the first one grow the arena, and the entries stay
// right.
func TestChunkArenaSizedForWhatIsLeft(t *testing.T) {
	const chunk = restoreChunkBytes
	small := &changelogRecord{Key: []byte("k000"), Value: bytes.Repeat([]byte{'v'}, 100)}
	var few restoreChunk
	few.add(small, chunk, 100)
	if c := cap(few.arena); c > 1<<20 {
		t.Errorf("a restore of 100 records of 104 bytes made an arena of %d bytes", c)
	}
	var many restoreChunk
	many.add(small, chunk, 10_000_000)
	if c, want := cap(many.arena), chunk+chunk/8; c != want {
		t.Errorf("a restore of 10M records made an arena of %d bytes, want a chunk's %d", c, want)
	}
	// Three records left, judged by a tiny first one: the large ones that follow grow the arena.
	var grown restoreChunk
	want := []*changelogRecord{{Key: []byte("a"), Value: []byte("b")}}
	for i := range 3 {
		want = append(want, &changelogRecord{Key: fmt.Appendf(nil, "big%d", i), Value: bytes.Repeat([]byte{byte('x' + i)}, 200<<10)})
	}
	want = append(want, &changelogRecord{Key: []byte("gone")}) // a tombstone
	for i, r := range want {
		grown.add(r, chunk, int64(len(want)-i))
	}
	got := grown.entries()
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d", len(got), len(want))
	}
	for i, w := range want {
		if !bytes.Equal(got[i].Key, w.Key) || !bytes.Equal(got[i].Value, w.Value) || (got[i].Value == nil) != (w.Value == nil) {
			t.Errorf("entry %d: %q (%d value bytes), want %q (%d)", i, got[i].Key, len(got[i].Value), w.Key, len(w.Value))
		}
	}
}

// slowRestorable is a fakeRestorable whose chunks take a while, and that tracks how many restores
// apply chunks at once.
type slowRestorable struct {
	fakeRestorable
	running, most *atomic.Int32
}

func (s *slowRestorable) Restore(recs []topology.ChangelogEntry, next int64) error {
	n := s.running.Add(1)
	defer s.running.Add(-1)
	for {
		m := s.most.Load()
		if n <= m || s.most.CompareAndSwap(m, n) {
			break
		}
	}
	time.Sleep(20 * time.Millisecond)
	return s.fakeRestorable.Restore(recs, next)
}

// Restores beyond ChangelogRestorer.Slots wait for a running one to finish: six partitions
// restored at once with two slots never have more than two restores writing, and every one
// completes.
func TestRestoreSlotsBoundConcurrentRestores(t *testing.T) {
	const parts, n = 6, 200
	addrs, ctx, cl := changelogCluster(t, "slots-changelog", parts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for p := range int32(parts) {
		for i := range n {
			cl.Produce(ctx, &kgo.Record{Partition: p, Key: fmt.Appendf(nil, "k%d", i), Value: []byte("v")}, nil)
		}
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	bounds := func(context.Context, string, int32) (int64, int64, error) { return 0, n, nil }
	var running, most atomic.Int32
	cr := &ChangelogRestorer{Brokers: addrs, Bounds: bounds, Slots: make(chan struct{}, 2), ChunkBytes: 256}
	errs := make(chan error, parts)
	stores := make([]*slowRestorable, parts)
	for p := range int32(parts) {
		stores[p] = &slowRestorable{running: &running, most: &most}
		go func() {
			_, err := cr.Restore(ctx, stores[p], "slots-changelog", p, fmt.Sprintf("0_%d", p))
			errs <- err
		}()
	}
	for range parts {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for p, s := range stores {
		if len(s.recs) != n {
			t.Errorf("partition %d: %d records restored, want %d", p, len(s.recs), n)
		}
	}
	if m := most.Load(); m > 2 {
		t.Fatalf("%d restores wrote at once with 2 slots", m)
	} else if m < 2 {
		t.Fatalf("at most %d restore wrote at a time: the test did not make them overlap", m)
	}
	if len(cr.Slots) != 0 {
		t.Fatalf("%d slots still held after every restore returned", len(cr.Slots))
	}
}

// trackedRestorable is a fakeRestorable with a checkpoint (offset from, kept with changelog ID
// was) that records wipes and the changelog ID it is told to use.
type trackedRestorable struct {
	fakeRestorable
	from  int64
	was   topology.ChangelogID
	used  topology.ChangelogID
	wiped bool
}

func (s *trackedRestorable) RestoreFrom() (int64, bool, error) {
	if s.wiped {
		return 0, false, nil
	}
	return s.from, true, nil
}
func (s *trackedRestorable) CheckpointChangelog() (topology.ChangelogID, error) { return s.was, nil }
func (s *trackedRestorable) UseChangelog(id topology.ChangelogID)               { s.used = id }
func (s *trackedRestorable) Wipe() error                                        { s.wiped = true; return nil }

// A checkpoint kept with another changelog ID than the topic's is of a changelog deleted since
// (an application reset, a topic recreated): the store is wiped and restored from the start,
// although the checkpoint lies below the new changelog's end (the offset check alone would
// restore the new topic's tail onto the old state). A checkpoint of the same ID, or one kept
// without an ID (written before IDs were), is restored from.
func TestRestoreWipesAStoreOfAnotherChangelog(t *testing.T) {
	const n = 10
	addrs, ctx, cl := changelogCluster(t, "ids-changelog", 1)
	for i := range n {
		cl.Produce(ctx, &kgo.Record{Key: fmt.Appendf(nil, "k%d", i), Value: []byte("v")}, nil)
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	bounds := func(context.Context, string, int32) (int64, int64, error) { return 0, n, nil }
	topicID := topology.ChangelogID{1, 2, 3}
	cr := &ChangelogRestorer{Brokers: addrs, Bounds: bounds,
		TopicID: func(context.Context, string) (topology.ChangelogID, error) { return topicID, nil }}
	for _, c := range []struct {
		name     string
		was      topology.ChangelogID
		wipe     bool
		restored int
		firstKey string
	}{
		{"another changelog", topology.ChangelogID{9, 9}, true, n, "k0"},
		{"the same changelog", topicID, false, n - 4, "k4"},
		{"a checkpoint without an ID", topology.ChangelogID{}, false, n - 4, "k4"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := &trackedRestorable{from: 4, was: c.was}
			got, err := cr.Restore(ctx, s, "ids-changelog", 0, "0_0")
			if err != nil {
				t.Fatal(err)
			}
			if s.wiped != c.wipe {
				t.Errorf("wiped: %v, want %v", s.wiped, c.wipe)
			}
			if int(got) != c.restored || len(s.recs) != c.restored || string(s.recs[0].Key) != c.firstKey {
				t.Fatalf("restored %d records (reported %d) from %q, want %d from %q", len(s.recs), got, s.recs[0].Key, c.restored, c.firstKey)
			}
			if s.used != topicID {
				t.Errorf("the store was told changelog ID %v, want %v", s.used, topicID)
			}
		})
	}
}

// A restore's chunk buffers are kept for the next restore (restoreChunks), and the records a
// restore with reused buffers applies are right.
func TestRestoreReusesChunkBuffers(t *testing.T) {
	const n = 300
	addrs, ctx, cl := changelogCluster(t, "reuse-changelog", 1)
	for i := range n {
		cl.Produce(ctx, &kgo.Record{Key: fmt.Appendf(nil, "k%03d", i), Value: fmt.Appendf(nil, "v%d", i)}, nil)
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	ReleaseIdleRestoreMemory()
	bounds := func(context.Context, string, int32) (int64, int64, error) { return 0, n, nil }
	cr := &ChangelogRestorer{Brokers: addrs, Bounds: bounds, ChunkBytes: 512}
	for run := range 2 {
		f := &fakeRestorable{}
		if _, err := cr.Restore(ctx, f, "reuse-changelog", 0, "0_0"); err != nil {
			t.Fatal(err)
		}
		if len(f.recs) != n {
			t.Fatalf("run %d: %d records restored, want %d", run, len(f.recs), n)
		}
		for i, r := range f.recs {
			if want := fmt.Sprintf("k%03d=v%d", i, i); string(r.Key)+"="+string(r.Value) != want {
				t.Fatalf("run %d: record %d is %s=%s, want %s", run, i, r.Key, r.Value, want)
			}
		}
		if restoreChunks.Len() == 0 {
			t.Fatalf("run %d: no chunk buffer kept after the restore", run)
		}
	}
	ReleaseIdleRestoreMemory()
	if restoreChunks.Len() != 0 {
		t.Fatal("chunk buffers kept after ReleaseIdleRestoreMemory")
	}
}
