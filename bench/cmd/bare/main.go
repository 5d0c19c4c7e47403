// Command bare is the bare franz-go consume -> transform -> produce loop: the Kafka-to-Kafka
// limit that Riffle's stateless workloads are measured against (bench/README.md). It runs q0, q1
// and q2 of bench/WORKLOADS.md and takes the benchmark's system contract:
//
//	bare -workload q1 -brokers 127.0.0.1:19092 -input nexmark -output out -app-id run-1 -threads 2
//
// One client per process consumes -input in consumer group -app-id and produces to -output. It
// gives Riffle's guarantee, at-least-once: offsets are committed every second (the benchmark's
// commit interval) and only after every record produced from them is acknowledged, and again
// before partitions are given up in a rebalance and at shutdown (SIGTERM or SIGINT).
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

	"github.com/rifflestream/riffle/bench/internal/benchenv"
	"github.com/rifflestream/riffle/bench/workload"
)

func main() {
	var c config
	flag.StringVar(&c.workload, "workload", "", "q0, q1 or q2")
	flag.StringVar(&c.brokers, "brokers", "", "comma-separated bootstrap brokers")
	flag.StringVar(&c.input, "input", "", "input topic")
	flag.StringVar(&c.output, "output", "", "output topic")
	flag.StringVar(&c.appID, "app-id", "", "consumer group id")
	flag.IntVar(&c.threads, "threads", runtime.NumCPU(), "cores to use (GOMAXPROCS)")
	flag.StringVar(&c.stateDir, "state-dir", "", "unused: the bare loop keeps no state")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile (pprof) of the whole run to this file")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	w, err := c.validate()
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
		log.Error("bare: starting the CPU profile", "err", err)
		os.Exit(1)
	}
	defer stopProfile()
	if err := run(ctx, log, c, w); err != nil {
		log.Error("bare: stopped", "err", err)
		stopProfile()
		os.Exit(1)
	}
}

type config struct {
	workload, brokers, input, output, appID, stateDir string
	threads                                           int
}

func (c config) validate() (workload.Name, error) {
	for flagName, v := range map[string]string{"workload": c.workload, "brokers": c.brokers, "input": c.input, "output": c.output, "app-id": c.appID} {
		if v == "" {
			return "", fmt.Errorf("bare: -%s is required", flagName)
		}
	}
	w, err := workload.Parse(c.workload)
	if err != nil {
		return "", err
	}
	if !w.Stateless() {
		return "", fmt.Errorf("bare: workload %s is stateful; the bare loop runs q0, q1 and q2 only", w)
	}
	if c.threads <= 0 {
		return "", errors.New("bare: -threads must be positive")
	}
	return w, nil
}

func (c config) brokerList() []string { return strings.Split(c.brokers, ",") }
