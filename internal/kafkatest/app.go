package kafkatest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

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
