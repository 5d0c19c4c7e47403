package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rifflestream/riffle/bench/workload"
	"github.com/rifflestream/riffle/internal/kafkatest"
)

func TestMain(m *testing.M) {
	if v := os.Getenv("BENCHRUN_TEST_ALLOC_MIB"); v != "" {
		os.Exit(allocAndLinger(v)) // TestChildPeakRSS's child
	}
	os.Exit(kafkatest.Main(m))
}

// allocAndLinger touches mib MiB, then lives long enough for the runner to sample it.
func allocAndLinger(mib string) int {
	n, err := strconv.Atoi(mib)
	if err != nil {
		return 2
	}
	b := make([]byte, n<<20)
	for i := range b {
		b[i] = byte(i)
	}
	time.Sleep(3 * hwmEvery)
	if n > 0 && b[n<<20-1] != byte(n<<20-1) {
		return 1
	}
	return 0
}

// TestSmoke runs the smoke benchmark (make bench-smoke) against a real broker: Riffle, the bare loop and
// Kafka Streams on q0 and count, plus a short latency run on q0. It checks the harness end to end:
// every run drained with correct, non-empty output, and the report, the JSON and the chart were
// written. The Kafka Streams peer is built with Maven first if it is missing or stale.
func TestSmoke(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	c := smokeConfig()
	c.brokers = brokers
	dir := t.TempDir()
	c.out, c.work = filepath.Join(dir, "out"), filepath.Join(dir, "work")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := run(ctx, slog.New(slog.NewTextHandler(testWriter{t}, nil)), c)
	if err != nil {
		t.Fatalf("the smoke benchmark could not run: %v", err)
	}
	for _, s := range rep.Systems {
		if s.Skipped != "" {
			t.Fatalf("system %s was skipped: %s", s.Name, s.Skipped)
		}
	}
	if bad := rep.failures(); len(bad) > 0 {
		t.Fatalf("runs failed:\n%s", strings.Join(bad, "\n"))
	}

	var got []string
	for _, r := range rep.Runs {
		got = append(got, r.System+"/"+r.Workload+"/"+r.Phase)
		switch r.Phase {
		case "drain":
			if r.Verdict == nil || !r.Verdict.OK || r.Verdict.Records == 0 {
				t.Errorf("%s %s: verdict %+v", r.System, r.Workload, r.Verdict)
			}
			if r.RecordsPerSecond <= 0 || r.FirstOutputSeconds <= 0 || r.FirstOutputSeconds > r.DrainSeconds {
				t.Errorf("%s %s: drained in %.2fs, first output at %.2fs", r.System, r.Workload, r.DrainSeconds, r.FirstOutputSeconds)
			}
			if r.CPUSeconds <= 0 || r.PeakRSSBytes < 1<<20 {
				t.Errorf("%s %s: cpu %.2fs, peak RSS %d bytes: rusage missing", r.System, r.Workload, r.CPUSeconds, r.PeakRSSBytes)
			}
		case "latency":
			if l := r.Latency; l == nil || l.Samples == 0 || l.P50Ms <= 0 || l.P99Ms < l.P50Ms || !l.KeptUp {
				t.Errorf("%s %s: latency %+v", r.System, r.Workload, r.Latency)
			}
		}
	}
	want := []string{
		"riffle/q0/drain", "bare/q0/drain", "kafkastreams/q0/drain", "riffle/count/drain", "kafkastreams/count/drain",
		"riffle/q0/latency", "bare/q0/latency", "kafkastreams/q0/latency",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("runs %v, want %v", got, want)
	}

	md, err := os.ReadFile(filepath.Join(c.out, "RESULTS.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"## Throughput", "| q0 | ", "| count | ", "kafkastreams-count-drain.json"} {
		if !bytes.Contains(md, []byte(s)) {
			t.Errorf("RESULTS.md lacks %q", s)
		}
	}
	png, err := os.ReadFile(filepath.Join(c.out, "results.png"))
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Errorf("results.png: %v, %d bytes", err, len(png))
	}
	back, err := readResults(filepath.Join(c.out, c.results))
	if err != nil {
		t.Fatalf("reading results/*.json back: %v", err)
	}
	if len(back.Runs) != len(want) || back.Runs[0].RecordsPerSecond != rep.Runs[0].RecordsPerSecond {
		t.Errorf("results/*.json read back differ: %+v", back)
	}

	// Every run's topics are deleted after it (a benchmark of many repetitions filled the disk
	// when they were not): the input and the outputs are no longer listed.
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var left []string
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		listed, err := kadm.NewClient(cl).ListTopics(ctx)
		if err != nil {
			t.Fatal(err)
		}
		left = left[:0]
		for _, r := range rep.Runs {
			for _, topic := range []string{r.Input, r.Output} {
				if listed.Has(topic) && !slices.Contains(left, topic) {
					left = append(left, topic)
				}
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(left) > 0 {
		t.Errorf("topics left on the broker after the benchmark: %v", left)
	}
}

func TestRunTopics(t *testing.T) {
	listed := []string{"b-riffle-q0-out", "b-riffle-q0-agg-changelog", "b-riffle-q0x-out", "b-nexmark", "other"}
	got := runTopics("b-riffle-q0-out", "b-riffle-q0", listed)
	want := []string{"b-riffle-q0-out", "b-riffle-q0-agg-changelog"}
	if !slices.Equal(got, want) {
		t.Errorf("runTopics = %v, want %v (each once: a name twice fails the whole DeleteTopics request)", got, want)
	}
}

// TestEOSSmoke runs the exactly-once benchmark's harness (make bench-eos) on a tiny input: the
// four Riffle variants on count and q0, once. Every run must drain with correct, non-empty output
// read read_committed; the exactly-once outputs must really be transactional (markers in them) and
// the at-least-once ones not; q0's last output must be found despite the markers; EOS.md and the
// JSON must be written.
func TestEOSSmoke(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	c := eosSmokeConfig()
	c.brokers = brokers
	dir := t.TempDir()
	c.out, c.work = filepath.Join(dir, "out"), filepath.Join(dir, "work")

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	rep, err := run(ctx, slog.New(slog.NewTextHandler(testWriter{t}, nil)), c)
	if err != nil {
		t.Fatalf("the exactly-once smoke benchmark could not run: %v", err)
	}
	if bad := rep.failures(); len(bad) > 0 {
		t.Fatalf("runs failed:\n%s", strings.Join(bad, "\n"))
	}
	var got, want []string
	for _, w := range []string{"count", "q0"} {
		for _, v := range eosVariants {
			want = append(want, v.name+"-"+w+"-drain-r1.json")
		}
	}
	for _, r := range rep.Runs {
		got = append(got, r.file())
		if r.Verdict == nil || !r.Verdict.OK || r.Verdict.Records == 0 {
			t.Errorf("%s %s: verdict %+v", r.System, r.Workload, r.Verdict)
		}
		eos := strings.Contains(r.System, "-eos-")
		if eos != (r.OutputControlRecords > 0) {
			t.Errorf("%s %s: %d transaction markers in the output", r.System, r.Workload, r.OutputControlRecords)
		}
		if !slices.Contains(r.Command, map[bool]string{true: "exactly_once", false: "at_least_once"}[eos]) {
			t.Errorf("%s: command %v", r.System, r.Command)
		}
		if r.FirstOutputSeconds <= 0 || r.FirstOutputSeconds > r.DrainSeconds+5 {
			t.Errorf("%s %s: drained in %.2fs, first output at %.2fs", r.System, r.Workload, r.DrainSeconds, r.FirstOutputSeconds)
		}
		if r.Workload == "q0" && (r.OutputCompleteSeconds < r.FirstOutputSeconds || r.OutputCompleteSeconds > r.DrainSeconds+5) {
			t.Errorf("%s q0: output complete at %.2fs, first output at %.2fs, drained at %.2fs", r.System, r.OutputCompleteSeconds, r.FirstOutputSeconds, r.DrainSeconds)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("runs %v, want %v", got, want)
	}
	md, err := os.ReadFile(filepath.Join(c.out, "EOS.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"## Exactly-once / at-least-once", "| count | 100ms | **×", "| q0 | 1s | **×", "| riffle-eos-1s | "} {
		if !bytes.Contains(md, []byte(s)) {
			t.Errorf("EOS.md lacks %q:\n%s", s, md)
		}
	}
	back, err := readResults(filepath.Join(c.out, c.results))
	if err != nil || len(back.Runs) != len(want) || len(back.Params.Variants) != 4 {
		t.Fatalf("results/*.json read back: %v, %+v", err, back)
	}
}

// TestVisibility checks first- and last-output times from samples of last stable offsets, with
// transaction markers taking offsets, and from append times for a non-transactional output.
func TestVisibility(t *testing.T) {
	start := time.Unix(1000, 0)
	at := func(ms int64) time.Time { return start.Add(time.Duration(ms) * time.Millisecond) }
	v := &visibility{start: start, transactional: true}
	v.sample(1, map[int32]int64{0: 0, 1: 0})
	v.sample(2, map[int32]int64{0: 3, 1: 0}) // p0: records at 0, 1 and the marker at 2
	v.sample(3, map[int32]int64{0: 2, 1: 4}) // a sample going back is clamped to the one before
	v.sample(4, map[int32]int64{0: 6, 1: 4})
	for _, o := range []int64{0, 1, 3, 4} { // p0: markers at 2 and 5
		v.record(0, o, at(100*o))
	}
	for _, o := range []int64{0, 1, 2} { // p1: marker at 3
		v.record(1, o, at(100*o))
	}
	if first, complete := v.times(7); first != 2 || complete != 4 {
		t.Fatalf("times(7) = %v, %v; want 2, 4", first, complete)
	}
	if _, complete := v.times(8); complete != 0 {
		t.Fatalf("times(8): complete %v, want 0 (never)", complete)
	}
	if p := v.progress(7, 2); p != nil {
		t.Fatalf("progress of a transactional output: %v, want none", p)
	}
	if first, _ := (&visibility{}).times(-1); first != -1 {
		t.Fatalf("no records: first %v", first)
	}

	// Not transactional: the append times, in any order of reading, whatever the samples say.
	v = &visibility{start: start}
	v.sample(1, map[int32]int64{0: 0, 1: 0})
	v.sample(2, map[int32]int64{0: 4, 1: 4})
	for i, ms := range []int64{700, 150, 1250, 300, 90, 410, 980, 520} {
		v.record(int32(i%2), int64(i/2), at(ms))
	}
	if first, complete := v.times(8); first != 0.09 || complete != 1.25 {
		t.Fatalf("exact times(8) = %v, %v; want 0.09, 1.25", first, complete)
	}
	if _, complete := v.times(6); complete != 0.7 {
		t.Fatalf("exact times(6): complete %v, want 0.7 (the 6th append)", complete)
	}
	if _, complete := v.times(9); complete != 0 {
		t.Fatalf("exact times(9): complete %v, want 0 (only 8 records)", complete)
	}
	if p, want := v.progress(8, 4), []float64{0.15, 0.41, 0.7, 1.25}; !slices.Equal(p, want) {
		t.Fatalf("progress(8, 4) = %v, want %v", p, want)
	}
	if p := v.progress(9, 4); p != nil {
		t.Fatalf("progress with records missing: %v, want none", p)
	}
}

// TestRenderEOS checks EOS.md's ratios and readings on made-up runs.
func TestRenderEOS(t *testing.T) {
	rep := &report{Params: params{Events: 1_000_000, Workloads: []string{"q0"}, Reps: 3}}
	for _, v := range eosVariants {
		rep.Params.Variants = append(rep.Params.Variants, variant{Name: v.name, Guarantee: v.guarantee, CommitIntervalMs: v.commitInterval.Milliseconds()})
	}
	rps := map[string][]float64{
		"riffle-alos-100ms": {100_000, 110_000, 90_000}, "riffle-eos-100ms": {50_000, 55_000, 45_000},
		"riffle-alos-1s": {100_000, 120_000, 80_000}, "riffle-eos-1s": {95_000, 105_000, 90_000},
	}
	for rep1 := 1; rep1 <= 3; rep1++ {
		for _, v := range eosVariants {
			rep.Runs = append(rep.Runs, &runResult{System: v.name, Workload: "q0", Phase: "drain", Rep: rep1, Status: statusOK,
				Events: 1_000_000, RecordsPerSecond: rps[v.name][rep1-1], CPUSecondsPerMRecs: 1, PeakRSSBytes: 50 << 20,
				Verdict: &workload.Verdict{OK: true, Records: 1_000_000}})
		}
	}
	md := renderEOS(rep)
	for _, want := range []string{
		"| q0 | 100ms | **×0.50** | ×0.50–0.50 | clear: the difference (50%) is well above the run-to-run spread (20%) |",
		"| q0 | 1s | **×0.95** | ×0.88–1.12 | within the noise",
		"| riffle-eos-100ms | 50,000 | 45,000–55,000 | 20% |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("EOS.md lacks\n%s\nin\n%s", want, md)
		}
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func TestPercentile(t *testing.T) {
	sorted := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, tc := range []struct {
		p    float64
		want int64
	}{{0.5, 5}, {0.99, 10}, {0.1, 1}, {0, 1}, {1, 10}} {
		if got := percentile(sorted, tc.p); got != tc.want {
			t.Errorf("percentile(%v) = %d, want %d", tc.p, got, tc.want)
		}
	}
}

func TestLatencyWindow(t *testing.T) {
	base := time.Unix(1000, 0)
	var in inputLog
	rec := &latencyRecorder{}
	for i := range 100 {
		pt := base.Add(time.Duration(i) * 100 * time.Millisecond)
		in.add(pt, i%2) // every other input gives an output
		if i%2 == 1 {
			rec.samples = append(rec.samples, sample{pt: pt.UnixNano(), latency: int64(i) * int64(time.Millisecond)})
		}
	}
	from, to := base.Add(2*time.Second), base.Add(7*time.Second)
	inputs, outs := in.window(from, to)
	if inputs != 50 || outs != 25 {
		t.Fatalf("window: %d inputs, %d outputs; want 50, 25", inputs, outs)
	}
	lat := &latencyResult{ExpectedOuts: outs}
	rec.summarize(lat, from, to)
	if lat.Samples != 25 || !lat.KeptUp || lat.P50Ms != 45 || lat.MaxMs != 69 {
		t.Fatalf("summary %+v", lat)
	}
	var unknown inputLog
	unknown.add(base.Add(3*time.Second), -1)
	if _, outs := unknown.window(from, to); outs != -1 {
		t.Fatalf("count workload: expected outputs %d, want -1 (unknown)", outs)
	}
}

func TestProcCPU(t *testing.T) {
	deadline := time.Now().Add(50 * time.Millisecond)
	for time.Now().Before(deadline) {
	}
	cpu, err := procCPU(os.Getpid())
	if err != nil || cpu <= 0 {
		t.Fatalf("procCPU(self) = %v, %v", cpu, err)
	}
}

// TestChildPeakRSS: a child's peak RSS is its own, not the runner's (ru_maxrss of a child the
// runner vforks starts at the runner's RSS), and a child that allocates shows it.
func TestChildPeakRSS(t *testing.T) {
	ballast := make([]byte, 256<<20) // the runner's RSS, 256 MiB above the child's
	for i := range ballast {
		ballast[i] = 1
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	peak := func(allocMiB int) int64 {
		t.Helper()
		t.Setenv("BENCHRUN_TEST_ALLOC_MIB", strconv.Itoa(allocMiB))
		ch, err := startChild([]string{self}, filepath.Join(t.TempDir(), "child.log")) // TestMain runs allocAndLinger
		if err != nil {
			t.Fatal(err)
		}
		<-ch.done
		ch.stop(time.Second)
		if ch.waitErr != nil {
			t.Fatalf("child: %v (%s)", ch.waitErr, ch.exitStatus())
		}
		_, rss, err := ch.usage()
		if err != nil {
			t.Fatal(err)
		}
		return rss >> 20
	}
	small, big := peak(0), peak(200)
	if small >= 128 {
		t.Errorf("a child allocating nothing peaked at %d MiB: the runner's 256 MiB counted", small)
	}
	// No upper bound: under -race the child's shadow memory multiplies what it touches.
	if big < small+180 {
		t.Errorf("a child allocating 200 MiB peaked at %d MiB, one allocating nothing at %d MiB", big, small)
	}
	ballast[len(ballast)-1] = 2 // kept alive to here
}

func TestThousands(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -45000: "-45,000"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestRenderMarkdown checks the report's ratios and goal checks on made-up runs.
func TestRenderMarkdown(t *testing.T) {
	drain := func(sys, w string, rps float64, rss int64, status string) *runResult {
		return &runResult{System: sys, Workload: w, Phase: "drain", Status: status, Events: 1_000_000,
			RecordsPerSecond: rps, CPUSeconds: 1, CPUSecondsPerMRecs: 1, PeakRSSBytes: rss << 20, FirstOutputSeconds: 1}
	}
	rep := &report{
		Generated: time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC),
		Params:    params{Events: 1_000_000, Partitions: 4, Workloads: []string{"q0", "q1", "count"}, Reps: 3},
		Systems:   []systemInfo{{Name: refRiffle}, {Name: refRiffleInline}, {Name: refBare}, {Name: refKafkaStreams}},
		Runs: []*runResult{
			drain(refRiffle, "q0", 450_000, 50, statusOK),
			drain(refBare, "q0", 500_000, 40, statusOK),
			drain(refKafkaStreams, "q0", 100_000, 400, statusOK),
			// Repetitions: the median of the clean runs counts, the last run does not win.
			drain(refRiffle, "q1", 100_000, 50, statusOK),
			drain(refBare, "q1", 250_000, 40, statusOK),
			drain(refRiffle, "q1", 300_000, 50, statusOK),
			drain(refBare, "q1", 260_000, 40, statusOK),
			drain(refRiffle, "q1", 200_000, 50, statusOK),
			drain(refBare, "q1", 900_000, 40, statusFailed),
			drain(refRiffle, "count", 250_000, 90, statusOK),
			drain(refKafkaStreams, "count", 100_000, 400, statusWrong),
			drain(refRiffleInline, "q0", 480_000, 50, statusOK),
		},
	}
	md := renderMarkdown(rep)
	// Paired by position without repetition numbers: q1's first two pairs (the third bare run
	// failed), 100k/250k and 300k/260k.
	if want := "| q1 | riffle | throughput ≥ 0.9× bare | ×0.78 | **no** | median ×0.78, ×0.40–×1.15, 1 of 2 met |"; !strings.Contains(md, want) {
		t.Errorf("RESULTS.md lacks\n%s\nin\n%s", want, md)
	}
	// Paired by repetition number when every run has one, whatever the order of the runs.
	for idx, n := range map[int]int{3: 1, 5: 2, 7: 3, 4: 2, 6: 1, 8: 3} {
		rep.Runs[idx].Rep = n
	}
	// Riffle's q1 runs are reps 1, 2, 3 (100k, 300k, 200k); the bare loop's reps 2, 1, 3 (250k,
	// 260k, failed): pairs 100k/260k and 300k/250k.
	if want := "median ×0.79, ×0.38–×1.20, 1 of 2 met |"; !strings.Contains(renderMarkdown(rep), want) {
		t.Errorf("RESULTS.md lacks\n%s\nin\n%s", want, renderMarkdown(rep))
	}
	for _, want := range []string{
		"| q0 | 450,000 (×4.50 KS · ×0.90 bare) | 480,000 (×4.80 KS · ×0.96 bare) | 500,000 (×5.00 KS) | 100,000 (×0.20 bare) |",
		"| count | 250,000 | – | – | *wrong* |",
		"| q0 | riffle | throughput ≥ 0.9× bare | ×0.90 | yes |",
		"| q0 | riffle-inline | throughput ≥ 0.9× bare | ×0.96 | yes |",
		"| q1 | riffle-inline | throughput ≥ 0.9× bare | not measured | – |",
		"| q1 | 200,000 (×0.78 bare) | – | 255,000 [1 of 3 runs failed] | – |",
		"| q1 | riffle | throughput ≥ 0.9× bare | ×0.78 | **no** |",
		"| count | riffle | throughput ≥ 2× KS | not measured | – |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("RESULTS.md lacks\n%s\nin\n%s", want, md)
		}
	}
}

// Writing results replaces the previous report's run files and nothing else: restorebench keeps
// its results in the same directory.
func TestWriteResultsKeepsOtherFiles(t *testing.T) {
	dir := t.TempDir()
	old := &report{Runs: []*runResult{{System: "riffle", Workload: "q0", Phase: "drain", Rep: 1}, {System: "bare", Workload: "q0", Phase: "drain", Rep: 1}}}
	if err := writeResults(dir, old); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "restore.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	next := &report{Runs: []*runResult{{System: "riffle", Workload: "q1", Phase: "drain"}}}
	if err := writeResults(dir, next); err != nil {
		t.Fatal(err)
	}
	var got []string
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		got = append(got, e.Name())
	}
	want := []string{"benchmark.json", "restore.json", "riffle-q1-drain.json"}
	if !slices.Equal(got, want) {
		t.Fatalf("files %v, want %v", got, want)
	}
}

// Each repetition starts with the next system, and every system keeps its turn.
func TestRotated(t *testing.T) {
	sys := []system{{name: "a"}, {name: "b"}, {name: "c"}}
	for k, want := range []string{"abc", "bca", "cab", "abc"} {
		got := ""
		for _, s := range rotated(sys, k) {
			got += s.name
		}
		if got != want {
			t.Fatalf("rotated(%d) = %s, want %s", k, got, want)
		}
	}
	if got := rotated(nil, 2); len(got) != 0 {
		t.Fatalf("rotated(nil) = %v", got)
	}
	if sys[0].name != "a" {
		t.Fatal("rotated changed its input")
	}
}
