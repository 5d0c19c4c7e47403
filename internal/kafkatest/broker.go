package kafkatest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// HowToGetKafka is the one line printed when no broker can be had.
const HowToGetKafka = "no Kafka broker: set KAFKA_BROKERS=host:port, or install Java 17+ and Maven " +
	"(tools/kafka/kafka.sh runs Apache Kafka from Maven Central), or run a Docker engine"

// process-wide state: what this test binary started, stopped by Main.
var (
	mu        sync.Mutex
	single    *brokerHandle // the single broker, once found or started
	singleErr error
	stoppers  []func()
)

type brokerHandle struct {
	addrs  []string
	source string // "env", "kafka.sh", "docker"
}

// Main runs the tests and then stops every broker and cluster this process started. It returns
// the exit code for os.Exit.
func Main(m *testing.M) int {
	code := m.Run()
	StopAll()
	return code
}

// StopAll stops what this process started. Main calls it; tests rarely need to.
func StopAll() {
	mu.Lock()
	s := stoppers
	stoppers = nil
	single = nil
	singleErr = nil
	mu.Unlock()
	for i := len(s) - 1; i >= 0; i-- {
		s[i]()
	}
}

func addStopper(f func()) {
	mu.Lock()
	stoppers = append(stoppers, f)
	mu.Unlock()
}

// InCI reports whether the tests run under CI=true, where a missing broker fails the run.
func InCI() bool {
	v := strings.ToLower(os.Getenv("CI"))
	return v == "true" || v == "1" || v == "yes"
}

// Brokers returns the bootstrap addresses of a real Kafka broker, starting one on first use
// (see the package doc for the order in which one is found). It skips the test when there is
// none, and fails it under CI=true. Under go test -short (make test-unit) it always skips.
func Brokers(t testing.TB) []string {
	t.Helper()
	if testing.Short() {
		t.Skip("needs a real Kafka broker; skipped under -short")
	}
	h, err := broker()
	if err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
	if h == nil {
		if InCI() {
			t.Fatalf("kafkatest: CI=true and %s", HowToGetKafka)
		}
		t.Skip(HowToGetKafka)
	}
	return h.addrs
}

// Source says where the broker of Brokers came from: "env", "kafka.sh" or "docker" (empty before
// the first call).
func Source() string {
	mu.Lock()
	defer mu.Unlock()
	if single == nil {
		return ""
	}
	return single.source
}

// broker finds or starts the process's broker. It returns (nil, nil) when none can be had.
func broker() (*brokerHandle, error) {
	mu.Lock()
	defer mu.Unlock()
	if single != nil || singleErr != nil {
		return single, singleErr
	}
	single, singleErr = findBroker()
	return single, singleErr
}

func findBroker() (*brokerHandle, error) {
	if env := strings.TrimSpace(os.Getenv("KAFKA_BROKERS")); env != "" {
		return &brokerHandle{addrs: splitAddrs(env), source: "env"}, nil
	}
	if s, ok := findScript(); ok && s.usable() {
		r, err := s.start(context.Background(), "single", false)
		if err != nil {
			return nil, err
		}
		stoppers = append(stoppers, func() { r.stop() })
		return &brokerHandle{addrs: r.addrs, source: "kafka.sh"}, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if dockerAvailable(ctx) {
		addrs, stop, err := startContainer(ctx)
		if err != nil {
			return nil, fmt.Errorf("starting apache/kafka in Docker: %w", err)
		}
		stoppers = append(stoppers, stop)
		return &brokerHandle{addrs: addrs, source: "docker"}, nil
	}
	return nil, nil
}

func splitAddrs(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}
