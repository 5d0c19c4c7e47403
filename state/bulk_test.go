package state

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/rifflestream/riffle/topology"
)

// benchChunk is a chunk as a restore of the benchmark's changelog hands it over: n distinct
// 14-byte keys in a scrambled order with 100-byte random values, laid out one after the other.
func benchChunk(n int) []topology.ChangelogEntry {
	rng := rand.New(rand.NewPCG(1, 2))
	mem := make([]byte, 0, n*114)
	recs := make([]topology.ChangelogEntry, n)
	for i, k := range rng.Perm(n) {
		s := len(mem)
		mem = fmt.Appendf(mem, "key-%010d", k*7)
		ks := len(mem)
		for j := 0; j < 100; j += 8 {
			mem = binary.LittleEndian.AppendUint64(mem, rng.Uint64())
		}
		mem = mem[:ks+100]
		recs[i] = topology.ChangelogEntry{Key: mem[s:ks:ks], Value: mem[ks:len(mem):len(mem)], Timestamp: int64(i)}
	}
	return recs
}

func BenchmarkSortAndGather(b *testing.B) {
	recs := benchChunk(150_000)
	prefix := partitionPrefix(dataTag, "restorebench", 3)
	var s ingestScratch
	b.ResetTimer()
	for range b.N {
		order := s.sortedOrder(recs)
		per := s.gather(recs, order, prefix)
		var n int
		for j := range order {
			if j%per == 0 {
				s.warm(j / per)
			}
			k, v := s.staged(s.pos[j])
			n += len(k) + len(v)
		}
		if n == 0 {
			b.Fatal("nothing staged")
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(recs)), "ns/record")
}

func TestGatherStagesSortedRecords(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	recs := genChangelog(rng, 20_000)
	prefix := []byte("pfx")
	var s ingestScratch
	order := s.sortedOrder(recs)
	per := s.gather(recs, order, prefix)
	if per <= 0 || per&(per-1) != 0 {
		t.Fatalf("bucket of %d records", per)
	}
	for j, o := range order {
		k, v := s.staged(s.pos[j])
		r := recs[o.i]
		if !bytes.Equal(k, append(bytes.Clone(prefix), r.Key...)) {
			t.Fatalf("rank %d: key %q, want %q", j, k, r.Key)
		}
		if (v == nil) != (r.Value == nil) || (v != nil && !bytes.Equal(v, encodeValue(r.Timestamp, r.Value))) {
			t.Fatalf("rank %d: value %q, want %q", j, v, r.Value)
		}
	}
}

func TestWorthCompressing(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	if worthCompressing(benchChunk(5000)) {
		t.Error("random values judged compressible")
	}
	var text []topology.ChangelogEntry
	for i := range 5000 {
		v := fmt.Appendf(nil, `{"user":%d,"name":"user-%d","region":"eu-west-%d","active":true,"score":%d}`, i, rng.IntN(100000), rng.IntN(4), rng.IntN(1000))
		text = append(text, topology.ChangelogEntry{Key: fmt.Appendf(nil, "k%d", i), Value: v})
	}
	if !worthCompressing(text) {
		t.Error("JSON values judged incompressible")
	}
	if !worthCompressing([]topology.ChangelogEntry{{Key: []byte("a")}}) {
		t.Error("a chunk of deletes is not left to Pebble")
	}
}

func BenchmarkSortOnly(b *testing.B) {
	recs := benchChunk(150_000)
	var s ingestScratch
	b.ResetTimer()
	for range b.N {
		s.sortedOrder(recs)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(recs)), "ns/record")
}

func BenchmarkGatherOnly(b *testing.B) {
	recs := benchChunk(150_000)
	prefix := partitionPrefix(dataTag, "restorebench", 3)
	var s ingestScratch
	order := s.sortedOrder(recs)
	b.ResetTimer()
	for range b.N {
		s.gather(recs, order, prefix)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(recs)), "ns/record")
}

// BenchmarkPebbleRestore restores 1M records (restorebench's changelog: 14-byte keys in a
// scrambled order, 100-byte random values) into four fresh store partitions of one Pebble DB in
// the engine's 16 MiB chunks, one partition after the other: the write side of a restore (sort,
// gather, sstable, ingest) without Kafka. ns/record is per restored record.
func BenchmarkPebbleRestore(b *testing.B) {
	const n, parts, chunk = 1 << 20, 4, 16 << 20 / 128
	recs := benchChunk(n)
	b.SetBytes(int64(n * 114))
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		be, err := OpenPebble(b.TempDir(), PebbleOptions{})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for p := range parts {
			v := be.View("restorebench", int32(p)).(restorer)
			part := recs[p*n/parts : (p+1)*n/parts]
			for lo := 0; lo < len(part); lo += chunk {
				hi := min(len(part), lo+chunk)
				if err := v.Restore(part[lo:hi], Checkpoint{Offset: int64(hi)}); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.StopTimer()
		if err := be.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
}
