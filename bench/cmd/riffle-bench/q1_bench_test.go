package main

import (
	"testing"
	"time"

	"github.com/rifflestream/riffle/bench/nexmark"
	"github.com/rifflestream/riffle/bench/workload"
	"github.com/rifflestream/riffle/topology"
)

// outCounter is a task's collector that keeps only a count and a checksum of what it is sent,
// so the benchmark measures the processing, not a producer.
type outCounter struct{ n, sum int }

func (c *outCounter) Send(o *topology.OutRecord)           { c.n++; c.sum += len(o.Value) }
func (c *outCounter) PartitionCount(string) (int32, error) { return 1, nil }

// q1Events returns n encoded Nexmark events and their keys, as the benchmark loads them.
func q1Events(b *testing.B, n int) (keys, values [][]byte) {
	g, err := nexmark.NewGenerator(nexmark.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	var ev nexmark.Event
	for range n {
		g.Next(&ev)
		keys = append(keys, nexmark.AppendKey(nil, &ev))
		values = append(values, nexmark.Append(nil, &ev))
	}
	return keys, values
}

// BenchmarkQ1Processing runs q1 (keep the bids, price in euros, re-encoded) on Nexmark events in
// process, without Kafka: "riffle" through riffle-bench's own q1 topology (build) in a
// topology.Task, "bare" through the bare loop's code for it (decode into a reused bid, convert,
// append into a slab). The difference is what Riffle's processing layers cost per record (source,
// filter, mapValues with a typed value, sink with an appending serde), the part of the q1 drain's
// CPU gap (bench/PROFILE.md) that a benchmark without a broker measures repeatably.
func BenchmarkQ1Processing(b *testing.B) {
	const n = 1 << 14
	keys, values := q1Events(b, n)
	bids := 0
	for _, v := range values {
		if nexmark.IsBid(v) {
			bids++
		}
	}
	ts := time.UnixMilli(nexmark.DefaultBaseTime.UnixMilli())
	b.Run("riffle", func(b *testing.B) { benchWorkloadTask(b, workload.Q1, keys, values, ts, bids) })
	b.Run("bare", func(b *testing.B) {
		col := &outCounter{}
		var bid nexmark.Bid
		var slab []byte
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			v := values[i%n]
			if !nexmark.IsBid(v) {
				continue
			}
			if err := nexmark.DecodeBid(v, &bid); err != nil {
				b.Fatal(err)
			}
			bid.Price = workload.DollarsToEuros(bid.Price)
			size := nexmark.BidSize(&bid)
			if cap(slab)-len(slab) < size {
				slab = make([]byte, 0, max(1<<20, size))
			}
			out := nexmark.AppendBid(slab[len(slab):len(slab):cap(slab)], &bid)
			slab = slab[:len(slab)+len(out)]
			col.Send(&topology.OutRecord{Topic: "out", Partition: -1, Key: keys[i%n], Value: out, Timestamp: ts})
		}
		b.StopTimer()
		checkQ1(b, col, bids, n)
	})
}

// benchWorkloadTask runs the events through riffle-bench's topology of workload w in one task,
// b.N records, and checks that want of every len(values) records were output.
func benchWorkloadTask(b *testing.B, w workload.Name, keys, values [][]byte, ts time.Time, want int) {
	task, col := workloadTask(b, w)
	n := len(values)
	raw := &topology.RawRecord{Topic: "in", Timestamp: ts} // reused, as the engine's runner does
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		raw.Offset, raw.Key, raw.Value = int64(i), keys[i%n], values[i%n]
		if err := task.Process(raw); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	checkQ1(b, col, want, n)
}

// workloadTask returns riffle-bench's topology of workload w as one initialized task, sending
// to a collector that counts.
func workloadTask(b *testing.B, w workload.Name) (*topology.Task, *outCounter) {
	b.Helper()
	bld, err := build(w, "in", "out")
	if err != nil {
		b.Fatal(err)
	}
	topo, err := bld.Build()
	if err != nil {
		b.Fatal(err)
	}
	plan, err := topo.Plan("bench")
	if err != nil {
		b.Fatal(err)
	}
	col := &outCounter{}
	task, err := plan.NewTask(topology.TaskID{}, topology.TaskConfig{Collector: col})
	if err != nil {
		b.Fatal(err)
	}
	if err := task.Init(); err != nil {
		b.Fatal(err)
	}
	return task, col
}

// checkQ1 fails the benchmark unless every record to keep (bids of every n records), and
// nothing else, was output.
func checkQ1(b *testing.B, col *outCounter, bids, n int) {
	b.Helper()
	if full := b.N / n * bids; col.n < full || col.n > full+bids {
		b.Fatalf("%d outputs for %d records (%d bids in every %d)", col.n, b.N, bids, n)
	}
}

// BenchmarkQ2Processing is BenchmarkQ1Processing for q2 (bids on auctions that are multiples of
// 123, projected to (auction, price)): almost no output, so it measures what Riffle's layers cost
// per input record (source, filter).
func BenchmarkQ2Processing(b *testing.B) {
	const n = 1 << 14
	keys, values := q1Events(b, n)
	kept := 0
	for _, v := range values {
		if _, keep, err := workload.Q2Value(nil, v); err != nil {
			b.Fatal(err)
		} else if keep {
			kept++
		}
	}
	ts := time.UnixMilli(nexmark.DefaultBaseTime.UnixMilli())
	b.Run("riffle", func(b *testing.B) { benchWorkloadTask(b, workload.Q2, keys, values, ts, kept) })
	b.Run("bare", func(b *testing.B) {
		col := &outCounter{}
		var slab []byte
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if cap(slab)-len(slab) < 16 {
				slab = make([]byte, 0, 1<<20)
			}
			out, keep, err := workload.Q2Value(slab[len(slab):len(slab):cap(slab)], values[i%n])
			if err != nil {
				b.Fatal(err)
			}
			if keep {
				slab = slab[:len(slab)+len(out)]
				col.Send(&topology.OutRecord{Topic: "out", Partition: -1, Key: keys[i%n], Value: out, Timestamp: ts})
			}
		}
		b.StopTimer()
		checkQ1(b, col, kept, n)
	})
}
