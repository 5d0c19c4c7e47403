package stream_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rifflestream/riffle/internal/kafkatest"
	"github.com/rifflestream/riffle/serde"
	"github.com/rifflestream/riffle/stream"
)

// Tasks that fall behind stop the fetching instead of buffering without bound, and it resumes:
// every record is still processed, in order per partition. With the tasks behind together, the
// app holds at most half of each partition's limit in total: the poll loop waits, and takes no
// more records than fit (before, each partition held up to its limit plus a fetch). A partition
// whose queue stays at its limit (a task stalled, as on a loaded CI machine) is paused, and its
// queue stops counting against the poll loop's total: then each partition holds at most its own
// limit (a CI run saw 100 of 2 x 50).
func TestBackpressureBoundsBuffering(t *testing.T) {
	_, brokers := kafkatest.Fake(t, kfakeSeed("slow-in", 2), kfakeSeed("slow-out", 2))
	cl := kafkatest.Client(t, brokers, kgo.RecordPartitioner(kgo.ManualPartitioner())) // Partition i%2
	const n = 3000
	for i := 0; i < n; i++ {
		cl.Produce(context.Background(), &kgo.Record{Topic: "slow-in", Partition: int32(i % 2), Value: serde8(int64(i))}, nil)
	}
	if err := cl.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	last := map[string]int64{}
	outOfOrder := 0
	b := stream.NewBuilder()
	in := stream.From(b, "slow-in", serde.String(), serde.Int64())
	in.Peek(func(_ string, v int64) {
		time.Sleep(200 * time.Microsecond) // a slow task
		mu.Lock()
		p := strconv.Itoa(int(v % 2))
		if v < last[p] {
			outOfOrder++
		}
		last[p] = v
		mu.Unlock()
	}).To("slow-out", nil, nil)
	app, err := stream.NewApp(b, stream.AppID("slow"), stream.Brokers(brokers...), stream.MaxBufferedRecordsPerPartition(50),
		stream.CommitInterval(100*time.Millisecond), stream.ClientOptions(kgo.FetchMaxPartitionBytes(2000)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := kafkatest.RunApp(t, app)
	sawPause, maxBuffered := false, 0
	for app.Metrics().RecordsProcessed < n {
		m := app.Metrics()
		sawPause = sawPause || m.PausedPartitions > 0
		maxBuffered = max(maxBuffered, m.BufferedRecords)
		if app.State() == "failed" {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := app.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	bound, why := 50, "2 partitions, half of 50 each"
	if pauses := app.Metrics().FetchPauses; pauses > 0 {
		bound, why = 100, fmt.Sprintf("%d fetch pauses: 2 partitions, at most 50 each", pauses)
	}
	if maxBuffered > bound || maxBuffered == 0 {
		t.Fatalf("at most %d records buffered, want 1 to %d (%s)", maxBuffered, bound, why)
	}
	if got := len(kafkatest.ReadAll(t, brokers, "slow-out", false)); got != n || outOfOrder != 0 {
		t.Fatalf("%d of %d records out, %d out of order", got, n, outOfOrder)
	}
	t.Logf("max buffered %d records (limit 50 per partition, 2 partitions); a partition paused: %v", maxBuffered, sawPause)
}

// A task far behind the others has its partition's fetching paused, so that it does not take
// the whole buffer and stall the others: here the task of partition 0 takes 5 ms a record and
// partition 1's task keeps up; partition 1 is through while partition 0 is still far behind.
func TestSlowTaskDoesNotStallTheOthers(t *testing.T) {
	_, brokers := kafkatest.Fake(t, kfakeSeed("hog-in", 2), kfakeSeed("hog-out", 2))
	cl := kafkatest.Client(t, brokers, kgo.RecordPartitioner(kgo.ManualPartitioner())) // Partition i%2
	const n = 800                                                                      // 400 per partition
	for i := 0; i < n; i++ {
		cl.Produce(context.Background(), &kgo.Record{Topic: "hog-in", Partition: int32(i % 2), Value: serde8(int64(i))}, nil)
	}
	if err := cl.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := [2]int{}
	slowAtFastDone := -1 // records of partition 0 processed when partition 1 was through
	b := stream.NewBuilder()
	stream.From(b, "hog-in", serde.String(), serde.Int64()).Peek(func(_ string, v int64) {
		p := v % 2
		if p == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		mu.Lock()
		seen[p]++
		if p == 1 && seen[1] == n/2 {
			slowAtFastDone = seen[0]
		}
		mu.Unlock()
	}).To("hog-out", nil, nil)
	app, err := stream.NewApp(b, stream.AppID("hog"), stream.Brokers(brokers...), stream.MaxBufferedRecordsPerPartition(40),
		stream.CommitInterval(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	_, stop := kafkatest.RunApp(t, app)
	for app.Metrics().RecordsProcessed < n && app.State() != "failed" {
		time.Sleep(5 * time.Millisecond)
	}
	m := app.Metrics()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if seen != [2]int{n / 2, n / 2} {
		t.Fatalf("processed %v records per partition, want %d each", seen, n/2)
	}
	t.Logf("partition 1 through with partition 0 at %d of %d; %d pauses", slowAtFastDone, n/2, m.FetchPauses)
	if m.FetchPauses == 0 {
		t.Fatal("the slow task's partition was never paused")
	}
	if slowAtFastDone < 0 || slowAtFastDone > n/4 {
		t.Fatalf("partition 0 (slow) had %d of %d records processed when partition 1 was through: the slow task stalled the fast one", slowAtFastDone, n/2)
	}
}
