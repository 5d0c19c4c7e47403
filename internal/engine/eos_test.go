package engine

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/rifflestream/riffle/serde"
	"github.com/rifflestream/riffle/topology"
)

// The polled-vs-processed safety net: a partition is in order when its task processed up to its
// polled position, or when nothing of it was processed and it sits where the last rewind put it.
func TestPolledGaps(t *testing.T) {
	at := func(o int64) kgo.EpochOffset { return kgo.EpochOffset{Epoch: 3, Offset: o} }
	cases := []struct {
		name      string
		polled    map[string]map[int32]kgo.EpochOffset
		processed map[topicPartition]int64
		rewound   map[topicPartition]int64
		want      []string
	}{
		{
			name:      "processed to the polled position",
			polled:    map[string]map[int32]kgo.EpochOffset{"in": {0: at(10), 1: at(7)}},
			processed: map[topicPartition]int64{{"in", 0}: 10, {"in", 1}: 7},
		},
		{
			name:      "processed short of the polled position",
			polled:    map[string]map[int32]kgo.EpochOffset{"in": {0: at(10)}},
			processed: map[topicPartition]int64{{"in", 0}: 8},
			want:      []string{"in[0] polled to 10, processed to 8"},
		},
		{
			name:   "polled, nothing processed, no rewind",
			polled: map[string]map[int32]kgo.EpochOffset{"in": {2: at(5)}},
			want:   []string{"in[2] polled to 5, nothing processed since the task started"},
		},
		{
			// After an abort: franz-go reports the rewound position as uncommitted; the rebuilt
			// task has processed nothing since (nothing new, or it is still restoring).
			name:    "sits at its rewound position, nothing processed",
			polled:  map[string]map[int32]kgo.EpochOffset{"in": {0: at(40), 1: at(0)}},
			rewound: map[topicPartition]int64{{"in", 0}: 40, {"in", 1}: 0},
		},
		{
			name:    "polled past its rewound position, nothing processed",
			polled:  map[string]map[int32]kgo.EpochOffset{"in": {0: at(45)}},
			rewound: map[topicPartition]int64{{"in", 0}: 40},
			want:    []string{"in[0] polled to 45, nothing processed since the task started"},
		},
		{
			name:      "rewound, then processed short of the polled position",
			polled:    map[string]map[int32]kgo.EpochOffset{"in": {0: at(45)}},
			processed: map[topicPartition]int64{{"in", 0}: 43},
			rewound:   map[topicPartition]int64{{"in", 0}: 40},
			want:      []string{"in[0] polled to 45, processed to 43"},
		},
		{
			// A processed offset is the truth: a rewound position equal to the polled one does
			// not excuse a task that processed elsewhere.
			name:      "processed elsewhere than a matching rewound position",
			polled:    map[string]map[int32]kgo.EpochOffset{"in": {0: at(40)}},
			processed: map[topicPartition]int64{{"in", 0}: 38},
			rewound:   map[topicPartition]int64{{"in", 0}: 40},
			want:      []string{"in[0] polled to 40, processed to 38"},
		},
		{
			name:    "a rewind of another partition excuses nothing",
			polled:  map[string]map[int32]kgo.EpochOffset{"in": {1: at(40)}, "rep": {0: at(40)}},
			rewound: map[topicPartition]int64{{"in", 0}: 40},
			want: []string{"in[1] polled to 40, nothing processed since the task started",
				"rep[0] polled to 40, nothing processed since the task started"},
		},
	}
	for _, c := range cases {
		got := polledGaps(c.polled, c.processed, c.rewound)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}

// A transaction whose end takes longer than the commit round's deadline (a broker bouncing, a
// slow coordinator) still commits: End is never cut short by the round's context, since a
// canceled End leaves franz-go's transactional session unusable and the instance would stop.
func TestEndOutlivesTheRoundDeadline(t *testing.T) {
	c, brokers := fakeCluster(t, "end")

	const roundTimeout, endTxnDelay = 2 * time.Second, 5 * time.Second
	var slowed atomic.Bool
	c.ControlKey(int16(kmsg.EndTxn), func(req kmsg.Request) (kmsg.Response, error, bool) {
		if r := req.(*kmsg.EndTxnRequest); r.Commit && !slowed.Load() {
			slowed.Store(true)
			c.DropControl()
			c.SleepControl(func() { time.Sleep(endTxnDelay) })
			return nil, nil, false // now handled as usual
		}
		c.KeepControl()
		return nil, nil, false
	})

	const n = 20
	produceValues(t, brokers, "end-in", 0, n)

	e := eosEngine(t, brokers, "end", topology.ResetEarliest, nil)
	e.roundTimeout = roundTimeout
	cancel, done := runEngine(e)
	defer cancel()

	// The outputs become readable (read_committed) once the slowed transaction has committed.
	out := len(waitCommitted(t, brokers, "end-out", done, 60*time.Second, func(got []*kgo.Record) bool { return len(got) >= n }))
	if !slowed.Load() {
		t.Fatal("no committing EndTxn was slowed: the test did not test anything")
	}
	if out != n {
		t.Fatalf("%d committed outputs, want %d", out, n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if m := e.Metrics(); m.TransactionsAborted != 0 {
		t.Errorf("%d transactions aborted, want 0", m.TransactionsAborted)
	}
}

// An abort under exactly-once with ResetLatest and no committed offset yet: the rewind must put
// the partition back where the reset put it (the first record polled), not at the end as listed
// at the time of the abort, which would skip every record of the aborted transaction.
func TestRewindWithoutCommitUnderResetLatest(t *testing.T) {
	c, brokers := fakeCluster(t, "rl")

	// The first transaction with offsets in it fails to commit them, with an error franz-go's
	// session answers by aborting the transaction.
	failed := failFirstTxnOffsetCommit(c, kerr.UnknownServerError)

	e := eosEngine(t, brokers, "rl", topology.ResetLatest, nil)
	cancel, done := runEngine(e)
	defer cancel()

	next := 0
	produce := func() {
		t.Helper()
		produceValues(t, brokers, "rl-in", next, 1)
		next++
	}
	// Under ResetLatest, records written before the engine found its start are skipped, as
	// they should be: write one at a time until one is processed, then the rest.
	deadline := time.Now().Add(30 * time.Second)
	for e.Metrics().RecordsProcessed == 0 {
		if time.Now().After(deadline) {
			t.Fatal("nothing processed after 30s")
		}
		produce()
		time.Sleep(50 * time.Millisecond)
	}
	warm := next
	for i := 0; i < 50; i++ {
		produce()
	}
	last := strconv.Itoa(next - 1)
	var got []string
	for _, r := range waitCommitted(t, brokers, "rl-out", done, 30*time.Second, func(got []*kgo.Record) bool {
		return len(got) > 0 && string(got[len(got)-1].Value) == last
	}) {
		got = append(got, string(r.Value))
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !failed.Load() || e.Metrics().TransactionsAborted == 0 {
		t.Fatalf("no transaction aborted (TxnOffsetCommit failed: %v): the test did not test anything", failed.Load())
	}
	// The outputs are every input from where the engine started, once, in order: a suffix of
	// 0..next-1 that holds at least one of the records written before the warm-up ended.
	first, err := strconv.Atoi(got[0])
	if err != nil || first >= warm {
		t.Fatalf("the outputs start at %q, want a record written before %d (the ones processed in the aborted transaction are missing): %v", got[0], warm, got)
	}
	for i, v := range got {
		if v != strconv.Itoa(first+i) {
			t.Fatalf("output #%d is %s, want %d (lost or doubled records): %v", i, v, first+i, got)
		}
	}
	if len(got) != next-first {
		t.Fatalf("%d outputs, want %d", len(got), next-first)
	}
}

// fakeCluster starts a one-broker kfake cluster with one-partition topics "<name>-in" and
// "<name>-out".
func fakeCluster(t *testing.T, name string) (*kfake.Cluster, []string) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, name+"-in", name+"-out"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, c.ListenAddrs()
}

// produceValues writes n records with the values from, from+1, ... (decimal, no key) to topic
// and returns once they are acknowledged.
func produceValues(t *testing.T, brokers []string, topic string, from, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := from; i < from+n; i++ {
		cl.Produce(context.Background(), &kgo.Record{Value: []byte(strconv.Itoa(i))}, nil)
	}
	if err := cl.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// waitCommitted reads topic's committed records until enough says they are enough, and returns
// them. It fails the test when the engine stops first (done) or within passes.
func waitCommitted(t *testing.T, brokers []string, topic string, done <-chan error, within time.Duration, enough func([]*kgo.Record) bool) []*kgo.Record {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := readCommitted(t, brokers, topic)
		if enough(got) {
			return got
		}
		select {
		case err := <-done:
			t.Fatalf("the engine stopped with %d outputs committed: %v", len(got), err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d outputs committed to %s after %v, not enough: %v", len(got), topic, within, got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// readCommitted reads a topic's committed records from the start, until a poll finds nothing
// more for a second.
func readCommitted(t *testing.T, brokers []string, topic string) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		if fs.NumRecords() == 0 {
			return out
		}
		out = append(out, fs.Records()...)
	}
}

// A commit round under exactly-once waits for the tasks to process what was polled. Slow
// processing is not a failure: the round gives up only when no task makes progress, so here,
// with a round bound of 300ms and 2s of work queued, the round waits and everything commits.
func TestSlowProcessingOutlastsTheRoundBound(t *testing.T) {
	_, brokers := fakeCluster(t, "slow")
	const n = 400
	produceValues(t, brokers, "slow-in", 0, n)

	e := eosEngine(t, brokers, "slow", topology.ResetEarliest, func(ctx topology.Context[string, string], r topology.Record[string, string]) error {
		time.Sleep(5 * time.Millisecond)
		return ctx.Forward(r)
	})
	e.roundTimeout = 300 * time.Millisecond
	cancel, done := runEngine(e)
	defer cancel()

	waitCommitted(t, brokers, "slow-out", done, 30*time.Second, func(got []*kgo.Record) bool { return len(got) >= n })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := len(readCommitted(t, brokers, "slow-out")); got != n {
		t.Fatalf("%d committed outputs, want %d", got, n)
	}
	if m := e.Metrics(); m.TransactionsAborted != 0 {
		t.Errorf("%d transactions aborted, want 0", m.TransactionsAborted)
	}
}

// eosEngine makes an exactly-once engine, app "<name>-app", copying topic "<name>-in" to
// "<name>-out" through mid when it is not nil.
func eosEngine(t *testing.T, brokers []string, name string, reset topology.OffsetReset,
	mid func(ctx topology.Context[string, string], r topology.Record[string, string]) error, opts ...func(*Config)) *Engine {
	t.Helper()
	topo := topology.New()
	node := topology.AddSource(topo, "in", []string{name + "-in"}, serde.String(), serde.String())
	if mid != nil {
		node = topology.AddProcessor(topo, "mid", topology.ProcessorFunc(mid), node)
	}
	topology.AddSink(topo, "out", name+"-out", serde.String(), serde.String(), []topology.Node[string, string]{node})
	plan, err := topo.Plan(name + "-app")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{AppID: name + "-app", Brokers: brokers, Plan: plan, Guarantee: ExactlyOnce,
		OffsetReset: reset, CommitInterval: 100 * time.Millisecond, StateDir: t.TempDir()}
	for _, o := range opts {
		o(&cfg)
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// runEngine runs e until cancel; done gets what Run returned.
func runEngine(e *Engine) (cancel context.CancelFunc, done <-chan error) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan error, 1)
	go func() { ch <- e.Run(ctx) }()
	return cancel, ch
}

// failFirstTxnOffsetCommit makes the cluster answer the first TxnOffsetCommit with code for every
// partition; the returned flag is set once it has.
func failFirstTxnOffsetCommit(c *kfake.Cluster, code *kerr.Error) *atomic.Bool {
	return failFirst(c, kmsg.TxnOffsetCommit, nil, 0, func(req kmsg.Request) kmsg.Response {
		r := req.(*kmsg.TxnOffsetCommitRequest)
		resp := r.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
		for _, rt := range r.Topics {
			st := kmsg.NewTxnOffsetCommitResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = code.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	})
}

// failFirst makes the cluster answer the first request of key that pick accepts (nil: any) with
// answer's response, after delay; the returned flag is set once it has.
func failFirst(c *kfake.Cluster, key kmsg.Key, pick func(kmsg.Request) bool, delay time.Duration, answer func(kmsg.Request) kmsg.Response) *atomic.Bool {
	var failed atomic.Bool
	c.ControlKey(int16(key), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if failed.Load() || (pick != nil && !pick(req)) {
			return nil, nil, false
		}
		failed.Store(true)
		if delay > 0 {
			c.SleepControl(func() { time.Sleep(delay) })
		}
		return answer(req), nil, true
	})
	return &failed
}

// A transient error while ending a transaction (here a TxnOffsetCommit that timed out; in the
// fault suite, a broker that went away mid-End) makes franz-go's End return the error. The
// transaction counts as aborted: the tasks are rebuilt, the records processed again, and every
// input is output exactly once. It used to stop the instance.
func TestTransientEndErrorIsAnAbort(t *testing.T) {
	exactlyOnceThroughAnAbort(t, "te", func(c *kfake.Cluster) *atomic.Bool {
		return failFirstTxnOffsetCommit(c, kerr.RequestTimedOut)
	})
}

// exactlyOnceThroughAnAbort copies 100 records from "<name>-in" to "<name>-out" under
// exactly-once with the fault inject sets up (it reports whether the fault happened), and checks
// that a transaction aborted, the engine did not stop, and every output is committed exactly once.
func exactlyOnceThroughAnAbort(t *testing.T, name string, inject func(c *kfake.Cluster) *atomic.Bool) {
	t.Helper()
	c, brokers := fakeCluster(t, name)
	const n = 100
	produceValues(t, brokers, name+"-in", 0, n)
	failed := inject(c)
	e := eosEngine(t, brokers, name, topology.ResetEarliest, nil)
	cancel, done := runEngine(e)
	defer cancel()
	waitCommitted(t, brokers, name+"-out", done, 30*time.Second, func(got []*kgo.Record) bool { return len(got) >= n })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !failed.Load() || e.Metrics().TransactionsAborted == 0 {
		t.Fatalf("no transaction aborted (fault injected: %v): the test did not test anything", failed.Load())
	}
	got := readCommitted(t, brokers, name+"-out")
	for i, r := range got {
		if string(r.Value) != strconv.Itoa(i) {
			t.Fatalf("output #%d is %s, want %d (lost or doubled records)", i, r.Value, i)
		}
	}
	if len(got) != n {
		t.Fatalf("%d outputs, want %d", len(got), n)
	}
}

// Records a poll returns while the engine stops are past the positions an exactly-once commit
// takes (franz-go's uncommitted offsets), so the final round must process them: dropping them
// trips the safety net (polled past what was processed) and aborts the last transaction. The
// hook stops the engine exactly between a poll that returned records and their hand-off.
func TestRecordsPolledDuringShutdownAreCommitted(t *testing.T) {
	_, brokers := fakeCluster(t, "stop")
	const n = 50
	produceValues(t, brokers, "stop-in", 0, n)

	e := eosEngine(t, brokers, "stop", topology.ResetEarliest, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	polledTo := int64(-1) // the offset after the last record of the poll the hook stopped at
	e.afterPoll = func(pollCtx context.Context, fs kgo.Fetches) {
		if fs.NumRecords() == 0 || polledTo >= 0 {
			return
		}
		recs := fs.Records()
		polledTo = recs[len(recs)-1].Offset + 1
		cancel()
		<-pollCtx.Done() // the engine is stopping, and these records are not queued yet
	}
	if err := e.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if polledTo < 0 {
		t.Fatal("no poll returned records: the test did not test anything")
	}
	if m := e.Metrics(); m.TransactionsAborted != 0 {
		t.Errorf("%d transactions aborted, want 0", m.TransactionsAborted)
	}
	got := readCommitted(t, brokers, "stop-out")
	if int64(len(got)) != polledTo {
		t.Fatalf("%d committed outputs, want the %d records polled", len(got), polledTo)
	}
	for i, r := range got {
		if string(r.Value) != strconv.Itoa(i) {
			t.Fatalf("output %d is %q, want %q", i, r.Value, strconv.Itoa(i))
		}
	}
	if at := committedOffset(t, brokers, "stop-app", "stop-in"); at != polledTo {
		t.Fatalf("committed offset of stop-in[0] is %d, want %d", at, polledTo)
	}
}

// failFirstTransactionalProduce makes the cluster answer the first transactional Produce request
// (the engine's: the tests' input producers are not transactional) with code for every
// partition; the returned flag is set once it has.
func failFirstTransactionalProduce(c *kfake.Cluster, code *kerr.Error) *atomic.Bool {
	transactional := func(req kmsg.Request) bool { return req.(*kmsg.ProduceRequest).TransactionID != nil }
	// Late, so that the refusal reaches the engine while the commit round ends the transaction,
	// not before it starts.
	return failFirst(c, kmsg.Produce, transactional, 500*time.Millisecond, func(req kmsg.Request) kmsg.Response {
		r := req.(*kmsg.ProduceRequest)
		resp := r.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range r.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = code.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	})
}

// committedOffset returns the app's committed offset of topic[0], -1 without one (or before the
// group exists).
func committedOffset(t *testing.T, brokers []string, app, topic string) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	offs, err := kadm.NewClient(cl).FetchOffsets(context.Background(), app)
	if errors.Is(err, kerr.GroupIDNotFound) {
		return -1 // the group has not committed yet
	}
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := offs.Lookup(topic, 0); ok {
		return o.At
	}
	return -1
}

// Under exactly-once a record Kafka refuses (and the handler does not skip) must keep its
// transaction from committing: franz-go commits whatever was produced when asked to, so ending
// the transaction with a commit would commit the input offsets without that output. Here the
// first output batch is refused and the default handler fails the app: no committed offset may
// be past the committed outputs.
func TestRefusedRecordNeverCommitsUnderExactlyOnce(t *testing.T) {
	c, brokers := fakeCluster(t, "rr")
	const n = 50
	produceValues(t, brokers, "rr-in", 0, n)
	failed := failFirstTransactionalProduce(c, kerr.InvalidRecord)
	e := eosEngine(t, brokers, "rr", topology.ResetEarliest, nil)
	cancel, done := runEngine(e)
	defer cancel()
	var runErr error
	select {
	case runErr = <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("the engine did not stop on a refused record with the fail handler (refused: %v; %+v)", failed.Load(), e.Metrics())
	}
	if !failed.Load() {
		t.Fatal("no produce was refused: the test did not test anything")
	}
	if runErr == nil {
		t.Fatal("Run returned nil; want the production error")
	}
	out := readCommitted(t, brokers, "rr-out")
	if at := committedOffset(t, brokers, "rr-app", "rr-in"); at > int64(len(out)) {
		t.Fatalf("input committed to %d with %d outputs committed: records lost (Run: %v)", at, len(out), runErr)
	}
}

// A produce refused with INVALID_PRODUCER_EPOCH (the coordinator aborted the transaction, say
// after its timeout) dooms the transaction, not the app: the round aborts, the tasks are rebuilt,
// and every output is committed exactly once. Before, the default production handler stopped
// the instance (seen in TestFaultSuite after a broker bounce).
func TestTransactionErrorOnProduceIsAnAbort(t *testing.T) {
	exactlyOnceThroughAnAbort(t, "pe", func(c *kfake.Cluster) *atomic.Bool {
		return failFirstTransactionalProduce(c, kerr.InvalidProducerEpoch)
	})
}

// A record Kafka refuses, dead-lettered by the production handler, is part of the transaction
// that commits its input offset. Its dead-letter produce starts from the refused record's
// promise (a goroutine: a promise must not block on Produce); here that goroutine is slow, so
// the round's flush is over before the dead-letter record is handed to the client. Before the
// fix it went into the next transaction, which, with no input left, was never committed: the
// input was committed and the record was in neither the output nor the dead-letter topic.
func TestDeadLetteredRefusalCommitsWithItsInput(t *testing.T) {
	const n = 50
	e, brokers := runThroughARefusal(t, "dr", n, topology.ActionDeadLetter, func(e *Engine) {
		e.beforeDeadLetterProduce = func() { time.Sleep(300 * time.Millisecond) }
	})
	out, dead := readCommitted(t, brokers, "dr-out"), readCommitted(t, brokers, "dr-dlq")
	if len(dead) == 0 {
		t.Fatalf("input committed to %d, %d outputs and no dead-letter record committed: the refused records are lost", n, len(out))
	}
	seen := map[string]int{}
	for _, r := range append(out, dead...) {
		seen[string(r.Value)]++
	}
	for i := range n {
		if c := seen[strconv.Itoa(i)]; c != 1 {
			t.Errorf("value %d committed %d times across output and dead-letter topics, want once", i, c)
		}
	}
	if len(seen) != n {
		t.Errorf("%d distinct values committed, want %d", len(seen), n)
	}
	if m := e.Metrics(); m.DeadLettered != int64(len(dead)) {
		t.Errorf("metric DeadLettered %d, %d dead-letter records committed", m.DeadLettered, len(dead))
	}
	// Each dead-letter record names its source record: the input with its value.
	source := map[string]string{}
	for _, r := range readCommitted(t, brokers, "dr-in") {
		source[string(r.Value)] = fmt.Sprintf("dr-in[%d]@%d", r.Partition, r.Offset)
	}
	for _, r := range dead {
		h := map[string]string{}
		for _, x := range r.Headers {
			h[x.Key] = string(x.Value)
		}
		got := fmt.Sprintf("%s[%s]@%s", h[topology.HeaderSourceTopic], h[topology.HeaderSourcePart], h[topology.HeaderSourceOffset])
		if want := source[string(r.Value)]; got != want || h[topology.HeaderErrorStage] != string(topology.StageProduce) {
			t.Errorf("dead-letter record %q names source %s at stage %q, want %s at %q", r.Value, got, h[topology.HeaderErrorStage], want, topology.StageProduce)
		}
	}
}

// Under exactly-once, the Skip production handler drops a record Kafka refused, as it says: the
// transaction commits without it and with its input offsets, nothing is aborted, and the
// record is counted as skipped. Every other record is committed exactly once.
func TestSkippedRefusalCommitsWithoutIt(t *testing.T) {
	const n = 50
	e, brokers := runThroughARefusal(t, "sk", n, topology.ActionSkip, nil)
	m := e.Metrics()
	skipped := m.Skipped[string(topology.StageProduce)]
	out := readCommitted(t, brokers, "sk-out")
	if skipped == 0 || int64(len(out))+skipped != n {
		t.Fatalf("%d outputs committed and %d skipped, want %d in all with some skipped", len(out), skipped, n)
	}
	seen := map[string]int{}
	for _, r := range out {
		seen[string(r.Value)]++
	}
	for v, c := range seen {
		if c != 1 {
			t.Errorf("value %s committed %d times", v, c)
		}
	}
	if m.TransactionsAborted != 0 {
		t.Errorf("%d transactions aborted, want 0: skipping is not a failure", m.TransactionsAborted)
	}
}

// waitInputCommitted waits until app "<name>-app" has committed topic "<name>-in" to n, failing
// the test if the engine stops first or 30s pass.
func waitInputCommitted(t *testing.T, e *Engine, done <-chan error, brokers []string, name string, n int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for committedOffset(t, brokers, name+"-app", name+"-in") < n {
		select {
		case err := <-done:
			t.Fatalf("the engine stopped: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("input not committed to %d within 30s (%+v)", n, e.Metrics())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The first poll takes as many records as fit, not one: it starts before the first assignment,
// when the poll limit (set per assigned partition after each poll) is still 0.
func TestFirstPollTakesMoreThanOneRecord(t *testing.T) {
	_, brokers := fakeCluster(t, "fp")
	const n = 200
	produceValues(t, brokers, "fp-in", 0, n)
	e := eosEngine(t, brokers, "fp", topology.ResetEarliest, nil, func(c *Config) { c.Guarantee = AtLeastOnce })
	var first atomic.Int64
	e.afterPoll = func(_ context.Context, fs kgo.Fetches) {
		if k := fs.NumRecords(); k > 0 {
			first.CompareAndSwap(0, int64(k))
		}
	}
	cancel, done := runEngine(e)
	defer cancel()
	waitInputCommitted(t, e, done, brokers, "fp", n)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if k := first.Load(); k <= 1 {
		t.Fatalf("the first poll with records took %d of the %d available", k, n)
	}
}

// runThroughARefusal copies n records from "<name>-in" to "<name>-out" under exactly-once with a
// production handler that answers action (dead-letter topic "<name>-dlq"), while the cluster
// refuses the first transactional produce, and stops the engine once the input is committed.
// prepare, if not nil, sees the engine before it runs.
func runThroughARefusal(t *testing.T, name string, n int, action topology.Action, prepare func(*Engine)) (*Engine, []string) {
	t.Helper()
	c, brokers := fakeCluster(t, name)
	produceValues(t, brokers, name+"-in", 0, n)
	failed := failFirstTransactionalProduce(c, kerr.InvalidRecord)
	e := eosEngine(t, brokers, name, topology.ResetEarliest, nil, func(c *Config) {
		c.Handlers = topology.ErrorHandlers{
			Production:      func(*topology.RecordError) topology.Action { return action },
			DeadLetterTopic: name + "-dlq",
		}
		c.CreateDeadLetterTopic = true
	})
	if prepare != nil {
		prepare(e)
	}
	cancel, done := runEngine(e)
	defer cancel()
	waitInputCommitted(t, e, done, brokers, name, int64(n))
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !failed.Load() {
		t.Fatal("no produce was refused: the test did not test anything")
	}
	return e, brokers
}
