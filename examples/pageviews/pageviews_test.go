package main

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rifflestream/riffle/serde"
	"github.com/rifflestream/riffle/stream"
	"github.com/rifflestream/riffle/streamtest"
	"github.com/rifflestream/riffle/topology"
)

// The tests compare the example with expect, a reference written from the definition of tumbling
// windows with grace, without the example's or Riffle's code.

// view is a page view as the tests know it.
type view struct {
	page string
	ts   int64 // epoch ms
}

// outcome is what the example must produce for some views.
type outcome struct {
	// byViews are the windows the views close themselves, before the final flush, as printed
	// lines, sorted; all are every window at the end, as the example prints them, then "late n".
	byViews, all []string
	late         int
}

// expect computes the outcome of views produced in order, keyed by page, to a topic of
// partitions partitions, counted per page in one-minute tumbling windows with grace. Each
// partition has its own stream time, the largest ts seen on it so far. A view is late if its
// window [start, start+1m) has end + grace <= the stream time of its partition when it arrives
// (its own ts included: it cannot close its own window). At the end every window is flushed.
func expect(views []view, grace time.Duration, partitions int) outcome {
	const size = int64(time.Minute / time.Millisecond)
	type window struct {
		page  string
		start int64
	}
	count := map[window]int{}
	streamTime := make([]int64, partitions)
	for i := range streamTime {
		streamTime[i] = math.MinInt64
	}
	var o outcome
	for _, v := range views {
		p := kafkaPartition(v.page, partitions)
		streamTime[p] = max(streamTime[p], v.ts)
		start := v.ts - v.ts%size
		if start+size+grace.Milliseconds() <= streamTime[p] {
			o.late++
			continue
		}
		count[window{v.page, start}]++
	}
	line := func(w window) string {
		return fmt.Sprintf("%s %s %d", w.page, time.UnixMilli(w.start).UTC().Format(time.RFC3339), count[w])
	}
	for w := range count {
		o.all = append(o.all, line(w))
		if w.start+size+grace.Milliseconds() <= streamTime[kafkaPartition(w.page, partitions)] {
			o.byViews = append(o.byViews, line(w))
		}
	}
	sortLines(o.byViews)
	sortLines(o.all)
	o.all = append(o.all, fmt.Sprintf("late %d", o.late))
	return o
}

// sortLines sorts printed window lines by page, then start (RFC 3339 UTC starts sort as text).
func sortLines(lines []string) {
	slices.SortFunc(lines, func(a, b string) int {
		pa, ra, _ := strings.Cut(a, " ")
		pb, rb, _ := strings.Cut(b, " ")
		return cmp.Or(strings.Compare(pa, pb), strings.Compare(ra, rb))
	})
}

// kafkaPartition is the partition Kafka's default partitioner picks for a string key:
// toPositive(murmur2(key)) % partitions.
func kafkaPartition(key string, partitions int) int {
	return int(murmur2([]byte(key))&0x7fffffff) % partitions
}

