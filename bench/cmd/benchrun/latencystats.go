package main

import (
	"context"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rifflestream/riffle/bench/internal/load"
)

// sample is one output record of a latency run: the produce time its pt header carries and its
// latency, both in nanoseconds.
type sample struct{ pt, latency int64 }

// latencyRecorder consumes a latency run's output and keeps one sample per output record.
type latencyRecorder struct {
	mu      sync.Mutex
	samples []sample
	missing int64 // outputs without a pt header
	firstAt time.Time
	// caughtUpAt is when the first output arrived whose input was written after firstAt: the
	// system had worked off what queued while it started.
	caughtUpAt time.Time
}

// consume polls cl until ctx ends. The receive time of every record of a poll is the time the
// poll returned: the latency includes the consumer's fetch, as an application's would.
func (l *latencyRecorder) consume(ctx context.Context, cl *kgo.Client) {
	for {
		fs := cl.PollFetches(ctx)
		now := time.Now()
		if ctx.Err() != nil || fs.IsClientClosed() {
			return
		}
		l.mu.Lock()
		fs.EachRecord(func(r *kgo.Record) {
			if l.firstAt.IsZero() {
				l.firstAt = now
			}
			pt, ok := load.ProduceTime(r.Headers)
			if !ok {
				l.missing++
				return
			}
			l.samples = append(l.samples, sample{pt: pt.UnixNano(), latency: now.Sub(pt).Nanoseconds()})
			if l.caughtUpAt.IsZero() && pt.After(l.firstAt) {
				l.caughtUpAt = now
			}
		})
		l.mu.Unlock()
	}
}

func (l *latencyRecorder) first() (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.firstAt, !l.firstAt.IsZero()
}

func (l *latencyRecorder) caughtUp() (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.caughtUpAt, !l.caughtUpAt.IsZero()
}

// counts returns how many outputs lacked a pt header and how many had one.
func (l *latencyRecorder) counts() (missing, samples int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.missing, int64(len(l.samples))
}

// inWindow counts the outputs whose pt is in [from, to).
func (l *latencyRecorder) inWindow(from, to time.Time) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var n int64
	for _, s := range l.samples {
		if s.pt >= from.UnixNano() && s.pt < to.UnixNano() {
			n++
		}
	}
	return n
}

// summarize fills lat from the outputs whose pt is in [from, to). Percentiles are exact, by
// nearest rank over the sorted latencies (no histogram buckets).
func (l *latencyRecorder) summarize(lat *latencyResult, from, to time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var lats []int64
	var perSecond [][]int64
	newest := int64(math.MinInt64)
	for _, s := range l.samples {
		if s.pt >= from.UnixNano() && s.pt < to.UnixNano() {
			lats = append(lats, s.latency)
			newest = max(newest, s.pt)
			sec := int((s.pt - from.UnixNano()) / int64(time.Second))
			for len(perSecond) <= sec {
				perSecond = append(perSecond, nil)
			}
			perSecond[sec] = append(perSecond[sec], s.latency)
		}
	}
	lat.MissingHeader = l.missing
	lat.Samples = int64(len(lats))
	if len(lats) == 0 {
		return
	}
	slices.Sort(lats)
	ms := func(ns int64) float64 { return float64(ns) / 1e6 }
	lat.P50Ms = ms(percentile(lats, 0.50))
	lat.P99Ms = ms(percentile(lats, 0.99))
	lat.P999Ms = ms(percentile(lats, 0.999))
	lat.MaxMs = ms(lats[len(lats)-1])
	lat.Timeline = nil
	for sec, ls := range perSecond {
		entry := latencySecond{Second: sec, Outputs: len(ls)}
		if len(ls) > 0 {
			slices.Sort(ls)
			entry.P50Ms, entry.MaxMs = ms(percentile(ls, 0.5)), ms(ls[len(ls)-1])
		}
		lat.Timeline = append(lat.Timeline, entry)
	}
	if lat.ExpectedOuts >= 0 {
		lat.KeptUp = lat.Samples >= lat.ExpectedOuts
	} else {
		// Without a known output count: the outputs reached the end of the window.
		lat.KeptUp = newest >= to.Add(-2*time.Second).UnixNano()
	}
}

// percentile returns the nearest-rank p-quantile of sorted values.
func percentile(sorted []int64, p float64) int64 {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// inputLog remembers the produce time of every paced input and how many outputs it must give.
type inputLog struct {
	mu   sync.Mutex
	pts  []int64
	outs []int8 // -1: unknown
}

func (l *inputLog) add(pt time.Time, outs int) {
	l.mu.Lock()
	l.pts = append(l.pts, pt.UnixNano())
	l.outs = append(l.outs, int8(outs))
	l.mu.Unlock()
}

// window returns how many inputs were produced in [from, to) and how many outputs they must give
// (-1 when that is unknown).
func (l *inputLog) window(from, to time.Time) (inputs, outputs int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, pt := range l.pts {
		if pt < from.UnixNano() || pt >= to.UnixNano() {
			continue
		}
		inputs++
		if l.outs[i] < 0 || outputs < 0 {
			outputs = -1
			continue
		}
		outputs += int64(l.outs[i])
	}
	return inputs, outputs
}
