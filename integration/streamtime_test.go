package integration

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rifflestream/riffle/internal/kafkatest"
	"github.com/rifflestream/riffle/serde"
	"github.com/rifflestream/riffle/stream"
)

// AdvanceStreamTime into the future on real Kafka: closing the windows deletes them from their
// store during a punctuation, whose writes are stamped with stream time, and Kafka 4 brokers
// refuse records stamped over an hour ahead (log.message.timestamp.after.max.ms). That stopped
// the app with INVALID_TIMESTAMP on the changelog; now changelog records are stamped at most
// now. The final result is emitted, and a second instance restoring from the changelog (a fresh
// state dir) keeps the advanced stream time: a view for the closed window is late.
func TestAdvanceStreamTimeIntoTheFuture(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	tp := setup(t, brokers, 1)
	const size = 10 * time.Second
	keySerde := stream.TimeWindowedSerde(serde.String(), size)
	newApp := func() *stream.App {
		b := stream.NewBuilder()
		views := stream.From(b, tp.in, serde.String(), serde.String())
		stream.CountWindows(stream.WindowedBy(stream.GroupByKey(views), stream.Tumbling(size)),
			stream.Materialized("w"), stream.EmitOnWindowClose()).ToStream().To(tp.out, keySerde, serde.Int64())
		app, err := stream.NewApp(b, stream.AppID(tp.app), stream.Brokers(brokers...), stream.StateDir(t.TempDir()),
			stream.CommitInterval(200*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		return app
	}
	cl := kafkatest.Client(t, brokers, kgo.DefaultProduceTopic(tp.in))
	now := time.Now().Truncate(size)
	view := func(at time.Time) {
		t.Helper()
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Key: []byte("a"), Value: []byte("v"), Timestamp: at}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	run := func(advanceTo time.Time) stream.Metrics {
		t.Helper()
		return kafkatest.RunToEnd(t, newApp(), advanceTo)
	}
	windows := func() []string { return kafkatest.WindowCounts(t, brokers, tp.out, keySerde, now) }

	view(now.Add(time.Second))
	view(now.Add(2 * time.Second))
	run(now.Add(2 * time.Hour))
	if got, want := windows(), []string{"a@0s-10s=2"}; !slices.Equal(got, want) {
		t.Fatalf("first run emitted %v, want %v", got, want)
	}
	view(now.Add(3 * time.Second)) // late: stream time is two hours ahead
	m := run(now.Add(2 * time.Hour))
	if got, want := windows(), []string{"a@0s-10s=2"}; !slices.Equal(got, want) {
		t.Fatalf("after a restore from the changelog: %v, want %v", got, want)
	}
	if late := m.Skipped["late"]; late != 1 {
		t.Errorf("%d late records after the restore, want 1 (%+v)", late, m.Skipped)
	}
}