// murmur2 is Kafka's Utils.murmur2.
func murmur2(data []byte) int32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	n := len(data)
	h := seed ^ uint32(n)
	for i := 0; i+4 <= n; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := data[n&^3:]
	switch len(tail) {
	case 3:
		h ^= uint32(tail[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(tail[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(tail[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h)
}

// The vectors of Kafka's UtilsTest.testMurmur2.
func TestMurmur2(t *testing.T) {
	for in, want := range map[string]int32{
		"21":                         -973932308,
		"foobar":                     -790332482,
		"a-little-bit-long-string":   -985981536,
		"a-little-bit-longer-string": -1486304829,
		"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
		"abc": 479470107,
	} {
		if got := murmur2([]byte(in)); got != want {
			t.Errorf("murmur2(%q) = %d, want %d", in, got, want)
		}
	}
}

// The reference on the bundled sample, checked by hand, boundary and out-of-order views included.
func TestExpectOnSample(t *testing.T) {
	o := expect(readSampleViews(t), 10*time.Second, 1)
	want := []string{
		"/ 2026-01-01T00:00:00Z 4", // 00:00:59.999 is in it, 00:00:58 after 00:01:03 too (grace)
		"/ 2026-01-01T00:01:00Z 2", // 00:01:00 is in it; 00:01:59 after 00:02:10 (end + grace) is late
		"/ 2026-01-01T00:02:00Z 2",
		"/ 2026-01-01T00:03:00Z 2",
		"/docs 2026-01-01T00:00:00Z 1", // 00:00:50 after 00:01:20 is late
		"/docs 2026-01-01T00:01:00Z 1",
		"/docs 2026-01-01T00:02:00Z 2",
		"/docs 2026-01-01T00:03:00Z 1",
		"/docs 2026-01-01T00:04:00Z 1",
		"/pricing 2026-01-01T00:00:00Z 1",
		"/pricing 2026-01-01T00:01:00Z 2", // 00:01:55 after 00:02:05 (within grace)
		"/pricing 2026-01-01T00:02:00Z 1",
		"/pricing 2026-01-01T00:03:00Z 1",
		"late 2",
	}
	if !slices.Equal(o.all, want) {
		t.Errorf("got\n%s\nwant\n%s", lines(o.all), lines(want))
	}
}

// readSampleViews reads sample.ndjson with the test's own decoding.
func readSampleViews(t *testing.T) []view {
	t.Helper()
	b, err := os.ReadFile("sample.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	var views []view
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var v struct {
			Page string `json:"page"`
			TS   int64  `json:"ts"`
		}
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("sample.ndjson: %q: %v", sc.Text(), err)
		}
		views = append(views, view{v.Page, v.TS})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return views
}

// randomViews makes n views over a few minutes from seed: mostly in order, some out of order by up
// to 15s (within a 10s grace or just past it), some by 20s to 2m (mostly late), some exactly on a
// minute.
func randomViews(seed uint64, n int) []view {
	r := rand.New(rand.NewPCG(seed, 0))
	pages := []string{"/", "/pricing", "/docs", "/blog", "/about"}
	now := int64(1767225600000) // 2026-01-01T00:00:00Z
	views := make([]view, 0, n)
	for range n {
		now += r.Int64N(3000)
		ts := now
		switch x := r.IntN(20); {
		case x < 2:
			ts -= 20000 + r.Int64N(100000)
		case x < 6:
			ts -= r.Int64N(15000)
		case x == 6:
			ts -= ts % 60000
		}
		views = append(views, view{pages[r.IntN(len(pages))], ts})
	}
	return views
}

func lines(l []string) string {
	var b bytes.Buffer
	for _, s := range l {
		b.WriteString("  " + s + "\n")
	}
	return b.String()
}

// The topology against the reference: the windows the views close are emitted as they close,
// once each with the final count; the others when stream time is advanced at the end; the late
// views are counted as such. The record timestamps are either the event times or all one
// produce time: the windows follow the views' ts either way.
func TestTopology(t *testing.T) {
	sample := readSampleViews(t)
	random := randomViews(1, 400)
	produced := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name       string
		views      []view
		grace      time.Duration
		partitions int32
	}{
		{"sample", sample, 10 * time.Second, 1},
		{"sample grace=0s", sample, 0, 1},
		{"sample grace=1m", sample, time.Minute, 1},
		{"sample partitions=3", sample, 10 * time.Second, 3},
		{"random", random, 10 * time.Second, 1},
		{"random grace=0s", random, 0, 1},
		{"random partitions=3", random, 10 * time.Second, 3},
	} {
		for _, recordTime := range []string{"event", "produce"} {
			t.Run(c.name+" record-time="+recordTime, func(t *testing.T) {
				want := expect(c.views, c.grace, int(c.partitions))
				topics := TopicsFor("test")
				d := streamtest.New(t, Build(topics, c.grace), streamtest.Partitions(c.partitions),
					streamtest.ErrorHandlers(topology.ErrorHandlers{Deserialization: stream.Skip}))
				in := streamtest.Input(d, topics.Views, serde.String(), serde.JSON[View]())
				out := streamtest.Output(d, topics.Counts, CountKeySerde(), serde.Int64())
				for _, v := range c.views {
					at := time.UnixMilli(v.ts)
					if recordTime == "produce" {
						at = produced
					}
					in.PipeAt(v.page, View{Page: v.page, TS: v.ts}, at)
				}
				// Not views: skipped by the deserialization handler, neither counted nor late.
				for _, bad := range []string{`not json`, `{"page":"/","ts":-1}`} {
					if err := d.PipeRaw(topics.Views, -1, []byte("/"), []byte(bad), produced, nil); err != nil {
						t.Fatal(err)
					}
				}
				if got := readLines(t, out); !slices.Equal(got, want.byViews) {
					t.Errorf("windows closed by the views:\n%swant\n%s", lines(got), lines(want.byViews))
				}
				d.AdvanceStreamTime(time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC))
				got := append(readLines(t, out), want.byViews...)
				sortLines(got)
				var late, undecodable int64
				for _, task := range d.Tasks() {
					late += task.Metrics().SkippedAt(topology.StageLate)
					undecodable += task.Metrics().SkippedAt(topology.StageDeserialize)
				}
				got = append(got, "late "+strconv.FormatInt(late, 10))
				if !slices.Equal(got, want.all) {
					t.Errorf("all windows:\n%swant\n%s", lines(got), lines(want.all))
				}
				if undecodable != 2 {
					t.Errorf("%d records skipped as undecodable, want 2", undecodable)
				}
			})
		}
	}
}

// readLines reads the unread windows as the example prints them, sorted; a window written twice
// is an error (each must be written once, when it closes).
func readLines(t *testing.T, out *streamtest.OutputTopic[stream.Windowed[string], int64]) []string {
	t.Helper()
	var got []string
	seen := map[string]bool{}
	for _, kv := range out.ReadKeyValues() {
		if kv.Key.End.Sub(kv.Key.Start) != time.Minute {
			t.Errorf("window %v is not one minute long", kv.Key)
		}
		id := kv.Key.Key + " " + kv.Key.Start.UTC().Format(time.RFC3339)
		if seen[id] {
			t.Errorf("window %s written twice", id)
		}
		seen[id] = true
		got = append(got, fmt.Sprintf("%s %d", id, kv.Value))
	}
	sortLines(got)
	return got
}
