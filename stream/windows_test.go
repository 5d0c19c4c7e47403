package stream_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/rifflestream/riffle/serde"
	"github.com/rifflestream/riffle/stream"
	"github.com/rifflestream/riffle/streamtest"
	"github.com/rifflestream/riffle/topology"
)

// TestWindows runs testdata/windows: per case, a windowed count of the records "key ts" (ts in
// ms), piped in order, with "advance ts" moving stream time. The expected outputs were computed by
// hand from the window definitions; each output line is "key [start,end) count" for time windows
// ("[start,end]" for sliding and session windows, whose end is included), "<deleted>" for a
// session that merged away, and a last line "late n" with the records dropped as late.
//
// Arguments: type=tumbling|hopping|sliding|session, size, advance, diff, gap, grace (ms), final
// (emit on window close), cache (caching on; off by default so every update shows).
func TestWindows(t *testing.T) {
	datadriven.RunTest(t, "testdata/windows", func(t *testing.T, td *datadriven.TestData) string {
		ms := func(key string) time.Duration {
			var n int
			if td.HasArg(key) {
				td.ScanArgs(t, key, &n)
			}
			return time.Duration(n) * time.Millisecond
		}
		var kind string
		td.ScanArgs(t, "type", &kind)
		opts := []stream.Option{stream.Materialized("w")}
		if td.HasArg("final") {
			opts = append(opts, stream.EmitOnWindowClose())
		}
		if !td.HasArg("cache") {
			opts = append(opts, stream.WithoutCaching())
		}
		b := stream.NewBuilder()
		g := stream.GroupByKey(stream.From(b, "in", serde.String(), serde.String()))
		var counts stream.Table[stream.Windowed[string], int64]
		closedEnd := ")"
		switch kind {
		case "tumbling":
			counts = stream.CountWindows(stream.WindowedBy(g, stream.Tumbling(ms("size")).WithGrace(ms("grace"))), opts...)
		case "hopping":
			counts = stream.CountWindows(stream.WindowedBy(g, stream.Hopping(ms("size"), ms("advance")).WithGrace(ms("grace"))), opts...)
		case "sliding":
			counts = stream.CountWindows(stream.WindowedBy(g, stream.Sliding(ms("diff")).WithGrace(ms("grace"))), opts...)
			closedEnd = "]"
		case "session":
			counts = stream.CountSessions(stream.SessionWindowedBy(g, stream.Sessions(ms("gap")).WithGrace(ms("grace"))), opts...)
			closedEnd = "]"
		default:
			td.Fatalf(t, "unknown window type %q", kind)
		}
		var lines []string
		counts.ToStream().Foreach(func(k stream.Windowed[string], n int64) error {
			// Foreach sees deletes as the zero value: the table's ToStream marks them null, which
			// the printing processor below reads.
			return nil
		})
		stream.Process(counts.ToStream(), topology.ProcessorFunc(func(ctx topology.Context[string, string], r topology.Record[stream.Windowed[string], int64]) error {
			v := strconv.FormatInt(r.Value, 10)
			if r.ValueIsNull() {
				v = "<deleted>"
			}
			lines = append(lines, fmt.Sprintf("%s [%d,%d%s %s", r.Key.Key, r.Key.Start.UnixMilli(), r.Key.End.UnixMilli(), closedEnd, v))
			return nil
		}))
		d := streamtest.New(t, b)
		in := streamtest.Input(d, "in", serde.String(), serde.String())
		for _, line := range strings.Split(strings.TrimSpace(td.Input), "\n") {
			f := strings.Fields(line)
			if len(f) != 2 {
				td.Fatalf(t, "bad line %q", line)
			}
			n, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				td.Fatalf(t, "bad line %q: %v", line, err)
			}
			if f[0] == "advance" {
				d.AdvanceStreamTime(time.UnixMilli(n))
				continue
			}
			in.PipeAt(f[0], "v", time.UnixMilli(n))
		}
		var late int64
		for _, task := range d.Tasks() {
			late += task.Metrics().SkippedAt(topology.StageLate)
		}
		return strings.Join(append(lines, fmt.Sprintf("late %d", late)), "\n") + "\n"
	})
}
