package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// endOffsets returns the end offset (high watermark) of every partition of topic.
func (e *env) endOffsets(ctx context.Context, topic string) (map[int32]int64, error) {
	listed, err := e.adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("benchrun: end offsets of %s: %w", topic, err)
	}
	out := map[int32]int64{}
	listed.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out, nil
}

// committedBehind returns how many input records group has not committed yet: 0 once its
// committed offsets reach the input's end offsets on every partition.
func (e *env) committedBehind(ctx context.Context, group, topic string, ends map[int32]int64) (int64, error) {
	resp, err := e.adm.FetchOffsets(ctx, group)
	if err != nil {
		return 0, err
	}
	var behind int64
	for p, end := range ends {
		at := int64(0)
		if o, ok := resp.Lookup(topic, p); ok && o.Err == nil && o.At >= 0 {
			at = o.At
		}
		if at < end {
			behind += end - at
		}
	}
	return behind, nil
}

// deleteTopics deletes topics, best effort: a leftover topic costs disk, not correctness.
func (e *env) deleteTopics(ctx context.Context, topics ...string) {
	if len(topics) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resps, err := e.adm.DeleteTopics(ctx, topics...)
	if err == nil {
		err = resps.Error()
	}
	if err != nil {
		e.log.Warn("deleting topics", "topics", topics, "err", err)
	}
}

// cleanUp deletes what one run left on the broker: its output topic, the internal topics of its
// application (named <app-id>-...), and its consumer group.
func (e *env) cleanUp(output, appID string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var listed []string
	if l, err := e.adm.ListTopics(ctx); err == nil {
		listed = l.Names()
	}
	e.deleteTopics(ctx, runTopics(output, appID, listed)...)
	// A member that did not leave on close keeps the group until its session times out; then the
	// group is only an idle entry, harmless to later runs.
	_, _ = e.adm.DeleteGroups(ctx, appID)
}

// runTopics returns the topics of one run among listed: its output and its application's
// internal topics (<app-id>-...), each once. The output topic is named <app-id>-out, so it is
// among the internal topics' prefix too: a name twice in one DeleteTopics request makes the
// broker refuse the whole request (INVALID_REQUEST), which left every run's output on the broker
// until the disk filled.
func runTopics(output, appID string, listed []string) []string {
	topics := []string{output}
	for _, t := range listed {
		if t != output && strings.HasPrefix(t, appID+"-") {
			topics = append(topics, t)
		}
	}
	return topics
}

// stableOffsets returns the last stable offset of every partition of topic (ListOffsets with
// isolation read_committed): the end a read_committed consumer can read to. It equals the end
// offset unless a transaction is open on the partition; it counts the control records
// (transaction markers) before it, so it is not a record count.
func (e *env) stableOffsets(ctx context.Context, topic string) (map[int32]int64, error) {
	listed, err := e.adm.ListCommittedOffsets(ctx, topic)
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("benchrun: stable offsets of %s: %w", topic, err)
	}
	out := map[int32]int64{}
	listed.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out, nil
}

// stableWait bounds how long readTopic waits for the transactions still open on a topic to end:
// above Riffle's transaction timeout (10 s) plus the broker's abort sweep (1 s, kafka.sh).
const stableWait = 30 * time.Second

// readStats are what readTopic saw besides the data records.
type readStats struct {
	Records  int64 // data records of committed (or no) transactions: those handed to f
	Control  int64 // control records: transaction markers
	Aborted  int64 // records of aborted transactions (offsets neither read nor control)
	Position int64 // sum over partitions of the end offsets read to
}

// readTopic reads every record of topic from the start of each partition to its end as of the
// call, as a read_committed consumer: it hands each data record of a committed transaction (or of
// a non-transactional producer, for which this is the same as read_uncommitted) to f, partition by
// partition in offset order as fetched. It first waits (up to stableWait) until no transaction is
// open on the topic, so the end is the last stable offset and every record before it is decided;
// a transaction still open then is an error. Control records are skipped but counted, and so are
// the offsets of aborted records the client drops.
func (e *env) readTopic(ctx context.Context, topic string, f func(*kgo.Record)) (readStats, error) {
	var st readStats
	ends, err := e.endOffsets(ctx, topic)
	if err != nil {
		return st, err
	}
	for deadline := time.Now().Add(stableWait); ; {
		stable, err := e.stableOffsets(ctx, topic)
		if err != nil {
			return st, err
		}
		open := openTransactions(stable, ends)
		if len(open) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return st, fmt.Errorf("benchrun: %s: transactions still open %v after the system stopped (last stable offset below the end offset on partitions %v)",
				topic, stableWait, open)
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	startsListed, err := e.adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = startsListed.Error()
	}
	if err != nil {
		return st, fmt.Errorf("benchrun: start offsets of %s: %w", topic, err)
	}
	pending := map[int32]int64{}
	offsets := map[int32]kgo.Offset{}
	var span int64
	startsListed.Each(func(o kadm.ListedOffset) {
		if ends[o.Partition] > o.Offset {
			pending[o.Partition] = ends[o.Partition]
			offsets[o.Partition] = kgo.NewOffset().At(o.Offset)
			span += ends[o.Partition] - o.Offset
		}
	})
	st.Position = sum(ends)
	if len(pending) == 0 {
		return st, nil
	}
	// With no transaction open, the record at each partition's end - 1 is delivered: a marker
	// (kept by KeepControlRecords), or a committed or non-transactional record; an aborted record
	// is always followed by its abort marker.
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...), kgo.KeepControlRecords(),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}))
	if err != nil {
		return st, err
	}
	defer cl.Close()
	for len(pending) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return st, fmt.Errorf("benchrun: reading %s: %w", topic, err)
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) { ferr = fmt.Errorf("benchrun: reading %s[%d]: %w", t, p, err) })
		if ferr != nil {
			return st, ferr
		}
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := pending[r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			if r.Attrs.IsControl() {
				st.Control++
			} else {
				st.Records++
				f(r)
			}
			if r.Offset+1 >= end {
				delete(pending, r.Partition)
			}
		})
	}
	st.Aborted = span - st.Records - st.Control
	return st, nil
}

// openTransactions lists the partitions whose last stable offset is below their end offset.
func openTransactions(stable, ends map[int32]int64) []int32 {
	var open []int32
	for p, end := range ends {
		if s, ok := stable[p]; !ok || s < end {
			open = append(open, p)
		}
	}
	slices.Sort(open)
	return open
}
