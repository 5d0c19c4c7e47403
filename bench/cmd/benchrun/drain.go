package main

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rifflestream/riffle/bench/internal/benchenv"
	"github.com/rifflestream/riffle/bench/internal/load"
	"github.com/rifflestream/riffle/bench/workload"
)

// pollEvery is how often a run's progress is polled: the resolution of drain and first-output
// times.
const pollEvery = 50 * time.Millisecond

// stopGrace is how long a system may take to exit after SIGTERM before it is killed.
const stopGrace = 30 * time.Second

// drainRun runs system s on workload w over the loaded input until it has committed all of it,
// then stops it and checks its output. rep is the repetition (0 when the benchmark runs each
// pair once, -1 for the warm-up run); it goes into the run's names.
func (e *env) drainRun(ctx context.Context, s system, w workload.Name, rep int) *runResult {
	name := fmt.Sprintf("%s-%s-%s", e.runID, s.name, w)
	if rep > 0 {
		name += fmt.Sprintf("-r%d", rep)
	} else if rep < 0 {
		name += "-warmup"
	}
	r := &runResult{System: s.name, Workload: string(w), Phase: "drain", Rep: rep, Input: e.input, Output: name + "-out",
		Events: e.cfg.n, FirstOutputSeconds: -1, LoadAverage: benchenv.LoadAverage()}
	e.log.Info("drain run", "system", s.name, "workload", w, "rep", rep, "events", e.cfg.n)
	defer e.cleanUp(r.Output, name)

	if err := load.CreateTopic(ctx, e.adm, r.Output, int32(e.cfg.partitions), load.StampAppendTime...); err != nil {
		return r.fail("%v", err)
	}
	stateDir := filepath.Join(e.work, "state", name)
	defer os.RemoveAll(stateDir)
	r.Command = s.command(e)
	if e.cfg.profiles != "" && s.profiles {
		if err := os.MkdirAll(e.cfg.profiles, 0o755); err != nil {
			return r.fail("%v", err)
		}
		prof, err := filepath.Abs(filepath.Join(e.cfg.profiles, name+".prof"))
		if err != nil {
			return r.fail("%v", err)
		}
		r.Command = append(r.Command, "-cpuprofile", prof)
	}
	r.Command = append(r.Command, contractArgs(w, e.brokers, e.input, r.Output, name, e.cfg.threads, stateDir)...)
	logPath := filepath.Join(e.work, "logs", name+".log")
	r.Log = relTo(e.root, logPath)

	brokerCPU0, brokerErr := procCPU(e.brokerPID)
	ch, err := startChild(r.Command, logPath)
	if err != nil {
		return r.fail("%v", err)
	}
	r.StartedAt = ch.started
	vis := &visibility{start: ch.started}
	drained, err := e.watchDrain(ctx, ch, r, name, vis)
	if drained {
		r.DrainSeconds = time.Since(ch.started).Seconds()
		if cpu, err := procCPU(ch.pid()); err == nil {
			r.CPUSecondsAtDrain = cpu.Seconds()
		}
		if n, err := procReadBytes(ch.pid()); err == nil {
			r.ReadBytesAtDrain = n
		}
		if b, err := procCPU(e.brokerPID); err == nil && brokerErr == nil {
			r.BrokerCPUSeconds = (b - brokerCPU0).Seconds()
		}
		// Under exactly-once the output's last transaction may become readable (its markers
		// written) a little after its offsets: follow the output until nothing is open.
		e.watchSettle(ctx, ch, r.Output, vis, 5*time.Second)
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

	// The output, read back read_committed and checked against what the events say it must be.
	v := e.exp.Verifier(w)
	readCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	st, err := e.readTopic(readCtx, r.Output, func(rec *kgo.Record) {
		v.Add(rec.Key, rec.Value)
		vis.record(rec.Partition, rec.Offset, rec.Timestamp)
	})
	if err != nil {
		return r.fail("reading the output: %v", err)
	}
	r.OutputControlRecords, r.OutputAbortedRecords = st.Control, st.Aborted
	vis.transactional = st.Control > 0
	r.FirstOutputSeconds, r.OutputCompleteSeconds = vis.times(e.exp.Outputs(w))
	r.OutputProgressSeconds = vis.progress(e.exp.Outputs(w), 10)
	if r.OutputCompleteSeconds > 0 {
		r.RecordsPerSecondToOutput = float64(e.cfg.n) / r.OutputCompleteSeconds
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

// watchDrain polls until the system's group has committed the whole input, sampling on the way
// the output's last stable offsets into vis (for the first-output and output-complete times). It
// returns false with the reason when the system exits first, the run times out or ctx ends.
//
// Under exactly-once the group's offsets are committed in the transaction that also commits the
// output they produced, and become visible (to FetchOffsets, as to everyone) when it commits, so
// the same test ends an exactly-once drain.
func (e *env) watchDrain(ctx context.Context, ch *child, r *runResult, group string, vis *visibility) (bool, error) {
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
		if stable, err := e.stableOffsets(pollCtx, r.Output); err == nil {
			vis.sample(time.Since(ch.started).Seconds(), stable)
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

// watchSettle samples the output's last stable offsets into vis until they reach its end offsets
// (no transaction open), for at most limit.
func (e *env) watchSettle(ctx context.Context, ch *child, output string, vis *visibility, limit time.Duration) {
	for end := time.Now().Add(limit); time.Now().Before(end) && ctx.Err() == nil; {
		pollCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ends, err1 := e.endOffsets(pollCtx, output)
		stable, err2 := e.stableOffsets(pollCtx, output)
		cancel()
		if err1 == nil && err2 == nil {
			vis.sample(time.Since(ch.started).Seconds(), stable)
			if len(openTransactions(stable, ends)) == 0 {
				return
			}
		}
		time.Sleep(pollEvery)
	}
}

// visibility turns samples of an output's last stable offsets, taken during a run, into the times
// at which its records became readable to a read_committed consumer. End offsets cannot tell: under
// exactly-once they count transaction markers and records of open or aborted transactions. So the
// run samples the last stable offsets (below which every record is decided), and once the output
// has been read back, the offsets of the committed data records say how many of them each sample
// had made readable.
//
// A non-transactional output needs no samples: the output topic stamps each record with the time
// the broker appended it (load.StampAppendTime), and under at-least-once a record is readable once
// appended (acks=all, and the single broker is the whole in-sync replica set). Those times are
// exact to the millisecond where the samples are 50 ms apart: a q2 drain of 2M events takes
// 0.75 s on this machine, and half a sampling interval was 3% of it.
type visibility struct {
	start  time.Time         // the process start, which the times count from
	at     []float64         // seconds from process start, one per sample
	stable []map[int32]int64 // the last stable offsets of the sample, never below an earlier sample's
	hits   []int64           // hits[i]: committed data records that first became readable at sample i
	// appended holds the committed data records' append times, seconds from start.
	appended []float64
	// transactional: the output holds transaction markers, so a record became readable when its
	// transaction committed, not when it was appended, and the samples tell.
	transactional bool
	sorted        bool
}

func (v *visibility) sample(at float64, stable map[int32]int64) {
	s := maps.Clone(stable)
	if n := len(v.stable); n > 0 {
		for p, o := range v.stable[n-1] {
			if s[p] < o {
				s[p] = o
			}
		}
	}
	v.at = append(v.at, at)
	v.stable = append(v.stable, s)
}

// record counts one committed data record, at offset of partition, stamped with appended.
func (v *visibility) record(partition int32, offset int64, appended time.Time) {
	if v.hits == nil {
		v.hits = make([]int64, len(v.at)+1) // the last: not readable by any sample
	}
	i := sort.Search(len(v.stable), func(i int) bool { return v.stable[i][partition] > offset })
	v.hits[i]++
	v.appended = append(v.appended, appended.Sub(v.start).Seconds())
	v.sorted = false
}

// exact reports whether the records' append times are when they became readable, and sorts them.
func (v *visibility) exact() bool {
	if v.transactional || len(v.appended) == 0 {
		return false
	}
	if !v.sorted {
		slices.Sort(v.appended)
		v.sorted = true
	}
	return true
}

// times returns when the first committed data record became readable (-1: in no sample) and,
// when want > 0, when want of them were (0: in no sample, or fewer records).
func (v *visibility) times(want int64) (first, complete float64) {
	if v.exact() {
		first = v.appended[0]
		if want > 0 && int64(len(v.appended)) >= want {
			complete = v.appended[want-1]
		}
		return first, complete
	}
	first = -1
	var n int64
	for i := range v.at {
		if v.hits == nil {
			break
		}
		n += v.hits[i]
		if n > 0 && first < 0 {
			first = v.at[i]
		}
		if want > 0 && n >= want {
			return first, v.at[i]
		}
	}
	return first, 0
}

// progress returns when 1/steps, 2/steps, ... and all of want records had become readable, when
// the append times tell (exact) and there are want records; nil otherwise. It shows where in a
// run one system falls behind another: at start, throughout, or at the end.
func (v *visibility) progress(want int64, steps int) []float64 {
	if want <= 0 || !v.exact() || int64(len(v.appended)) < want {
		return nil
	}
	out := make([]float64, steps)
	for i := range out {
		n := max(1, want*int64(i+1)/int64(steps))
		out[i] = v.appended[n-1]
	}
	return out
}
