package main

import (
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rifflestream/riffle/bench/workload"
)

// writeEOSReport writes EOS.md, the report of the exactly-once benchmark (-eos), to path.
func writeEOSReport(path string, rep *report) error {
	if err := os.WriteFile(path, []byte(renderEOS(rep)), 0o644); err != nil {
		return fmt.Errorf("benchrun: writing %s: %w", path, err)
	}
	return nil
}

// eosStats summarizes the repetitions of one variant on one workload.
type eosStats struct {
	v    variant
	runs []*runResult // every repetition, in order
	ok   []*runResult // those that drained with correct output

	rps, rpsMin, rpsMax float64 // records/s: median, min, max over ok
	toOutput            float64 // median records/s to the last committed output (q0), 0: none
	cpu, rss, brokerCPU float64 // medians: CPU s per M records, peak RSS MiB, broker CPU s per M records
	outputs, control    float64 // medians: committed output records, transaction markers
	aborted             int64   // most aborted output records in one run
}

// spread is the run-to-run spread of the variant's records/s: (max - min) / median.
func (s *eosStats) spread() float64 {
	if s.rps <= 0 {
		return 0
	}
	return (s.rpsMax - s.rpsMin) / s.rps
}

func eosSummarize(rep *report, w string, v variant) *eosStats {
	s := &eosStats{v: v}
	for _, r := range rep.Runs {
		if r.Workload == w && r.System == v.Name && r.Phase == "drain" {
			s.runs = append(s.runs, r)
			if r.Status == statusOK {
				s.ok = append(s.ok, r)
			}
		}
	}
	if len(s.ok) == 0 {
		return s
	}
	of := func(f func(r *runResult) float64) []float64 {
		var out []float64
		for _, r := range s.ok {
			out = append(out, f(r))
		}
		return out
	}
	rps := of(func(r *runResult) float64 { return r.RecordsPerSecond })
	s.rps, s.rpsMin, s.rpsMax = median(rps), slices.Min(rps), slices.Max(rps)
	if to := of(func(r *runResult) float64 { return r.RecordsPerSecondToOutput }); slices.Min(to) > 0 {
		s.toOutput = median(to)
	}
	s.cpu = median(of(func(r *runResult) float64 { return r.CPUSecondsPerMRecs }))
	s.rss = median(of(func(r *runResult) float64 { return float64(r.PeakRSSBytes) / (1 << 20) }))
	s.brokerCPU = median(of(func(r *runResult) float64 { return r.BrokerCPUSeconds / float64(r.Events) * 1e6 }))
	s.outputs = median(of(func(r *runResult) float64 { return float64(r.Verdict.Records) }))
	s.control = median(of(func(r *runResult) float64 { return float64(r.OutputControlRecords) }))
	for _, r := range s.ok {
		s.aborted = max(s.aborted, r.OutputAbortedRecords)
	}
	return s
}

// median of xs (the mean of the middle two for an even count); xs is not modified.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// eosPair is exactly-once against at-least-once at one commit interval on one workload.
type eosPair struct {
	interval   time.Duration
	alos, eos  *eosStats
	ratio      float64   // median eos records/s / median alos records/s; 0: not measured
	repRatios  []float64 // eos / alos of the same repetition, for the repetitions where both are ok
	noiseLevel float64   // the larger of the two variants' spreads
}

func eosPairs(rep *report, w string) []eosPair {
	var out []eosPair
	var intervals []int64
	for _, v := range rep.Params.Variants {
		if !slices.Contains(intervals, v.CommitIntervalMs) {
			intervals = append(intervals, v.CommitIntervalMs)
		}
	}
	for _, ms := range intervals {
		p := eosPair{interval: time.Duration(ms) * time.Millisecond}
		for _, v := range rep.Params.Variants {
			if v.CommitIntervalMs != ms {
				continue
			}
			switch v.Guarantee {
			case "at_least_once":
				p.alos = eosSummarize(rep, w, v)
			case "exactly_once":
				p.eos = eosSummarize(rep, w, v)
			}
		}
		if p.alos == nil || p.eos == nil {
			continue
		}
		if p.alos.rps > 0 && p.eos.rps > 0 {
			p.ratio = p.eos.rps / p.alos.rps
			p.noiseLevel = max(p.alos.spread(), p.eos.spread())
		}
		for _, e := range p.eos.ok {
			for _, a := range p.alos.ok {
				if a.Rep == e.Rep && a.RecordsPerSecond > 0 {
					p.repRatios = append(p.repRatios, e.RecordsPerSecond/a.RecordsPerSecond)
				}
			}
		}
		out = append(out, p)
	}
	return out
}

