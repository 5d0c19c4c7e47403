package kafkatest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
)

// script drives tools/kafka/kafka.sh.
type script struct {
	path string
}

// findScript walks up from the working directory (a package dir under go test) to the repository
// root that holds tools/kafka/kafka.sh.
func findScript() (script, bool) {
	dir, err := os.Getwd()
	if err != nil {
		return script{}, false
	}
	for {
		p := filepath.Join(dir, "tools", "kafka", "kafka.sh")
		if _, err := os.Stat(p); err == nil {
			return script{path: p}, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return script{}, false
		}
		dir = parent
	}
}

// usable reports whether the script can start a broker here: Java, and either cached jars or
// Maven to fetch them.
func (s script) usable() bool {
	if _, err := exec.LookPath(javaBin()); err != nil {
		return false
	}
	if _, err := exec.LookPath("mvn"); err == nil {
		return true
	}
	out, err := s.output(context.Background(), nil, "fetch")
	return err == nil && strings.TrimSpace(out) != ""
}

func javaBin() string {
	if j := os.Getenv("JAVA"); j != "" {
		return j
	}
	if h := os.Getenv("JAVA_HOME"); h != "" {
		return filepath.Join(h, "bin", "java")
	}
	return "java"
}

var runSeq atomic.Int64

// run is one started single node or cluster, in a run dir of its own.
type run struct {
	s     script
	dir   string
	addrs []string
}

// start starts a single node ("single") or a three-node cluster in a fresh run dir. The nodes die
// with this process even if it is killed (kafka.sh's owner watchdog).
func (s script) start(ctx context.Context, name string, cluster bool) (*run, error) {
	base := filepath.Join(os.TempDir(), "riffle-kafka")
	if err := os.MkdirAll(base, 0o755); err != nil {
		return nil, err
	}
	dir := filepath.Join(base, fmt.Sprintf("test-%d-%s-%d", os.Getpid(), name, runSeq.Add(1)))
	r := &run{s: s, dir: dir}
	cmd := "start"
	if cluster {
		cmd = "start-cluster"
	}
	out, err := s.output(ctx, r.env(), cmd)
	if err != nil {
		r.stop()
		return nil, err
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	r.addrs = splitAddrs(lines[len(lines)-1])
	if len(r.addrs) == 0 {
		r.stop()
		return nil, fmt.Errorf("kafka.sh %s printed no address: %q", cmd, out)
	}
	return r, nil
}

func (r *run) env() []string {
	return []string{
		"RIFFLE_KAFKA_RUN=" + r.dir,
		"RIFFLE_KAFKA_OWNER_PID=" + strconv.Itoa(os.Getpid()),
	}
}

func (r *run) stop() {
	_, _ = r.s.output(context.Background(), r.env(), "stop")
}

func (r *run) node(ctx context.Context, verb string, n int) error {
	_, err := r.s.output(ctx, r.env(), verb, strconv.Itoa(n))
	return err
}

// output runs kafka.sh with args and returns its stdout; on failure the error carries stderr.
func (s script) output(ctx context.Context, env []string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "bash", append([]string{s.path}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("kafka.sh %s: %w\n%s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}
