package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rifflestream/riffle/bench/internal/benchenv"
	"github.com/rifflestream/riffle/bench/internal/load"
	"github.com/rifflestream/riffle/bench/nexmark"
	"github.com/rifflestream/riffle/bench/workload"
)

// env is the state of one benchmark: where things are, the broker, the loaded input and what
// it must give.
type env struct {
	cfg  config
	log  *slog.Logger
	root string // the repository
	out  string // absolute cfg.out
	work string // absolute cfg.work
	java string

	brokers   []string
	brokerPID int
	cl        *kgo.Client
	adm       *kadm.Client
	built     map[string]bool // Go commands built in this benchmark

	runID string // prefixes every topic and group of this benchmark
	input string
	ends  map[int32]int64 // end offset of each input partition after loading
	exp   *workload.Expected
}

func (e *env) binDir() string { return filepath.Join(e.work, "bin") }

// run runs the benchmark that cfg describes and writes its report. It returns an error only
// when the benchmark itself could not run; failed and wrong runs are in the report.
func run(ctx context.Context, log *slog.Logger, cfg config) (*report, error) {
	root, err := benchenv.FindRoot()
	if err != nil {
		return nil, err
	}
	e := &env{cfg: cfg, log: log, root: root, java: javaBinary()}
	e.out, e.work = underRoot(root, cfg.out), underRoot(root, cfg.work)
	for _, d := range []string{e.out, e.binDir(), filepath.Join(e.work, "logs"), filepath.Join(e.work, "state")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	rep := &report{
		Generated: time.Now().UTC(),
		Machine:   benchenv.DescribeMachine(),
		Versions:  describeVersions(root, e.java),
	}
	e.runID = "bench-" + rep.Generated.Format("20060102-150405")
	if cfg.eos {
		e.runID = "eos-" + rep.Generated.Format("20060102-150405")
	}

	// The systems: skip those that cannot run here, build the others.
	var selected []system
	for _, name := range cfg.systems {
		s, _ := findSystem(name)
		info := systemInfo{Name: s.name, About: s.about}
		if why := s.missing(e); why != "" {
			info.Skipped = why
			log.Warn("skipping a system", "system", s.name, "why", why)
		} else if err := s.build(ctx, e); err != nil {
			return nil, err
		} else {
			info.Command = strings.Join(s.command(e), " ")
			selected = append(selected, s)
		}
		rep.Systems = append(rep.Systems, info)
	}
	if len(selected) == 0 {
		return nil, errors.New("benchrun: none of the systems can run")
	}

	// The broker.
	brokerNote := "given: " + strings.Join(cfg.brokers, ",")
	e.brokers = cfg.brokers
	if len(e.brokers) == 0 {
		runDir := filepath.Join(os.TempDir(), "riffle-kafka", "bench")
		log.Info("starting a Kafka broker", "run_dir", runDir)
		b, err := benchenv.StartBroker(ctx, root, runDir)
		if err != nil {
			return nil, err
		}
		defer func() {
			if err := b.Stop(); err != nil {
				log.Error("stopping the broker", "err", err)
			}
		}()
		e.brokers, e.brokerPID = b.Addrs, b.PID
		brokerNote = "started by benchrun (tools/kafka/kafka.sh)"
	}
	e.cl, err = kgo.NewClient(append(load.ProducerOpts(), kgo.SeedBrokers(e.brokers...))...)
	if err != nil {
		return nil, fmt.Errorf("benchrun: %w", err)
	}
	defer e.cl.Close()
	e.adm = kadm.NewClient(e.cl)

	// Load the input once, computing what every workload must output from it.
	e.input = e.runID + "-nexmark"
	e.exp = workload.NewExpected(int32(cfg.partitions), workload.All...)
	log.Info("loading events", "topic", e.input, "events", cfg.n, "partitions", cfg.partitions)
	if err := load.CreateTopic(ctx, e.adm, e.input, int32(cfg.partitions)); err != nil {
		return nil, err
	}
	t0 := time.Now()
	if err := load.Load(ctx, e.cl, e.input, int32(cfg.partitions), e.genConfig(), cfg.n, e.exp.Observe); err != nil {
		return nil, err
	}
	loadTime := time.Since(t0)
	if e.ends, err = e.endOffsets(ctx, e.input); err != nil {
		return nil, err
	}
	if total := sum(e.ends); total != cfg.n {
		return nil, fmt.Errorf("benchrun: loaded %d events but the input topic holds %d", cfg.n, total)
	}
	log.Info("loaded", "events", cfg.n, "seconds", loadTime.Seconds())

	rep.Params = params{
		Events: cfg.n, Partitions: cfg.partitions, Seed: cfg.seed, Threads: cfg.threads,
		Workloads: names(cfg.workloads), LatencyWorkloads: names(cfg.latencyWorkloads),
		WarmupSeconds: cfg.warmup.Seconds(), MeasureSeconds: cfg.measure.Seconds(),
		JavaOpts: cfg.javaOpts, Brokers: brokerNote, LoadSeconds: loadTime.Seconds(), InputTopic: e.input,
	}

	rep.Params.Reps, rep.Params.ResultsDir = cfg.reps, filepath.ToSlash(cfg.results)
	for _, s := range selected {
		if s.guarantee != "" {
			rep.Params.Variants = append(rep.Params.Variants, variant{Name: s.name, Guarantee: s.guarantee,
				CommitIntervalMs: s.commitInterval.Milliseconds()})
		}
	}

	// A warm-up drain, not recorded: the first runs on a fresh broker were the slowest of their
	// workload (the broker's JIT compiling its fetch and produce paths, the input just written),
	// and with q0 first that cost whichever system ran first (make bench, 3 repetitions: the
	// first q0 run at ×0.60 of the bare loop's rate, the others at ×0.91-×1.07).
	if !cfg.smoke && !cfg.eos && len(cfg.workloads) > 0 && len(selected) > 0 {
		warm := selected[0]
		for _, s := range selected {
			if s.name == refBare { // the lightest: a warm-up of seconds
				warm = s
			}
		}
		if s := warm; s.supports(cfg.workloads[0]) {
			r := e.drainRun(ctx, s, cfg.workloads[0], -1)
			e.log.Info("warm-up run (not recorded)", "system", s.name, "workload", cfg.workloads[0], "status", r.Status, "seconds", r.DrainSeconds)
			e.pauseBetweenRuns(ctx)
		}
	}

	// Drain phase: every workload; per workload, reps times every system supporting it, one
	// after another (so the systems interleave across repetitions).
	for _, w := range cfg.workloads {
		for i := 1; i <= cfg.reps; i++ {
			repNo := i
			if cfg.reps == 1 && !cfg.eos {
				repNo = 0 // the main benchmark's names carry no repetition
			}
			for _, s := range rotated(selected, i-1) {
				if !s.supports(w) {
					continue
				}
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				r := e.drainRun(ctx, s, w, repNo)
				e.logRun(r)
				rep.Runs = append(rep.Runs, r)
				e.pauseBetweenRuns(ctx)
			}
		}
	}

	// Latency phase.
	rate, source := e.latencyRate(rep.Runs)
	rep.Params.Rate, rep.Params.RateSource = rate, source
	for _, w := range cfg.latencyWorkloads {
		for _, s := range selected {
			if !s.supports(w) {
				continue
			}
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			r := e.latencyRun(ctx, s, w, rate)
			e.logRun(r)
			rep.Runs = append(rep.Runs, r)
			e.pauseBetweenRuns(ctx)
		}
	}
	e.deleteTopics(context.Background(), e.input)

	rep.Finished = time.Now().UTC()
	if err := writeResults(filepath.Join(e.out, cfg.results), rep); err != nil {
		return nil, fmt.Errorf("benchrun: writing results: %w", err)
	}
	if cfg.eos {
		return rep, writeEOSReport(filepath.Join(e.out, cfg.report), rep)
	}
	return rep, writeReport(e.out, rep)
}

// writeReport writes RESULTS.md and results.png into dir.
func writeReport(dir string, rep *report) error {
	if err := os.WriteFile(filepath.Join(dir, "RESULTS.md"), []byte(renderMarkdown(rep)), 0o644); err != nil {
		return fmt.Errorf("benchrun: writing RESULTS.md: %w", err)
	}
	if err := writeChart(filepath.Join(dir, "results.png"), rep); err != nil {
		return fmt.Errorf("benchrun: writing the chart: %w", err)
	}
	return nil
}

// rerender writes the report of c.out (relative to the repository) again from its JSON.
func rerender(c config) error {
	root, err := benchenv.FindRoot()
	if err != nil {
		return err
	}
	dir := underRoot(root, c.out)
	rep, err := readResults(filepath.Join(dir, c.results))
	if err != nil {
		return err
	}
	if c.eos {
		return writeEOSReport(filepath.Join(dir, c.report), rep)
	}
	return writeReport(dir, rep)
}

func (e *env) genConfig() nexmark.Config {
	c := nexmark.DefaultConfig()
	c.Seed = e.cfg.seed
	return c
}

// latencyRate is -rate, or when it is 0 half the q0 drain rate of Riffle (of the bare loop
// without Riffle).
func (e *env) latencyRate(runs []*runResult) (float64, string) {
	if e.cfg.rate > 0 {
		return e.cfg.rate, "-rate"
	}
	for _, ref := range []string{refRiffle, refBare} {
		for _, r := range runs {
			if r.System == ref && r.Workload == string(workload.Q0) && r.Phase == "drain" && r.Status == statusOK {
				return float64(int64(r.RecordsPerSecond / 2)), "half of " + ref + "'s q0 drain rate"
			}
		}
	}
	return defaultConfig().rate, "default (no q0 drain rate to halve)"
}

func (e *env) logRun(r *runResult) {
	args := []any{"system", r.System, "workload", r.Workload, "phase", r.Phase, "status", r.Status}
	if r.Error != "" {
		args = append(args, "error", r.Error)
	}
	if r.Phase == "drain" && r.DrainSeconds > 0 {
		args = append(args, "records_per_s", int64(r.RecordsPerSecond), "first_output_s", round2(r.FirstOutputSeconds),
			"cpu_s_per_M", round2(r.CPUSecondsPerMRecs), "peak_rss_MiB", r.PeakRSSBytes>>20)
	}
	if r.Latency != nil {
		args = append(args, "p50_ms", round2(r.Latency.P50Ms), "p99_ms", round2(r.Latency.P99Ms), "samples", r.Latency.Samples)
	}
	if r.Verdict != nil {
		args = append(args, "verdict", r.Verdict.Summary)
	}
	if r.Status == statusOK {
		e.log.Info("run", args...)
	} else {
		e.log.Error("run", args...)
	}
}

func (e *env) pauseBetweenRuns(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-time.After(e.cfg.pause):
	}
	e.waitBrokerQuiet(ctx)
}

