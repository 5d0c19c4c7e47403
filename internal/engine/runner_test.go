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
