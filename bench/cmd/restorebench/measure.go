package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/metrics"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rifflestream/riffle/bench/internal/benchenv"
	"github.com/rifflestream/riffle/internal/engine"
	"github.com/rifflestream/riffle/serde"
	"github.com/rifflestream/riffle/state"
	"github.com/rifflestream/riffle/topology"
)

// run is one measured read of the whole changelog.
type run struct {
	Records int64         `json:"records"`
	Bytes   int64         `json:"bytes"`
	Took    time.Duration `json:"took_ns"`
	// CloseTook (restore only, not in Took) is the time to close the store afterwards: Pebble
	// flushes what is still in its memtables.
	CloseTook time.Duration `json:"close_took_ns,omitempty"`
	// CPU is the CPU time (user and system) this process used during Took: on a machine shared
	// with the broker and other work it varies less than the wall time does.
	CPU time.Duration `json:"cpu_ns"`
	// GCs is how many garbage collections ended during Took, GCCPU the CPU time they took
	// (runtime/metrics, an estimate; included in CPU).
	GCs   uint64        `json:"gcs"`
	GCCPU time.Duration `json:"gc_cpu_ns"`
}

// gcStats returns the garbage collections completed so far and the CPU time the runtime
// estimates they took.
func gcStats() (uint64, time.Duration) {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}, {Name: "/cpu/classes/gc/total:cpu-seconds"}}
	metrics.Read(s)
	var n uint64
	if s[0].Value.Kind() == metrics.KindUint64 {
		n = s[0].Value.Uint64()
	}
	var cpu time.Duration
	if s[1].Value.Kind() == metrics.KindFloat64 {
		cpu = time.Duration(s[1].Value.Float64() * 1e9)
	}
	return n, cpu
}

// processCPU returns the CPU time (user and system) the process has used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (r run) recordsPerSec() float64 { return float64(r.Records) / r.Took.Seconds() }
func (r run) mbPerSec() float64      { return float64(r.Bytes) / 1e6 / r.Took.Seconds() }

// bounds returns the first offset and the last stable offset of a partition: what the engine's
// restore reads up to when it reads read_committed (exactly-once).
func bounds(adm *kadm.Client) func(ctx context.Context, topic string, p int32) (int64, int64, error) {
	return func(ctx context.Context, topic string, p int32) (int64, int64, error) {
		starts, err := adm.ListStartOffsets(ctx, topic)
		if err == nil {
			err = starts.Error()
		}
		if err != nil {
			return 0, 0, err
		}
		ends, err := adm.ListCommittedOffsets(ctx, topic)
		if err == nil {
			err = ends.Error()
		}
		if err != nil {
			return 0, 0, err
		}
		s, ok1 := starts.Lookup(topic, p)
		e, ok2 := ends.Lookup(topic, p)
		if !ok1 || !ok2 {
			return 0, 0, fmt.Errorf("%s[%d]: no such partition", topic, p)
		}
		return s.Offset, e.Offset, nil
	}
}

// env is what the measurements share.
type env struct {
	brokers    []string
	adm        *kadm.Client
	topic      string
	partitions int32
	keys       int64
	valueBytes int
	stateDir   string // where each restore's Pebble DB is made ("" = the system's temp dir)
	log        *slog.Logger
	chunkBytes int   // engine.ChangelogRestorer.ChunkBytes (0: default)
	fetchBytes int32 // engine.ChangelogRestorer.FetchPartitionBytes (0: default)
	// concurrency is how many partitions restore at once (engine.ChangelogRestorer.Slots), as
	// the engine bounds them (Config.RestoreConcurrency).
	concurrency int
}

// restoreOnce restores the changelog into a fresh Pebble store through the engine's restore
// (engine.ChangelogRestorer, what a task runs when it is assigned): one store partition per
// changelog partition, restored concurrently as an instance restores its tasks, read_committed.
// It then checks the store against the changelog (untimed) and closes it.
func restoreOnce(ctx context.Context, e *env, profile string) (run, error) {
	dir, err := os.MkdirTemp(e.stateDir, "restorebench-state-*")
	if err != nil {
		return run{}, err
	}
	defer os.RemoveAll(dir)
	m, err := state.OpenManager(state.ManagerOptions{Dir: dir}) // the engine's Pebble defaults
	if err != nil {
		return run{}, err
	}
	closed := false
	defer func() {
		if !closed {
			_ = m.Close()
		}
	}()
	spec := state.NewKeyValue("restorebench", serde.Bytes(), serde.Bytes())
	stores := make([]topology.Restorable, e.partitions)
	for p := range e.partitions {
		st, err := m.OpenStore(topology.StoreContext{Task: topology.TaskID{Partition: p}, Spec: spec, Changelog: e.topic})
		if err != nil {
			return run{}, err
		}
		rs, ok := st.(topology.Restorable)
		if !ok {
			return run{}, fmt.Errorf("a %T is not restorable", st)
		}
		stores[p] = rs
	}
	cr := &engine.ChangelogRestorer{ // what runner.restoreStore builds, read_committed
		Brokers:   e.brokers,
		Isolation: kgo.ReadCommitted(),
		Log:       e.log,
		Bounds:    bounds(e.adm),

		ChunkBytes:          e.chunkBytes,
		FetchPartitionBytes: e.fetchBytes,
		Slots:               make(chan struct{}, e.concurrency),
	}
	stopProfile := func() {}
	if profile != "" {
		if stopProfile, err = benchenv.StartCPUProfile(profile); err != nil {
			return run{}, err
		}
	}
	var (
		wg       sync.WaitGroup
		restored = make([]int64, e.partitions)
		errs     = make([]error, e.partitions)
	)
	gc0, gcCPU0 := gcStats()
	t0, cpu0 := time.Now(), processCPU()
	for p := range e.partitions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			restored[p], errs[p] = cr.Restore(ctx, stores[p], e.topic, p, topology.TaskID{Partition: p}.String())
		}()
	}
	wg.Wait()
	took, cpu := time.Since(t0), processCPU()-cpu0
	gc1, gcCPU1 := gcStats()
	stopProfile()
	if err := errors.Join(errs...); err != nil {
		return run{}, err
	}
	var n int64
	for _, r := range restored {
		n += r
	}
	if err := verify(ctx, e, stores); err != nil {
		return run{}, err
	}
	for _, st := range stores {
		if err := st.Close(); err != nil {
			return run{}, err
		}
	}
	t1 := time.Now()
	closed = true
	if err := m.Close(); err != nil {
		return run{}, err
	}
	return run{Records: n, Bytes: n * int64(len(keyPrefix)+keyDigits+e.valueBytes), Took: took, CloseTook: time.Since(t1), CPU: cpu, GCs: gc1 - gc0, GCCPU: gcCPU1 - gcCPU0}, nil
}