// rotated returns systems in their order shifted by k (repetition k+1 starts with the k-th): each
// system runs in each position of a repetition in turn, so none always runs right after the same
// one (Kafka Streams, the heaviest, left the broker busy for whoever came next) or first after a
// workload's input was loaded.
func rotated(systems []system, k int) []system {
	if len(systems) == 0 {
		return nil
	}
	k %= len(systems)
	return append(slices.Clone(systems[k:]), systems[:k]...)
}

// Broker quiet: below quietShare of a core over a quietWindow, waited for at most quietMax.
const (
	quietWindow = 250 * time.Millisecond
	quietShare  = 0.10
	quietMax    = 15 * time.Second
)

// waitBrokerQuiet waits, when benchrun started the broker, until the broker uses less than
// quietShare of a core, for at most quietMax: after a run the broker deletes its topics and
// files, compacts changelogs and collects its garbage, and that work is the next run's noise on
// two shared cores (seen: after Kafka Streams' drains, the next system's run found the broker
// busy for seconds).
func (e *env) waitBrokerQuiet(ctx context.Context) {
	if e.brokerPID <= 0 {
		return
	}
	for end := time.Now().Add(quietMax); time.Now().Before(end); {
		c0, err := procCPU(e.brokerPID)
		if err != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(quietWindow):
		}
		c1, err := procCPU(e.brokerPID)
		if err != nil || float64(c1-c0) < quietShare*float64(quietWindow) {
			return
		}
	}
	e.log.Info("the broker stayed busy between runs", "waited", quietMax)
}

func underRoot(root, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(root, p)
}

func javaBinary() string {
	if j := os.Getenv("JAVA"); j != "" {
		return j
	}
	if h := os.Getenv("JAVA_HOME"); h != "" {
		if _, err := os.Stat(filepath.Join(h, "bin", "java")); err == nil {
			return filepath.Join(h, "bin", "java")
		}
	}
	if p, err := exec.LookPath("java"); err == nil {
		return p
	}
	return "java"
}

func names(ws []workload.Name) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = string(w)
	}
	return out
}

func sum(m map[int32]int64) int64 {
	var s int64
	for _, v := range m {
		s += v
	}
	return s
}

func round2(f float64) float64 { return math.Round(f*100) / 100 }
