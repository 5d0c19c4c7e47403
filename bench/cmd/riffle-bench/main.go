// Command riffle-bench is Riffle in the benchmark (bench/README.md): the workloads of
// bench/WORKLOADS.md written in Riffle's DSL, each the way a user would write it, behind the
// benchmark's system contract:
//
//	riffle-bench -workload count -brokers 127.0.0.1:19092 -input nexmark -output out -app-id run-1 -threads 2 -state-dir /tmp/s
//
// It runs until SIGTERM or SIGINT and then stops the app, which commits what it processed.
// Beyond the contract, -guarantee and -commit-interval select exactly-once and another commit
// interval (the exactly-once benchmark, bench/EOS.md); their defaults are the contract's
// at-least-once with a 1 s commit interval.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rifflestream/riffle/bench/internal/benchenv"
	"github.com/rifflestream/riffle/bench/workload"
	"github.com/rifflestream/riffle/stream"
)

func main() {
	var c config
	flag.StringVar(&c.workload, "workload", "", "one of q0 q1 q2 count q7 q5")
	flag.StringVar(&c.brokers, "brokers", "", "comma-separated bootstrap brokers")
	flag.StringVar(&c.input, "input", "", "input topic")
	flag.StringVar(&c.output, "output", "", "output topic")
	flag.StringVar(&c.appID, "app-id", "", "application id (consumer group id)")
	flag.IntVar(&c.threads, "threads", runtime.NumCPU(), "cores to use (GOMAXPROCS)")
	flag.StringVar(&c.stateDir, "state-dir", "", "directory for local state")
	flag.StringVar(&c.guarantee, "guarantee", "at_least_once", "at_least_once or exactly_once")
	flag.DurationVar(&c.commitInterval, "commit-interval", workload.CommitInterval, "commit interval")
	flag.BoolVar(&c.inline, "inline", false, "process stateless tasks on the poll loop (stream.InlineStatelessTasks; at_least_once only)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile (pprof) of the whole run to this file")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	w, g, err := c.validate()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		flag.Usage()
		os.Exit(2)
	}
	runtime.GOMAXPROCS(c.threads)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	stopProfile, err := benchenv.StartCPUProfile(*cpuProfile)
	if err != nil {
		log.Error("riffle-bench: starting the CPU profile", "err", err)
		os.Exit(1)
	}
	defer stopProfile()
	if err := run(ctx, log, c, w, g); err != nil {
		log.Error("riffle-bench: stopped", "err", err)
		stopProfile()
		os.Exit(1)
	}
}

type config struct {
	inline                                                       bool
	workload, brokers, input, output, appID, stateDir, guarantee string
	threads                                                      int
	commitInterval                                               time.Duration
}

func (c config) validate() (workload.Name, stream.Guarantee, error) {
	for flagName, v := range map[string]string{"workload": c.workload, "brokers": c.brokers, "input": c.input,
		"output": c.output, "app-id": c.appID, "state-dir": c.stateDir} {
		if v == "" {
			return "", 0, fmt.Errorf("riffle-bench: -%s is required", flagName)
		}
	}
	w, err := workload.Parse(c.workload)
	if err != nil {
		return "", 0, err
	}
	if c.threads <= 0 {
		return "", 0, errors.New("riffle-bench: -threads must be positive")
	}
	if c.commitInterval <= 0 {
		return "", 0, errors.New("riffle-bench: -commit-interval must be positive")
	}
	var g stream.Guarantee
	switch c.guarantee {
	case "at_least_once":
		g = stream.AtLeastOnce
	case "exactly_once":
		g = stream.ExactlyOnce
	default:
		return "", 0, fmt.Errorf("riffle-bench: -guarantee %q: want at_least_once or exactly_once", c.guarantee)
	}
	return w, g, nil
}

func run(ctx context.Context, log *slog.Logger, c config, w workload.Name, g stream.Guarantee) error {
	b, err := build(w, c.input, c.output)
	if err != nil {
		return err
	}
	opts := []stream.AppOption{
		stream.AppID(c.appID),
		stream.Brokers(strings.Split(c.brokers, ",")...),
		stream.StateDir(c.stateDir),
		stream.ProcessingGuarantee(g),
		stream.CommitInterval(c.commitInterval),
		stream.Logger(log),
		// The contract's producer settings (acks=all and linger 5 ms are Riffle's defaults).
		stream.ClientOptions(
			kgo.ProducerBatchCompression(kgo.NoCompression()),
			kgo.ProducerBatchMaxBytes(workload.ProducerBatchBytes),
			kgo.ProducerLinger(workload.ProducerLinger),
		),
	}
	if c.inline {
		opts = append(opts, stream.InlineStatelessTasks())
	}
	io := benchenv.NewIOStats() // RIFFLE_BENCH_IOSTATS
	if io != nil {
		opts = append(opts, stream.ClientOptions(io.Opts()...))
		defer io.Report(os.Stderr)
	}
	app, err := stream.NewApp(b, opts...)
	if err != nil {
		return err
	}
	// Run returns nil once ctx is cancelled and it has committed what it processed.
	return app.Run(ctx)
}
