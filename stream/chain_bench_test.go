package stream_test

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/rifflestream/riffle/serde"
	"github.com/rifflestream/riffle/stream"
	"github.com/rifflestream/riffle/topology"
)

// countingCollector takes a task's output and keeps only a count and a checksum, so the
// benchmark measures the task, not a sink.
type countingCollector struct{ n, sum int }

func (c *countingCollector) Send(o *topology.OutRecord) { c.n++; c.sum += len(o.Value) }
func (c *countingCollector) PartitionCount(string) (int32, error) {
	return 1, nil
}

// chainInput is a q1-shaped input: 8-byte keys, 64-byte values; every fourth one is dropped by
// the filter.
func chainInput(n int) [][]byte {
	vals := make([][]byte, n)
	for i := range vals {
		v := bytes.Repeat([]byte{byte(i)}, 64)
		if i%4 == 0 {
			v[0] = 'x'
		} else {
			v[0] = 'b'
		}
		vals[i] = v
	}
	return vals
}

func keep(v []byte) bool { return v[0] == 'b' }

func convert(v []byte) []byte {
	out := make([]byte, len(v))
	copy(out, v)
	binary.BigEndian.PutUint64(out[8:], binary.BigEndian.Uint64(v[8:])*9/10)
	return out
}

// BenchmarkStatelessChain runs a filter -> mapValues -> to topology through topology.Task, and,
// in the same run, the same two functions called directly ("direct"): the difference is what a
// record costs in Riffle's processing chain, without Kafka.
func BenchmarkStatelessChain(b *testing.B) {
	const n = 4096
	vals := chainInput(n)
	key := []byte("12345678")
	b.Run("riffle", func(b *testing.B) {
		bld := stream.NewBuilder()
		src := stream.From(bld, "in", serde.Bytes(), serde.Bytes())
		stream.MapValues(src.Filter(func(_, v []byte) bool { return keep(v) }),
			func(v []byte) ([]byte, error) { return convert(v), nil }).To("out", serde.Bytes(), serde.Bytes())
		topo, err := bld.Build()
		if err != nil {
			b.Fatal(err)
		}
		plan, err := topo.Plan("bench")
		if err != nil {
			b.Fatal(err)
		}
		col := &countingCollector{}
		task, err := plan.NewTask(topology.TaskID{}, topology.TaskConfig{Collector: col})
		if err != nil {
			b.Fatal(err)
		}
		if err := task.Init(); err != nil {
			b.Fatal(err)
		}
		ts := time.UnixMilli(1767225600000)
		// One RawRecord, reused, as the engine's runner does.
		raw := &topology.RawRecord{}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			*raw = topology.RawRecord{Topic: "in", Offset: int64(i), Key: key, Value: vals[i%n], Timestamp: ts}
			if err := task.Process(raw); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		if want := b.N - (b.N+3)/4; col.n != want {
			b.Fatalf("%d outputs, want %d", col.n, want)
		}
	})
	b.Run("direct", func(b *testing.B) {
		col := &countingCollector{}
		ts := time.UnixMilli(1767225600000)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			raw := topology.RawRecord{Topic: "in", Offset: int64(i), Key: key, Value: vals[i%n], Timestamp: ts}
			if keep(raw.Value) {
				col.Send(&topology.OutRecord{Topic: "out", Partition: -1, Key: raw.Key, Value: convert(raw.Value), Timestamp: raw.Timestamp})
			}
		}
		b.StopTimer()
		if want := b.N - (b.N+3)/4; col.n != want {
			b.Fatalf("%d outputs, want %d", col.n, want)
		}
	})
}
