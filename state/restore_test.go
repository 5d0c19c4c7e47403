package state

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/rifflestream/riffle/serde"
	"github.com/rifflestream/riffle/topology"
)

// refValue is what the reference says a key holds after a changelog prefix.
type refValue struct {
	value []byte
	ts    int64
}

// genChangelog makes a changelog of n records over a few thousand keys: several versions per
// key, tombstones, keys that share long prefixes, are prefixes of each other, are empty or hold
// 0x00 and 0xff bytes.
func genChangelog(rng *rand.Rand, n int) []topology.ChangelogEntry {
	var keys [][]byte
	for i := 0; i < 3000; i++ {
		var k []byte
		switch i % 4 {
		case 0:
			k = fmt.Appendf(nil, "user-%06d", rng.IntN(1_000_000))
		case 1:
			k = fmt.Appendf(nil, "user-%06d", i) // shares "user-00" with many
		case 2:
			k = make([]byte, rng.IntN(12))
			for j := range k {
				k[j] = []byte{0x00, 0x01, 0x7f, 0xfe, 0xff}[rng.IntN(5)]
			}
		default:
			k = []byte(fmt.Sprintf("user-%06d", i-2))[:5+rng.IntN(6)] // a prefix of another key
		}
		keys = append(keys, k)
	}
	keys = append(keys, []byte{}) // the empty key
	out := make([]topology.ChangelogEntry, n)
	for i := range out {
		k := keys[rng.IntN(len(keys))]
		e := topology.ChangelogEntry{Key: bytes.Clone(k), Timestamp: int64(1000 + i)}
		if rng.IntN(100) >= 15 {
			e.Value = fmt.Appendf(nil, "v%d-%s", i, bytes.Repeat([]byte{'x'}, rng.IntN(300)))
		}
		out[i] = e
	}
	return out
}

