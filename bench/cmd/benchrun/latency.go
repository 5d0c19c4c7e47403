package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rifflestream/riffle/bench/internal/load"
	"github.com/rifflestream/riffle/bench/nexmark"
	"github.com/rifflestream/riffle/bench/workload"
)

// latencyTail bounds the wait, after the input stops, for the outputs of the measurement window.
const latencyTail = 15 * time.Second

// latencyRun runs system s on workload w over a fresh input written at a fixed rate, each record
// stamped with its produce time ("pt"), and measures end-to-end latency: the wall-clock time the
// runner consumes an output record minus the pt it carries. Latencies count for outputs whose pt
// falls in the measurement window, which opens -warmup after the system caught up with the input
// that queued while it started (its first output of an input written after its first output),
// and lasts -measure.
func (e *env) latencyRun(ctx context.Context, s system, w workload.Name, rate float64) *runResult {
	name := fmt.Sprintf("%s-lat-%s-%s", e.runID, s.name, w)
	r := &runResult{System: s.name, Workload: string(w), Phase: "latency", Input: name + "-in", Output: name + "-out",
		FirstOutputSeconds: -1}
	lat := &latencyResult{Rate: rate, ExpectedOuts: -1, WarmupSeconds: e.cfg.warmup.Seconds(), WindowSeconds: e.cfg.measure.Seconds()}
	r.Latency = lat
	e.log.Info("latency run", "system", s.name, "workload", w, "rate", rate)
	defer e.deleteTopics(context.Background(), r.Input)
	defer e.cleanUp(r.Output, name)
	for _, t := range []string{r.Input, r.Output} {
		if err := load.CreateTopic(ctx, e.adm, t, int32(e.cfg.partitions)); err != nil {
			return r.fail("%v", err)
		}
	}

	// The output consumer, running for the whole run.
	rec := &latencyRecorder{}
	consumer, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...), kgo.ConsumeTopics(r.Output),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return r.fail("%v", err)
	}
	consCtx, stopConsumer := context.WithCancel(ctx)
	consDone := make(chan struct{})
	go func() {
		defer close(consDone)
		rec.consume(consCtx, consumer)
	}()
	defer consumer.Close()
	defer func() {
		stopConsumer()
		<-consDone
	}()

	stateDir := filepath.Join(e.work, "state", name)
	defer os.RemoveAll(stateDir)
	r.Command = append(s.command(e), contractArgs(w, e.brokers, r.Input, r.Output, name, e.cfg.threads, stateDir)...)
	logPath := filepath.Join(e.work, "logs", name+".log")
	r.Log = relTo(e.root, logPath)
	ch, err := startChild(r.Command, logPath)
	if err != nil {
		return r.fail("%v", err)
	}
	r.StartedAt = ch.started
	stopped := false
	stopChild := func() {
		if !stopped {
			stopped = true
			r.StopSeconds = ch.stop(stopGrace).Seconds()
			r.ExitStatus = ch.exitStatus()
			if cpu, rss, err := ch.usage(); err == nil {
				r.CPUSeconds, r.PeakRSSBytes = cpu.Seconds(), rss
			}
		}
	}
	defer stopChild()

	// The paced input. Its producer does not linger: the input side adds as little as it can.
	producer, err := kgo.NewClient(append(load.ProducerOpts(), kgo.SeedBrokers(e.brokers...), kgo.ProducerLinger(0))...)
	if err != nil {
		return r.fail("%v", err)
	}
	defer producer.Close()
	prodCtx, stopProducing := context.WithCancel(ctx)
	prodDone := make(chan struct{})
	var inputs inputLog
	var produced int64
	var prodErr error
	go func() {
		defer close(prodDone)
		produced, prodErr = load.Paced(prodCtx, producer, r.Input, int32(e.cfg.partitions), e.genConfig(), rate, 0,
			func(sent load.Sent) { inputs.add(sent.At, outputsFor(w, sent.Event)) })
	}()
	stopInput := func() {
		stopProducing()
		<-prodDone
	}
	defer stopInput()

	// Wait for the first output, then until the system has worked off the input that queued up
	// while it started, then through the warm-up and the measurement window.
	first, err := e.waitFor(ctx, ch, r, "its first output", func() (time.Time, bool, error) {
		t, ok := rec.first()
		return t, ok, nil
	})
	if err != nil {
		return r.fail("%v", err)
	}
	r.FirstOutputSeconds = first.Sub(ch.started).Seconds()
	caughtUp, err := e.waitFor(ctx, ch, r, "catching up with its start-up backlog", func() (time.Time, bool, error) {
		t, ok := rec.caughtUp()
		if missing, samples := rec.counts(); !ok && samples == 0 && missing > 0 && time.Since(first) > 3*workload.CommitInterval {
			return t, false, fmt.Errorf("%d outputs and none carries the pt header: the system must forward input headers", missing)
		}
		return t, ok, nil
	})
	if err != nil {
		return r.fail("%v", err)
	}
	lat.CatchUpSeconds = caughtUp.Sub(first).Seconds()
	from := caughtUp.Add(e.cfg.warmup)
	to := from.Add(e.cfg.measure)
	if err := sleepUntil(ctx, ch, to); err != nil {
		return r.fail("%v", err)
	}
	stopInput()
	lat.WindowInputs, lat.ExpectedOuts = inputs.window(from, to)

	// The tail: until every output of the window has arrived (stateless), or for a few commit
	// intervals (count, whose number of outputs depends on caching).
	tailEnd := time.Now().Add(latencyTail)
	if lat.ExpectedOuts < 0 {
		tailEnd = time.Now().Add(3 * workload.CommitInterval)
	}
	for time.Now().Before(tailEnd) && !ch.exited() {
		if lat.ExpectedOuts >= 0 && rec.inWindow(from, to) >= lat.ExpectedOuts {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	stopChild()
	stopConsumer()
	<-consDone
	lat.Produced = produced
	if prodErr != nil && !errors.Is(prodErr, context.Canceled) {
		return r.fail("writing the paced input: %v", prodErr)
	}
	rec.summarize(lat, from, to)
	r.Status = statusOK
	if lat.Samples == 0 {
		return r.fail("no output with a pt header in the measurement window (%d outputs lacked pt)", lat.MissingHeader)
	}
	return r
}

// outputsFor is how many outputs workload w gives for one input event, or -1 when that is not
// known in advance (count: updates are cached).
func outputsFor(w workload.Name, ev *nexmark.Event) int {
	switch w {
	case workload.Q0:
		return 1
	case workload.Q1:
		if ev.Kind == nexmark.KindBid {
			return 1
		}
	case workload.Q2:
		if ev.Kind == nexmark.KindBid && workload.Q2Keeps(ev.Bid.Auction) {
			return 1
		}
	default:
		return -1
	}
	return 0
}

// waitFor polls until done reports a time or an error, the system exits or the run times out.
func (e *env) waitFor(ctx context.Context, ch *child, r *runResult, what string, done func() (time.Time, bool, error)) (time.Time, error) {
	deadline := time.Now().Add(e.cfg.timeout)
	for {
		if t, ok, err := done(); err != nil {
			return time.Time{}, err
		} else if ok {
			return t, nil
		}
		switch {
		case ctx.Err() != nil:
			return time.Time{}, ctx.Err()
		case ch.exited():
			return time.Time{}, fmt.Errorf("exited before %s (%s); see %s", what, ch.exitStatus(), r.Log)
		case time.Now().After(deadline):
			return time.Time{}, fmt.Errorf("no %s within %v", what, e.cfg.timeout)
		}
		time.Sleep(pollEvery)
	}
}

func sleepUntil(ctx context.Context, ch *child, t time.Time) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-ch.done:
		return fmt.Errorf("exited during the measurement (%s)", ch.exitStatus())
	case <-time.After(time.Until(t)):
		return nil
	}
}
