package engine

import (
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rifflestream/riffle/topology"
)

// A task reading several partitions takes the buffered record with the lowest timestamp next
// (Kafka Streams' rule), keeping each partition's own order.
func TestTakeMergesByTimestamp(t *testing.T) {
	e := &Engine{cfg: Config{MaxBufferedPerPartition: 1000}}
	r := newRunner(e, topology.TaskID{}, nil)
	r.addPartition("a", 0)
	r.addPartition("b", 0)
	rec := func(topic string, off, ts int64) *kgo.Record {
		return &kgo.Record{Topic: topic, Offset: off, Timestamp: time.UnixMilli(ts)}
	}
	r.enqueue("a", []*kgo.Record{rec("a", 0, 10), rec("a", 1, 30), rec("a", 2, 31)})
	r.enqueue("b", []*kgo.Record{rec("b", 0, 20), rec("b", 1, 5), rec("b", 2, 40)})
	r.take(4)
	var got []string
	for _, x := range r.batch {
		got = append(got, x.Topic+string(rune('0'+x.Offset)))
	}
	// a0(10) < b0(20); then a1(30) vs b0(20): b0; then b1(5) < a1(30): b1 (order within b kept);
	// then a1(30) < b2(40).
	if want := []string{"a0", "b0", "b1", "a1"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	r.take(10)
	got = got[:0]
	for _, x := range r.batch {
		got = append(got, x.Topic+string(rune('0'+x.Offset)))
	}
	if want := []string{"a2", "b2"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("then got %v, want %v", got, want)
	}
	if n, _ := r.buffered(); n != 0 {
		t.Fatalf("%d records left", n)
	}
}

// An epoch is done only once it is closed and every record sent in it is acknowledged, however
// the runner's reservations (epoch.reserve) and the acknowledgements interleave.
func TestEpochReservations(t *testing.T) {
	done := func(ep *epoch) bool {
		select {
		case <-ep.done:
			return true
		default:
			return false
		}
	}
	// Acknowledged faster than sent: every sent record is acked before the epoch closes.
	ep := newEpoch(nil)
	ep.reserve(4)
	for range 4 {
		ep.release()
	}
	if done(ep) {
		t.Fatal("done before it was closed")
	}
	ep.reserve(4) // a second reservation, one record of it sent and acked
	ep.release()
	ep.releaseN(1 + 3) // closed, giving back the 3 unused
	if !done(ep) {
		t.Fatal("not done once closed with everything acknowledged")
	}
	if !ep.sent.Load() {
		t.Fatal("an epoch that sent records says it sent none")
	}

	// Closed with records in flight: done with the last acknowledgement, not before.
	ep = newEpoch(nil)
	ep.reserve(8)
	ep.releaseN(1 + 5) // 3 sent, none acked yet
	for i := range 3 {
		if done(ep) {
			t.Fatalf("done with %d records unacknowledged", 3-i)
		}
		ep.release()
	}
	if !done(ep) {
		t.Fatal("not done after the last acknowledgement")
	}

	// Nothing sent: done at close, and it did not send.
	ep = newEpoch(nil)
	ep.releaseN(1)
	if !done(ep) || ep.sent.Load() {
		t.Fatalf("an empty epoch: done %v, sent %v; want done, not sent", done(ep), ep.sent.Load())
	}
}
