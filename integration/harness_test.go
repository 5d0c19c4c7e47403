package integration

// These tests prove that the broker under the suite is Apache Kafka: each exercises a behaviour
// that franz-go's kfake lacks or fakes (the log cleaner, replication with min ISR, transaction
// markers on disk, the group coordinator), so they fail if the harness silently used a fake.

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rifflestream/riffle/internal/kafkatest"
)

func TestHarnessCompaction(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Name(t, "compact")
	kafkatest.CreateTopic(t, kafkatest.Admin(t, brokers), topic, 1, 1, map[string]*string{
		"cleanup.policy":            kafkatest.StringPtr("compact"),
		"segment.ms":                kafkatest.StringPtr("100"),
		"min.cleanable.dirty.ratio": kafkatest.StringPtr("0.01"),
		"min.compaction.lag.ms":     kafkatest.StringPtr("0"),
	})
	cl := kafkatest.Client(t, brokers, kgo.DefaultProduceTopic(topic))
	ctx := context.Background()

	const keys, versions = 20, 5
	want := map[string]string{}
	for v := 0; v < versions; v++ {
		for k := 0; k < keys; k++ {
			key, val := fmt.Sprintf("k%02d", k), fmt.Sprintf("v%d", v)
			want[key] = val
			if err := cl.ProduceSync(ctx, kgo.KeyStringRecord(key, val)); err.FirstErr() != nil {
				t.Fatal(err.FirstErr())
			}
		}
		// Each round lands in a segment of its own (segment.ms=100), so older versions sit in
		// closed segments that the cleaner may compact.
		time.Sleep(150 * time.Millisecond)
	}

	deadline := time.Now().Add(90 * time.Second)
	for rolls := 0; ; rolls++ {
		// A roll record closes the segment holding the data; the cleaner never touches the active one.
		if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("~roll"), Value: []byte(strconv.Itoa(rolls))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		got := map[string][]string{}
		for _, r := range kafkatest.ReadAll(t, brokers, topic, false) {
			if string(r.Key) != "~roll" {
				got[string(r.Key)] = append(got[string(r.Key)], string(r.Value))
			}
		}
		if compacted(got, want) {
			t.Logf("compacted to one record per key after %d roll records", rolls+1)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the log cleaner did not compact %s within 90s: %v", topic, got)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func compacted(got map[string][]string, want map[string]string) bool {
	if len(got) != len(want) {
		return false
	}
	for k, v := range want {
		if vs := got[k]; len(vs) != 1 || vs[0] != v {
			return false
		}
	}
	return true
}

func TestHarnessTransactions(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Name(t, "txn")
	kafkatest.CreateTopic(t, kafkatest.Admin(t, brokers), topic, 2, 1, nil)
	cl := kafkatest.Client(t, brokers, kgo.DefaultProduceTopic(topic),
		kgo.TransactionalID(kafkatest.Name(t, "txid")))
	ctx := context.Background()

	txn := func(prefix string, commit kgo.TransactionEndTry) {
		t.Helper()
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			if err := cl.ProduceSync(ctx, kgo.KeyStringRecord(strconv.Itoa(i), fmt.Sprintf("%s-%d", prefix, i))).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := cl.EndTransaction(ctx, commit); err != nil {
			t.Fatal(err)
		}
	}
	txn("aborted", kgo.TryAbort)
	txn("committed", kgo.TryCommit)

	values := func(recs []*kgo.Record) []string {
		var vs []string
		for _, r := range recs {
			vs = append(vs, string(r.Value))
		}
		sort.Strings(vs)
		return vs
	}
	if got, want := values(kafkatest.ReadAll(t, brokers, topic, true)), []string{"committed-0", "committed-1", "committed-2"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("read_committed saw %v, want %v", got, want)
	}
	// read_uncommitted sees the aborted records too: they are on disk, only markers hide them.
	if got := values(kafkatest.ReadAll(t, brokers, topic, false)); len(got) != 6 {
		t.Fatalf("read_uncommitted saw %v, want all 6 records", got)
	}
}

func TestHarnessConsumerGroup(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic, group := kafkatest.Name(t, "grp"), kafkatest.Name(t, "group")
	adm := kafkatest.Admin(t, brokers)
	kafkatest.CreateTopic(t, adm, topic, 4, 1, nil)

	type member struct {
		mu    sync.Mutex
		owned map[int32]bool
		cl    *kgo.Client
	}
	newMember := func() *member {
		m := &member{owned: map[int32]bool{}}
		m.cl = kafkatest.Client(t, brokers, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
			kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
				m.mu.Lock()
				defer m.mu.Unlock()
				for _, p := range a[topic] {
					m.owned[p] = true
				}
			}),
			kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, r map[string][]int32) {
				m.mu.Lock()
				defer m.mu.Unlock()
				for _, p := range r[topic] {
					delete(m.owned, p)
				}
			}))
		// Polling drives the group: joins, syncs and callbacks happen while it runs.
		go func() {
			for {
				if fs := m.cl.PollFetches(context.Background()); fs.IsClientClosed() {
					return
				}
			}
		}()
		return m
	}
	count := func(m *member) int { m.mu.Lock(); defer m.mu.Unlock(); return len(m.owned) }
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	brokerView := func() map[string]int {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		groups, err := adm.DescribeGroups(ctx, group)
		if err != nil {
			return nil
		}
		out := map[string]int{}
		for _, m := range groups[group].Members {
			if a, ok := m.Assigned.AsConsumer(); ok {
				for _, tp := range a.Topics {
					out[m.MemberID] += len(tp.Partitions)
				}
			}
		}
		return out
	}

	a, b := newMember(), newMember()
	waitFor("two members with two partitions each", func() bool {
		if count(a) != 2 || count(b) != 2 {
			return false
		}
		v := brokerView()
		return len(v) == 2 && sumValues(v) == 4
	})
	b.cl.Close() // leaves the group
	waitFor("the remaining member to own all four partitions", func() bool {
		v := brokerView()
		return count(a) == 4 && len(v) == 1 && sumValues(v) == 4
	})
}

