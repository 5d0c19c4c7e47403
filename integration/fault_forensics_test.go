package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/rifflestream/riffle/internal/kafkatest"
)

// changelogForensics logs what a failed exactly-once fault run needs to be understood: the whole
// history of key in the aggregation's changelog (every record, committed or of an aborted
// transaction, with its producer), and every log line of every instance's life about the task
// that owns the key's partition (restores, assignments, aborts), in time order, and keeps every
// life's log in a directory that outlives the test. The changelog is not compacted by then (its
// active segment never is). The aggregation is sub-topology 1 of the fault app (testapp).
func changelogForensics(t *testing.T, brokers []string, app, key string, lives []*proc) {
	t.Helper()
	topic := app + "-aggs-changelog"
	committed := map[[2]int64]bool{}
	for _, r := range kafkatest.ReadAll(t, brokers, topic, true) {
		committed[[2]int64{int64(r.Partition), r.Offset}] = true
	}
	var b strings.Builder
	fmt.Fprintf(&b, "forensics: changelog %s, key %s (read_uncommitted; * = committed):\n", topic, key)
	part := int32(-1)
	for _, r := range kafkatest.ReadAll(t, brokers, topic, false) {
		if string(r.Key) != key {
			continue
		}
		part = r.Partition
		var a faultAgg
		_ = json.Unmarshal(r.Value, &a)
		mark := " "
		if committed[[2]int64{int64(r.Partition), r.Offset}] {
			mark = "*"
		}
		fmt.Fprintf(&b, "  %s p%d@%d pid=%d epoch=%d ts=%s count=%d last=%d\n", mark, r.Partition, r.Offset,
			r.ProducerID, r.ProducerEpoch, r.Timestamp.Format("15:04:05.000"), a.Count, a.Last)
	}
	logs := make([]string, len(lives))
	for i, p := range lives {
		if data, err := os.ReadFile(p.log.Name()); err == nil {
			logs[i] = string(data)
		}
	}
	if part >= 0 {
		task := fmt.Sprintf("1_%d", part)
		var lines []string
		for i, p := range lives {
			for _, l := range strings.Split(logs[i], "\n") {
				if strings.Contains(l, task) || strings.Contains(l, "transaction aborted") || strings.Contains(l, "fenced") {
					lines = append(lines, p.name+" "+l)
				}
			}
		}
		// Lines start with "<name> time=<RFC 3339>": sort on the time.
		slices.SortStableFunc(lines, func(a, b string) int {
			return strings.Compare(a[strings.Index(a, " ")+1:], b[strings.Index(b, " ")+1:])
		})
		fmt.Fprintf(&b, "forensics: log lines about task %s, aborts and fencing:\n", task)
		for _, l := range lines {
			fmt.Fprintf(&b, "  %s\n", l)
		}
	}
	// The fleet's logs are removed when the test ends.
	if dir, err := os.MkdirTemp("", "riffle-fault-logs-"); err == nil {
		for i, p := range lives {
			_ = os.WriteFile(fmt.Sprintf("%s/%02d-%s.log", dir, i, p.name), []byte(logs[i]), 0o644)
		}
		fmt.Fprintf(&b, "forensics: every life's log is in %s\n", dir)
	}
	t.Log(b.String())
}
