package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

func TestRetriable(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	reset := &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	readTimeout := &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}
	shard := func(errs ...error) error {
		se := &kadm.ShardErrors{Name: "ListOffsets"}
		for _, e := range errs {
			se.Errs = append(se.Errs, kadm.ShardError{Err: e})
		}
		return se
	}
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"retriable kafka code", kerr.NotLeaderForPartition, true},
		{"wrapped retriable kafka code", fmt.Errorf("listing: %w", kerr.UnknownTopicOrPartition), true},
		{"fatal kafka code", kerr.TopicAuthorizationFailed, false},
		{"wrapped fatal kafka code", fmt.Errorf("x: %w", kerr.InvalidReplicationFactor), false},
		{"refused dial", refused, true},
		{"refused dial as kgo wraps it", fmt.Errorf("unable to dial: %w", refused), true},
		{"dial timeout", &net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded}, true},
		{"connection reset", reset, true},
		{"bare refused errno", syscall.ECONNREFUSED, true},
		{"read timeout", readTimeout, true},
		{"EOF", io.EOF, true},
		{"wrapped EOF", fmt.Errorf("reading response: %w", io.EOF), true},
		{"unexpected EOF", io.ErrUnexpectedEOF, true},
		{"closed connection", fmt.Errorf("write: %w", net.ErrClosed), true},
		{"permission errno", os.NewSyscallError("open", syscall.EACCES), false},
		{"plain error", errors.New("no such partition"), false},
		{"canceled", context.Canceled, false},
		{"wrapped deadline", fmt.Errorf("listing: %w", context.DeadlineExceeded), false},
		{"dial cut by the caller's context", &net.OpError{Op: "dial", Net: "tcp", Err: context.Canceled}, false},
		{"shard errors, all transient", shard(refused, kerr.LeaderNotAvailable), true},
		{"wrapped shard errors, all transient", fmt.Errorf("engine: listing: %w", shard(refused, io.EOF)), true},
		{"shard errors, one fatal", shard(refused, kerr.TopicAuthorizationFailed), false},
		{"wrapped shard errors, one fatal", fmt.Errorf("x: %w", shard(kerr.TopicAuthorizationFailed, refused)), false},
		{"empty shard errors", &kadm.ShardErrors{}, false},
		{"joined, all transient", errors.Join(reset, kerr.NotCoordinator), true},
		{"joined, one plain", errors.Join(reset, errors.New("bad config")), false},
	}
	for _, c := range cases {
		if got := Retriable(c.err); got != c.want {
			t.Errorf("%s: Retriable(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}

func TestRetryTransientFor(t *testing.T) {
	refused := fmt.Errorf("unable to dial: %w", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)})

	// Transient errors are retried until f succeeds.
	calls := 0
	err := RetryTransientFor(context.Background(), time.Minute, func() error {
		calls++
		if calls < 3 {
			return refused
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("got %v after %d calls, want nil after 3", err, calls)
	}

	// A fatal error is returned at once.
	calls = 0
	err = RetryTransientFor(context.Background(), time.Minute, func() error {
		calls++
		return kerr.TopicAuthorizationFailed
	})
	if !errors.Is(err, kerr.TopicAuthorizationFailed) || calls != 1 {
		t.Fatalf("got %v after %d calls, want the fatal error after 1", err, calls)
	}

	// The bound holds: a transient error that persists is returned once it has passed.
	calls = 0
	start := time.Now()
	err = RetryTransientFor(context.Background(), 300*time.Millisecond, func() error {
		calls++
		return refused
	})
	if took := time.Since(start); !errors.Is(err, syscall.ECONNREFUSED) || calls < 2 || took > 5*time.Second {
		t.Fatalf("got %v after %d calls in %v, want the refused dial after a few calls within the bound", err, calls, took)
	}

	// The context ends the retries.
	ctx, cancel := context.WithCancel(context.Background())
	calls = 0
	err = RetryTransientFor(ctx, time.Minute, func() error {
		calls++
		cancel()
		return refused
	})
	if !errors.Is(err, syscall.ECONNREFUSED) || calls != 1 {
		t.Fatalf("got %v after %d calls, want the refused dial after 1", err, calls)
	}
}
