package integration

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rifflestream/riffle/internal/kafkatest"
	"github.com/rifflestream/riffle/internal/murmur2"
	"github.com/rifflestream/riffle/serde"
	"github.com/rifflestream/riffle/stream"
)

// Exactly-once on real Kafka: every input counted once, outputs committed, nothing doubled.
func TestExactlyOnceCounts(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	tp := setup(t, brokers, 3)
	cl := kafkatest.Client(t, brokers)
	const n = 3000
	for i := 0; i < n; i++ {
		cl.Produce(context.Background(), &kgo.Record{Topic: tp.in, Key: []byte(strconv.Itoa(i % 17)), Value: i64(1)}, nil)
	}
	if err := cl.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	b := stream.NewBuilder()
	in := stream.From(b, tp.in, serde.String(), serde.Int64())
	stream.Count(stream.GroupByKey(in), stream.Materialized("c"), stream.WithoutCaching()).ToStream().To(tp.out, nil, nil)
	app, err := stream.NewApp(b, stream.AppID(tp.app), stream.Brokers(brokers...), stream.StateDir(t.TempDir()),
		stream.ProcessingGuarantee(stream.ExactlyOnce))
	if err != nil {
		t.Fatal(err)
	}
	stop := runApp(t, app)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := app.WaitIdle(ctx); err != nil {
		t.Fatalf("%v (Run: %v)", err, stop())
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	out := kafkatest.ReadAll(t, brokers, tp.out, true)
	if len(out) != n {
		t.Fatalf("%d committed outputs, want exactly %d", len(out), n)
	}
	t.Logf("metrics %+v", app.Metrics())
}

// Exactly-once through rebalances: a second instance joins and leaves while records stream in.
// The first instance's transactions in flight at each revocation abort, its tasks are rebuilt
// from committed state, and every key's counts still go 1, 2, 3, ... exactly once.
func TestExactlyOnceRebalance(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	tp := setup(t, brokers, 6)
	const n, keys = 24000, 120
	logs := newErrorLog()
	newApp := func(name string) *stream.App {
		b := stream.NewBuilder()
		in := stream.From(b, tp.in, serde.String(), serde.Int64())
		stream.Count(stream.GroupByKey(in), stream.Materialized("c"), stream.WithoutCaching()).ToStream().To(tp.out, nil, nil)
		app, err := stream.NewApp(b, stream.AppID(tp.app), stream.Brokers(brokers...), stream.StateDir(t.TempDir()),
			stream.ProcessingGuarantee(stream.ExactlyOnce), stream.ClientOptions(kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(time.Second)),
			stream.Logger(slog.New(logs).With("instance", name)))
		if err != nil {
			t.Fatal(err)
		}
		return app
	}
	produced := make(chan error, 1)
	go func() {
		cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(tp.in), kgo.ProducerLinger(2*time.Millisecond))
		if err != nil {
			produced <- err
			return
		}
		defer cl.Close()
		start := time.Now()
		for i := 0; i < n; i++ {
			if due := start.Add(time.Duration(i) * 12 * time.Second / n); time.Until(due) > 0 {
				time.Sleep(time.Until(due))
			}
			cl.Produce(context.Background(), &kgo.Record{Key: []byte(strconv.Itoa(i % keys)), Value: i64(1)}, nil)
		}
		produced <- cl.Flush(context.Background())
	}()
	a := newApp("a")
	stopA := runApp(t, a)
	time.Sleep(3 * time.Second)
	bApp := newApp("b")
	stopB := runApp(t, bApp)
	time.Sleep(5 * time.Second)
	if err := stopB(); err != nil {
		t.Fatal(err)
	}
	if err := <-produced; err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := a.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	if err := stopA(); err != nil {
		t.Fatal(err)
	}
	// EndTxn returns once the commit is decided; the coordinator writes the markers that make the
	// last transaction readable (read_committed) a moment later.
	var out []*kgo.Record
	deadline := time.Now().Add(30 * time.Second)
	for {
		out = kafkatest.ReadAll(t, brokers, tp.out, true)
		if len(out) >= n {
			break
		}
		if time.Now().After(deadline) {
			adm := kafkatest.Admin(t, brokers)
			txns, _ := adm.ListTransactions(context.Background(), nil, nil)
			hw, _ := adm.ListEndOffsets(context.Background(), tp.out)
			lso, _ := adm.ListCommittedOffsets(context.Background(), tp.out)
			t.Fatalf("%d committed outputs after 30s, want %d; input lag %d; transactions %v; output high watermarks %v, last stable offsets %v",
				len(out), n, groupLag(t, brokers, tp.app, tp.in), txns, hw, lso)
		}
		time.Sleep(200 * time.Millisecond)
	}
	counts := map[string][]int64{}
	for _, r := range out {
		counts[string(r.Key)] = append(counts[string(r.Key)], int64(binary.BigEndian.Uint64(r.Value)))
	}
	total := 0
	var bad []string
	for k := 0; k < keys; k++ {
		key := strconv.Itoa(k)
		got := counts[key]
		total += len(got)
		for i, c := range got {
			if c != int64(i+1) {
				bad = append(bad, fmt.Sprintf("key %s (partition %d): update #%d is %d, around %v", key, partitionOf(key, 6), i+1, c, got[max(0, i-2):min(len(got), i+3)]))
				break
			}
		}
		if len(got) != n/keys {
			bad = append(bad, fmt.Sprintf("key %s (partition %d): %d committed updates, want %d", key, partitionOf(key, 6), len(got), n/keys))
		}
	}
	if len(bad) > 0 {
		t.Fatalf("%d problems:\n%s", len(bad), strings.Join(bad, "\n"))
	}
	if errs := logs.Errors(); len(errs) > 0 {
		t.Fatalf("the instances logged errors: %v", errs)
	}
	ma, mb := a.Metrics(), bApp.Metrics()
	if ma.TransactionsAborted == 0 {
		t.Fatalf("instance a lost tasks to b mid-stream, yet aborted no transaction: %+v", ma)
	}
	t.Logf("%d updates exact; a: %d commits, %d aborted, %d rebalances; b: %d commits, %d aborted", total, ma.Commits, ma.TransactionsAborted, ma.Rebalances, mb.Commits, mb.TransactionsAborted)
}

// partitionOf is the partition Kafka's default partitioner picks for key.
func partitionOf(key string, partitions int32) int32 {
	return murmur2.Partition([]byte(key), partitions)
}
