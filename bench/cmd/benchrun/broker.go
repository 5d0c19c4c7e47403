package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// broker is the Kafka broker of a run: one the runner started with tools/kafka/kafka.sh, or one
// named by -brokers or KAFKA_BROKERS (then pid is 0 and stop does nothing).
type broker struct {
	addrs  []string
	pid    int // the broker JVM, when started here: its CPU use is reported per run
	runDir string
	script string
}

// startBroker starts a single KRaft broker in runDir. The broker is tied to this process
// (RIFFLE_KAFKA_OWNER_PID), so it does not outlive a runner that is killed.
func startBroker(ctx context.Context, root, runDir string) (*broker, error) {
	b := &broker{runDir: runDir, script: filepath.Join(root, "tools", "kafka", "kafka.sh")}
	cmd := exec.CommandContext(ctx, b.script, "start")
	cmd.Env = append(os.Environ(), "RIFFLE_KAFKA_RUN="+runDir, fmt.Sprintf("RIFFLE_KAFKA_OWNER_PID=%d", os.Getpid()))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("benchrun: kafka.sh start: %w\n%s", err, stderr.String())
	}
	addr := strings.TrimSpace(string(out))
	if addr == "" {
		return nil, fmt.Errorf("benchrun: kafka.sh start printed no address\n%s", stderr.String())
	}
	b.addrs = strings.Split(addr, ",")
	if pid, err := os.ReadFile(filepath.Join(runDir, "node1", "pid")); err == nil {
		b.pid, _ = strconv.Atoi(strings.TrimSpace(string(pid)))
	}
	return b, nil
}

// stop stops a broker this runner started.
func (b *broker) stop() error {
	if b.script == "" {
		return nil
	}
	cmd := exec.Command(b.script, "stop")
	cmd.Env = append(os.Environ(), "RIFFLE_KAFKA_RUN="+b.runDir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("benchrun: kafka.sh stop: %w\n%s", err, out)
	}
	return nil
}
