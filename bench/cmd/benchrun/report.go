package main

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/rifflestream/riffle/bench/workload"
)

// metric is one figure of a run, as a table of RESULTS.md shows it.
type metric struct {
	title  string
	better string // "higher" or "lower"
	phase  string
	value  func(r *runResult) (float64, bool)
	format func(v float64) string
	only   func(w workload.Name) bool // the workloads the figure exists for; nil: all
}

var metricThroughput = metric{
	title: "Throughput: input records/s to drain N events, from process start", better: "higher", phase: "drain",
	value:  func(r *runResult) (float64, bool) { return r.RecordsPerSecond, r.RecordsPerSecond > 0 },
	format: func(v float64) string { return thousands(int64(math.Round(v))) },
}

var metricToOutput = metric{
	title: "Throughput to the last output record, input records/s (q0, q1, q2: not rounded up to a commit)", better: "higher", phase: "drain",
	value:  func(r *runResult) (float64, bool) { return r.RecordsPerSecondToOutput, r.RecordsPerSecondToOutput > 0 },
	format: func(v float64) string { return thousands(int64(math.Round(v))) },
	only:   workload.Name.Stateless,
}

var metricCPU = metric{
	title: "CPU seconds per million input records (user + system, whole process life)", better: "lower", phase: "drain",
	value:  func(r *runResult) (float64, bool) { return r.CPUSecondsPerMRecs, r.CPUSeconds > 0 },
	format: func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) },
}

var metricRSS = metric{
	title: "Peak RSS, MiB", better: "lower", phase: "drain",
	value:  func(r *runResult) (float64, bool) { return float64(r.PeakRSSBytes) / (1 << 20), r.PeakRSSBytes > 0 },
	format: func(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) },
}

var metricFirstOutput = metric{
	title: "Seconds from process start to the first output record", better: "lower", phase: "drain",
	value:  func(r *runResult) (float64, bool) { return r.FirstOutputSeconds, r.FirstOutputSeconds >= 0 },
	format: func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) },
}

var metricBrokerCPU = metric{
	title: "Broker CPU seconds per million input records, during the drain", better: "lower", phase: "drain",
	value: func(r *runResult) (float64, bool) {
		return r.BrokerCPUSeconds / float64(r.Events) * 1e6, r.BrokerCPUSeconds > 0
	},
	format: func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) },
}

var drainMetrics = []metric{metricThroughput, metricToOutput, metricCPU, metricRSS, metricFirstOutput, metricBrokerCPU}

var metricP50 = metric{
	title: "p50 end-to-end latency, ms", better: "lower", phase: "latency",
	value: func(r *runResult) (float64, bool) {
		return latencyOf(r, func(l *latencyResult) float64 { return l.P50Ms })
	},
	format: func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) },
}

var metricP99 = metric{
	title: "p99 end-to-end latency, ms", better: "lower", phase: "latency",
	value: func(r *runResult) (float64, bool) {
		return latencyOf(r, func(l *latencyResult) float64 { return l.P99Ms })
	},
	format: func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) },
}

var latencyMetrics = []metric{metricP50, metricP99}

func latencyOf(r *runResult, f func(*latencyResult) float64) (float64, bool) {
	if r.Latency == nil || r.Latency.Samples == 0 {
		return 0, false
	}
	return f(r.Latency), true
}