// eosJudgement says in words whether a ratio stands out of the run-to-run spread.
func (p eosPair) judgement() string {
	if p.ratio == 0 {
		return "not measured"
	}
	if len(p.alos.ok) < 2 || len(p.eos.ok) < 2 {
		return "one run each: no spread to judge it by"
	}
	diff := math.Abs(1 - p.ratio)
	straddles := len(p.repRatios) > 0 && slices.Min(p.repRatios) <= 1 && slices.Max(p.repRatios) >= 1
	switch {
	case straddles || diff <= p.noiseLevel:
		return fmt.Sprintf("within the noise: the difference (%s) is not larger than the run-to-run spread (%s)", pct(diff), pct(p.noiseLevel))
	case diff <= 2*p.noiseLevel:
		return fmt.Sprintf("indicative: the difference (%s) is under twice the run-to-run spread (%s)", pct(diff), pct(p.noiseLevel))
	default:
		return fmt.Sprintf("clear: the difference (%s) is well above the run-to-run spread (%s)", pct(diff), pct(p.noiseLevel))
	}
}

func pct(f float64) string { return strconv.FormatFloat(f*100, 'f', 0, 64) + "%" }

func ratioRange(rs []float64) string {
	if len(rs) == 0 {
		return "–"
	}
	lo, hi := slices.Min(rs), slices.Max(rs)
	if len(rs) == 1 {
		return fmt.Sprintf("×%.2f", lo)
	}
	return fmt.Sprintf("×%.2f–%.2f", lo, hi)
}

func rpsCell(f float64) string { return thousands(int64(math.Round(f))) }

