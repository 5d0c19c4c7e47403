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
)

// Exactly-once end to end on the in-process broker: every input is counted once, outputs are
// committed, and a clean stop commits everything.
func TestExactlyOnceOnFakeBroker(t *testing.T) {
	_, brokers := kafkatest.Fake(t, kfakeSeed("eos-in", 3), kfakeSeed("eos-out", 3))
	cl := kafkatest.Client(t, brokers)
	const n = 3000
	for i := 0; i < n; i++ {
		cl.Produce(context.Background(), &kgo.Record{Topic: "eos-in", Key: []byte(strconv.Itoa(i % 17)), Value: serde8(1)}, nil)
	}
	if err := cl.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	b := stream.NewBuilder()
	in := stream.From(b, "eos-in", serde.String(), serde.Int64())
	stream.Count(stream.GroupByKey(in), stream.Materialized("c"), stream.WithoutCaching()).ToStream().To("eos-out", nil, nil)
	app, err := stream.NewApp(b, stream.AppID("eos-fake"), stream.Brokers(brokers...), stream.StateDir(t.TempDir()),
		stream.ProcessingGuarantee(stream.ExactlyOnce))
	if err != nil {
		t.Fatal(err)
	}
	_, stop := kafkatest.RunApp(t, app)
	wctx, wcancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer wcancel()
	if err := app.WaitIdle(wctx); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	out := kafkatest.ReadAll(t, brokers, "eos-out", true)
	if len(out) != n {
		t.Fatalf("%d committed outputs, want exactly %d", len(out), n)
	}
	t.Logf("metrics %+v", app.Metrics())
}
