package engine

import (
	"fmt"
	"sync/atomic"
	"testing"

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
