package integration

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rifflestream/riffle/internal/kafkatest"
	"github.com/rifflestream/riffle/stream"
)

func i64(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }

// producer writes keyed sequence numbers: for key k, values 1, 2, 3, ... in order.
type producer struct {
	cl   *kgo.Client
	seq  map[string]int64
	keys []string
	sent int
}

func newProducer(t *testing.T, brokers []string, topic string, keys int) *producer {
	p := &producer{cl: kafkatest.Client(t, brokers, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(2*time.Millisecond)), seq: map[string]int64{}}
	for i := 0; i < keys; i++ {
		p.keys = append(p.keys, fmt.Sprintf("key-%03d", i))
	}
	return p
}

// send produces n records round-robin over the keys and waits for them.
func (p *producer) send(t *testing.T, n int) {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for i := 0; i < n; i++ {
		k := p.keys[p.sent%len(p.keys)]
		p.seq[k]++
		p.sent++
		wg.Add(1)
		p.cl.Produce(context.Background(), &kgo.Record{Key: []byte(k), Value: i64(p.seq[k])}, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				firstErr = err
				mu.Unlock()
			}
			wg.Done()
		})
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
}

// echo is the value testapp and the in-process echo app write.
type echo struct {
	Seq       int64  `json:"seq"`
	Instance  string `json:"instance"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
}

// verifyAtLeastOnce checks an echo output against what p sent: every (key, seq) is there, and the
// first time each seq of a key appears, the seqs appear in increasing order (replays after a
// rebalance or crash may repeat earlier ones, never skip or reorder). It returns the number of
// duplicates.
func verifyAtLeastOnce(t *testing.T, p *producer, out []*kgo.Record) int {
	t.Helper()
	seen := map[string]map[int64]bool{}
	last := map[string]int64{}
	dups := 0
	for _, r := range out {
		var e echo
		if err := json.Unmarshal(r.Value, &e); err != nil {
			t.Fatalf("bad output %q: %v", r.Value, err)
		}
		k := string(r.Key)
		if seen[k] == nil {
			seen[k] = map[int64]bool{}
		}
		if seen[k][e.Seq] {
			dups++
			continue
		}
		if e.Seq != last[k]+1 {
			t.Fatalf("key %s: first sight of seq %d after %d: lost or reordered", k, e.Seq, last[k])
		}
		seen[k][e.Seq] = true
		last[k] = e.Seq
	}
	var missing []string
	for k, n := range p.seq {
		if last[k] != n {
			missing = append(missing, fmt.Sprintf("%s: %d of %d", k, last[k], n))
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		t.Fatalf("%d keys incomplete, e.g. %v", len(missing), missing[:min(5, len(missing))])
	}
	return dups
}

// waitComplete reads an echo output topic until every sequence number p sent is in it (duplicates
// from replays do not count), or fails after within.
func waitComplete(t *testing.T, brokers []string, topic string, p *producer, within time.Duration) []*kgo.Record {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		recs := kafkatest.ReadAll(t, brokers, topic, false)
		last := map[string]int64{}
		for _, r := range recs {
			var e echo
			if json.Unmarshal(r.Value, &e) == nil && e.Seq > last[string(r.Key)] {
				last[string(r.Key)] = e.Seq
			}
		}
		done := 0
		for k, n := range p.seq {
			if last[k] >= n {
				done++
			}
		}
		if done == len(p.seq) {
			return recs
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v, %d of %d keys are complete in %s (%d records)", within, done, len(p.seq), topic, len(recs))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitOutput reads topic until it has at least n records or the deadline passes.
func waitOutput(t *testing.T, brokers []string, topic string, n int, within time.Duration) []*kgo.Record {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		recs := kafkatest.ReadAll(t, brokers, topic, false)
		if len(recs) >= n {
			return recs
		}
		if time.Now().After(deadline) {
			t.Fatalf("topic %s has %d records after %v, want at least %d", topic, len(recs), within, n)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// runApp runs app in the background; stop cancels it and returns Run's error.
func runApp(t *testing.T, app *stream.App) (stop func() error) {
	_, stop = kafkatest.RunApp(t, app)
	return stop
}

func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// testappBinary builds integration/testapp once per test process.
func testappBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "riffle-testapp")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "testapp")
		cmd := exec.Command("go", "build", "-o", buildPath, "./testapp")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build ./testapp: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

// proc is a testapp subprocess.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  *os.File
	done chan error
}

func startProc(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	logf, err := os.CreateTemp("", "riffle-"+name+"-*.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testappBinary(t), append([]string{"-instance", name}, args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{name: name, cmd: cmd, log: logf, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		if t.Failed() || os.Getenv("RIFFLE_TEST_LOGS") != "" {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("log of %s:\n%s", name, crashHeader(string(b))+tail(string(b), 40))
		}
		logf.Close()
		os.Remove(logf.Name())
	})
	return p
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			b, _ := os.ReadFile(p.log.Name())
			t.Fatalf("%s exited with %v:\n%s", p.name, err, tail(string(b), 40))
		}
	case <-time.After(90 * time.Second):
		t.Fatalf("%s did not stop within 90s", p.name)
	}
}

// kill sends SIGKILL.
func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	err := <-p.done
	p.done <- err
}

// crashHeader returns the first lines of a Go crash in log s (a panic or a fatal runtime error,
// which prints every goroutine after them), or "" if there is none: the tail of such a log is
// some goroutine's stack, and the cause would be cut.
func crashHeader(s string) string {
	at := -1
	for _, mark := range []string{"panic: ", "fatal error: "} { // a signal's line comes after one
		if i := strings.Index(s, mark); i >= 0 && (at < 0 || i < at) {
			at = i
		}
	}
	if at < 0 {
		return ""
	}
	if i := strings.LastIndexByte(s[:at], '\n'); i >= 0 {
		at = i + 1
	}
	lines := strings.SplitN(s[at:], "\n", 41)
	return strings.Join(lines[:min(len(lines), 40)], "\n") + "\n[...]\n"
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// errorLog is a slog handler that passes records to the default logger and keeps the messages of
// ERROR records, so a test can assert that an app logged none.
type errorLog struct {
	mu     sync.Mutex
	errors []string
	next   slog.Handler
}

func newErrorLog() *errorLog { return &errorLog{next: slog.Default().Handler()} }

func (h *errorLog) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }
func (h *errorLog) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		h.mu.Lock()
		h.errors = append(h.errors, r.Message)
		h.mu.Unlock()
	}
	return h.next.Handle(ctx, r)
}
func (h *errorLog) WithAttrs(as []slog.Attr) slog.Handler {
	return &errorLogView{h, h.next.WithAttrs(as)}
}
func (h *errorLog) WithGroup(name string) slog.Handler {
	return &errorLogView{h, h.next.WithGroup(name)}
}

func (h *errorLog) Errors() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.errors...)
}

type errorLogView struct {
	root *errorLog
	next slog.Handler
}

func (v *errorLogView) Enabled(ctx context.Context, l slog.Level) bool { return v.next.Enabled(ctx, l) }
func (v *errorLogView) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		v.root.mu.Lock()
		v.root.errors = append(v.root.errors, r.Message)
		v.root.mu.Unlock()
	}
	return v.next.Handle(ctx, r)
}
func (v *errorLogView) WithAttrs(as []slog.Attr) slog.Handler {
	return &errorLogView{v.root, v.next.WithAttrs(as)}
}
func (v *errorLogView) WithGroup(name string) slog.Handler {
	return &errorLogView{v.root, v.next.WithGroup(name)}
}
