// Command restorebench measures how fast Riffle restores a store from its changelog, against the
// limit of reading the same topic with a bare franz-go consumer (bench/RESTORE.md).
//
//	go run ./bench/cmd/restorebench                       # or: make bench-restore
//	go run ./bench/cmd/restorebench -keys 200000 -reps 3  # smaller
//
// It uses the broker of -brokers or KAFKA_BROKERS, else starts one with tools/kafka/kafka.sh (in
// its own run dir, stopped at the end). It writes a compacted changelog-shaped topic of -keys
// distinct keys (14 bytes each) with -value-bytes values over -partitions partitions, in a
// scrambled key order, then alternates, -reps times each:
//
//   - a restore: engine.ChangelogRestorer (the code a task runs when it is assigned) brings one
//     fresh Pebble store partition per changelog partition from its (absent) checkpoint to the
//     end of the changelog, read_committed, the partitions concurrently as an instance restores
//     its tasks; afterwards, untimed, every key, value, timestamp and checkpoint is checked
//     against the changelog, so a restore that loses or invents records fails the run;
//   - a bare read: one franz-go consumer (default fetch sizes, read_committed) reads every
//     partition from its start to its end and does nothing with the records.
//
// It prints and records the median and min-max of each, and the ratio restore/bare, in
// bench/RESTORE.md (between its restorebench markers; the rest of the file is kept) and the raw
// figures in bench/results/restore.json.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rifflestream/riffle/bench/internal/benchenv"
	"github.com/rifflestream/riffle/internal/engine"
	"github.com/rifflestream/riffle/state"
)

type config struct {
	brokers    string
	kafkaRun   string
	keys       int64
	valueBytes int
	partitions int
	reps       int
	stateDir   string
	md         string
	json       string
	cpuprofile string
	verbose    bool
	// chunkBytes and fetchBytes override the restore's settings (0: the engine's defaults).
	chunkBytes int
	fetchBytes int
	// concurrency bounds the restores that run at once (0: the engine's default).
	concurrency int
}

func main() {
	c, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "restorebench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runBench(ctx, c, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "restorebench:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string, out io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("restorebench", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&c.brokers, "brokers", os.Getenv("KAFKA_BROKERS"), "bootstrap brokers (default $KAFKA_BROKERS; empty: start one with tools/kafka/kafka.sh)")
	fs.StringVar(&c.kafkaRun, "kafka-run", filepath.Join(os.TempDir(), "riffle-kafka", "restorebench"), "run dir of the broker started here")
	fs.Int64Var(&c.keys, "keys", 1_000_000, "distinct keys in the changelog (one record each)")
	fs.IntVar(&c.valueBytes, "value-bytes", 100, "bytes per value")
	fs.IntVar(&c.partitions, "partitions", 4, "changelog partitions (= store partitions restored concurrently)")
	fs.IntVar(&c.reps, "reps", 5, "measured runs of each system, alternating")
	fs.StringVar(&c.stateDir, "state-dir", "", "where restores make their Pebble DBs (default: the temp dir)")
	fs.StringVar(&c.md, "md", "bench/RESTORE.md", "report to update (relative to the repository root; empty: none)")
	fs.StringVar(&c.json, "json", "bench/results/restore.json", "raw figures (relative to the repository root; empty: none)")
	fs.StringVar(&c.cpuprofile, "cpuprofile", "", "write CPU profiles of the last runs to <this>.restore.pprof and <this>.bare.pprof")
	fs.BoolVar(&c.verbose, "v", false, "log the restores")
	fs.IntVar(&c.chunkBytes, "chunk-bytes", 0, "bytes the restore applies at once (0: the engine's default)")
	fs.IntVar(&c.fetchBytes, "fetch-partition-bytes", 0, "the restore client's fetch.max.partition.bytes (0: the engine's default)")
	fs.IntVar(&c.concurrency, "restore-concurrency", 0, "restores that run at once, the others waiting (0: the engine's default, engine.DefaultRestoreConcurrency)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	switch {
	case fs.NArg() > 0:
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	case c.keys <= 0 || c.keys >= 1<<32:
		return c, errors.New("-keys must be in [1, 2^32)")
	case c.valueBytes < 0:
		return c, errors.New("-value-bytes must not be negative")
	case c.partitions <= 0:
		return c, errors.New("-partitions must be positive")
	case c.reps <= 0:
		return c, errors.New("-reps must be positive")
	}
	return c, nil
}

