package engine

import (
	"context"
	"fmt"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rifflestream/riffle/internal/murmur2"
	"github.com/rifflestream/riffle/topology"
)

// Records' promise data packed in metaBlocks unpack to what was packed: each record's source
// coordinates and changelog slot, its runner and epoch, across blocks that fill up, change epoch
// or run out of room for source partitions and slots.
func TestMetaBlocksKeepEachRecordsMeta(t *testing.T) {
	r := &runner{epoch: newEpoch(nil)}
	slots := []*atomic.Int64{new(atomic.Int64), new(atomic.Int64), new(atomic.Int64), new(atomic.Int64), new(atomic.Int64), nil}
	type sent struct {
		e    *metaElem
		want outMeta
	}
	var all []sent
	blocks := map[*metaBlock]bool{}
	for i := range 2000 {
		if i == 1500 {
			r.epoch = newEpoch(r.epoch) // a commit: later records go to new blocks
		}
		var origin topology.Origin
		if i%11 != 0 { // every 11th has no source record (a punctuation)
			origin = topology.Origin{Topic: fmt.Sprintf("t%d", i%6), Partition: int32(i % 3), Offset: int64(1000 + i)}
		}
		slot := slots[i%len(slots)]
		e := r.newMetaElem(origin, slot)
		all = append(all, sent{e, outMeta{ep: r.epoch, r: r, origin: origin, slot: slot}})
		blocks[e.block()] = true
	}
	for i, s := range all {
		if got := s.e.meta(); got != s.want {
			t.Fatalf("record %d: unpacked %+v, want %+v", i, got, s.want)
		}
		if b := s.e.block(); b.ep != s.want.ep {
			t.Fatalf("record %d: block of another epoch", i)
		}
	}
	// 12 source partitions and 5 slots cycle faster than 4 fit: blocks fill by table room here,
	// but never hold more than metaBlockSize records, and the epoch change starts a new one.
	if len(blocks) < 2000/metaBlockSize {
		t.Fatalf("%d blocks for 2000 records", len(blocks))
	}
	for b := range blocks {
		if b.n > metaBlockSize || b.nOrigins > len(b.origins) || b.nSlots > len(b.slots) {
			t.Fatalf("block over its limits: %d records, %d origins, %d slots", b.n, b.nOrigins, b.nSlots)
		}
	}
	// One source partition and no slot: blocks are full before a new one starts.
	r2 := &runner{epoch: newEpoch(nil)}
	first := r2.newMetaElem(topology.Origin{Topic: "in", Partition: 2, Offset: 0}, nil).block()
	for i := 1; i < metaBlockSize; i++ {
		if b := r2.newMetaElem(topology.Origin{Topic: "in", Partition: 2, Offset: int64(i)}, nil).block(); b != first {
			t.Fatalf("record %d went to a new block", i)
		}
	}
	if r2.newMetaElem(topology.Origin{Topic: "in", Partition: 2}, nil).block() == first {
		t.Fatal("a full block took one more record")
	}
}

// The partitioner sends a record to its set partition, a keyed record to murmur2(key) mod n, and
// records without a key to one partition for stickyBytes, then to another one; and it does not
// make kgo hold the topic's lock while buffering (no OnNewBatch).
func TestPartitioner(t *testing.T) {
	tp := partitioner{}.ForTopic("out")
	if _, ok := tp.(kgo.TopicPartitionerOnNewBatch); ok {
		t.Fatal("the partitioner implements OnNewBatch: kgo would serialize the tasks producing to a topic")
	}
	const n = 6
	for i := range 100 {
		key := []byte(fmt.Sprintf("key-%d", i))
		r := &kgo.Record{Key: key, Partition: -1}
		if !tp.RequiresConsistency(r) {
			t.Fatal("a keyed record does not require consistency")
		}
		if got, want := tp.Partition(r, n), int(murmur2.Partition(key, n)); got != want {
			t.Fatalf("key %q: partition %d, want %d", key, got, want)
		}
		set := &kgo.Record{Key: key, Partition: int32(i % n)}
		if got := tp.Partition(set, n); got != i%n {
			t.Fatalf("record set to partition %d went to %d", i%n, got)
		}
	}
	value := make([]byte, 1000)
	var runs []int // lengths of the runs of records to one partition
	counts := make([]int, n)
	last, run := -1, 0
	for range 20_000 {
		r := &kgo.Record{Value: value, Partition: -1}
		if tp.RequiresConsistency(r) {
			t.Fatal("a record without a key or partition requires consistency")
		}
		p := tp.Partition(r, n)
		counts[p]++
		if p != last && last >= 0 {
			runs = append(runs, run)
			run = 0
		}
		last = p
		run++
	}
	// 64 KiB of 1,001-byte records: 66 per partition, then another partition.
	want := (stickyBytes + 1000) / 1001
	for i, l := range runs {
		if l != want {
			t.Fatalf("run %d: %d records to one partition, want %d", i, l, want)
		}
	}
	for p, c := range counts {
		if c < 20_000/n/2 {
			t.Fatalf("partition %d got %d of 20,000 records: %v", p, c, counts)
		}
	}
}

// setOutRecord leaves a record, reused from input or new, equal to the composite literal it
// replaces: every field the output sets, and the consumer's fields zeroed.
func TestSetOutRecordIsTheLiteral(t *testing.T) {
	key, value, other := []byte("key"), []byte("value"), []byte("other")
	ts := time.UnixMilli(1_700_000_000_000)
	m := &metaElem{}
	outs := []topology.OutRecord{
		{Topic: "out", Partition: -1, Key: key, Value: value, Timestamp: ts},                 // key and time passed through
		{Topic: "out", Partition: 3, Key: other, Value: nil, Timestamp: ts.Add(time.Second)}, // new key, tombstone
		{Topic: "in", Partition: -1, Key: nil, Value: value, Timestamp: ts.UTC(), // same instant, other location
			Headers: topology.Headers{{Key: "h", Value: value}}},
		{Topic: "out", Partition: -1, Key: key[:2], Value: value, Timestamp: ts}, // a shorter key over the same memory
	}
	for i, o := range outs {
		for _, reused := range []bool{true, false} {
			rec := &kgo.Record{}
			if reused {
				*rec = kgo.Record{Topic: "in", Partition: 7, Key: key, Value: []byte("input"), Timestamp: ts,
					Headers: []kgo.RecordHeader{{Key: "in"}}, Attrs: kgo.RecordAttrs{}, ProducerEpoch: 2, ProducerID: 99,
					LeaderEpoch: 5, Offset: 1234, Context: context.Background()}
			}
			setOutRecord(rec, &o, m)
			want := kgo.Record{Topic: o.Topic, Partition: o.Partition, Key: o.Key, Value: o.Value,
				Timestamp: o.Timestamp, Headers: toKgoHeaders(o.Headers), Context: m}
			if !reflect.DeepEqual(*rec, want) || !sameSlice(rec.Key, want.Key) || !sameSlice(rec.Value, want.Value) ||
				rec.Timestamp != want.Timestamp || rec.Context != want.Context {
				t.Errorf("output %d (reused %v): got\n%+v\nwant\n%+v", i, reused, *rec, want)
			}
		}
	}
}
