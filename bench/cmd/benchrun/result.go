package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/rifflestream/riffle/bench/workload"
)

// Run statuses.
const (
	statusOK     = "ok"     // drained (or measured) and, for drain runs, the output was right
	statusWrong  = "wrong"  // drained, but the output was not what the events say it must be
	statusFailed = "failed" // did not finish: exited early, timed out, could not start
)

// runResult is everything measured in one run of one system on one workload. It is written as
// results/<system>-<workload>-<phase>.json, and every figure of RESULTS.md comes from one.
type runResult struct {
	System   string `json:"system"`
	Workload string `json:"workload"`
	Phase    string `json:"phase"`         // "drain" or "latency"
	Rep      int    `json:"rep,omitempty"` // repetition, from 1, when pairs run more than once (-eos)
	Status   string `json:"status"`
	Error    string `json:"error,omitempty"`

	Command   []string  `json:"command"`
	Log       string    `json:"log"`
	StartedAt time.Time `json:"started_at"`
	Input     string    `json:"input_topic"`
	Output    string    `json:"output_topic"`
	Events    int64     `json:"input_events"`
	// LoadAverage is the machine's 1-minute load average just before the run: on a shared
	// machine, how busy the cores were with others' work.
	LoadAverage float64 `json:"load_average_1m,omitempty"`

	// Drain phase: from process start (just before exec) until the group's committed offsets
	// reached the input's end offsets on every partition (polled every 50 ms).
	DrainSeconds     float64 `json:"drain_seconds,omitempty"`
	RecordsPerSecond float64 `json:"records_per_second,omitempty"` // Events / DrainSeconds
	// FirstOutputSeconds: from process start until the output topic first had a record readable
	// by a read_committed consumer; -1 if it never had one. For a non-transactional output, the
	// first append time the broker stamped on a record (exact to the millisecond); for a
	// transactional one, from its last stable offsets polled every 50 ms, the records behind them
	// counted once the output is read back (see visibility).
	FirstOutputSeconds float64 `json:"first_output_seconds"`
	// OutputCompleteSeconds (q0, q1, q2, whose output count is known): from process start until
	// the output topic held every expected record, readable read_committed. Unlike DrainSeconds it
	// does not wait for the next offset commit (except under exactly-once, where the output is
	// readable only once its transaction commits), so it compares fast systems more finely.
	// RecordsPerSecondToOutput is Events / OutputCompleteSeconds.
	OutputCompleteSeconds    float64 `json:"output_complete_seconds,omitempty"`
	RecordsPerSecondToOutput float64 `json:"records_per_second_to_last_output,omitempty"`
	// OutputProgressSeconds (q0, q1, q2, non-transactional outputs): from process start until
	// 10%, 20%, ... 100% of the expected output records had been appended, from the times the
	// broker stamped on them (load.StampAppendTime); the last is OutputCompleteSeconds.
	OutputProgressSeconds []float64 `json:"output_progress_seconds,omitempty"`

	// CPUSeconds is user + system time of the whole process life (rusage at exit, so it includes
	// start-up and shutdown); CPUSecondsAtDrain is the same read from /proc when drained.
	CPUSeconds        float64 `json:"cpu_seconds"`
	CPUSecondsAtDrain float64 `json:"cpu_seconds_at_drain,omitempty"`
	// ReadBytesAtDrain is what the process had read through system calls when drained (rchar
	// of /proc/<pid>/io): mostly fetch responses, so a system that fetches data twice shows it.
	ReadBytesAtDrain   int64   `json:"read_bytes_at_drain,omitempty"`
	CPUSecondsPerMRecs float64 `json:"cpu_seconds_per_million_records,omitempty"` // CPUSeconds per 1e6 input events
	PeakRSSBytes       int64   `json:"peak_rss_bytes"`
	// BrokerCPUSeconds: CPU the broker used from process start to drain (when the runner
	// started the broker), a measure of the load a system puts on Kafka.
	BrokerCPUSeconds float64 `json:"broker_cpu_seconds,omitempty"`
	StopSeconds      float64 `json:"stop_seconds"` // from SIGTERM to exit
	ExitStatus       string  `json:"exit_status"`

	// The output as read back: transaction markers and records of aborted transactions (both 0
	// for a non-transactional producer). The verdict's record count is the committed data records.
	OutputControlRecords int64 `json:"output_control_records"`
	OutputAbortedRecords int64 `json:"output_aborted_records"`

	Verdict *workload.Verdict `json:"verdict,omitempty"`
	Latency *latencyResult    `json:"latency,omitempty"`
}

func (r *runResult) fail(format string, args ...any) *runResult {
	r.Status = statusFailed
	r.Error = fmt.Sprintf(format, args...)
	return r
}

func (r *runResult) file() string {
	if r.Rep > 0 {
		return fmt.Sprintf("%s-%s-%s-r%d.json", r.System, r.Workload, r.Phase, r.Rep)
	}
	return fmt.Sprintf("%s-%s-%s.json", r.System, r.Workload, r.Phase)
}