// renderMarkdown writes RESULTS.md.
func renderMarkdown(rep *report) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# Riffle benchmark results\n\n")
	p("Written by `bench/cmd/benchrun` (`make bench`) on %s. Every figure below is the median over\n", rep.Generated.Format("2006-01-02 15:04 MST"))
	p("the repetitions of a run (%d, `-reps`; a ratio is of two medians), whose raw measurements are in\n", max(rep.Params.Reps, 1))
	p("`results/<system>-<workload>-<phase>[-r<rep>].json` (the list is\n")
	p("`results/benchmark.json`); the chart is `results.png`. How each figure is measured is in\n")
	p("`README.md`, what each workload computes in `WORKLOADS.md`.\n\n")

	p("## Machine and versions\n\n| | |\n|---|---|\n")
	p("| CPU | %s |\n| cores | %d |\n| memory | %s GiB |\n| OS | %s |\n", rep.Machine.CPU, rep.Machine.Cores, rep.Machine.MemoryGB, rep.Machine.Kernel)
	p("| Go | %s |\n| Java | %s |\n| Kafka broker | %s (one KRaft node on the same machine) |\n", rep.Versions.Go, rep.Versions.Java, rep.Versions.KafkaBroker)
	p("| Kafka Streams | %s |\n| franz-go | %s |\n\n", rep.Versions.KafkaStreams, rep.Versions.FranzGo)

	pr := rep.Params
	p("## Parameters\n\n| | |\n|---|---|\n")
	p("| events (N) | %s Nexmark events, seed %d, loaded once in %.1f s |\n", thousands(pr.Events), pr.Seed, pr.LoadSeconds)
	p("| partitions | %d (input and every output) |\n", pr.Partitions)
	p("| threads per system | %d (`-threads`; Kafka Streams `num.stream.threads`) |\n", pr.Threads)
	p("| guarantees | at-least-once; offsets committed every %v, after the output is acknowledged |\n", workload.CommitInterval)
	p("| producers | acks=all, no compression, linger %v, batches up to %d KiB |\n", workload.ProducerLinger, workload.ProducerBatchBytes>>10)
	p("| record cache (stateful) | %d MiB |\n", workload.RecordCacheBytes>>20)
	if len(pr.LatencyWorkloads) > 0 {
		p("| latency runs | %s input events/s (%s); once a system caught up with its start-up backlog, %.0f s warm-up, then %.0f s measured |\n",
			thousands(int64(pr.Rate)), pr.RateSource, pr.WarmupSeconds, pr.MeasureSeconds)
	}
	p("| Kafka Streams JVM | `%s` |\n| broker | %s |\n\n", pr.JavaOpts, pr.Brokers)

	p("## Systems\n\n")
	for _, s := range rep.Systems {
		if s.Skipped != "" {
			p("- **%s**: %s. *Not run: %s.*\n", s.Name, s.About, s.Skipped)
		} else {
			p("- **%s**: %s.\n", s.Name, s.About)
		}
	}
	p("\nIn the tables, a cell holds the figure and its ratio to Kafka Streams (KS) and to the bare loop\n")
	p("where both ran cleanly on that workload; *wrong* means the run drained but its output failed the\n")
	p("check, *failed* that it did not finish (see the run list at the end).\n\n")

	run := runIndex(rep)
	ran := ranSystems(rep)
	for _, m := range drainMetrics {
		if !anyValue(rep, m) {
			continue // e.g. broker CPU, known only for a broker benchrun started
		}
		p("## %s (%s is better)\n\n", m.title, m.better)
		renderTable(&b, rep.Params.Workloads, ran, run, m)
	}
	if len(pr.LatencyWorkloads) > 0 {
		for _, m := range latencyMetrics {
			p("## %s, at %s input events/s (lower is better)\n\n", strings.TrimSuffix(m.title, ", ms")+" (ms)", thousands(int64(pr.Rate)))
			renderTable(&b, pr.LatencyWorkloads, ran, run, m)
		}
		p("Latency is the time the runner consumed an output record minus the `pt` header it carries (the\n")
		p("time the input record was handed to the input producer); percentiles are exact, over the outputs\n")
		p("whose `pt` falls in the measured window (its per-second timeline is in the JSON). A † marks a\n")
		p("run that did not keep up with the rate (outputs of the window still missing at the end): its\n")
		p("latencies understate the truth.\n\n")
	}
	renderGoals(&b, rep, run)

	p("## Runs\n\n| system | workload | phase | status | check | raw |\n|---|---|---|---|---|---|\n")
	for _, r := range rep.Runs {
		check := r.Error
		if r.Verdict != nil && r.Status == statusOK {
			check = r.Verdict.Summary
		} else if r.Latency != nil && r.Status == statusOK {
			l := r.Latency
			check = fmt.Sprintf("%s samples of %s inputs in the window; caught up %.1f s after the first output; kept up: %v",
				thousands(l.Samples), thousands(l.WindowInputs), l.CatchUpSeconds, l.KeptUp)
		}
		p("| %s | %s | %s | %s | %s | `results/%s` |\n", r.System, r.Workload, r.Phase, r.Status, escapeCell(check), r.file())
	}
	return b.String()
}

