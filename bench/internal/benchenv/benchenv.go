// Package benchenv is what the benchmark commands share about where they run: the repository
// root, a Kafka broker (one named by the caller, or one started with tools/kafka/kafka.sh and
// stopped at the end) and a description of the machine and of the versions measured.
//
// bench/cmd/restorebench uses it; bench/cmd/benchrun still has its own copy of the broker and
// machine code (broker.go, machine.go) and can adopt this package later.
package benchenv

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
)

// modulePath is the module whose root FindRoot looks for.
const modulePath = "github.com/rifflestream/riffle"

// FindRoot returns the repository root: the nearest directory at or above the working
// directory whose go.mod declares the Riffle module.
func FindRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	return findRootFrom(dir)
}

func findRootFrom(dir string) (string, error) {
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && declaresModule(b) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("benchenv: run me inside the Riffle repository (no go.mod of %s above here)", modulePath)
		}
		dir = parent
	}
}

func declaresModule(gomod []byte) bool {
	for _, line := range strings.Split(string(gomod), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "module" && f[1] == modulePath {
			return true
		}
	}
	return false
}

// Broker is the Kafka broker of a run: one started with tools/kafka/kafka.sh (Stop stops it), or
// one named by the caller (Stop does nothing).
type Broker struct {
	Addrs []string
	// PID is the broker JVM's process id when started here, else 0.
	PID    int
	runDir string
	script string
}

// External is a broker the caller names (a comma-separated bootstrap list); Stop leaves it alone.
func External(addrs string) *Broker {
	var out []string
	for _, a := range strings.Split(addrs, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return &Broker{Addrs: out}
}

// Started reports whether this process started the broker.
func (b *Broker) Started() bool { return b.script != "" }

// StartBroker starts a single KRaft broker with root/tools/kafka/kafka.sh in runDir (its own run
// dir, so stopping it stops no one else's broker). The broker is tied to this process
// (RIFFLE_KAFKA_OWNER_PID): it does not outlive a benchmark that is killed.
func StartBroker(ctx context.Context, root, runDir string) (*Broker, error) {
	b := &Broker{runDir: runDir, script: filepath.Join(root, "tools", "kafka", "kafka.sh")}
	cmd := exec.CommandContext(ctx, b.script, "start")
	cmd.Env = append(os.Environ(), "RIFFLE_KAFKA_RUN="+runDir, fmt.Sprintf("RIFFLE_KAFKA_OWNER_PID=%d", os.Getpid()))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("benchenv: kafka.sh start: %w\n%s", err, stderr.String())
	}
	addr := strings.TrimSpace(string(out))
	if addr == "" {
		return nil, fmt.Errorf("benchenv: kafka.sh start printed no address\n%s", stderr.String())
	}
	b.Addrs = strings.Split(addr, ",")
	if pid, err := os.ReadFile(filepath.Join(runDir, "node1", "pid")); err == nil {
		b.PID, _ = strconv.Atoi(strings.TrimSpace(string(pid)))
	}
	return b, nil
}

// Stop stops a broker StartBroker started; it does nothing for an External one.
func (b *Broker) Stop() error {
	if b.script == "" {
		return nil
	}
	cmd := exec.Command(b.script, "stop")
	cmd.Env = append(os.Environ(), "RIFFLE_KAFKA_RUN="+b.runDir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("benchenv: kafka.sh stop: %w\n%s", err, out)
	}
	return nil
}

// Machine describes where a benchmark ran.
type Machine struct {
	CPU      string `json:"cpu"`
	Cores    int    `json:"cores"`
	MemoryGB string `json:"memory_gib"`
	Kernel   string `json:"kernel"`
	// Load1 is the 1-minute load average when the description was taken: a busy (shared)
	// machine shows here.
	Load1 string `json:"load_1m"`
}

// DescribeMachine reads the CPU model, memory and kernel from /proc (Linux; "unknown" elsewhere).
func DescribeMachine() Machine {
	m := Machine{CPU: "unknown", Cores: runtime.NumCPU(), MemoryGB: "unknown", Kernel: "unknown", Load1: "unknown"}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		s := bufio.NewScanner(f)
		for s.Scan() {
			if k, v, ok := strings.Cut(s.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		m.MemoryGB = memTotalGiB(string(b))
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = "Linux " + strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			m.Load1 = f[0]
		}
	}
	return m
}

// LoadAverage is the 1-minute load average (/proc/loadavg), 0 when unknown.
func LoadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// memTotalGiB returns MemTotal of a /proc/meminfo text in GiB with one decimal.
func memTotalGiB(meminfo string) string {
	for _, line := range strings.Split(meminfo, "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
			if kb, err := strconv.ParseFloat(f[1], 64); err == nil {
				return strconv.FormatFloat(kb/(1<<20), 'f', 1, 64)
			}
		}
	}
	return "unknown"
}

// Versions are the versions of what a benchmark measured.
type Versions struct {
	Go          string `json:"go"`
	Java        string `json:"java"`
	KafkaBroker string `json:"kafka_broker"`
	FranzGo     string `json:"franz_go"`
	Pebble      string `json:"pebble"`
}

var pomKafkaVersion = regexp.MustCompile(`<kafka.version>([^<]+)</kafka.version>`)

// PomKafkaVersion returns the <kafka.version> of a pom.xml, or "unknown".
func PomKafkaVersion(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "unknown"
	}
	if m := pomKafkaVersion.FindSubmatch(b); m != nil {
		return string(m[1])
	}
	return "unknown"
}

// DescribeVersions returns the Go runtime's version, java's (from `java -version`, java being
// $JAVA or the one on PATH), the broker's (tools/kafka/pom.xml under root) and the franz-go and
// Pebble versions this binary was built with.
func DescribeVersions(root string) Versions { return DescribeVersionsJava(root, "") }

// DescribeVersionsJava is DescribeVersions with the java command given ("" for $JAVA, else the
// one on PATH).
func DescribeVersionsJava(root, java string) Versions {
	v := Versions{
		Go:          runtime.Version(),
		Java:        "unknown",
		KafkaBroker: PomKafkaVersion(filepath.Join(root, "tools", "kafka", "pom.xml")),
		FranzGo:     "unknown",
		Pebble:      "unknown",
	}
	if java == "" {
		java = os.Getenv("JAVA")
	}
	if java == "" {
		java = "java"
	}
	if out, err := exec.Command(java, "-version").CombinedOutput(); err == nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) >= 2 {
			v.Java = strings.TrimSpace(lines[0]) + " (" + strings.TrimSpace(lines[1]) + ")"
		} else if len(lines) == 1 {
			v.Java = strings.TrimSpace(lines[0])
		}
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			switch d.Path {
			case "github.com/twmb/franz-go":
				v.FranzGo = d.Version
			case "github.com/cockroachdb/pebble/v2":
				v.Pebble = d.Version
			}
		}
	}
	return v
}

// StartCPUProfile starts a CPU profile (pprof) written to path; stop ends it and closes the file
// (calling it again does nothing), and writes the run's allocation profile beside it
// (<path without .prof>.allocs.prof). An empty path profiles nothing.
func StartCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			pprof.StopCPUProfile()
			f.Close()
			// Beside it, where the run allocated (sampled, every 512 KiB on average): the
			// allocation rate sets how often the collector runs.
			if af, err := os.Create(strings.TrimSuffix(path, ".prof") + ".allocs.prof"); err == nil {
				_ = pprof.Lookup("allocs").WriteTo(af, 0)
				af.Close()
			}
		})
	}, nil
}
