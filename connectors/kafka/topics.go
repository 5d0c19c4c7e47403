package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TopicSpec is a topic an app owns and creates if missing (repartition and changelog topics).
type TopicSpec struct {
	Name string
	// Partitions to create the topic with; -1 for the broker's default, and then any count is
	// accepted on an existing topic.
	Partitions int32
	// ReplicationFactor; -1 uses the broker's default.
	ReplicationFactor int16
	// Configs to create the topic with. Verify checks the ones in Checked against an existing topic.
	Configs map[string]string
	// Checked lists the configs an existing topic must have as in Configs (e.g. cleanup.policy):
	// a difference is an error, not a silent reuse.
	Checked []string
}

// MissingTopicsError lists topics that do not exist.
type MissingTopicsError struct {
	Topics []string
	// Kind is what the topics are to the app, for the message ("source", "output"); empty when
	// the caller did not say (PartitionCounts does not know).
	Kind string
}

func (e *MissingTopicsError) Error() string {
	what := "topics"
	if e.Kind != "" {
		what = e.Kind + " topics"
	}
	return fmt.Sprintf("kafka: %s do not exist: %s (create them first; Riffle creates only its internal topics)",
		what, strings.Join(e.Topics, ", "))
}

// PartitionCounts returns the partition count of each topic. Topics that do not exist are
// reported in a *MissingTopicsError.
func PartitionCounts(ctx context.Context, adm *kadm.Client, topics []string) (map[string]int32, error) {
	if len(topics) == 0 {
		return map[string]int32{}, nil
	}
	td, err := adm.ListTopics(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("kafka: listing topics: %w", err)
	}
	out := map[string]int32{}
	var missing []string
	for _, t := range topics {
		d, ok := td[t]
		switch {
		case !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition):
			missing = append(missing, t)
		case d.Err != nil:
			return nil, fmt.Errorf("kafka: topic %q: %w", t, d.Err)
		default:
			out[t] = int32(len(d.Partitions))
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return out, &MissingTopicsError{Topics: missing}
	}
	return out, nil
}

// EnsureTopics creates the topics that do not exist and verifies those that do: an existing topic
// with another partition count, or with another value of a checked config, is an error naming the
// topic, the expected and the actual values. It returns once created topics have leaders.
//
// Transient errors (a broker restarting, a partition moving: Kafka's retriable errors) are retried
// with back-off for up to a minute, or until ctx ends.
//
// kadm answers topic listings from the client's metadata cache: give the admin client a short
// kgo.MetadataMinAge (Riffle's engine uses 100ms), or waiting for new topics takes the default 5s.
func EnsureTopics(ctx context.Context, adm *kadm.Client, specs []TopicSpec) error {
	if len(specs) == 0 {
		return nil
	}
	return RetryTransient(ctx, func() error { return ensureTopicsOnce(ctx, adm, specs) })
}

// RetryTransient runs f until it succeeds, fails with an error that is not a transient Kafka
// error (see Retriable), a minute passes, or ctx ends. Start-up uses it: a broker may be
// restarting, a coordinator moving.
func RetryTransient(ctx context.Context, f func() error) error {
	return RetryTransientFor(ctx, time.Minute, f)
}

