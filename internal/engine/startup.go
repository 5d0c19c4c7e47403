package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rifflestream/riffle/connectors/kafka"
	"github.com/rifflestream/riffle/topology"
)

// CoPartitionError reports topics that must have the same partition count but do not.
type CoPartitionError struct {
	Counts map[string]int32
}

func (e *CoPartitionError) Error() string {
	names := make([]string, 0, len(e.Counts))
	for t := range e.Counts {
		names = append(names, t)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, t := range names {
		parts[i] = fmt.Sprintf("%s has %d", t, e.Counts[t])
	}
	return fmt.Sprintf("engine: topics must be co-partitioned (the same partition count, so equal keys meet in one task), but %s", strings.Join(parts, ", "))
}

// prepare checks the source topics, creates or verifies the internal ones, checks
// co-partitioning, and applies per-source offset resets. It keeps an admin client for later.
func (e *Engine) prepare(ctx context.Context) error {
	// A short metadata age: the engine looks up topics it has just created.
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(e.cfg.Brokers...), kgo.WithLogger(kgoLogger{e.log}),
		kgo.MetadataMinAge(100 * time.Millisecond)}, e.cfg.ClientOpts...)...)
	if err != nil {
		return fmt.Errorf("engine: creating the admin client: %w", err)
	}
	e.adm = kadm.NewClient(cl)
	plan := e.cfg.Plan

	counts, err := e.existingTopics(ctx, plan.ExternalSourceTopics(), "source")
	if err != nil {
		e.adm.Close()
		return err
	}
	// Output topics must exist too: Riffle does not have the broker create them, and a record
	// for a missing topic fails only after the client's metadata retries, seconds later.
	// (The dead-letter topic is created below when a handler may use it.)
	outputs := plan.ExternalSinkTopics()
	outCounts, err := e.existingTopics(ctx, outputs, "output")
	if err != nil {
		e.adm.Close()
		return err
	}
	internal, err := plan.InternalPartitions(counts)
	if err != nil {
		e.adm.Close()
		return err
	}
	var specs []kafka.TopicSpec
	for _, it := range plan.InternalTopics {
		specs = append(specs, kafka.TopicSpec{Name: it.Name, Partitions: internal[it.Name],
			ReplicationFactor: e.cfg.ReplicationFactor, Configs: it.Configs, Checked: []string{"cleanup.policy"}})
		counts[it.Name] = internal[it.Name]
	}
	tasks, err := plan.TaskCount(counts)
	if err != nil {
		e.adm.Close()
		return err
	}
	var changelogs []string
	for _, sub := range plan.Subtopologies {
		for _, name := range sub.Stores {
			spec, err := plan.Store(name)
			if err != nil {
				e.adm.Close()
				return err
			}
			on, configs := spec.Changelog()
			if !on {
				continue
			}
			// One changelog partition per task, so task p restores from partition p.
			changelogs = append(changelogs, plan.ChangelogTopic(name))
			specs = append(specs, kafka.TopicSpec{Name: plan.ChangelogTopic(name), Partitions: tasks[sub.ID],
				ReplicationFactor: e.cfg.ReplicationFactor, Configs: configs, Checked: []string{"cleanup.policy"}})
		}
	}
	if e.cfg.CreateDeadLetterTopic && e.cfg.Handlers.DeadLetterTopic != "" {
		// The broker's default partition count: dead letters are few and need no order.
		specs = append(specs, kafka.TopicSpec{Name: e.cfg.Handlers.DeadLetterTopic, Partitions: -1, ReplicationFactor: e.cfg.ReplicationFactor})
	}
	if err := kafka.EnsureTopics(ctx, e.adm, specs); err != nil {
		e.adm.Close()
		return err
	}
	if err := e.listChangelogIDs(ctx, changelogs); err != nil {
		e.adm.Close()
		return err
	}
	for _, group := range plan.CoPartitioned {
		bad := false
		for _, t := range group[1:] {
			bad = bad || counts[t] != counts[group[0]]
		}
		if bad {
			ce := &CoPartitionError{Counts: map[string]int32{}}
			for _, t := range group {
				ce.Counts[t] = counts[t]
			}
			e.adm.Close()
			return ce
		}
	}
	e.partMu.Lock()
	for t, n := range outCounts {
		e.partCounts[t] = n
	}
	for t, n := range counts {
		e.partCounts[t] = n
	}
	e.partMu.Unlock()
	if err := kafka.RetryTransient(ctx, func() error { return e.applySourceResets(ctx, counts) }); err != nil {
		e.adm.Close()
		return err
	}
	return nil
}

// missingTopicWait is how long start-up waits for a topic that is reported missing to appear. A
// broker that is restarting can answer UNKNOWN_TOPIC_OR_PARTITION for a topic that exists (the
// fault suite's broker bounces found it), so one answer is not enough to stop the app.
const missingTopicWait = 10 * time.Second

