package engine

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rifflestream/riffle/serde"
	"github.com/rifflestream/riffle/state"
	"github.com/rifflestream/riffle/topology"
)

// A transaction that ends in an error (here the producer is fenced: the TxnOffsetCommit is
// refused with INVALID_PRODUCER_EPOCH, as when the coordinator timed the transaction out during
// a broker bounce) stops the instance, and nothing of it may reach local state: not even through
// a commit round after it, which, with nothing new polled or produced, counts as committed
// without ending a transaction. The exactly-once fault suite found this: an instance fenced
// mid-round ran one more round before stopping, its tasks (kept) applied the failed round's
// flushed writes with their changelog checkpoint, and the restarted instance counted every
// aborted input twice. Here the round after the failure is run by the test (afterRound), and a
// second instance on the same state dir must count each input once.
func TestFailedEndLeavesNoWritesBehind(t *testing.T) {
	c, brokers := fakeCluster(t, "fenced")
	const n = 50
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic("fenced-in"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := range n {
		cl.Produce(context.Background(), &kgo.Record{Key: []byte("k"), Value: []byte{byte(i)}}, nil)
	}
	if err := cl.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	stateDir := t.TempDir()

	refused := failFirstTxnOffsetCommit(c, kerr.InvalidProducerEpoch)
	first := countingEngine(t, brokers, "fenced", stateDir)
	var rounds, afterFailure int
	first.afterRound = func(err error) {
		rounds++
		if err != nil && afterFailure == 0 {
			// What the committer did before it stopped at a failed round: one more round.
			afterFailure++
			if err := first.commitTxn(context.Background()); err != nil {
				t.Logf("the round after the failed one: %v", err)
			}
		}
	}
	_, done := runEngine(first)
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "fenced") {
			t.Fatalf("Run returned %v, want the fenced error", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the fenced instance did not stop")
	}
	if !refused.Load() || afterFailure == 0 {
		t.Fatalf("refused TxnOffsetCommit: %v, rounds after the failure: %d: the test did not test anything", refused.Load(), afterFailure)
	}

	second := countingEngine(t, brokers, "fenced", stateDir)
	cancel, done := runEngine(second)
	defer cancel()
	out := waitCommitted(t, brokers, "fenced-out", done, 60*time.Second, func(got []*kgo.Record) bool { return len(got) >= n })
	last := out[len(out)-1]
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	count, err := serde.Int64().Deserialize("", last.Value)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != n || count != n {
		t.Fatalf("%d committed outputs, the last count %d; want %d and %d (aborted writes applied to local state count twice)", len(out), count, n, n)
	}
}

// countingEngine makes an exactly-once engine that counts the records of each key of
// "<name>-in" in a store with a changelog and writes every new count to "<name>-out".
func countingEngine(t *testing.T, brokers []string, name, stateDir string) *Engine {
	t.Helper()
	topo := topology.New()
	src := topology.AddSource(topo, "in", []string{name + "-in"}, serde.String(), serde.Bytes())
	counted := topology.AddProcessor(topo, "count", func() topology.Processor[string, []byte, string, int64] { return &counter{} }, src)
	topology.AddSink(topo, "out", name+"-out", serde.String(), serde.Int64(), []topology.Node[string, int64]{counted})
	topo.AddStore(state.NewKeyValue("counts", serde.String(), serde.Int64(), state.WithCaching(false)), "count")
	plan, err := topo.Plan(name + "-app")
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Config{AppID: name + "-app", Brokers: brokers, Plan: plan, Guarantee: ExactlyOnce,
		OffsetReset: topology.ResetEarliest, CommitInterval: 100 * time.Millisecond, StateDir: stateDir})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

type counter struct {
	ctx    topology.Context[string, int64]
	counts state.KeyValueStore[string, int64]
}

func (p *counter) Init(ctx topology.Context[string, int64]) (err error) {
	p.ctx = ctx
	p.counts, err = state.KeyValue[string, int64](ctx, "counts")
	return err
}

func (p *counter) Process(r topology.Record[string, []byte]) error {
	n, _, err := p.counts.Get(r.Key)
	if err != nil {
		return err
	}
	n++
	if err := p.counts.Put(r.Key, n); err != nil {
		return err
	}
	return p.ctx.Forward(topology.Record[string, int64]{Key: r.Key, Value: n, Timestamp: r.Timestamp})
}

func (p *counter) Close() error { return nil }
