package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rifflestream/riffle/bench/internal/load"
	"github.com/rifflestream/riffle/bench/workload"
)

// pollEvery is how often a run's progress is polled: the resolution of drain and first-output
// times.
const pollEvery = 50 * time.Millisecond

// stopGrace is how long a system may take to exit after SIGTERM before it is killed.
const stopGrace = 30 * time.Second

// drainRun runs system s on workload w over the loaded input until it has committed all of it,
// then stops it and checks its output.
func (e *env) drainRun(ctx context.Context, s system, w workload.Name) *runResult {
	name := fmt.Sprintf("%s-%s-%s", e.runID, s.name, w)
	r := &runResult{System: s.name, Workload: string(w), Phase: "drain", Input: e.input, Output: name + "-out",
		Events: e.cfg.n, FirstOutputSeconds: -1}
	e.log.Info("drain run", "system", s.name, "workload", w, "events", e.cfg.n)
	defer e.cleanUp(r.Output, name)

	if err := load.CreateTopic(ctx, e.adm, r.Output, int32(e.cfg.partitions)); err != nil {
		return r.fail("%v", err)
	}
	stateDir := filepath.Join(e.work, "state", name)
	defer os.RemoveAll(stateDir)
	r.Command = append(s.command(e), contractArgs(w, e.brokers, e.input, r.Output, name, e.cfg.threads, stateDir)...)
	logPath := filepath.Join(e.work, "logs", name+".log")
	r.Log = relTo(e.root, logPath)

	brokerCPU0, brokerErr := procCPU(e.brokerPID)
	ch, err := startChild(r.Command, logPath)
	if err != nil {
		return r.fail("%v", err)
	}
	r.StartedAt = ch.started
	drained, err := e.watchDrain(ctx, ch, r, name, e.exp.Outputs(w))
	if drained {
		r.DrainSeconds = time.Since(ch.started).Seconds()
		if cpu, err := procCPU(ch.pid()); err == nil {
			r.CPUSecondsAtDrain = cpu.Seconds()
		}
		if b, err := procCPU(e.brokerPID); err == nil && brokerErr == nil {
			r.BrokerCPUSeconds = (b - brokerCPU0).Seconds()
		}
	}
	r.StopSeconds = ch.stop(stopGrace).Seconds()
	r.ExitStatus = ch.exitStatus()
	if cpu, rss, uerr := ch.usage(); uerr == nil {
		r.CPUSeconds, r.PeakRSSBytes = cpu.Seconds(), rss
		r.CPUSecondsPerMRecs = r.CPUSeconds / float64(e.cfg.n) * 1e6
	}
	if err != nil {
		return r.fail("%v", err)
	}
	r.RecordsPerSecond = float64(e.cfg.n) / r.DrainSeconds
	if r.OutputCompleteSeconds > 0 {
		r.RecordsPerSecondToOutput = float64(e.cfg.n) / r.OutputCompleteSeconds
	}

	// The output, checked against what the events say it must be.
	v := e.exp.Verifier(w)
	readCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := e.readTopic(readCtx, r.Output, func(rec *kgo.Record) { v.Add(rec.Key, rec.Value) }); err != nil {
		return r.fail("reading the output: %v", err)
	}
	verdict := v.Verdict()
	r.Verdict = &verdict
	r.Status = statusOK
	if !verdict.OK {
		r.Status, r.Error = statusWrong, fmt.Sprintf("%d problems, e.g. %v", verdict.Count, verdict.Problems)
	} else if e.cfg.smoke && verdict.Records == 0 {
		r.Status, r.Error = statusWrong, "the smoke run expects output, and there is none"
	}
	return r
}

// watchDrain polls until the system's group has committed the whole input. On the way it records
// when the output topic got its first record and, when wantOutputs >= 0, when it held that many.
// It returns false with the reason when the system exits first, the run times out or ctx ends.
func (e *env) watchDrain(ctx context.Context, ch *child, r *runResult, group string, wantOutputs int64) (bool, error) {
	deadline := time.NewTimer(e.cfg.timeout)
	defer deadline.Stop()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	behind := e.cfg.n
	for {
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-deadline.C:
			return false, fmt.Errorf("not drained within %v: %d of %d input records not committed", e.cfg.timeout, behind, e.cfg.n)
		case <-ch.done:
			return false, fmt.Errorf("exited before draining (%s; %d of %d input records not committed); see %s", ch.exitStatus(), behind, e.cfg.n, r.Log)
		case <-tick.C:
		}
		pollCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if r.FirstOutputSeconds < 0 || (wantOutputs > 0 && r.OutputCompleteSeconds == 0) {
			if ends, err := e.endOffsets(pollCtx, r.Output); err == nil {
				at, n := time.Since(ch.started).Seconds(), sum(ends)
				if n > 0 && r.FirstOutputSeconds < 0 {
					r.FirstOutputSeconds = at
				}
				if wantOutputs > 0 && n >= wantOutputs && r.OutputCompleteSeconds == 0 {
					r.OutputCompleteSeconds = at
				}
			}
		}
		b, err := e.committedBehind(pollCtx, group, e.input, e.ends)
		cancel()
		if err == nil {
			behind = b
			if behind == 0 {
				return true, nil
			}
		}
	}
}
