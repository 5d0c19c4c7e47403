package kafkatest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

var unsafeName = regexp.MustCompile(`[^a-zA-Z0-9._-]+`)

// Name returns a name unique to this test run, built from the test's name and prefix, fit for a
// topic, group or application id. Tests share one broker, so every name they create must be new.
func Name(t testing.TB, prefix string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	n := unsafeName.ReplaceAllString(t.Name(), "-")
	if len(n) > 60 {
		n = n[len(n)-60:]
	}
	return strings.Trim(fmt.Sprintf("%s-%s-%s", prefix, n, hex.EncodeToString(b[:])), "-")
}

// Client returns a franz-go client for brokers, closed when the test ends.
func Client(t testing.TB, brokers []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, opts...)...)
	if err != nil {
		t.Fatalf("kafkatest: new client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// Admin returns an admin client for brokers, closed when the test ends.
func Admin(t testing.TB, brokers []string) *kadm.Client {
	t.Helper()
	return kadm.NewClient(Client(t, brokers))
}

// CreateTopic creates a topic and waits until every partition has a leader. configs may be nil.
func CreateTopic(t testing.TB, adm *kadm.Client, topic string, partitions int32, rf int16, configs map[string]*string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := adm.CreateTopic(ctx, partitions, rf, configs, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && err != kerr.TopicAlreadyExists {
		t.Fatalf("kafkatest: create topic %s: %v", topic, err)
	}
	for {
		md, err := adm.Metadata(ctx, topic)
		if err == nil {
			td, ok := md.Topics[topic]
			if ok && td.Err == nil && int32(len(td.Partitions)) == partitions && allLed(td) {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("kafkatest: topic %s has no leader for every partition after a minute", topic)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func allLed(td kadm.TopicDetail) bool {
	for _, p := range td.Partitions {
		if p.Err != nil || p.Leader < 0 {
			return false
		}
	}
	return true
}

// StringPtr is a helper for topic configs.
func StringPtr(s string) *string { return &s }