// latencyResult is the latency phase of one run.
type latencyResult struct {
	Rate          float64 `json:"rate"`             // input events/s asked for
	Produced      int64   `json:"produced"`         // input records written in the whole run
	WindowInputs  int64   `json:"window_inputs"`    // of them, written during the measurement window
	ExpectedOuts  int64   `json:"expected_outputs"` // outputs those inputs must give (-1: unknown, count)
	Samples       int64   `json:"samples"`          // outputs whose pt falls in the window
	MissingHeader int64   `json:"missing_pt"`       // outputs without a pt header
	// CatchUpSeconds: from the first output until the first output of an input written after
	// it: how long the system took to work off the input that queued while it started.
	CatchUpSeconds float64 `json:"catch_up_seconds"`
	WarmupSeconds  float64 `json:"warmup_seconds"`
	WindowSeconds  float64 `json:"window_seconds"`
	P50Ms          float64 `json:"p50_ms"`
	P99Ms          float64 `json:"p99_ms"`
	P999Ms         float64 `json:"p999_ms"`
	MaxMs          float64 `json:"max_ms"`
	// KeptUp is false when outputs of the window were still missing after the tail wait: the
	// system could not sustain the rate, and the percentiles understate its latency.
	KeptUp bool `json:"kept_up"`
	// Timeline has one entry per second of the window, by produce time: where the tail comes from.
	Timeline []latencySecond `json:"timeline,omitempty"`
}

// latencySecond summarizes the outputs of inputs produced in one second of the window.
type latencySecond struct {
	Second  int     `json:"second"` // from the start of the window
	Outputs int     `json:"outputs"`
	P50Ms   float64 `json:"p50_ms"`
	MaxMs   float64 `json:"max_ms"`
}

// systemInfo is one system as the report lists it.
type systemInfo struct {
	Name    string `json:"name"`
	About   string `json:"about"`
	Skipped string `json:"skipped,omitempty"` // why it did not run
	Command string `json:"command,omitempty"`
}

// params are the benchmark's parameters, as run.
type params struct {
	Events           int64    `json:"events"`
	Partitions       int      `json:"partitions"`
	Seed             uint64   `json:"seed"`
	Threads          int      `json:"threads"`
	Workloads        []string `json:"workloads"`
	LatencyWorkloads []string `json:"latency_workloads"`
	Rate             float64  `json:"latency_rate"`
	RateSource       string   `json:"latency_rate_source"`
	WarmupSeconds    float64  `json:"latency_warmup_seconds"`
	MeasureSeconds   float64  `json:"latency_measure_seconds"`
	JavaOpts         string   `json:"java_opts"`
	Brokers          string   `json:"brokers"` // "started by benchrun" or the addresses given
	LoadSeconds      float64  `json:"load_seconds"`
	InputTopic       string   `json:"input_topic"`
	Reps             int      `json:"reps,omitempty"`
	ResultsDir       string   `json:"results_dir,omitempty"` // of the run JSON, relative to the report
	// Variants are the Riffle variants of the exactly-once benchmark (-eos) that ran.
	Variants []variant `json:"variants,omitempty"`
}

// variant is one Riffle configuration of the exactly-once benchmark.
type variant struct {
	Name             string `json:"name"`
	Guarantee        string `json:"guarantee"`
	CommitIntervalMs int64  `json:"commit_interval_ms"`
}

// report is the whole benchmark: results/benchmark.json, and the source of RESULTS.md.
type report struct {
	Generated time.Time    `json:"generated"`
	Finished  time.Time    `json:"finished,omitzero"`
	Machine   machine      `json:"machine"`
	Versions  versions     `json:"versions"`
	Params    params       `json:"params"`
	Systems   []systemInfo `json:"systems"`
	Runs      []*runResult `json:"-"` // each in its own file
	RunFiles  []string     `json:"runs"`
}

// failures lists the runs that failed or were wrong.
func (r *report) failures() []string {
	var out []string
	for _, run := range r.Runs {
		if run.Status != statusOK {
			out = append(out, fmt.Sprintf("%s %s %s: %s %s", run.System, run.Workload, run.Phase, run.Status, run.Error))
		}
	}
	return out
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// readResults reads a report back from rdir's *.json (rdir is the report's results/).
func readResults(rdir string) (*report, error) {
	b, err := os.ReadFile(filepath.Join(rdir, "benchmark.json"))
	if err != nil {
		return nil, err
	}
	var rep report
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, fmt.Errorf("benchrun: %s: %w", filepath.Join(rdir, "benchmark.json"), err)
	}
	for _, f := range rep.RunFiles {
		b, err := os.ReadFile(filepath.Join(rdir, f))
		if err != nil {
			return nil, err
		}
		var r runResult
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("benchrun: %s: %w", filepath.Join(rdir, f), err)
		}
		rep.Runs = append(rep.Runs, &r)
	}
	return &rep, nil
}

// writeResults replaces the run files of rdir's previous report (the report's results/) with
// this benchmark's. Only the files that report lists go: other tools keep theirs in the same
// directory (restorebench's restore*.json).
func writeResults(rdir string, rep *report) error {
	if b, err := os.ReadFile(filepath.Join(rdir, "benchmark.json")); err == nil {
		var prev report
		if json.Unmarshal(b, &prev) == nil {
			for _, f := range prev.RunFiles {
				if filepath.Base(f) != f {
					continue // not a file this tool wrote
				}
				if err := os.Remove(filepath.Join(rdir, f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return err
				}
			}
		}
	}
	if err := os.MkdirAll(rdir, 0o755); err != nil {
		return err
	}
	rep.RunFiles = nil
	for _, run := range rep.Runs {
		if err := writeJSON(filepath.Join(rdir, run.file()), run); err != nil {
			return err
		}
		rep.RunFiles = append(rep.RunFiles, run.file())
	}
	return writeJSON(filepath.Join(rdir, "benchmark.json"), rep)
}
