package kafkatest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rifflestream/riffle/serde"
	"github.com/rifflestream/riffle/stream"
)

// RunApp runs app in the background. ctx is the context Run got (for WaitIdle, say); stop
// cancels it and returns Run's error, or an error if Run has not returned within 90 s. A test
// that does not call stop has the app stopped when it ends.
func RunApp(t testing.TB, app *stream.App) (ctx context.Context, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(90 * time.Second):
				err = fmt.Errorf("kafkatest: the app did not stop within 90s")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return ctx, stop
}

// RunToEnd runs app until it has processed its input (WaitIdle), moves its stream time to
// advanceTo (closing the windows that closes), waits for that to be committed, stops the app and
// returns its metrics. It fails the test on any error.
func RunToEnd(t testing.TB, app *stream.App, advanceTo time.Time) stream.Metrics {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, stop := RunApp(t, app)
	if err := app.WaitIdle(ctx); err != nil {
		t.Fatalf("kafkatest: waiting for the input to be processed: %v", err)
	}
	if err := app.AdvanceStreamTime(ctx, advanceTo); err != nil {
		t.Fatalf("kafkatest: AdvanceStreamTime: %v", err)
	}
	if err := app.WaitIdle(ctx); err != nil {
		t.Fatalf("kafkatest: after AdvanceStreamTime: %v", err)
	}
	m := app.Metrics()
	if err := stop(); err != nil {
		t.Fatalf("kafkatest: stopping the app: %v", err)
	}
	return m
}

// WindowCounts reads a topic of windowed counts (keys in keySerde, int64 values) as
// "key@start-end=count" lines, in topic order, the window bounds as durations after base.
func WindowCounts(t testing.TB, brokers []string, topic string, keySerde serde.Serde[stream.Windowed[string]], base time.Time) []string {
	t.Helper()
	var got []string
	for _, r := range ReadAll(t, brokers, topic, false) {
		w, err := keySerde.Deserialize(topic, r.Key)
		if err != nil {
			t.Fatalf("kafkatest: %s@%d: %v", topic, r.Offset, err)
		}
		n, err := serde.Int64().Deserialize(topic, r.Value)
		if err != nil {
			t.Fatalf("kafkatest: %s@%d: %v", topic, r.Offset, err)
		}
		got = append(got, fmt.Sprintf("%s@%v-%v=%d", w.Key, w.Start.Sub(base), w.End.Sub(base), n))
	}
	return got
}