// TestBulkRestoreMatchesReference restores a changelog in chunks large enough for Pebble's bulk
// load (sstable ingestion) and small enough for a batch, across two close/reopen cycles of the
// store, and compares the store with a map built by applying the changelog in order.
func TestBulkRestoreMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	log := genChangelog(rng, 60_000)
	other := genChangelog(rng, 5_000) // the neighbouring partition, restored alongside

	// The reference, computed by applying every record in changelog order.
	ref := map[string]refValue{}
	for _, e := range log {
		if e.Value == nil {
			delete(ref, string(e.Key))
		} else {
			ref[string(e.Key)] = refValue{value: e.Value, ts: e.Timestamp}
		}
	}
	if len(ref) < 1000 {
		t.Fatalf("the reference holds %d keys: the generator is too narrow", len(ref))
	}

	// Chunks alternate between large (ingested) and small (one batch) ones.
	var chunks [][2]int
	for lo, i := 0, 0; lo < len(log); i++ {
		limit := 1_500_000
		if i%3 == 2 {
			limit = 100_000
		}
		hi, size := lo, 0
		for hi < len(log) && size < limit {
			size += len(log[hi].Key) + len(log[hi].Value)
			hi++
		}
		chunks = append(chunks, [2]int{lo, hi})
		lo = hi
	}
	var ingested, batched int
	for _, c := range chunks {
		size := 0
		for _, e := range log[c[0]:c[1]] {
			size += len(e.Key) + len(e.Value)
		}
		if size >= ingestMinBytes {
			ingested++
		} else {
			batched++
		}
	}
	if ingested < 2 || batched < 1 {
		t.Fatalf("%d ingested and %d batched chunks: both paths must be taken", ingested, batched)
	}

	dir := t.TempDir()
	spec := NewKeyValue("kv", serde.Bytes(), serde.Bytes())
	open := func() (*Manager, *kvStore[[]byte, []byte], *kvStore[[]byte, []byte]) {
		m, err := OpenManager(ManagerOptions{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		st := func(p int32) *kvStore[[]byte, []byte] {
			s, err := m.OpenStore(topology.StoreContext{Task: topology.TaskID{Partition: p}, Spec: spec, Changelog: "app-kv-changelog"})
			if err != nil {
				t.Fatal(err)
			}
			return s.(*kvStore[[]byte, []byte])
		}
		return m, st(1), st(2)
	}
	m, s, n := open()
	if err := n.Restore(slices.Clone(other), int64(len(other))); err != nil {
		t.Fatal(err)
	}
	third := len(chunks) / 3
	for round, part := range [][][2]int{chunks[:third], chunks[third : 2*third], chunks[2*third:]} {
		if round > 0 {
			// Restart: the store resumes from its checkpoint, where the last chunk left it.
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			m, s, n = open()
			from, ok, err := s.RestoreFrom()
			if err != nil || !ok || from != int64(part[0][0]) {
				t.Fatalf("round %d: checkpoint %d (%v, %v), want %d", round, from, ok, err, part[0][0])
			}
		}
		for _, c := range part {
			// The restore path keeps slices of the records it is given: hand it copies, as
			// fetched records are.
			if err := s.Restore(slices.Clone(log[c[0]:c[1]]), int64(c[1])); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m, s, n = open()
	defer m.Close()

	if from, ok, err := s.RestoreFrom(); err != nil || !ok || from != int64(len(log)) {
		t.Fatalf("final checkpoint %d (%v, %v), want %d", from, ok, err, len(log))
	}
	it, err := s.All()
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for it.Next() {
		want, ok := ref[string(it.Key())]
		if !ok {
			t.Fatalf("the store holds %q, which the changelog deleted or never wrote", it.Key())
		}
		if !bytes.Equal(it.Value(), want.value) || it.Timestamp().UnixMilli() != want.ts {
			t.Fatalf("key %q: %.20q @%d, want %.20q @%d (the newest version)", it.Key(), it.Value(), it.Timestamp().UnixMilli(), want.value, want.ts)
		}
		seen++
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	it.Close()
	if seen != len(ref) {
		t.Fatalf("the store holds %d keys, the reference %d", seen, len(ref))
	}
	if c, err := s.ApproximateCount(); err != nil || c != int64(len(ref)) {
		t.Fatalf("ApproximateCount = %d, %v; want %d", c, err, len(ref))
	}
	for _, e := range log {
		if _, live := ref[string(e.Key)]; live {
			continue
		}
		if _, ok, err := s.Get(e.Key); err != nil || ok {
			t.Fatalf("deleted key %q: found %v, err %v", e.Key, ok, err)
		}
	}

	// The neighbouring partition is untouched by the other's restore.
	refOther := map[string][]byte{}
	for _, e := range other {
		if e.Value == nil {
			delete(refOther, string(e.Key))
		} else {
			refOther[string(e.Key)] = e.Value
		}
	}
	if c, err := n.ApproximateCount(); err != nil || c != int64(len(refOther)) {
		t.Fatalf("partition 2 holds %d keys (%v), want %d", c, err, len(refOther))
	}
	for k, v := range refOther {
		got, ok, err := n.Get([]byte(k))
		if err != nil || !ok || !bytes.Equal(got, v) {
			t.Fatalf("partition 2, key %q: %.20q %v %v", k, got, ok, err)
		}
	}
}

// TestSortedOrder checks the bulk load's sort against a stable sort by bytes.Compare.
func TestSortedOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	for round := 0; round < 50; round++ {
		var recs []topology.ChangelogEntry
		prefix := bytes.Repeat([]byte{byte(rng.IntN(256))}, rng.IntN(20))
		for i := 0; i < 1+rng.IntN(400); i++ {
			k := append(bytes.Clone(prefix), make([]byte, rng.IntN(14))...)
			for j := len(prefix); j < len(k); j++ {
				k[j] = byte(rng.IntN(4)) * 0x55 // 0x00, 0x55, 0xaa, 0xff: many ties and prefixes
			}
			recs = append(recs, topology.ChangelogEntry{Key: k})
		}
		want := make([]int, len(recs))
		for i := range want {
			want[i] = i
		}
		slices.SortStableFunc(want, func(a, b int) int { return bytes.Compare(recs[a].Key, recs[b].Key) })
		got := sortedOrder(recs)
		for i := range want {
			if int(got[i].i) != want[i] {
				t.Fatalf("round %d: position %d holds record %d (%x), want %d (%x)", round, i, got[i].i, recs[got[i].i].Key, want[i], recs[want[i]].Key)
			}
		}
	}
	if got := sortedOrder(nil); len(got) != 0 {
		t.Fatalf("sortedOrder(nil) = %v", got)
	}
}
