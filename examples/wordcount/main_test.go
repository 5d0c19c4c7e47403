package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rifflestream/riffle/internal/kafkatest"
)

func TestMain(m *testing.M) { os.Exit(kafkatest.Main(m)) }

// fileText is an input file with known words, none of them in the sample.
const fileText = `Riffle counts WORDS; words count.
42 is a number, so is ٤٢.

Crème brûlée — CRÈME BRÛLÉE!
`

// The command as a user runs it: built, then run with no flags (the bundled sample) and with
// -input, on the embedded broker and on a real one. Its stdout must be exactly the counts.
func TestProgram(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the command")
	}
	bin := buildProgram(t)
	input := filepath.Join(t.TempDir(), "input.txt")
	if err := os.WriteFile(input, []byte(fileText), 0o644); err != nil {
		t.Fatal(err)
	}
	sampleCounts := countWords(sampleLines(t))
	fileCounts := countWords(strings.Split(fileText, "\n"))

	t.Run("embedded", func(t *testing.T) {
		stdout, _ := runProgram(t, bin, nil)
		compareLines(t, stdout, sampleCounts)
		stdout, _ = runProgram(t, bin, nil, "-input", input)
		compareLines(t, stdout, fileCounts)
	})

	t.Run("kafka", func(t *testing.T) {
		brokers := kafkatest.Brokers(t)
		list := strings.Join(brokers, ",")
		// Two fresh runs on one broker, given it by flag then by KAFKA_BROKERS: each prints the
		// counts of its own input only, and deletes what it made.
		stdout, stderr := runProgram(t, bin, nil, "-brokers", list)
		compareLines(t, stdout, sampleCounts)
		checkDeleted(t, brokers, stderr)
		stdout, stderr = runProgram(t, bin, []string{"KAFKA_BROKERS=" + list}, "-input", input)
		compareLines(t, stdout, fileCounts)
		checkDeleted(t, brokers, stderr)

		// With -app-id, a run goes on from the counts of the last one.
		id := kafkatest.Name(t, "wc")
		t.Cleanup(func() { deleteTestApp(t, brokers, id) })
		stdout, _ = runProgram(t, bin, nil, "-brokers", list, "-input", input, "-app-id", id)
		compareLines(t, stdout, fileCounts)
		stdout, _ = runProgram(t, bin, nil, "-brokers", list, "-input", input, "-app-id", id)
		doubled := maps.Clone(fileCounts)
		for w := range doubled {
			doubled[w] *= 2
		}
		compareLines(t, stdout, doubled)
	})

	t.Run("kafka-follow", func(t *testing.T) {
		brokers := kafkatest.Brokers(t)
		id := kafkatest.Name(t, "wc")
		t.Cleanup(func() { deleteTestApp(t, brokers, id) })
		topics := TopicsFor(id)

		var stdout, stderr bytes.Buffer
		cmd := exec.Command(bin, "-brokers", strings.Join(brokers, ","), "-input", input, "-app-id", id, "-follow")
		cmd.Env = childEnv(t, nil)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		t.Cleanup(func() {
			if cmd.ProcessState == nil {
				_ = cmd.Process.Kill()
				<-exited
			}
		})

		waitCounts(t, brokers, topics.Counts, fileCounts, exited, &stderr)
		more := "Words, more words"
		cl := kafkatest.Client(t, brokers)
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: topics.Lines, Value: []byte(more)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		waitCounts(t, brokers, topics.Counts, countWords([]string{fileText, more}), exited, &stderr)

		if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("after SIGINT: %v\nstderr:\n%s", err, &stderr)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("still running 30s after SIGINT\nstderr:\n%s", &stderr)
		}
		if stdout.Len() > 0 {
			t.Errorf("-follow printed to stdout:\n%s", &stdout)
		}
	})
}

func buildProgram(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the example with")
	}
	bin := filepath.Join(t.TempDir(), "wordcount")
	out, err := exec.Command(goBin, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// childEnv is the environment of the command: without KAFKA_BROKERS (the embedded broker unless
// the test says otherwise), with its temporary files (the state of -app-id runs) in the test's.
func childEnv(t *testing.T, extra []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KAFKA_BROKERS=") && !strings.HasPrefix(kv, "TMPDIR=") {
			env = append(env, kv)
		}
	}
	return append(append(env, "TMPDIR="+t.TempDir()), extra...)
}

// runProgram runs the command to its end and returns its stdout and stderr.
func runProgram(t *testing.T, bin string, env []string, args ...string) (stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = childEnv(t, env)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("wordcount %s: %v\nstderr:\n%s", strings.Join(args, " "), err, &errOut)
	}
	t.Logf("wordcount %s: %v", strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
	return out.String(), errOut.String()
}

// compareLines checks that stdout is exactly one "<word> <count>" line per word, sorted by word.
func compareLines(t *testing.T, stdout string, want map[string]int64) {
	t.Helper()
	var wantLines []string
	for _, w := range slices.Sorted(maps.Keys(want)) {
		wantLines = append(wantLines, fmt.Sprintf("%s %d", w, want[w]))
	}
	got := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if !strings.HasSuffix(stdout, "\n") {
		t.Errorf("stdout does not end with a newline")
	}
	for i := 0; i < max(len(got), len(wantLines)); i++ {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(wantLines) {
			w = wantLines[i]
		}
		if g != w {
			t.Fatalf("stdout line %d is %q, want %q (%d lines, want %d)", i+1, g, w, len(got), len(wantLines))
		}
	}
}

var appIDLine = regexp.MustCompile(`application "(riffle-wordcount-[0-9a-f]{8})"`)

// checkDeleted checks that a fresh run, whose application id it finds in the run's stderr, left
// neither topics nor a group behind.
func checkDeleted(t *testing.T, brokers []string, stderr string) {
	t.Helper()
	m := appIDLine.FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("no application id in stderr:\n%s", stderr)
	}
	ctx := context.Background()
	adm := kafkatest.Admin(t, brokers)
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range topics.Names() {
		if strings.HasPrefix(name, m[1]) {
			t.Errorf("topic %q is left over", name)
		}
	}
	groups, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(groups.Groups(), m[1]) {
		t.Errorf("group %q is left over", m[1])
	}
}

// waitCounts waits until the last count of each word in topic is want.
func waitCounts(t *testing.T, brokers []string, topic string, want map[string]int64, exited <-chan error, stderr *bytes.Buffer) {
	t.Helper()
	var got map[string]int64
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		select {
		case err := <-exited:
			t.Fatalf("wordcount -follow exited: %v\nstderr:\n%s", err, stderr)
		default:
		}
		recs, err := kafkatest.ReadAllContext(context.Background(), brokers, topic, false)
		if err != nil { // the command has not created the topic yet
			continue
		}
		got = map[string]int64{}
		for _, r := range recs {
			if len(r.Value) != 8 {
				t.Fatalf("%s/%d@%d: a count of %d bytes", r.Topic, r.Partition, r.Offset, len(r.Value))
			}
			got[string(r.Key)] = int64(binary.BigEndian.Uint64(r.Value))
		}
		if maps.Equal(got, want) {
			return
		}
	}
	t.Fatalf("topic %q after 30s:\n%s", topic, diffCounts(got, want))
}

func deleteTestApp(t *testing.T, brokers []string, appID string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := deleteApp(ctx, kafkatest.Admin(t, brokers), appID); err != nil {
		t.Logf("cleaning up %q: %v", appID, err)
	}
}