func anyValue(rep *report, m metric) bool {
	for _, r := range rep.Runs {
		if r.Phase == m.phase && r.Status == statusOK {
			if _, ok := m.value(r); ok {
				return true
			}
		}
	}
	return false
}

type runKey struct{ system, workload, phase string }

// runSet is the repetitions of one system's runs of one workload and phase, in run order.
type runSet []*runResult

func runIndex(rep *report) map[runKey]runSet {
	m := map[runKey]runSet{}
	for _, r := range rep.Runs {
		k := runKey{r.System, r.Workload, r.Phase}
		m[k] = append(m[k], r)
	}
	return m
}

// ok returns the runs that ended cleanly.
func (s runSet) ok() runSet {
	var out runSet
	for _, r := range s {
		if r.Status == statusOK {
			out = append(out, r)
		}
	}
	return out
}

// value returns the median of m over the set's clean runs that have it.
func (s runSet) value(m metric) (float64, bool) {
	var xs []float64
	for _, r := range s.ok() {
		if v, ok := m.value(r); ok {
			xs = append(xs, v)
		}
	}
	return median(xs), len(xs) > 0
}

func ranSystems(rep *report) []string {
	var out []string
	for _, s := range rep.Systems {
		if s.Skipped == "" {
			out = append(out, s.Name)
		}
	}
	return out
}

func renderTable(b *strings.Builder, workloads, systems []string, run map[runKey]runSet, m metric) {
	fmt.Fprintf(b, "| workload | %s |\n|---|%s\n", strings.Join(systems, " | "), strings.Repeat("---|", len(systems)))
	for _, w := range workloads {
		if m.only != nil && !m.only(workload.Name(w)) {
			continue
		}
		cells := make([]string, len(systems))
		valued := false // some cell of the row has a figure
		for i, s := range systems {
			rs, ok := run[runKey{s, w, m.phase}]
			if !ok {
				cells[i] = "–"
				continue
			}
			good := rs.ok()
			if len(good) == 0 {
				cells[i] = "*" + rs[0].Status + "*"
				valued = true
				continue
			}
			v, ok := rs.value(m)
			if !ok {
				cells[i] = "n/a"
				continue
			}
			valued = true
			cell := m.format(v)
			for _, r := range good {
				if r.Latency != nil && !r.Latency.KeptUp {
					cell += " †"
					break
				}
			}
			var ratios []string
			for _, ref := range []struct{ name, label string }{{refKafkaStreams, "KS"}, {refBare, "bare"}} {
				if ref.name == s {
					continue
				}
				if rv, ok := run[runKey{ref.name, w, m.phase}].value(m); ok && rv > 0 {
					ratios = append(ratios, fmt.Sprintf("×%.2f %s", v/rv, ref.label))
				}
			}
			if len(ratios) > 0 {
				cell += " (" + strings.Join(ratios, " · ") + ")"
			}
			if len(good) < len(rs) {
				cell += fmt.Sprintf(" [%d of %d runs %s]", len(rs)-len(good), len(rs), notOK(rs))
			}
			cells[i] = cell
		}
		if valued {
			fmt.Fprintf(b, "| %s | %s |\n", w, strings.Join(cells, " | "))
		}
	}
	b.WriteString("\n")
}

// notOK names the statuses of the runs of s that did not end cleanly.
func notOK(s runSet) string {
	var out []string
	for _, r := range s {
		if r.Status != statusOK && !slices.Contains(out, r.Status) {
			out = append(out, r.Status)
		}
	}
	return strings.Join(out, "/")
}

