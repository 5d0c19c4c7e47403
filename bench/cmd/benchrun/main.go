// Command benchrun runs the Riffle benchmark (bench/README.md): it loads N Nexmark events into a
// real Kafka broker once, runs every workload on every system one after another against them,
// measures each run, checks each run's output, and writes RESULTS.md, results/*.json and
// results.png.
//
//	go run ./bench/cmd/benchrun                 # the full benchmark (make bench), ~15 minutes
//	go run ./bench/cmd/benchrun -smoke          # a tiny end-to-end check (make bench-smoke)
//	go run ./bench/cmd/benchrun -systems bare,kafkastreams -workloads q0,q1 -n 200000
//	go run ./bench/cmd/benchrun -eos            # exactly-once vs at-least-once (make bench-eos)
//
// It starts its own broker with tools/kafka/kafka.sh unless -brokers or KAFKA_BROKERS names one.
// It exits non-zero when a run failed or its output was wrong.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/rifflestream/riffle/bench/workload"
)

// config is what the flags set.
type config struct {
	n          int64
	partitions int
	seed       uint64
	workloads  []workload.Name
	systems    []string
	threads    int

	latencyWorkloads []workload.Name
	rate             float64 // events/s of the latency runs; 0: half of Riffle's (else bare's) q0 drain rate
	warmup, measure  time.Duration

	timeout  time.Duration // per run
	pause    time.Duration // between runs
	brokers  []string
	out      string // RESULTS.md, results/, results.png
	work     string // binaries, logs, state directories
	javaOpts string
	smoke    bool
	// profiles, when set, is a directory where every drain run of a Go system (Riffle, the bare
	// loop) writes a CPU profile of its whole life, <run>.prof (their -cpuprofile flag).
	profiles string
	// refBin is a riffle-bench binary built from another commit: the system riffle-ref.
	refBin string

	// eos is the exactly-once benchmark (-eos): Riffle's variants, reps repetitions interleaved,
	// reported in EOS.md instead of RESULTS.md.
	eos  bool
	reps int // repetitions of every (workload, system) pair; each repetition runs every system
	// results is the directory of the run JSON under out; report the Markdown file in out.
	results, report string
}

func defaultConfig() config {
	return config{
		n:                2_000_000,
		partitions:       4,
		seed:             1,
		workloads:        workload.All,
		systems:          []string{refRiffle, refRiffleInline, refBare, refKafkaStreams},
		threads:          2,
		latencyWorkloads: []workload.Name{workload.Q0, workload.Q1, workload.Q2, workload.Count},
		rate:             20_000,
		warmup:           5 * time.Second,
		measure:          15 * time.Second,
		timeout:          4 * time.Minute,
		pause:            2 * time.Second,
		out:              "bench",
		work:             filepath.Join("bench", "out"),
		javaOpts:         "-Xmx1g -XX:+ExitOnOutOfMemoryError",
		reps:             1,
		results:          "results",
		report:           "RESULTS.md",
	}
}

// smokeConfig is the tiny run of make bench-smoke and of the Go test: it checks that the harness
// works end to end, not how fast anything is.
func smokeConfig() config {
	c := defaultConfig()
	c.smoke = true
	c.n = 20_000
	c.workloads = []workload.Name{workload.Q0, workload.Count}
	c.systems = []string{refRiffle, refBare, refKafkaStreams}
	c.latencyWorkloads = []workload.Name{workload.Q0}
	c.rate = 2_000
	c.warmup = 2 * time.Second
	c.measure = 3 * time.Second
	c.timeout = 2 * time.Minute
	c.pause = 0
	c.out = filepath.Join("bench", "out", "smoke")
	return c
}

// eosConfig is the exactly-once benchmark (make bench-eos, bench/EOS.md): Riffle at-least-once and
// exactly-once at commit intervals of 100 ms and 1 s, on count (changelog and output in the
// transaction) and q0 (pass-through), three repetitions, each running all four variants, so that
// slow drifts of a shared machine hit every variant alike. N is sized for about 10 minutes on 2 cores.
func eosConfig() config {
	c := defaultConfig()
	c.eos = true
	c.n = 5_000_000
	c.workloads = []workload.Name{workload.Count, workload.Q0}
	c.systems = nil
	for _, s := range eosVariants {
		c.systems = append(c.systems, s.name)
	}
	c.reps = 3
	c.latencyWorkloads = nil
	c.results = filepath.Join("results", "eos")
	c.report = "EOS.md"
	return c
}

// eosSmokeConfig is -eos -smoke: the exactly-once benchmark's harness end to end on a tiny input,
// once (TestEOSSmoke).
func eosSmokeConfig() config {
	c := eosConfig()
	c.smoke = true
	c.n = 20_000
	c.reps = 1
	c.pause = 0
	c.timeout = 2 * time.Minute
	c.out = filepath.Join("bench", "out", "eos-smoke")
	c.results = "results"
	return c
}

func boolFlag(name string) bool {
	for _, a := range os.Args[1:] {
		for _, f := range []string{"-" + name, "--" + name, "-" + name + "=true", "--" + name + "=true"} {
			if a == f {
				return true
			}
		}
	}
	return false
}

