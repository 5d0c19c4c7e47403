package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rifflestream/riffle/connectors/kafka"
	"github.com/rifflestream/riffle/serde"
)

// The example's own Kafka chores, outside the app: creating its topics, producing the views,
// reading the closed windows back, and deleting what a fresh run made.

// Window is a closed window's final count.
type Window struct {
	Page  string
	Start time.Time
	Count int64
}

// String formats the window as the example prints it: "<page> <start, RFC 3339 UTC> <count>".
func (w Window) String() string {
	return fmt.Sprintf("%s %s %d", w.Page, w.Start.UTC().Format(time.RFC3339), w.Count)
}

// ensureTopics creates the topics with partitions partitions, or checks that existing ones have
// that many. The output topic keeps its records forever (retention.ms -1): they carry event times
// (each window's last view), which may be long past, and Kafka's time retention (7 days by
// default) would delete them at once.
func ensureTopics(ctx context.Context, adm *kadm.Client, partitions int32, t Topics) error {
	return kafka.EnsureTopics(ctx, adm, []kafka.TopicSpec{
		{Name: t.Views, Partitions: partitions, ReplicationFactor: -1},
		{Name: t.Counts, Partitions: partitions, ReplicationFactor: -1, Configs: map[string]string{"retention.ms": "-1"}},
	})
}

// produceViews writes each view to topic, keyed by its page, in order, and returns once Kafka has
// acknowledged them all. Keys pick partitions as Kafka's Java producer does (murmur2), so a page's
// views stay in order in one partition.
func produceViews(ctx context.Context, brokers []string, topic string, views []inputView) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	if err != nil {
		return err
	}
	defer cl.Close()
	var (
		mu       sync.Mutex
		firstErr error
	)
	for _, v := range views {
		cl.Produce(ctx, &kgo.Record{Key: []byte(v.Page), Value: v.Line}, func(_ *kgo.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	if firstErr != nil {
		return fmt.Errorf("producing to %q: %w", topic, firstErr)
	}
	return nil
}

// endOffsets returns the end offset of each partition of topic.
func endOffsets(ctx context.Context, adm *kadm.Client, topic string) (map[int32]int64, error) {
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("listing the end offsets of %q: %w", topic, err)
	}
	out := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out, nil
}

// readWindows reads the closed windows written to topic after the offsets in from, sorted by page
// and then start. The topic is read as the table it is the changelog of: if a window was written
// twice (at-least-once processing may repeat outputs after a crash), its last count is kept.
func readWindows(ctx context.Context, brokers []string, adm *kadm.Client, topic string, from map[int32]int64) ([]Window, error) {
	ends, err := endOffsets(ctx, adm, topic)
	if err != nil {
		return nil, err
	}
	starts := map[int32]kgo.Offset{}
	remaining := map[int32]int64{} // per partition, the end offset still to reach
	for p, end := range ends {
		if end > from[p] {
			starts[p] = kgo.NewOffset().At(from[p])
			remaining[p] = end
		}
	}
	if len(starts) == 0 {
		return nil, nil
	}
	// No reset: records deleted before they are read are an error, not a silent gap or a wait for
	// offsets that will never come.
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: starts}),
		kgo.ConsumeResetOffset(kgo.NoResetOffset()))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	keys, values := CountKeySerde(), serde.Int64()
	type windowKey struct {
		page  string
		start int64
	}
	last := map[windowKey]Window{}
	var decodeErr error
	for len(remaining) > 0 && decodeErr == nil {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			return nil, fmt.Errorf("reading %q: %w", topic, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if end, ok := remaining[r.Partition]; ok && r.Offset+1 >= end {
				delete(remaining, r.Partition)
			}
			if decodeErr != nil {
				return
			}
			k, err := keys.Deserialize(topic, r.Key)
			if err == nil {
				var n int64
				if n, err = values.Deserialize(topic, r.Value); err == nil {
					last[windowKey{k.Key, k.Start.UnixMilli()}] = Window{Page: k.Key, Start: k.Start, Count: n}
					return
				}
			}
			decodeErr = fmt.Errorf("reading %s[%d] at offset %d: %w", topic, r.Partition, r.Offset, err)
		})
	}
	if decodeErr != nil {
		return nil, decodeErr
	}
	windows := make([]Window, 0, len(last))
	for _, w := range last {
		windows = append(windows, w)
	}
	slices.SortFunc(windows, func(a, b Window) int {
		return cmp.Or(strings.Compare(a.Page, b.Page), a.Start.Compare(b.Start))
	})
	return windows, nil
}

// deleteApp deletes the consumer group appID and every topic named "<appID>-...": the input and
// output topics and the app's internal topics.
func deleteApp(ctx context.Context, adm *kadm.Client, appID string) error {
	var errs []error
	if _, err := adm.DeleteGroup(ctx, appID); err != nil {
		errs = append(errs, fmt.Errorf("deleting group %q: %w", appID, err))
	}
	listed, err := adm.ListTopics(ctx)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	var topics []string
	for _, t := range listed.Names() {
		if strings.HasPrefix(t, appID+"-") {
			topics = append(topics, t)
		}
	}
	if len(topics) > 0 {
		resp, err := adm.DeleteTopics(ctx, topics...)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("deleting topics %q: %w", topics, err))
		}
	}
	return errors.Join(errs...)
}