// verify checks that the store partitions hold exactly the changelog's keys, each in the
// partition the changelog put it in, with its value and timestamp, and a checkpoint at the end
// of the changelog partition.
func verify(ctx context.Context, e *env, stores []topology.Restorable) error {
	var total int64
	want := make([]byte, 0, e.valueBytes)
	for p, rs := range stores {
		kv, ok := rs.(state.KeyValueStore[[]byte, []byte])
		if !ok {
			return fmt.Errorf("a %T is not a key-value store of bytes", rs)
		}
		it, err := kv.All()
		if err != nil {
			return err
		}
		for it.Next() {
			i, err := parseKey(it.Key())
			if err != nil || i < 0 || i >= e.keys {
				it.Close()
				return fmt.Errorf("%w: partition %d holds key %q", errMismatch, p, it.Key())
			}
			if got := partitionOf(it.Key(), e.partitions); got != int32(p) {
				it.Close()
				return fmt.Errorf("%w: key %q of partition %d is in store partition %d", errMismatch, it.Key(), got, p)
			}
			want = appendValue(want[:0], i, e.valueBytes)
			if !bytes.Equal(it.Value(), want) {
				it.Close()
				return fmt.Errorf("%w: key %q has value %x, want %x", errMismatch, it.Key(), it.Value(), want)
			}
			if ts := it.Timestamp().UnixMilli(); ts != baseTime+i {
				it.Close()
				return fmt.Errorf("%w: key %q has timestamp %d, want %d", errMismatch, it.Key(), ts, baseTime+i)
			}
			total++ // keys come in strictly increasing order: no key is counted twice
		}
		if err := it.Err(); err != nil {
			it.Close()
			return err
		}
		if err := it.Close(); err != nil {
			return err
		}
		_, end, err := bounds(e.adm)(ctx, e.topic, int32(p))
		if err != nil {
			return err
		}
		if from, ok, err := rs.RestoreFrom(); err != nil || !ok || from != end {
			return fmt.Errorf("%w: partition %d has checkpoint %d (set %v, err %v), want %d", errMismatch, p, from, ok, err, end)
		}
	}
	if total != e.keys {
		return fmt.Errorf("%w: %d keys restored, want %d", errMismatch, total, e.keys)
	}
	return nil
}

// bareOnce reads the changelog from start to end with a bare franz-go consumer (franz-go's
// default fetch sizes, read_committed) that does nothing with the records: the limit a restore
// is measured against. The time includes making the client and listing the offsets, as the
// restore's does.
func bareOnce(ctx context.Context, e *env, profile string) (run, error) {
	if profile != "" {
		stop, err := benchenv.StartCPUProfile(profile)
		if err != nil {
			return run{}, err
		}
		defer stop()
	}
	gc0, gcCPU0 := gcStats()
	t0, cpu0 := time.Now(), processCPU()
	end := make([]int64, e.partitions)
	next := make([]int64, e.partitions)
	offsets := map[int32]kgo.Offset{}
	for p := range e.partitions {
		start, en, err := bounds(e.adm)(ctx, e.topic, p)
		if err != nil {
			return run{}, err
		}
		next[p], end[p] = start, en
		offsets[p] = kgo.NewOffset().At(start)
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(e.brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{e.topic: offsets}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)
	if err != nil {
		return run{}, err
	}
	defer cl.Close()
	var r run
	done := func() bool {
		for p := range next {
			if next[p] < end[p] {
				return false
			}
		}
		return true
	}
	for !done() {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return run{}, err
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) { ferr = err })
		if ferr != nil {
			return run{}, ferr
		}
		fs.EachRecord(func(rec *kgo.Record) {
			if rec.Offset >= end[rec.Partition] {
				return
			}
			next[rec.Partition] = rec.Offset + 1
			r.Records++
			r.Bytes += int64(len(rec.Key) + len(rec.Value))
		})
	}
	r.Took, r.CPU = time.Since(t0), processCPU()-cpu0
	gc1, gcCPU1 := gcStats()
	r.GCs, r.GCCPU = gc1-gc0, gcCPU1-gcCPU0
	return r, nil
}
