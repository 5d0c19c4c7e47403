package main

import (
	"context"
	"fmt"
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
	if _, err := e.adm.DeleteTopics(ctx, topics...); err != nil {
		e.log.Debug("deleting topics", "topics", topics, "err", err)
	}
}

// cleanUp deletes what one run left on the broker: its output topic, the internal topics of its
// application (named <app-id>-...), and its consumer group.
func (e *env) cleanUp(output, appID string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topics := []string{output}
	if listed, err := e.adm.ListTopics(ctx); err == nil {
		for _, t := range listed.Names() {
			if strings.HasPrefix(t, appID+"-") {
				topics = append(topics, t)
			}
		}
	}
	e.deleteTopics(ctx, topics...)
	// A member that did not leave on close keeps the group until its session times out; then the
	// group is only an idle entry, harmless to later runs.
	_, _ = e.adm.DeleteGroups(ctx, appID)
}

// readTopic reads every record of topic from the start of each partition to its end as of the
// call and hands each data record to f, partition by partition in offset order as fetched.
// Control records (of transactional producers) are skipped but counted for the end.
func (e *env) readTopic(ctx context.Context, topic string, f func(*kgo.Record)) error {
	ends, err := e.endOffsets(ctx, topic)
	if err != nil {
		return err
	}
	startsListed, err := e.adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = startsListed.Error()
	}
	if err != nil {
		return fmt.Errorf("benchrun: start offsets of %s: %w", topic, err)
	}
	pending := map[int32]int64{}
	offsets := map[int32]kgo.Offset{}
	startsListed.Each(func(o kadm.ListedOffset) {
		if ends[o.Partition] > o.Offset {
			pending[o.Partition] = ends[o.Partition]
			offsets[o.Partition] = kgo.NewOffset().At(o.Offset)
		}
	})
	if len(pending) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...), kgo.KeepControlRecords(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}))
	if err != nil {
		return err
	}
	defer cl.Close()
	for len(pending) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("benchrun: reading %s: %w", topic, err)
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) { ferr = fmt.Errorf("benchrun: reading %s[%d]: %w", t, p, err) })
		if ferr != nil {
			return ferr
		}
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := pending[r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			if !r.Attrs.IsControl() {
				f(r)
			}
			if r.Offset+1 >= end {
				delete(pending, r.Partition)
			}
		})
	}
	return nil
}
