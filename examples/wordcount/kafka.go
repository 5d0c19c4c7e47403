package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rifflestream/riffle/connectors/kafka"
	"github.com/rifflestream/riffle/serde"
)

// The example's own Kafka chores, outside the app: creating its topics, producing the input,
// reading the counts back, and deleting what a fresh run made.

// newPartitions is the partition count of the topics the example creates: more than one, so the
// counting runs as several tasks.
const newPartitions = 3

// ensureTopics creates the topics that do not exist (with newPartitions partitions) and accepts the
// existing ones as they are.
func ensureTopics(ctx context.Context, adm *kadm.Client, topics ...string) error {
	_, err := kafka.PartitionCounts(ctx, adm, topics)
	var missing *kafka.MissingTopicsError
	if err == nil || !errors.As(err, &missing) {
		return err
	}
	specs := make([]kafka.TopicSpec, len(missing.Topics))
	for i, t := range missing.Topics {
		specs[i] = kafka.TopicSpec{Name: t, Partitions: newPartitions, ReplicationFactor: -1}
	}
	return kafka.EnsureTopics(ctx, adm, specs)
}

// produceLines writes each line of r to topic as one record (null key, the line as the value), in
// order, and returns how many it wrote once Kafka has acknowledged them all.
func produceLines(ctx context.Context, brokers []string, topic string, r io.Reader) (int, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	var (
		mu       sync.Mutex
		firstErr error
	)
	n := 0
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20) // Kafka's default message size limit
	for sc.Scan() {
		n++
		cl.Produce(ctx, &kgo.Record{Value: []byte(sc.Text())}, func(_ *kgo.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
		})
	}
	scanErr := sc.Err()
	if err := cl.Flush(ctx); err != nil {
		return n, err
	}
	if scanErr != nil {
		return n, fmt.Errorf("reading line %d of the input: %w", n+1, scanErr)
	}
	if firstErr != nil {
		return n, fmt.Errorf("producing to %q: %w", topic, firstErr)
	}
	return n, nil
}

// readCounts reads topic from its start to its end as of the call and returns the last count of
// each word, as a compacted topic would keep it.
func readCounts(ctx context.Context, brokers []string, adm *kadm.Client, topic string) (map[string]int64, error) {
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("listing the offsets of %q: %w", topic, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("listing the offsets of %q: %w", topic, err)
	}
	from := map[int32]kgo.Offset{}
	to := map[int32]int64{} // the partitions still to read, with their end offsets
	var errs []error
	ends.Each(func(end kadm.ListedOffset) {
		start, ok := starts.Lookup(topic, end.Partition)
		switch {
		case end.Err != nil:
			errs = append(errs, fmt.Errorf("end offset of %s/%d: %w", topic, end.Partition, end.Err))
		case !ok || start.Err != nil:
			errs = append(errs, fmt.Errorf("start offset of %s/%d: missing or failed", topic, end.Partition))
		case end.Offset > start.Offset:
			from[end.Partition] = kgo.NewOffset().At(start.Offset)
			to[end.Partition] = end.Offset
		}
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	counts := map[string]int64{}
	if len(to) == 0 {
		return counts, nil
	}
	// Control records (transaction markers) are kept so that every offset up to the end is seen.
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.KeepControlRecords(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	values := serde.Int64()
	for len(to) > 0 {
		fs := cl.PollFetches(ctx)
		for _, fe := range fs.Errors() {
			return nil, fmt.Errorf("reading %s/%d: %w", fe.Topic, fe.Partition, fe.Err)
		}
		for it := fs.RecordIter(); !it.Done(); {
			r := it.Next()
			end, reading := to[r.Partition]
			if !reading || r.Offset >= end {
				continue
			}
			if r.Offset+1 >= end {
				delete(to, r.Partition)
			}
			switch {
			case r.Attrs.IsControl():
			case r.Value == nil:
				delete(counts, string(r.Key))
			default:
				n, err := values.Deserialize(topic, r.Value)
				if err != nil {
					return nil, fmt.Errorf("reading %s/%d@%d: %w", topic, r.Partition, r.Offset, err)
				}
				counts[string(r.Key)] = n
			}
		}
	}
	return counts, nil
}

// deleteApp deletes the consumer group appID and the application's topics: its input and output
// topics, its internal topics, and any other topic whose name starts with "<appID>-". Only for
// application ids made up for one run.
func deleteApp(ctx context.Context, adm *kadm.Client, appID string) error {
	var errs []error
	resp, err := adm.DeleteGroups(ctx, appID)
	if err == nil {
		err = resp.Error()
	}
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) { // not found: the app never joined
		errs = append(errs, fmt.Errorf("deleting group %q: %w", appID, err))
	}
	// The topics are named, not only listed: a topic whose creation was under way when the app
	// stopped may not be listed yet.
	topics, err := appTopics(appID)
	if err != nil {
		errs = append(errs, err)
	}
	all, err := adm.ListTopics(ctx)
	if err != nil {
		errs = append(errs, fmt.Errorf("listing topics: %w", err))
	}
	for _, t := range all.Names() {
		if strings.HasPrefix(t, appID+"-") && !slices.Contains(topics, t) {
			topics = append(topics, t)
		}
	}
	deleted, err := adm.DeleteTopics(ctx, topics...)
	if err != nil {
		errs = append(errs, fmt.Errorf("deleting topics %v: %w", topics, err))
	}
	for _, d := range deleted.Sorted() {
		if d.Err != nil && !errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
			errs = append(errs, fmt.Errorf("deleting topic %q: %w", d.Topic, d.Err))
		}
	}
	if err == nil {
		errs = append(errs, waitTopicsGone(ctx, adm, topics))
	}
	return errors.Join(errs...)
}

// waitTopicsGone waits until the brokers' metadata no longer lists any of topics: a deletion the
// controller has accepted reaches the metadata a moment later, and a program that says it
// deleted its topics should not leave them visible behind it (seen: listed right after exit).
func waitTopicsGone(ctx context.Context, adm *kadm.Client, topics []string) error {
	var left []string
	for deadline := time.Now().Add(10 * time.Second); ; {
		all, err := adm.ListTopics(ctx)
		if err != nil {
			return fmt.Errorf("listing topics after deleting them: %w", err)
		}
		left = left[:0]
		for _, t := range topics {
			if all.Has(t) {
				left = append(left, t)
			}
		}
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("topics %v still listed 10s after their deletion", left)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// appTopics returns the topics of the application appID: its input and output topics and the
// internal topics of its topology.
func appTopics(appID string) ([]string, error) {
	t := TopicsFor(appID)
	topo, err := Build(t).Build()
	if err != nil {
		return nil, err
	}
	plan, err := topo.Plan(appID)
	if err != nil {
		return nil, err
	}
	topics := []string{t.Lines, t.Counts, plan.ChangelogTopic(StoreName)}
	for _, it := range plan.InternalTopics {
		topics = append(topics, it.Name) // a real name in a Plan
	}
	return topics, nil
}
