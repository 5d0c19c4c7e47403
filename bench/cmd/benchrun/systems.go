package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/rifflestream/riffle/bench/workload"
)

// system is one stream processor under test. Every system takes the same command-line contract
// (bench/README.md); the runner appends it to command:
//
//	-workload W -brokers B -input IN -output OUT -app-id ID -threads T -state-dir DIR
type system struct {
	name      string
	about     string          // one line for the report
	workloads []workload.Name // what it implements
	// missing returns why the system cannot run on this checkout or machine, or "".
	missing func(e *env) string
	// build makes what command runs, if it is stale or absent.
	build func(ctx context.Context, e *env) error
	// command is the argv that starts the system, before the contract flags.
	command func(e *env) []string
	// guarantee and commitInterval are what a Riffle variant of the exactly-once benchmark
	// (-eos) runs with; empty and 0 for the others, which run the contract's (at-least-once, 1 s).
	guarantee      string
	commitInterval time.Duration
	// profiles tells whether the command takes -cpuprofile FILE (the Go systems).
	profiles bool
}

// systems is the table of every system, in the order each workload runs them.
var systems = []system{
	// Riffle: bench/cmd/riffle-bench, the workloads in Riffle's DSL behind the contract above.
	{
		name:      "riffle",
		about:     "Riffle (bench/cmd/riffle-bench)",
		workloads: workload.All,
		missing:   goCommandMissing("riffle-bench"),
		build:     goBuild("riffle-bench"),
		command:   goCommand("riffle-bench"),
		profiles:  true,
	},
	// Riffle with its stateless tasks processed on the poll loop (stream.InlineStatelessTasks),
	// the shape of the bare loop; on the stateless workloads only (the stateful ones run alike).
	{
		name:      refRiffleInline,
		about:     "Riffle with stream.InlineStatelessTasks (bench/cmd/riffle-bench -inline)",
		workloads: []workload.Name{workload.Q0, workload.Q1, workload.Q2},
		missing:   goCommandMissing("riffle-bench"),
		build:     goBuild("riffle-bench"),
		command:   func(e *env) []string { return []string{filepath.Join(e.binDir(), "riffle-bench"), "-inline"} },
		profiles:  true,
	},
	{
		name:      "bare",
		about:     "the bare franz-go consume -> transform -> produce loop (bench/cmd/bare)",
		workloads: []workload.Name{workload.Q0, workload.Q1, workload.Q2},
		missing:   goCommandMissing("bare"),
		build:     goBuild("bare"),
		command:   goCommand("bare"),
		profiles:  true,
	},
	// An earlier build of riffle-bench (-ref BIN), run beside the current one to compare two
	// builds of Riffle in one run, alternating, on the same broker and data.
	{
		name:      "riffle-ref",
		about:     "an earlier build of Riffle (benchrun -ref)",
		workloads: workload.All,
		missing: func(e *env) string {
			if e.cfg.refBin == "" {
				return "no -ref binary given"
			}
			if _, err := os.Stat(e.cfg.refBin); err != nil {
				return fmt.Sprintf("-ref %s: %v", e.cfg.refBin, err)
			}
			return ""
		},
		build:    func(context.Context, *env) error { return nil },
		command:  func(e *env) []string { return []string{e.cfg.refBin} },
		profiles: true,
	},
	{
		name:      "kafkastreams",
		about:     "Kafka Streams (bench/peers/kafkastreams), the DSL",
		workloads: workload.All,
		missing:   kafkaStreamsMissing,
		build:     kafkaStreamsBuild,
		command:   kafkaStreamsCommand,
	},
}

func init() { systems = append(systems, eosVariants...) }

// eosVariants are Riffle under both processing guarantees at two commit intervals: the systems of
// the exactly-once benchmark (-eos, bench/EOS.md). They are riffle-bench with its two flags beyond
// the contract.
var eosVariants = []system{
	riffleVariant("at_least_once", 100*time.Millisecond),
	riffleVariant("exactly_once", 100*time.Millisecond),
	riffleVariant("at_least_once", time.Second),
	riffleVariant("exactly_once", time.Second),
}

func riffleVariant(guarantee string, interval time.Duration) system {
	short := map[string]string{"at_least_once": "alos", "exactly_once": "eos"}[guarantee]
	name := fmt.Sprintf("riffle-%s-%s", short, interval)
	return system{
		name:      name,
		about:     fmt.Sprintf("Riffle (bench/cmd/riffle-bench) with -guarantee %s -commit-interval %s", guarantee, interval),
		workloads: workload.All,
		missing:   goCommandMissing("riffle-bench"),
		build:     goBuild("riffle-bench"),
		command: func(e *env) []string {
			return append(goCommand("riffle-bench")(e), "-guarantee", guarantee, "-commit-interval", interval.String())
		},
		guarantee:      guarantee,
		commitInterval: interval,
		profiles:       true,
	}
}

