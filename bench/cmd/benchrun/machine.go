package main

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/rifflestream/riffle/bench/internal/benchenv"
)

// machine describes where the benchmark ran.
type machine = benchenv.Machine

// versions are the versions of everything measured: benchenv's, and the Kafka Streams peer's
// and Riffle's checkout.
type versions struct {
	benchenv.Versions
	KafkaStreams string `json:"kafka_streams"`
	// Riffle is the commit the systems were built from, and the directories with uncommitted
	// changes then (the Go systems are built from the working tree).
	Riffle string `json:"riffle,omitempty"`
}

func describeVersions(root, java string) versions {
	return versions{
		Versions:     benchenv.DescribeVersionsJava(root, java),
		KafkaStreams: benchenv.PomKafkaVersion(filepath.Join(root, "bench", "peers", "kafkastreams", "pom.xml")),
		Riffle:       describeCheckout(root),
	}
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
