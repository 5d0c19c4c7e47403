package integration

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rifflestream/riffle/internal/kafkatest"
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
