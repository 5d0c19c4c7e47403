package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rifflestream/riffle/internal/kafkatest"
)

func TestMain(m *testing.M) { os.Exit(kafkatest.Main(m)) }

// The command itself, built and run as a user would, on the embedded broker and on a real one,
// with the bundled sample and with a file of random views (bad lines included): its stdout must
// be exactly the reference's lines.
func TestCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the command")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "pageviews")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	random := randomViews(2, 300)
	input := filepath.Join(dir, "views.ndjson")
	badLines := writeViews(t, input, random)
	sample := readSampleViews(t)

	type run struct {
		name  string
		args  []string
		views []view
		grace time.Duration
		parts int
		bad   []int // line numbers the command must warn about
	}
	runs := []run{
		{"sample", nil, sample, 10 * time.Second, 1, nil},
		{"random grace=0s", []string{"-input", input, "-grace", "0s"}, random, 0, 1, badLines},
		{"random grace=10s", []string{"-input", input, "-grace", "10s"}, random, 10 * time.Second, 1, badLines},
		{"random partitions=3", []string{"-input", input, "-partitions", "3"}, random, 10 * time.Second, 3, badLines},
	}
	check := func(t *testing.T, r run, env []string, args []string) (stderr string) {
		want := strings.Join(expect(r.views, r.grace, r.parts).all, "\n") + "\n"
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = env
		var stdout, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &errOut
		start := time.Now()
		if err := cmd.Run(); err != nil {
			t.Fatalf("pageviews %s: %v\nstderr:\n%s", strings.Join(args, " "), err, &errOut)
		}
		t.Logf("pageviews %s: %v", strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
		if got := stdout.String(); got != want {
			t.Errorf("stdout:\n%swant:\n%s\nstderr:\n%s", got, want, &errOut)
		}
		for _, n := range r.bad {
			if !strings.Contains(errOut.String(), fmt.Sprintf("line %d: not a view, skipped", n)) {
				t.Errorf("no warning about line %d on stderr:\n%s", n, &errOut)
			}
		}
		return errOut.String()
	}

	// Without -brokers or KAFKA_BROKERS: the embedded broker.
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KAFKA_BROKERS=") {
			env = append(env, kv)
		}
	}
	t.Run("embedded", func(t *testing.T) {
		for _, r := range runs {
			t.Run(r.name, func(t *testing.T) { check(t, r, env, r.args) })
		}
	})
	t.Run("kafka", func(t *testing.T) {
		brokers := kafkatest.Brokers(t)
		adm := kafkatest.Admin(t, brokers)
		for _, r := range runs {
			t.Run(r.name, func(t *testing.T) {
				stderr := check(t, r, env, append([]string{"-brokers", strings.Join(brokers, ",")}, r.args...))
				// A fresh run deletes its topics and group.
				m := regexp.MustCompile(`application "([^"]+)"`).FindStringSubmatch(stderr)
				if m == nil {
					t.Fatalf("no application id on stderr:\n%s", stderr)
				}
				// A deleted topic leaves a broker's metadata once the broker applies the
				// controller's deletion record, a moment after DeleteTopics returns: a CI run
				// with other suites loading the broker listed all three topics right after.
				var left []string
				for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
					topics, err := adm.ListTopics(context.Background())
					if err != nil {
						t.Fatal(err)
					}
					left = left[:0]
					for _, name := range topics.Names() {
						if strings.HasPrefix(name, m[1]+"-") {
							left = append(left, name)
						}
					}
					if len(left) == 0 || time.Now().After(deadline) {
						break
					}
				}
				if len(left) > 0 {
					t.Errorf("topics %q left behind 10 s after the run; its stderr:\n%s", left, stderr)
				}
				groups, err := adm.ListGroups(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if slices.Contains(groups.Groups(), m[1]) {
					t.Errorf("group %q left behind", m[1])
				}
			})
		}
	})
}

// writeViews writes views to path as NDJSON, with bad lines and a blank line among them, and
// returns the bad lines' numbers.
func writeViews(t *testing.T, path string, views []view) []int {
	t.Helper()
	bad := map[int]string{ // index of the view it comes before
		0:   `not json`,
		10:  `{"page":"/","ts":"1767225600000"}`,
		50:  `{"ts":1767225650000}`,
		51:  `{"page":"","ts":1767225650000}`,
		100: `{"page":"/docs"}`,
		150: `{"page":"/docs","ts":-1}`,
		200: `["/docs",1767225700000]`,
	}
	var b bytes.Buffer
	var lines []int
	n := 0
	for i, v := range views {
		if s, ok := bad[i]; ok {
			b.WriteString(s + "\n")
			n++
			lines = append(lines, n)
		}
		if i == 120 {
			b.WriteString("\n")
			n++
		}
		fmt.Fprintf(&b, `{"page":%q,"ts":%d}`+"\n", v.page, v.ts)
		n++
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return lines
}