func sumValues(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func TestHarnessClusterNodeFailure(t *testing.T) {
	c := kafkatest.NewCluster(t)
	brokers := c.Brokers()
	adm := kafkatest.Admin(t, brokers)
	topic := kafkatest.Name(t, "rf3")
	kafkatest.CreateTopic(t, adm, topic, 3, 3, map[string]*string{"min.insync.replicas": kafkatest.StringPtr("2")})
	cl := kafkatest.Client(t, brokers, kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordDeliveryTimeout(60*time.Second))
	ctx := context.Background()
	produce := func(n int, tag string) {
		t.Helper()
		for i := 0; i < n; i++ {
			if err := cl.ProduceSync(ctx, kgo.StringRecord(fmt.Sprintf("%s-%d", tag, i))).FirstErr(); err != nil {
				t.Fatalf("produce %s-%d with acks=all: %v", tag, i, err)
			}
		}
	}
	produce(30, "before")

	const victim = 2
	c.KillNode(t, victim)
	restarted := false
	defer func() {
		if !restarted { // leave the shared cluster whole for the next test
			c.RestartNode(t, victim)
		}
	}()
	// RF 3 with min ISR 2 survives one node: acks=all still succeeds.
	produce(30, "during")

	c.RestartNode(t, victim)
	restarted = true
	deadline := time.Now().Add(90 * time.Second)
	for {
		md, err := adm.Metadata(ctx, topic)
		if err == nil && fullISR(md.Topics[topic], 3) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %d did not rejoin every ISR of %s within 90s", victim, topic)
		}
		time.Sleep(250 * time.Millisecond)
	}
	produce(30, "after")
	if got := len(kafkatest.ReadAll(t, brokers, topic, false)); got != 90 {
		t.Fatalf("read %d records, want 90", got)
	}
}

func fullISR(td kadm.TopicDetail, n int) bool {
	if td.Err != nil || len(td.Partitions) == 0 {
		return false
	}
	for _, p := range td.Partitions {
		if len(p.ISR) != n {
			return false
		}
	}
	return true
}
