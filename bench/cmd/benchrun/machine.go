package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
)

// machine describes where the benchmark ran.
type machine struct {
	CPU      string `json:"cpu"`
	Cores    int    `json:"cores"`
	MemoryGB string `json:"memory_gib"`
	Kernel   string `json:"kernel"`
}

// versions are the versions of everything measured.
type versions struct {
	Go           string `json:"go"`
	Java         string `json:"java"`
	KafkaBroker  string `json:"kafka_broker"`
	KafkaStreams string `json:"kafka_streams"`
	FranzGo      string `json:"franz_go"`
	// Riffle is the commit the systems were built from, and the directories with uncommitted
	// changes then (the Go systems are built from the working tree).
	Riffle string `json:"riffle,omitempty"`
}

func describeMachine() machine {
	m := machine{CPU: "unknown", Cores: runtime.NumCPU(), MemoryGB: "unknown", Kernel: "unknown"}
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
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
				if kb, err := strconv.ParseFloat(f[1], 64); err == nil {
					m.MemoryGB = strconv.FormatFloat(kb/(1<<20), 'f', 1, 64)
				}
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = "Linux " + strings.TrimSpace(string(b))
	}
	return m
}

var pomKafkaVersion = regexp.MustCompile(`<kafka.version>([^<]+)</kafka.version>`)

func pomVersion(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "unknown"
	}
	if m := pomKafkaVersion.FindSubmatch(b); m != nil {
		return string(m[1])
	}
	return "unknown"
}

func describeVersions(root, java string) versions {
	v := versions{
		Go:           runtime.Version(),
		Java:         "unknown",
		KafkaBroker:  pomVersion(filepath.Join(root, "tools", "kafka", "pom.xml")),
		KafkaStreams: pomVersion(filepath.Join(root, "bench", "peers", "kafkastreams", "pom.xml")),
		FranzGo:      "unknown",
	}
	if out, err := exec.Command(java, "-version").CombinedOutput(); err == nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) >= 2 {
			v.Java = strings.TrimSpace(lines[0]) + " (" + strings.TrimSpace(lines[1]) + ")"
		} else if len(lines) == 1 {
			v.Java = strings.TrimSpace(lines[0])
		}
	}
	v.Riffle = describeCheckout(root)
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/twmb/franz-go" {
				v.FranzGo = d.Version
			}
		}
	}
	return v
}

// loadAverage is the 1-minute load average (/proc/loadavg), 0 when unknown.
func loadAverage() float64 {
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

// describeCheckout is the commit at HEAD and which top-level directories differ from it.
func describeCheckout(root string) string {
	head, err := exec.Command("git", "-C", root, "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	desc := strings.TrimSpace(string(head))
	status, err := exec.Command("git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output()
	if err != nil {
		return desc
	}
	var dirty []string
	for _, line := range strings.Split(string(status), "\n") {
		if len(line) < 4 {
			continue
		}
		path := strings.TrimSpace(line[3:])
		if _, after, ok := strings.Cut(path, " -> "); ok {
			path = after
		}
		dir := filepath.Dir(path) // at most two levels: internal/engine, not internal/engine/x
		if parts := strings.SplitN(dir, "/", 3); len(parts) > 2 {
			dir = parts[0] + "/" + parts[1]
		}
		if !slices.Contains(dirty, dir) {
			dirty = append(dirty, dir)
		}
	}
	if len(dirty) > 0 {
		desc += " + uncommitted changes in " + strings.Join(dirty, ", ")
	}
	return desc
}
