package stream_test

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

// Stream time moved by AdvanceStreamTime survives a clean restart, on the same state dir or on
// another instance restoring from the changelog: the windows it closed (and whose final results
// it emitted) stay closed, so a view for one of them after the restart is late, not the start of
// a second final result for that window. Before, stream time restarted at the largest record
// timestamp: the restarted app emitted window [0s, 10s) a second time, with the late view as its
// count.
func TestAdvancedStreamTimeSurvivesARestart(t *testing.T) {
	const size = 10 * time.Second
	for _, c := range []struct {
		name     string
		keySerde serde.Serde[stream.Windowed[string]]
		count    func(views stream.Stream[string, string]) stream.Table[stream.Windowed[string], int64]
		// want: the windows after the first run, then after the second; late: records dropped
		// as late by the second run.
		first, second []string
		late          int64
	}{
		{"tumbling", stream.TimeWindowedSerde(serde.String(), size),
			func(v stream.Stream[string, string]) stream.Table[stream.Windowed[string], int64] {
				return stream.CountWindows(stream.WindowedBy(stream.GroupByKey(v), stream.Tumbling(size)),
					stream.Materialized("counts-store"), stream.EmitOnWindowClose())
			},
			[]string{"a@0s-10s=2"}, []string{"a@0s-10s=2", "a@40s-50s=1"}, 1},
		// Updates, not final results: closing a window writes nothing to its store, so only the
		// time marker (or the checkpoint's time) says it is closed.
		{"tumbling updates", stream.TimeWindowedSerde(serde.String(), size),
			func(v stream.Stream[string, string]) stream.Table[stream.Windowed[string], int64] {
				return stream.CountWindows(stream.WindowedBy(stream.GroupByKey(v), stream.Tumbling(size)),
					stream.Materialized("counts-store"))
			},
			[]string{"a@0s-10s=2"}, []string{"a@0s-10s=2", "a@40s-50s=1"}, 1},
		{"sessions", stream.SessionWindowedSerde(serde.String()),
			func(v stream.Stream[string, string]) stream.Table[stream.Windowed[string], int64] {
				return stream.CountSessions(stream.SessionWindowedBy(stream.GroupByKey(v), stream.Sessions(5*time.Second)),
					stream.Materialized("counts-store"), stream.EmitOnWindowClose())
			},
			// The view at 3s would have joined the closed session [1s, 2s].
			[]string{"a@1s-2s=2"}, []string{"a@1s-2s=2", "a@41s-41s=1"}, 1},
	} {
		for _, moved := range []bool{false, true} {
			name := c.name + "/same state dir"
			if moved {
				name = c.name + "/restored from the changelog"
			}
			t.Run(name, func(t *testing.T) {
				advancedStreamTimeSurvivesARestart(t, c.keySerde, c.count, c.first, c.second, c.late, moved)
			})
		}
	}
}

func advancedStreamTimeSurvivesARestart(t *testing.T, keySerde serde.Serde[stream.Windowed[string]],
	count func(stream.Stream[string, string]) stream.Table[stream.Windowed[string], int64], first, second []string, late int64, moved bool) {
	_, brokers := kafkatest.Fake(t, kfakeSeed("views", 1), kfakeSeed("counts", 1))
	stateDir := t.TempDir()
	newApp := func() *stream.App {
		b := stream.NewBuilder()
		count(stream.From(b, "views", serde.String(), serde.String())).ToStream().To("counts", keySerde, serde.Int64())
		app, err := stream.NewApp(b, stream.AppID("restart"), stream.Brokers(brokers...), stream.StateDir(stateDir),
			stream.CommitInterval(100*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		return app
	}
	cl := kafkatest.Client(t, brokers, kgo.DefaultProduceTopic("views"))
	zero := time.UnixMilli(0)
	view := func(page string, at time.Duration) {
		t.Helper()
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Key: []byte(page), Value: []byte("v"), Timestamp: zero.Add(at)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	runToEnd := func(advanceTo time.Duration) stream.Metrics {
		t.Helper()
		return kafkatest.RunToEnd(t, newApp(), zero.Add(advanceTo))
	}
	windows := func() []string { return kafkatest.WindowCounts(t, brokers, "counts", keySerde, zero) }

	view("a", 1*time.Second)
	view("a", 2*time.Second)
	runToEnd(30 * time.Second)
	if got := windows(); !slices.Equal(got, first) {
		t.Fatalf("first run emitted %v, want %v", got, first)
	}

	if moved {
		stateDir = t.TempDir() // another instance: the store is restored from its changelog
	}
	view("a", 3*time.Second)  // late: its window was closed before the restart
	view("a", 41*time.Second) // a new window
	m := runToEnd(60 * time.Second)
	if got := windows(); !slices.Equal(got, second) {
		t.Fatalf("after the restart: %v, want %v", got, second)
	}
	if got := m.Skipped["late"]; got != late {
		t.Errorf("%d late records after the restart, want %d (%+v)", got, late, m.Skipped)
	}
}