// renderEOS writes EOS.md.
func renderEOS(rep *report) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	pr := rep.Params
	p("# Riffle: exactly-once throughput against at-least-once\n\n")
	took := ""
	if !rep.Finished.IsZero() {
		took = fmt.Sprintf(", in %.1f minutes", rep.Finished.Sub(rep.Generated).Minutes())
	}
	p("Written by `bench/cmd/benchrun -eos` (`make bench-eos`) on %s%s. Riffle\n", rep.Generated.Format("2006-01-02 15:04 MST"), took)
	p("(`bench/cmd/riffle-bench`) ran each workload under both processing guarantees at two commit\n")
	p("intervals, on one broker, in one run: per workload, %d repetition(s), each running all %d variants one\n", pr.Reps, len(pr.Variants))
	p("after another (so a slow drift of the machine hits every variant alike). The raw measurements of\n")
	p("every run are in `%s/<variant>-<workload>-drain-r<rep>.json` (the list is\n", pr.ResultsDir)
	p("`%s/benchmark.json`); how each figure is measured is in `README.md`.\n\n", pr.ResultsDir)

	p("## Machine and versions\n\n| | |\n|---|---|\n")
	p("| CPU | %s |\n| cores | %d |\n| memory | %s GiB |\n| OS | %s |\n", rep.Machine.CPU, rep.Machine.Cores, rep.Machine.MemoryGB, rep.Machine.Kernel)
	p("| Go | %s |\n| Kafka broker | %s (one KRaft node on the same machine) |\n| franz-go | %s |\n", rep.Versions.Go, rep.Versions.KafkaBroker, rep.Versions.FranzGo)
	if rep.Versions.Riffle != "" {
		p("| Riffle | %s |\n", rep.Versions.Riffle)
	}
	p("\n## Parameters\n\n| | |\n|---|---|\n")
	p("| events (N) | %s Nexmark events, seed %d, loaded once in %.1f s |\n", thousands(pr.Events), pr.Seed, pr.LoadSeconds)
	p("| partitions | %d (input and every output) |\n", pr.Partitions)
	p("| threads | %d (`-threads`: GOMAXPROCS) |\n", pr.Threads)
	p("| workloads | %s |\n", strings.Join(pr.Workloads, ", "))
	p("| repetitions | %d per variant and workload |\n", pr.Reps)
	p("| producers | acks=all, no compression, linger %v, batches up to %d KiB |\n", workload.ProducerLinger, workload.ProducerBatchBytes>>10)
	p("| record cache (count) | %d MiB |\n", workload.RecordCacheBytes>>20)
	p("| broker | %s |\n", pr.Brokers)
	if lo, hi, ok := loadRange(rep); ok {
		p("| machine load | 1-minute load average %.1f–%.1f before the runs (%d cores) |\n", lo, hi, rep.Machine.Cores)
	}
	p("\n| variant | `-guarantee` | `-commit-interval` |\n|---|---|---|\n")
	for _, v := range pr.Variants {
		p("| %s | %s | %v |\n", v.Name, v.Guarantee, time.Duration(v.CommitIntervalMs)*time.Millisecond)
	}

	p("\n## Exactly-once / at-least-once\n\n")
	p("The ratio of the median records/s of exactly-once to that of at-least-once at the same commit\n")
	p("interval; \"per repetition\" is the range of the ratios of the two runs of the same repetition\n")
	p("(neighbours in time); the spread of a variant is (max − min) / median of its records/s.\n\n")
	p("| workload | commit interval | eos / alos | per repetition | reading |\n|---|---|---|---|---|\n")
	for _, w := range pr.Workloads {
		for _, pair := range eosPairs(rep, w) {
			ratio := "–"
			if pair.ratio > 0 {
				ratio = fmt.Sprintf("**×%.2f**", pair.ratio)
			}
			p("| %s | %v | %s | %s | %s |\n", w, pair.interval, ratio, ratioRange(pair.repRatios), pair.judgement())
		}
	}

	for _, w := range pr.Workloads {
		p("\n## %s\n\n", w)
		stateless := workload.Name(w).Stateless()
		p("| variant | records/s (median) | min–max | spread |")
		if stateless {
			p(" to last committed output, records/s |")
		}
		p(" CPU s / M records | peak RSS MiB | broker CPU s / M records | output records | markers | aborted | ok runs |\n")
		p("|---|---|---|---|%s---|---|---|---|---|---|---|\n", map[bool]string{true: "---|"}[stateless])
		for _, v := range pr.Variants {
			s := eosSummarize(rep, w, v)
			if len(s.ok) == 0 {
				p("| %s | *none ok* |%s\n", v.Name, strings.Repeat(" |", 9+map[bool]int{true: 1}[stateless]))
				continue
			}
			p("| %s | %s | %s–%s | %s |", v.Name, rpsCell(s.rps), rpsCell(s.rpsMin), rpsCell(s.rpsMax), pct(s.spread()))
			if stateless {
				cell := "–"
				if s.toOutput > 0 {
					cell = rpsCell(s.toOutput)
				}
				p(" %s |", cell)
			}
			broker := "–" // known only for a broker benchrun started
			if s.brokerCPU > 0 {
				broker = strconv.FormatFloat(s.brokerCPU, 'f', 2, 64)
			}
			p(" %.2f | %.0f | %s | %s | %s | %s | %d of %d |\n", s.cpu, s.rss, broker,
				thousands(int64(s.outputs)), thousands(int64(s.control)), thousands(s.aborted), len(s.ok), len(s.runs))
		}
	}
	p("\nMedians over the repetitions that drained with correct output. *Output records* are the\n")
	p("committed data records read back (count: table updates, fewer when the record cache holds\n")
	p("updates for longer commit intervals); *markers* the transaction markers among them (0 under\n")
	p("at-least-once), *aborted* the most records of aborted transactions in one run's output.\n\n")

	p("## How exactly-once is measured\n\n")
	p("- A run ends when the group's committed offsets reach the input's end offsets. Under exactly-once\n")
	p("  the offsets are committed inside the transaction that also commits the output (and, for count,\n")
	p("  the changelog) they produced, and become visible when it commits: the same test ends the run,\n")
	p("  after the last transaction committed.\n")
	p("- The output is read back by a read_committed consumer (for every run: for a non-transactional\n")
	p("  output it is the same as read_uncommitted), after waiting until no transaction is open on it,\n")
	p("  and checked by the oracle as in the main benchmark.\n")
	p("- Transaction markers occupy offsets, so under exactly-once the output's end offsets overstate\n")
	p("  its record count. First-output and last-output times come instead from the output's last stable\n")
	p("  offsets, sampled every 50 ms during the run: once the output is read back, the offsets of its\n")
	p("  committed data records say how many of them each sample had made readable.\n\n")

	p("## Caveats\n\n")
	p("- The broker, the runner and Riffle share the machine's cores, and the machine may be shared with\n")
	p("  other work (see the load averages): the figures are indicative; compare them by the ratios,\n")
	p("  and trust a ratio only where it stands out of the spread.\n")
	p("- A run ends at a commit: its records/s include start-up and up to one commit interval of waiting\n")
	p("  for the last commit, which favours the 100 ms variants at small N.\n\n")

	p("## Runs\n\n| workload | rep | variant | status | records/s | load avg | check | raw |\n|---|---|---|---|---|---|---|---|\n")
	for _, r := range rep.Runs {
		check := r.Error
		if r.Verdict != nil && r.Status == statusOK {
			check = r.Verdict.Summary
		}
		rps := "–"
		if r.Status == statusOK {
			rps = rpsCell(r.RecordsPerSecond)
		}
		p("| %s | %d | %s | %s | %s | %.1f | %s | `%s/%s` |\n", r.Workload, r.Rep, r.System, r.Status, rps, r.LoadAverage, escapeCell(check), pr.ResultsDir, r.file())
	}
	return b.String()
}

func loadRange(rep *report) (lo, hi float64, ok bool) {
	for _, r := range rep.Runs {
		if r.LoadAverage <= 0 {
			continue
		}
		if !ok {
			lo, hi, ok = r.LoadAverage, r.LoadAverage, true
		}
		lo, hi = min(lo, r.LoadAverage), max(hi, r.LoadAverage)
	}
	return lo, hi, ok
}
