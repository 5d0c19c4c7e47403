package stream_test

import (
	"context"
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
// more records than fit (before, each partition held up to its limit plus a fetch).
func TestBackpressureBoundsBuffering(t *testing.T) {
	_, brokers := kafkatest.Fake(t, kfakeSeed("slow-in", 2), kfakeSeed("slow-out", 2))
	cl := kafkatest.Client(t, brokers)
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
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
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
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if maxBuffered > 50 || maxBuffered == 0 {
		t.Fatalf("at most %d records buffered, want 1 to 50 (2 partitions, half of 50 each)", maxBuffered)
	}
	if got := len(kafkatest.ReadAll(t, brokers, "slow-out", false)); got != n || outOfOrder != 0 {
		t.Fatalf("%d of %d records out, %d out of order", got, n, outOfOrder)
	}
	t.Logf("max buffered %d records (limit 50 per partition, 2 partitions); a partition paused: %v", maxBuffered, sawPause)
}