// The system names the report compares against.
const (
	refKafkaStreams = "kafkastreams"
	refBare         = "bare"
	refRiffle       = "riffle"
	refRiffleInline = "riffle-inline"
)

func findSystem(name string) (system, bool) {
	for _, s := range systems {
		if s.name == name {
			return s, true
		}
	}
	return system{}, false
}

func (s system) supports(w workload.Name) bool { return slices.Contains(s.workloads, w) }

// contractArgs are the flags every system takes.
func contractArgs(w workload.Name, brokers []string, input, output, appID string, threads int, stateDir string) []string {
	return []string{
		"-workload", string(w),
		"-brokers", strings.Join(brokers, ","),
		"-input", input,
		"-output", output,
		"-app-id", appID,
		"-threads", fmt.Sprint(threads),
		"-state-dir", stateDir,
	}
}

func goCommandMissing(name string) func(e *env) string {
	return func(e *env) string {
		dir := filepath.Join(e.root, "bench", "cmd", name)
		if _, err := os.Stat(filepath.Join(dir, "main.go")); err != nil {
			return fmt.Sprintf("%s has no main.go yet", relTo(e.root, dir))
		}
		return ""
	}
}

func goBuild(name string) func(ctx context.Context, e *env) error {
	return func(ctx context.Context, e *env) error {
		if e.built[name] {
			return nil // the Riffle variants share one binary
		}
		cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(e.binDir(), name), "./bench/cmd/"+name)
		cmd.Dir = e.root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build ./bench/cmd/%s: %w\n%s", name, err, out)
		}
		if e.built == nil {
			e.built = map[string]bool{}
		}
		e.built[name] = true
		return nil
	}
}

func goCommand(name string) func(e *env) []string {
	return func(e *env) []string { return []string{filepath.Join(e.binDir(), name)} }
}

func kafkaStreamsDir(e *env) string { return filepath.Join(e.root, "bench", "peers", "kafkastreams") }

func kafkaStreamsJar(e *env) string {
	return filepath.Join(kafkaStreamsDir(e), "target", "riffle-bench-kafkastreams.jar")
}

func kafkaStreamsMissing(e *env) string {
	if _, err := exec.LookPath(e.java); err != nil {
		return fmt.Sprintf("no Java (%s) on PATH: install Java 17+", e.java)
	}
	if _, err := os.Stat(kafkaStreamsJar(e)); err != nil {
		if _, err := exec.LookPath("mvn"); err != nil {
			return "the peer is not built and there is no Maven (mvn) to build it"
		}
	}
	return ""
}

// kafkaStreamsBuild runs `mvn -q package` when the jar is missing or older than a source file.
func kafkaStreamsBuild(ctx context.Context, e *env) error {
	dir := kafkaStreamsDir(e)
	jar, err := os.Stat(kafkaStreamsJar(e))
	if err == nil && !newerThan(dir, jar.ModTime()) {
		return nil
	}
	e.log.Info("building the Kafka Streams peer with Maven (the first build downloads its jars)", "dir", relTo(e.root, dir))
	cmd := exec.CommandContext(ctx, "mvn", "-q", "-B", "package")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("benchrun: building the Kafka Streams peer failed: mvn -q -B package in %s: %w\n%s", dir, err, out)
	}
	if _, err := os.Stat(kafkaStreamsJar(e)); err != nil {
		return fmt.Errorf("benchrun: mvn package ran but %s is missing", kafkaStreamsJar(e))
	}
	return nil
}

// newerThan reports whether the pom or a source file under dir changed after t.
func newerThan(dir string, t time.Time) bool {
	newer := false
	for _, root := range []string{filepath.Join(dir, "pom.xml"), filepath.Join(dir, "src")} {
		_ = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if info, err := d.Info(); err == nil && !d.IsDir() && info.ModTime().After(t) {
				newer = true
			}
			return nil
		})
	}
	return newer
}

// kafkaStreamsCommand starts the JVM itself (not a wrapper script), so the child's rusage is the
// JVM's own.
func kafkaStreamsCommand(e *env) []string {
	return append(append([]string{e.java}, strings.Fields(e.cfg.javaOpts)...), "-jar", kafkaStreamsJar(e))
}

func relTo(root, path string) string {
	if r, err := filepath.Rel(root, path); err == nil {
		return r
	}
	return path
}