func main() {
	smoke, eos := boolFlag("smoke"), boolFlag("eos")
	c := defaultConfig()
	switch {
	case eos && smoke:
		c = eosSmokeConfig()
	case eos:
		c = eosConfig()
	case smoke:
		c = smokeConfig()
	}
	fs := flag.NewFlagSet("benchrun", flag.ExitOnError)
	fs.Bool("smoke", smoke, "run the tiny smoke preset (20k events, riffle, bare and kafkastreams, q0 and count); other flags override it")
	fs.Bool("eos", eos, "run the exactly-once benchmark (Riffle at-least-once vs exactly-once at 100 ms and 1 s commit intervals, count and q0, 3 reps; writes EOS.md and results/eos/); with -smoke, its tiny check")
	fs.IntVar(&c.reps, "reps", c.reps, "repetitions of every workload and system; each repetition runs every system once")
	fs.Int64Var(&c.n, "n", c.n, "events to load and drain")
	fs.IntVar(&c.partitions, "partitions", c.partitions, "partitions of the input and output topics")
	fs.Uint64Var(&c.seed, "seed", c.seed, "generator seed")
	workloads := fs.String("workloads", joinNames(c.workloads), "workloads to run, in order")
	systemList := fs.String("systems", strings.Join(c.systems, ","), "systems to run, in order")
	fs.IntVar(&c.threads, "threads", c.threads, "threads (cores) each system may use: -threads of the contract")
	latency := fs.String("latency-workloads", joinNames(c.latencyWorkloads), "workloads of the latency phase (empty: none)")
	fs.Float64Var(&c.rate, "rate", c.rate, "input events/s of the latency runs; 0 = half of Riffle's q0 drain rate (the bare loop's without Riffle)")
	fs.DurationVar(&c.warmup, "warmup", c.warmup, "latency runs: time after the first output before latencies count")
	fs.DurationVar(&c.measure, "measure", c.measure, "latency runs: time over which latencies count")
	fs.DurationVar(&c.timeout, "timeout", c.timeout, "limit of one run")
	fs.DurationVar(&c.pause, "pause", c.pause, "pause between runs, so one run's tail does not load the next")
	brokers := fs.String("brokers", os.Getenv("KAFKA_BROKERS"), "bootstrap brokers (default $KAFKA_BROKERS; empty: start one with tools/kafka/kafka.sh)")
	fs.StringVar(&c.out, "out", c.out, "directory for RESULTS.md, results/ and results.png")
	fs.StringVar(&c.work, "work", c.work, "directory for binaries, logs and state")
	fs.StringVar(&c.javaOpts, "java-opts", c.javaOpts, "JVM options of the Kafka Streams peer")
	fs.StringVar(&c.refBin, "ref", "", "a riffle-bench binary of another build, run as the system riffle-ref (e.g. -systems riffle,riffle-ref)")
	fs.StringVar(&c.profiles, "cpuprofile", "", "directory for a CPU profile (pprof) of every drain run of a Go system, <run>.prof (empty: none)")
	reportOnly := fs.Bool("report-only", false, "run nothing: write RESULTS.md and results.png (with -eos: EOS.md) again from -out's results/*.json (results/eos/*.json)")
	_ = fs.Parse(os.Args[1:])

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if *reportOnly {
		if err := rerender(c); err != nil {
			log.Error("benchrun: report", "err", err)
			os.Exit(1)
		}
		return
	}

	var err error
	if c.workloads, err = workload.ParseList(*workloads); err == nil {
		c.latencyWorkloads, err = workload.ParseList(*latency)
	}
	if err == nil {
		c.systems, err = parseSystems(*systemList)
	}
	if err == nil && *brokers != "" {
		c.brokers = strings.Split(*brokers, ",")
	}
	if err == nil && c.refBin != "" {
		c.refBin, err = filepath.Abs(c.refBin)
	}
	if err == nil {
		err = c.validate()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := run(ctx, log, c)
	if err != nil {
		log.Error("benchrun failed", "err", err)
		os.Exit(1)
	}
	if bad := rep.failures(); len(bad) > 0 {
		log.Error("some runs failed or wrote wrong output", "runs", strings.Join(bad, "; "))
		os.Exit(1)
	}
	log.Info("benchmark done", "results", filepath.Join(c.out, c.report))
}

func (c config) validate() error {
	switch {
	case c.n <= 0:
		return errors.New("benchrun: -n must be positive")
	case c.partitions <= 0:
		return errors.New("benchrun: -partitions must be positive")
	case c.threads <= 0:
		return errors.New("benchrun: -threads must be positive")
	case len(c.workloads) == 0 && len(c.latencyWorkloads) == 0:
		return errors.New("benchrun: no workloads")
	case c.rate < 0:
		return errors.New("benchrun: -rate must not be negative")
	case c.timeout <= 0:
		return errors.New("benchrun: -timeout must be positive")
	case c.reps <= 0:
		return errors.New("benchrun: -reps must be positive")
	}
	return nil
}

func parseSystems(s string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		if _, ok := findSystem(f); !ok {
			return nil, fmt.Errorf("benchrun: unknown system %q", f)
		}
		out = append(out, f)
	}
	if len(out) == 0 {
		return nil, errors.New("benchrun: no systems")
	}
	return out, nil
}

func joinNames(ws []workload.Name) string {
	s := make([]string, len(ws))
	for i, w := range ws {
		s[i] = string(w)
	}
	return strings.Join(s, ",")
}
