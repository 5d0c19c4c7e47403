package workload

import (
	"encoding/binary"
	"fmt"
	"strings"
	"time"
)

// Name names a workload; its value is the -workload argument every system takes.
type Name string

// The workloads of bench/WORKLOADS.md.
const (
	Q0    Name = "q0"    // pass-through of every event
	Q1    Name = "q1"    // bids, price converted to euros
	Q2    Name = "q2"    // bids on auctions divisible by 123, as (auction, price)
	Count Name = "count" // running count of bids per auction
	Q7    Name = "q7"    // highest bid per auction per 10 s tumbling window, final results
	Q5    Name = "q5"    // bids per auction per 10 s window hopping by 2 s, final results
)

// All lists the workloads in the order the benchmark runs them.
var All = []Name{Q0, Q1, Q2, Count, Q7, Q5}

// Parse returns the workload named s.
func Parse(s string) (Name, error) {
	for _, w := range All {
		if string(w) == s {
			return w, nil
		}
	}
	return "", fmt.Errorf("workload: unknown workload %q (known: %s)", s, strings.Join(names(All), ", "))
}

// ParseList parses a comma-separated list of workload names.
func ParseList(s string) ([]Name, error) {
	var out []Name
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		w, err := Parse(f)
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, nil
}

func names(ws []Name) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = string(w)
	}
	return out
}

// Stateless reports whether the workload keeps no state (q0, q1, q2): the ones the bare loop runs.
func (n Name) Stateless() bool { return n == Q0 || n == Q1 || n == Q2 }

// Windowed reports whether the workload emits final window results (q7, q5).
func (n Name) Windowed() bool { return n == Q7 || n == Q5 }

// Settings every system uses, so the benchmark compares frameworks, not client configurations.
// bench/README.md lists them with their Kafka client property names.
const (
	// CommitInterval: offsets are committed at most this often (Kafka Streams commit.interval.ms).
	CommitInterval = time.Second
	// ProducerLinger: linger.ms of every producer writing output.
	ProducerLinger = 5 * time.Millisecond
	// ProducerBatchBytes: the largest record batch a producer builds (batch.size).
	ProducerBatchBytes = 1 << 20
	// RecordCacheBytes: the record cache of stateful workloads (statestore.cache.max.bytes).
	RecordCacheBytes = 10 << 20
)

// Parameters of the workloads.
const (
	// EuroNumerator / EuroDenominator converts a price in dollar cents to euro cents (q1), in
	// integer arithmetic so Go and Java agree to the cent.
	EuroNumerator   = 908
	EuroDenominator = 1000
	// Q2Modulus: q2 keeps bids whose auction id is a multiple of it.
	Q2Modulus = 123
	// WindowSize is the size of the q7 and q5 windows; HopAdvance the advance of the q5 ones.
	WindowSize = 10 * time.Second
	HopAdvance = 2 * time.Second
)

// DollarsToEuros converts a q1 price: price * 908 / 1000, truncated toward zero (Java's long
// division does the same).
func DollarsToEuros(price int64) int64 { return price * EuroNumerator / EuroDenominator }

// Q2Keeps reports whether q2 keeps a bid on this auction.
func Q2Keeps(auction int64) bool { return auction%Q2Modulus == 0 }

// AppendPair appends two big-endian int64s: a q2 value (auction, price) or a window key
// (auction, window start in unix milliseconds).
func AppendPair(dst []byte, a, b int64) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(a))
	return binary.BigEndian.AppendUint64(dst, uint64(b))
}

// AppendInt64 appends one big-endian int64: a count or bid key, a count or a max price.
func AppendInt64(dst []byte, v int64) []byte { return binary.BigEndian.AppendUint64(dst, uint64(v)) }

// Int64 reads a big-endian int64 from an 8-byte slice.
func Int64(b []byte) (int64, bool) {
	if len(b) != 8 {
		return 0, false
	}
	return int64(binary.BigEndian.Uint64(b)), true
}

// Pair reads two big-endian int64s from a 16-byte slice.
func Pair(b []byte) (a, c int64, ok bool) {
	if len(b) != 16 {
		return 0, 0, false
	}
	return int64(binary.BigEndian.Uint64(b)), int64(binary.BigEndian.Uint64(b[8:])), true
}

// TumblingWindow returns the start of the q7 window holding event time ts (unix milliseconds).
func TumblingWindow(ts int64) int64 {
	size := WindowSize.Milliseconds()
	return ts - ts%size
}

// HoppingWindows calls f with the start of every q5 window holding event time ts, oldest first:
// windows start at multiples of the advance, and hold [start, start+size).
func HoppingWindows(ts int64, f func(start int64)) {
	size, adv := WindowSize.Milliseconds(), HopAdvance.Milliseconds()
	first := max(ts-size+adv, 0)
	first -= first % adv
	for s := first; s <= ts; s += adv {
		if ts < s+size {
			f(s)
		}
	}
}
