package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/rifflestream/riffle/bench/internal/benchenv"
)

// result is what a run of restorebench measured: bench/results/restore.json.
type result struct {
	Generated string            `json:"generated"`
	Command   string            `json:"command"`
	Machine   benchenv.Machine  `json:"machine"`
	Versions  benchenv.Versions `json:"versions"`
	Broker    string            `json:"broker"`
	Params    params            `json:"params"`
	Load      loadFigures       `json:"load"`
	Restore   system            `json:"restore"`
	Bare      system            `json:"bare"`
	// RatioOfMedians is the restore's median records/s over the bare read's.
	RatioOfMedians float64 `json:"ratio_of_medians"`
	// PairRatios are restore/bare of the runs made one after the other (run i of each), and
	// their median: less sensitive to a machine whose load changes during the run.
	PairRatios      []float64 `json:"pair_ratios"`
	PairRatioMedian float64   `json:"pair_ratio_median"`
}

type params struct {
	Keys       int64  `json:"keys"`
	KeyBytes   int    `json:"key_bytes"`
	ValueBytes int    `json:"value_bytes"`
	Partitions int    `json:"partitions"`
	Reps       int    `json:"reps"`
	Isolation  string `json:"isolation"`
	Order      string `json:"order"`
	// ChunkBytes and FetchPartitionBytes are the restore settings given on the command line
	// (0: the engine's defaults).
	ChunkBytes          int `json:"chunk_bytes"`
	FetchPartitionBytes int `json:"fetch_partition_bytes"`
	// RestoreConcurrency is how many partitions restored at once (the engine's bound).
	RestoreConcurrency int `json:"restore_concurrency"`
}

type loadFigures struct {
	Records       int64   `json:"records"`
	Bytes         int64   `json:"bytes"`
	Seconds       float64 `json:"seconds"`
	RecordsPerSec float64 `json:"records_per_sec"`
}

type system struct {
	Runs          []run  `json:"runs"`
	RecordsPerSec spread `json:"records_per_sec"`
	MBPerSec      spread `json:"mb_per_sec"`
	// CPUSeconds is the process's CPU time per run (user and system; the broker's not included).
	CPUSeconds spread `json:"cpu_seconds"`
}

// spread is the median and range of a figure over the runs.
type spread struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