// RetryTransientFor is RetryTransient with another bound: f is not called again once d has
// passed since the first call.
func RetryTransientFor(ctx context.Context, d time.Duration, f func() error) error {
	deadline := time.Now().Add(d)
	backoff := 100 * time.Millisecond
	for {
		err := f()
		if err == nil || !Retriable(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(min(backoff, max(time.Until(deadline), time.Millisecond))):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// Retriable reports whether err is a transient Kafka error: a retriable Kafka error code (a
// leader moving, a coordinator loading), or a connection error from a broker that is restarting
// or going away (a refused or failed dial, a reset connection, EOF). An error that joins several
// (errors.Join, kadm's per-broker *ShardErrors) is transient if every one of them is. Context
// errors are not: the caller gave up.
func Retriable(err error) bool {
	if err == nil {
		return false
	}
	for err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			// A dial or request cut short by the caller's context: not the broker's fault.
			// (Checked on the whole remaining chain: a dial error wrapping the context's.)
			return false
		}
		switch x := err.(type) {
		case *kerr.Error:
			return x.Retriable
		case interface{ Unwrap() []error }:
			errs := x.Unwrap()
			for _, e := range errs {
				if !Retriable(e) {
					return false
				}
			}
			return len(errs) > 0
		case *net.OpError:
			if x.Op == "dial" {
				return true // refused, unreachable, timed out: the broker is not (yet) there
			}
		case *net.DNSError:
			return x.IsTimeout || x.IsTemporary
		case syscall.Errno:
			switch x {
			case syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ECONNABORTED, syscall.EPIPE,
				syscall.ETIMEDOUT, syscall.EHOSTUNREACH, syscall.ENETUNREACH:
				return true
			}
			return false
		case *kgo.ErrFirstReadEOF:
			// The broker closed the connection right after the request: a broker shutting down
			// does that (so does a missing SASL, which then fails once the retries run out).
			return true
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF || err == net.ErrClosed {
			return true
		}
		if u := errors.Unwrap(err); u != nil {
			err = u
			continue
		}
		// A leaf we do not know by type: kgo's own judgement of broker errors.
		return kgo.IsRetryableBrokerErr(err)
	}
	return false
}

func ensureTopicsOnce(ctx context.Context, adm *kadm.Client, specs []TopicSpec) error {
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	existing, err := PartitionCounts(ctx, adm, names)
	var missing *MissingTopicsError
	if err != nil && !errors.As(err, &missing) {
		return err
	}
	var errs []error
	var toCheck []TopicSpec
	var created []string
	for _, s := range specs {
		n, exists := existing[s.Name]
		if !exists {
			configs := map[string]*string{}
			for k, v := range s.Configs {
				configs[k] = &v
			}
			rf := s.ReplicationFactor
			if rf == 0 {
				rf = -1
			}
			resp, err := adm.CreateTopic(ctx, s.Partitions, rf, configs, s.Name)
			if err == nil {
				err = resp.Err
			}
			if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
				errs = append(errs, fmt.Errorf("kafka: creating topic %q (%d partitions): %w", s.Name, s.Partitions, err))
			}
			if err == nil {
				created = append(created, s.Name)
			}
			if errors.Is(err, kerr.TopicAlreadyExists) { // created meanwhile by another instance
				toCheck = append(toCheck, s)
			}
			continue
		}
		if s.Partitions > 0 && n != s.Partitions {
			errs = append(errs, fmt.Errorf("kafka: topic %q exists with %d partitions, but the app needs %d (delete it, or reset the app, to recreate it)", s.Name, n, s.Partitions))
			continue
		}
		toCheck = append(toCheck, s)
	}
	if err := verifyConfigs(ctx, adm, toCheck); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return waitReady(ctx, adm, created)
}

// waitReady waits until every partition of the topics has a leader that knows it: a topic just
// created is not usable at once.
func waitReady(ctx context.Context, adm *kadm.Client, topics []string) error {
	if len(topics) == 0 {
		return nil
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		ready := true
		td, err := adm.ListTopics(ctx, topics...)
		if err != nil {
			ready = false
		} else {
			for _, t := range topics {
				d, ok := td[t]
				if !ok || d.Err != nil || len(d.Partitions) == 0 {
					ready = false
					break
				}
				for _, p := range d.Partitions {
					if p.Err != nil || p.Leader < 0 {
						ready = false
					}
				}
			}
		}
		if ready {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kafka: topics %v were created but are not ready after 60s", topics)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func verifyConfigs(ctx context.Context, adm *kadm.Client, specs []TopicSpec) error {
	var names []string
	for _, s := range specs {
		if len(s.Checked) > 0 {
			names = append(names, s.Name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, names...)
	if err != nil {
		return fmt.Errorf("kafka: describing topic configs: %w", err)
	}
	byName := map[string]kadm.ResourceConfig{}
	for _, rc := range rcs {
		byName[rc.Name] = rc
	}
	var errs []error
	for _, s := range specs {
		rc, ok := byName[s.Name]
		if !ok || len(s.Checked) == 0 {
			continue
		}
		if rc.Err != nil {
			errs = append(errs, fmt.Errorf("kafka: configs of topic %q: %w", s.Name, rc.Err))
			continue
		}
		have := map[string]string{}
		for _, c := range rc.Configs {
			have[c.Key] = c.MaybeValue()
		}
		for _, k := range s.Checked {
			if want := s.Configs[k]; have[k] != want {
				errs = append(errs, fmt.Errorf("kafka: topic %q has %s=%q, but the app needs %q", s.Name, k, have[k], want))
			}
		}
	}
	return errors.Join(errs...)
}