// existingTopics returns the partition counts of topics, retrying transient errors, and waiting
// up to missingTopicWait for topics reported missing; then it fails with a *MissingTopicsError of
// the kind given ("source", "output").
func (e *Engine) existingTopics(ctx context.Context, topics []string, kind string) (map[string]int32, error) {
	deadline := time.Now().Add(missingTopicWait)
	logged := false
	for {
		var counts map[string]int32
		err := kafka.RetryTransient(ctx, func() (err error) {
			counts, err = kafka.PartitionCounts(ctx, e.adm, topics)
			return err
		})
		var missing *kafka.MissingTopicsError
		if !errors.As(err, &missing) {
			return counts, err
		}
		missing.Kind = kind
		if time.Now().After(deadline) {
			return nil, err
		}
		if !logged {
			e.log.Warn("waiting for topics reported missing (a broker may be restarting)", "kind", kind,
				"topics", missing.Topics, "for", missingTopicWait)
			logged = true
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// applySourceResets honours sources whose offset reset differs from the app's. Kafka clients
// reset per client, not per topic, so Riffle commits the chosen start offsets for partitions
// that have none, while the group is empty (the first instance to start). Later instances find
// them committed.
func (e *Engine) applySourceResets(ctx context.Context, counts map[string]int32) error {
	appDefault := e.cfg.OffsetReset
	if appDefault == topology.ResetDefault {
		appDefault = topology.ResetEarliest
	}
	var latest, earliest []string
	for _, s := range e.cfg.Plan.Subtopologies {
		for t, r := range s.Reset {
			if r == topology.ResetDefault || r == appDefault {
				continue
			}
			if r == topology.ResetLatest {
				latest = append(latest, t)
			} else {
				earliest = append(earliest, t)
			}
		}
	}
	if len(latest)+len(earliest) == 0 {
		return nil
	}
	groups, err := e.adm.DescribeGroups(ctx, e.cfg.AppID)
	if err != nil {
		return fmt.Errorf("engine: describing group %q: %w", e.cfg.AppID, err)
	}
	if g, ok := groups[e.cfg.AppID]; ok && g.Err == nil && len(g.Members) > 0 {
		return nil // a running instance already did this
	}
	committed, err := e.adm.FetchOffsets(ctx, e.cfg.AppID)
	if err != nil {
		return fmt.Errorf("engine: fetching committed offsets of %q: %w", e.cfg.AppID, err)
	}
	toCommit := kadm.Offsets{}
	for _, set := range []struct {
		topics []string
		list   func(context.Context, ...string) (kadm.ListedOffsets, error)
	}{{latest, e.adm.ListEndOffsets}, {earliest, e.adm.ListStartOffsets}} {
		if len(set.topics) == 0 {
			continue
		}
		listed, err := set.list(ctx, set.topics...)
		if err == nil {
			err = listed.Error()
		}
		if err != nil {
			return fmt.Errorf("engine: listing offsets of %v: %w", set.topics, err)
		}
		listed.Each(func(o kadm.ListedOffset) {
			if _, ok := committed.Lookup(o.Topic, o.Partition); !ok {
				toCommit.Add(kadm.Offset{Topic: o.Topic, Partition: o.Partition, At: o.Offset, LeaderEpoch: -1})
			}
		})
	}
	if len(toCommit) == 0 {
		return nil
	}
	resp, err := e.adm.CommitOffsets(ctx, e.cfg.AppID, toCommit)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return fmt.Errorf("engine: committing start offsets for sources with their own offset reset: %w", err)
	}
	e.log.Info("committed start offsets for sources with their own offset reset", "latest", latest, "earliest", earliest)
	return nil
}

// listChangelogIDs records the topic IDs of the changelogs (Engine.changelogIDs), once at
// start-up: restores compare them with the ID kept with a store's checkpoint
// (ChangelogRestorer.TopicID).
func (e *Engine) listChangelogIDs(ctx context.Context, topics []string) error {
	if len(topics) == 0 {
		return nil
	}
	ids := map[string]topology.ChangelogID{}
	err := kafka.RetryTransient(ctx, func() error {
		td, err := e.adm.ListTopics(ctx, topics...)
		if err != nil {
			return err
		}
		for _, t := range topics {
			d, ok := td[t]
			if !ok {
				return fmt.Errorf("engine: changelog topic %q not listed", t)
			}
			if d.Err != nil {
				return fmt.Errorf("engine: changelog topic %q: %w", t, d.Err)
			}
			ids[t] = topology.ChangelogID(d.ID)
		}
		return nil
	})
	if err != nil {
		return err
	}
	e.changelogIDs = ids
	return nil
}