func runBench(ctx context.Context, c config, args []string) (err error) {
	root, err := benchenv.FindRoot()
	if err != nil {
		return err
	}
	var b *benchenv.Broker
	brokerNote := "given by -brokers/KAFKA_BROKERS"
	if c.brokers != "" {
		b = benchenv.External(c.brokers)
	} else {
		fmt.Fprintf(os.Stderr, "starting a Kafka broker in %s\n", c.kafkaRun)
		if b, err = benchenv.StartBroker(ctx, root, c.kafkaRun); err != nil {
			return err
		}
		brokerNote = "started by restorebench (tools/kafka/kafka.sh, single KRaft node)"
		defer func() { err = errors.Join(err, b.Stop()) }()
	}
	level := slog.LevelWarn
	if c.verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addrs...))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	e := &env{brokers: b.Addrs, adm: adm, topic: fmt.Sprintf("restorebench-%d-store-changelog", time.Now().UnixNano()),
		partitions: int32(c.partitions), keys: c.keys, valueBytes: c.valueBytes, stateDir: c.stateDir, log: log,
		chunkBytes: c.chunkBytes, fetchBytes: int32(c.fetchBytes), concurrency: c.concurrency}
	if e.concurrency <= 0 {
		e.concurrency = engine.DefaultRestoreConcurrency()
	}
	if err := createChangelog(ctx, adm, e.topic, e.partitions); err != nil {
		return err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, derr := adm.DeleteTopic(dctx, e.topic); derr != nil {
			err = errors.Join(err, fmt.Errorf("deleting %s: %w", e.topic, derr))
		}
	}()
	fmt.Fprintf(os.Stderr, "writing %d keys with %d-byte values to %s (%d partitions)\n", c.keys, c.valueBytes, e.topic, c.partitions)
	ld, err := writeChangelog(ctx, b.Addrs, e.topic, e.partitions, c.keys, c.valueBytes)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "written in %v (%.0f records/s)\n", ld.Took.Round(time.Millisecond), float64(ld.Records)/ld.Took.Seconds())

	// One unmeasured read first, so both systems find the topic in the page cache.
	if _, err := bareOnce(ctx, e, ""); err != nil {
		return fmt.Errorf("warm-up read: %w", err)
	}
	res := result{
		Generated: time.Now().UTC().Format(time.RFC3339), Command: command(args),
		Machine: benchenv.DescribeMachine(), Versions: benchenv.DescribeVersions(root), Broker: brokerNote,
		Params: params{Keys: c.keys, KeyBytes: len(keyPrefix) + keyDigits, ValueBytes: c.valueBytes, Partitions: c.partitions,
			Reps: c.reps, Isolation: "read_committed", Order: "alternating, restore first on odd runs",
			ChunkBytes: c.chunkBytes, FetchPartitionBytes: c.fetchBytes, RestoreConcurrency: e.concurrency},
		Load: loadFigures{Records: ld.Records, Bytes: ld.Bytes, Seconds: ld.Took.Seconds(), RecordsPerSec: float64(ld.Records) / ld.Took.Seconds()},
	}
	for i := 0; i < c.reps; i++ {
		prof := func(kind string) string {
			// The last runs: the first ones share the machine with the broker's writeback of the
			// freshly loaded topic.
			if c.cpuprofile == "" || i != c.reps-1 {
				return ""
			}
			return c.cpuprofile + "." + kind + ".pprof"
		}
		measureRestore := func() error {
			settle()
			r, err := restoreOnce(ctx, e, prof("restore"))
			if err != nil {
				return fmt.Errorf("restore run %d: %w", i+1, err)
			}
			res.Restore.Runs = append(res.Restore.Runs, r)
			fmt.Fprintf(os.Stderr, "run %d restore: %d records in %v (CPU %v, GC %v in %d cycles): %.0f records/s (store closed in %v)\n",
				i+1, r.Records, r.Took.Round(time.Millisecond), r.CPU.Round(time.Millisecond), r.GCCPU.Round(time.Millisecond), r.GCs, r.recordsPerSec(), r.CloseTook.Round(time.Millisecond))
			return nil
		}
		measureBare := func() error {
			settle()
			r, err := bareOnce(ctx, e, prof("bare"))
			if err != nil {
				return fmt.Errorf("bare run %d: %w", i+1, err)
			}
			if r.Records != ld.Records {
				return fmt.Errorf("bare run %d read %d records, want %d", i+1, r.Records, ld.Records)
			}
			res.Bare.Runs = append(res.Bare.Runs, r)
			fmt.Fprintf(os.Stderr, "run %d bare:    %d records in %v (CPU %v, GC %v in %d cycles): %.0f records/s\n", i+1, r.Records, r.Took.Round(time.Millisecond), r.CPU.Round(time.Millisecond), r.GCCPU.Round(time.Millisecond), r.GCs, r.recordsPerSec())
			return nil
		}
		first, second := measureRestore, measureBare
		if i%2 == 1 {
			first, second = measureBare, measureRestore
		}
		if err := first(); err != nil {
			return err
		}
		if err := second(); err != nil {
			return err
		}
	}
	res.summarize()
	fmt.Println(res.text())
	if c.json != "" {
		if err := writeJSON(underRoot(root, c.json), &res); err != nil {
			return err
		}
	}
	if c.md != "" {
		if err := updateMarkdown(underRoot(root, c.md), res.markdown()); err != nil {
			return err
		}
	}
	return nil
}

func underRoot(root, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(root, p)
}

// command is the command line that reproduces the run (without -brokers: machine-specific).
func command(args []string) string {
	parts := []string{"go", "run", "./bench/cmd/restorebench"}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch name := strings.TrimLeft(a, "-"); {
		case strings.HasPrefix(a, "-") && (name == "brokers" || name == "kafka-run"):
			i++ // the value follows
		case strings.HasPrefix(a, "-") && (strings.HasPrefix(name, "brokers=") || strings.HasPrefix(name, "kafka-run=")):
		default:
			parts = append(parts, a)
		}
	}
	return strings.Join(parts, " ")
}

// settle starts every measured run, of either system, from the same process state: the memory
// the state package keeps for bulk restores released, and the heap collected. Without it a run
// inherits the previous one's heap, and a larger heap means fewer collections: the bare read after
// a restore ran with the restore's cached scratch memory as ballast and measured half its usual
// CPU (0.19-0.20 s instead of 0.38-0.46 s).
func settle() {
	state.ReleaseIdleMemory()
	engine.ReleaseIdleRestoreMemory()
	runtime.GC()
}