// renderGoals checks the goals for Riffle: stateless at least 0.9x the bare loop's
// throughput; stateful and windowed at least 2x Kafka Streams' throughput with at most a quarter
// of its peak RSS.
func renderGoals(b *strings.Builder, rep *report, run map[runKey]runSet) {
	fmt.Fprintf(b, "## Goals\n\n")
	if !contains(ranSystems(rep), refRiffle) {
		fmt.Fprintf(b, "Riffle did not run, so its goals (stateless ≥ 0.9× the bare loop's throughput; stateful and\n")
		fmt.Fprintf(b, "windowed ≥ 2× Kafka Streams' throughput with ≤ ¼ of its peak RSS) are not checked.\n\n")
		return
	}
	fmt.Fprintf(b, "The ratio of the medians decides; the last column pairs each repetition of a system with the same\n")
	fmt.Fprintf(b, "repetition of the other system, run next to it, to show how far single runs spread.\n\n")
	fmt.Fprintf(b, "| workload | system | goal | measured | met | per repetition |\n|---|---|---|---|---|---|\n")
	// ratio is sys's median of m over ref's.
	ratio := func(sys, w, ref string, m metric) (float64, bool) {
		a, ok1 := run[runKey{sys, w, m.phase}].value(m)
		c, ok2 := run[runKey{ref, w, m.phase}].value(m)
		if !ok1 || !ok2 || c == 0 {
			return 0, false
		}
		return a / c, true
	}
	row := func(sys, w, ref, goal string, m metric, meets func(float64) bool) {
		v, ok := ratio(sys, w, ref, m)
		measured, verdict := "not measured", "–"
		if ok {
			measured = fmt.Sprintf("×%.2f", v)
			verdict = map[bool]string{true: "yes", false: "**no**"}[meets(v)]
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s |\n", w, sys, goal, measured, verdict,
			spread(pairedRatios(run[runKey{sys, w, m.phase}], run[runKey{ref, w, m.phase}], m), meets))
	}
	atLeast := func(x float64) func(float64) bool { return func(v float64) bool { return v >= x } }
	// The stateless goals for Riffle as configured by default and, when it ran, with its stateless
	// tasks on the poll loop (stream.InlineStatelessTasks).
	stateless := []string{refRiffle}
	if contains(ranSystems(rep), refRiffleInline) {
		stateless = append(stateless, refRiffleInline)
	}
	for _, ws := range rep.Params.Workloads {
		w := workload.Name(ws)
		if w.Stateless() {
			for _, sys := range stateless {
				row(sys, ws, refBare, "throughput ≥ 0.9× bare", metricThroughput, atLeast(0.9))
				row(sys, ws, refBare, "throughput to the last output ≥ 0.9× bare", metricToOutput, atLeast(0.9))
			}
			continue
		}
		row(refRiffle, ws, refKafkaStreams, "throughput ≥ 2× KS", metricThroughput, atLeast(2))
		row(refRiffle, ws, refKafkaStreams, "peak RSS ≤ 0.25× KS", metricRSS, func(v float64) bool { return v <= 0.25 })
	}
	b.WriteString("\n")
}

// pairedRatios returns a's value of m over b's for each repetition both ran cleanly: paired by
// repetition number when every run has its own, else by position (the runs of a repetition
// alternate, so the i-th of each ran next to each other).
func pairedRatios(a, b runSet, m metric) []float64 {
	// distinct reports whether every run of s has a repetition number of its own.
	distinct := func(s runSet) bool {
		seen := map[int]bool{}
		for _, r := range s {
			if r.Rep == 0 || seen[r.Rep] {
				return false
			}
			seen[r.Rep] = true
		}
		return true
	}
	var pairs [][2]*runResult
	if distinct(a) && distinct(b) {
		for _, x := range a {
			for _, y := range b {
				if y.Rep == x.Rep {
					pairs = append(pairs, [2]*runResult{x, y})
				}
			}
		}
	} else {
		for i := range min(len(a), len(b)) {
			pairs = append(pairs, [2]*runResult{a[i], b[i]})
		}
	}
	var out []float64
	for _, p := range pairs {
		if p[0].Status != statusOK || p[1].Status != statusOK {
			continue
		}
		x, ok1 := m.value(p[0])
		y, ok2 := m.value(p[1])
		if ok1 && ok2 && y != 0 {
			out = append(out, x/y)
		}
	}
	return out
}

// spread describes paired ratios: their median, range, and how many meet the goal.
func spread(ratios []float64, meets func(float64) bool) string {
	if len(ratios) == 0 {
		return "–"
	}
	n := 0
	for _, r := range ratios {
		if meets(r) {
			n++
		}
	}
	return fmt.Sprintf("median ×%.2f, ×%.2f–×%.2f, %d of %d met", median(ratios), slices.Min(ratios), slices.Max(ratios), n, len(ratios))
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

func escapeCell(s string) string {
	s = strings.ReplaceAll(s, "|", "\\|")
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
