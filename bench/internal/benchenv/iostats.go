package benchenv

import (
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// IOStats counts a Kafka client's requests and bytes by request kind (kgo hooks): what the read
// and write syscalls of a profile were for. A system under test uses it when the environment
// variable RIFFLE_BENCH_IOSTATS is set (NewIOStats), and prints it to its log when it stops.
type IOStats struct {
	mu          sync.Mutex
	write, read map[int16]*ioCount
}

type ioCount struct {
	n, bytes int64
}

// NewIOStats returns an IOStats if RIFFLE_BENCH_IOSTATS is set, and nil otherwise.
func NewIOStats() *IOStats {
	if os.Getenv("RIFFLE_BENCH_IOSTATS") == "" {
		return nil
	}
	return &IOStats{write: map[int16]*ioCount{}, read: map[int16]*ioCount{}}
}

// Opts returns the client option that installs the hooks (none for a nil IOStats).
func (s *IOStats) Opts() []kgo.Opt {
	if s == nil {
		return nil
	}
	return []kgo.Opt{kgo.WithHooks(s)}
}

func (s *IOStats) add(m map[int16]*ioCount, key int16, n int) {
	s.mu.Lock()
	c := m[key]
	if c == nil {
		c = &ioCount{}
		m[key] = c
	}
	c.n++
	c.bytes += int64(n)
	s.mu.Unlock()
}

// OnBrokerWrite implements kgo.HookBrokerWrite.
func (s *IOStats) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, n int, _, _ time.Duration, _ error) {
	s.add(s.write, key, n)
}

// OnBrokerRead implements kgo.HookBrokerRead.
func (s *IOStats) OnBrokerRead(_ kgo.BrokerMetadata, key int16, n int, _, _ time.Duration, _ error) {
	s.add(s.read, key, n)
}

// Report writes one line per direction and request kind: requests, bytes, bytes per request.
func (s *IOStats) Report(w io.Writer) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, dir := range []struct {
		name string
		m    map[int16]*ioCount
	}{{"write", s.write}, {"read", s.read}} {
		keys := make([]int16, 0, len(dir.m))
		for k := range dir.m {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
		for _, k := range keys {
			c := dir.m[k]
			name := kmsg.NameForKey(k)
			fmt.Fprintf(w, "iostats %s %s requests=%d bytes=%d bytes_per_request=%d\n", dir.name, name, c.n, c.bytes, c.bytes/max(c.n, 1))
		}
	}
}