func spreadOf(xs []float64) spread {
	if len(xs) == 0 {
		return spread{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return spread{Median: median(s), Min: s[0], Max: s[len(s)-1]}
}

// median of sorted xs (the mean of the middle two for an even count).
func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

func (s *system) summarize() {
	var rps, mbps, cpu []float64
	for _, r := range s.Runs {
		rps = append(rps, r.recordsPerSec())
		mbps = append(mbps, r.mbPerSec())
		cpu = append(cpu, r.CPU.Seconds())
	}
	s.RecordsPerSec, s.MBPerSec, s.CPUSeconds = spreadOf(rps), spreadOf(mbps), spreadOf(cpu)
}

func (r *result) summarize() {
	r.Restore.summarize()
	r.Bare.summarize()
	if r.Bare.RecordsPerSec.Median > 0 {
		r.RatioOfMedians = r.Restore.RecordsPerSec.Median / r.Bare.RecordsPerSec.Median
	}
	r.PairRatios = nil
	for i := range min(len(r.Restore.Runs), len(r.Bare.Runs)) {
		r.PairRatios = append(r.PairRatios, r.Restore.Runs[i].recordsPerSec()/r.Bare.Runs[i].recordsPerSec())
	}
	if len(r.PairRatios) > 0 {
		s := slices.Clone(r.PairRatios)
		slices.Sort(s)
		r.PairRatioMedian = median(s)
	}
}

func (r *result) text() string {
	return fmt.Sprintf("restore: %s records/s (%s MB/s), CPU %s s\nbare:    %s records/s (%s MB/s), CPU %s s\nratio restore/bare: %.2f (of medians), %.2f (median of pairs)",
		fmtSpread(r.Restore.RecordsPerSec, 0), fmtSpread(r.Restore.MBPerSec, 1), fmtSpread(r.Restore.CPUSeconds, 2),
		fmtSpread(r.Bare.RecordsPerSec, 0), fmtSpread(r.Bare.MBPerSec, 1), fmtSpread(r.Bare.CPUSeconds, 2), r.RatioOfMedians, r.PairRatioMedian)
}

func fmtSpread(s spread, prec int) string {
	return fmt.Sprintf("%s (%s-%s)", thousands(s.Median, prec), thousands(s.Min, prec), thousands(s.Max, prec))
}

// thousands formats x with prec decimals and thin thousands separators (1 234 567).
func thousands(x float64, prec int) string {
	s := fmt.Sprintf("%.*f", prec, x)
	intPart, frac, _ := strings.Cut(s, ".")
	neg := strings.HasPrefix(intPart, "-")
	intPart = strings.TrimPrefix(intPart, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, d := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(d)
	}
	if frac != "" {
		b.WriteByte('.')
		b.WriteString(frac)
	}
	return b.String()
}

const (
	markBegin = "<!-- restorebench:begin (written by bench/cmd/restorebench; edits here are overwritten) -->"
	markEnd   = "<!-- restorebench:end -->"
)

// markdown renders the measured section of bench/RESTORE.md.
func (r *result) markdown() string {
	var b strings.Builder
	p := r.Params
	fmt.Fprintf(&b, "## Latest run\n\n")
	fmt.Fprintf(&b, "%s, `%s`.\n\n", r.Generated, r.Command)
	fmt.Fprintf(&b, "- Machine: %s, %d cores, %s GiB, %s; 1-minute load average %s at the end of the run.\n",
		r.Machine.CPU, r.Machine.Cores, r.Machine.MemoryGB, r.Machine.Kernel, r.Machine.Load1)
	fmt.Fprintf(&b, "- Versions: %s, Kafka %s broker (%s), %s, franz-go %s, Pebble %s.\n",
		r.Versions.Go, r.Versions.KafkaBroker, r.Broker, r.Versions.Java, r.Versions.FranzGo, r.Versions.Pebble)
	fmt.Fprintf(&b, "- Changelog: %s distinct keys of %d bytes, %d-byte values, %d partitions, compacted, written in a scrambled key order (%s MB of keys and values, loaded in %.1f s: %s records/s).\n",
		thousands(float64(p.Keys), 0), p.KeyBytes, p.ValueBytes, p.Partitions, thousands(float64(r.Load.Bytes)/1e6, 1), r.Load.Seconds, thousands(r.Load.RecordsPerSec, 0))
	settings := "the engine's default restore settings"
	if p.ChunkBytes != 0 || p.FetchPartitionBytes != 0 {
		settings = fmt.Sprintf("restore settings overridden: chunk %d bytes, fetch %d bytes per partition (0: default)", p.ChunkBytes, p.FetchPartitionBytes)
	}
	fmt.Fprintf(&b, "- %d runs of each, %s, %s, %s, %d partitions restoring at once; median (min-max).\n\n", p.Reps, p.Order, p.Isolation, settings, p.RestoreConcurrency)
	fmt.Fprintf(&b, "| | records/s | MB/s | CPU s (this process) |\n|---|---:|---:|---:|\n")
	fmt.Fprintf(&b, "| Riffle restore (into Pebble) | %s | %s | %s |\n", fmtSpread(r.Restore.RecordsPerSec, 0), fmtSpread(r.Restore.MBPerSec, 1), fmtSpread(r.Restore.CPUSeconds, 2))
	fmt.Fprintf(&b, "| bare franz-go read | %s | %s | %s |\n", fmtSpread(r.Bare.RecordsPerSec, 0), fmtSpread(r.Bare.MBPerSec, 1), fmtSpread(r.Bare.CPUSeconds, 2))
	fmt.Fprintf(&b, "| **ratio restore/bare** | **%.2f** (of medians); %.2f (median of the %d run pairs) | | |\n\n", r.RatioOfMedians, r.PairRatioMedian, len(r.PairRatios))
	var runs []string
	for i := range r.Restore.Runs {
		s := fmt.Sprintf("restore %.2f s", r.Restore.Runs[i].Took.Seconds())
		if i < len(r.Bare.Runs) {
			s += fmt.Sprintf(" / bare %.2f s", r.Bare.Runs[i].Took.Seconds())
		}
		runs = append(runs, s)
	}
	fmt.Fprintf(&b, "Runs: %s. Raw figures: `bench/results/restore.json`.\n", strings.Join(runs, "; "))
	return b.String()
}

// updateMarkdown replaces the section between the markers of the file at path with section,
// keeping the rest; a file without markers gets the section appended, a missing file is made.
func updateMarkdown(path, section string) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(spliceSection(string(old), section)), 0o644)
}

func spliceSection(doc, section string) string {
	block := markBegin + "\n" + strings.TrimRight(section, "\n") + "\n" + markEnd + "\n"
	i := strings.Index(doc, markBegin)
	j := strings.Index(doc, markEnd)
	if i >= 0 && j > i {
		return doc[:i] + block + strings.TrimPrefix(doc[j+len(markEnd):], "\n")
	}
	if doc == "" {
		return "# Restore benchmark\n\n" + block
	}
	return strings.TrimRight(doc, "\n") + "\n\n" + block
}

func writeJSON(path string, r *result) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
