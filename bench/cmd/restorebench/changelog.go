package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rifflestream/riffle/bench/internal/load"
	"github.com/rifflestream/riffle/internal/murmur2"
)

// The changelog: key i (0 <= i < n) is "key-" and i in 10 decimal digits, its value valueBytes
// bytes of a pseudo-random stream seeded by i, its timestamp baseTime+i ms. Keys are written in
// a scrambled order (writeOrder), as a store's changelog would hold them, not sorted, and placed
// by Kafka's default partitioner (murmur2 of the key).
const (
	keyPrefix = "key-"
	keyDigits = 10
	baseTime  = int64(1_700_000_000_000)
)

func keyOf(i int64) []byte { return appendKey(nil, i) }

func appendKey(b []byte, i int64) []byte {
	b = append(b, keyPrefix...)
	var d [keyDigits]byte
	for j := keyDigits - 1; j >= 0; j-- {
		d[j] = byte('0' + i%10)
		i /= 10
	}
	return append(b, d[:]...)
}

// parseKey is keyOf's inverse.
func parseKey(k []byte) (int64, error) {
	if len(k) != len(keyPrefix)+keyDigits || string(k[:len(keyPrefix)]) != keyPrefix {
		return 0, fmt.Errorf("not a benchmark key: %q", k)
	}
	return strconv.ParseInt(string(k[len(keyPrefix):]), 10, 64)
}

// appendValue appends key i's value of n bytes: a splitmix64 stream seeded by i.
func appendValue(b []byte, i int64, n int) []byte {
	x := uint64(i)*0x9e3779b97f4a7c15 + 0x632be59bd9b4e5d9
	var w [8]byte
	for n > 0 {
		x += 0x9e3779b97f4a7c15
		z := x
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		z ^= z >> 31
		binary.LittleEndian.PutUint64(w[:], z)
		c := min(n, 8)
		b = append(b, w[:c]...)
		n -= c
	}
	return b
}

func partitionOf(key []byte, partitions int32) int32 { return murmur2.Partition(key, partitions) }

// writeOrder returns the j-th key written: a bijection of [0, n) (multiplication by a number
// prime to n), so consecutive writes are far apart in key order.
type writeOrder struct{ n, mul int64 }

func newWriteOrder(n int64) writeOrder {
	mul := int64(2_654_435_761) % max(n, 1)
	for n > 1 && gcd(mul, n) != 1 {
		mul++
	}
	if n <= 1 {
		mul = 1
	}
	return writeOrder{n: n, mul: mul}
}

func (o writeOrder) at(j int64) int64 {
	// (j * mul) mod n: both factors are below n, so the product fits in 64 bits for n < 2^32.
	return int64((uint64(j) * uint64(o.mul)) % uint64(o.n))
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// createChangelog creates a compacted topic shaped like a store's changelog (what the engine
// creates: cleanup.policy=compact), keeping records whatever their timestamps.
func createChangelog(ctx context.Context, adm *kadm.Client, topic string, partitions int32) error {
	compact, forever := "compact", "-1"
	resp, err := adm.CreateTopic(ctx, partitions, 1, map[string]*string{"cleanup.policy": &compact, "retention.ms": &forever}, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("creating %s: %w", topic, err)
	}
	for {
		md, err := adm.Metadata(ctx, topic)
		if err == nil {
			if td, ok := md.Topics[topic]; ok && td.Err == nil && int32(len(td.Partitions)) == partitions && allLed(td) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topic %s has no leader for every partition: %w", topic, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func allLed(td kadm.TopicDetail) bool {
	for _, p := range td.Partitions {
		if p.Err != nil || p.Leader < 0 {
			return false
		}
	}
	return true
}

// loaded is what writeChangelog wrote.
type loaded struct {
	Records int64
	Bytes   int64 // keys and values
	Took    time.Duration
	// PerPartition is the number of records written to each partition.
	PerPartition []int64
}

// writeChangelog writes the n keys to topic as fast as the broker takes them, with the
// benchmark loader's producer settings (bench/internal/load: 1 MiB batches, 5 ms linger, no
// compression, acks=all), and returns once all are acknowledged.
func writeChangelog(ctx context.Context, brokers []string, topic string, partitions int32, n int64, valueBytes int) (loaded, error) {
	cl, err := kgo.NewClient(append(load.ProducerOpts(), kgo.SeedBrokers(brokers...))...)
	if err != nil {
		return loaded{}, err
	}
	defer cl.Close()
	out := loaded{PerPartition: make([]int64, partitions)}
	var (
		mu     sync.Mutex
		failed error
	)
	promise := func(r *kgo.Record, err error) {
		if err != nil {
			mu.Lock()
			if failed == nil {
				failed = fmt.Errorf("producing to %s[%d]: %w", r.Topic, r.Partition, err)
			}
			mu.Unlock()
		}
	}
	order := newWriteOrder(n)
	t0 := time.Now()
	var block []byte // records are cut from 1 MiB blocks: one allocation per block
	for j := int64(0); j < n; j++ {
		i := order.at(j)
		size := len(keyPrefix) + keyDigits + valueBytes
		if cap(block)-len(block) < size {
			block = make([]byte, 0, max(1<<20, size))
		}
		s := len(block)
		block = appendKey(block, i)
		k := len(block)
		block = appendValue(block, i, valueBytes)
		rec := &kgo.Record{Topic: topic, Key: block[s:k:k], Value: block[k:len(block):len(block)], Timestamp: time.UnixMilli(baseTime + i)}
		rec.Partition = partitionOf(rec.Key, partitions)
		out.PerPartition[rec.Partition]++
		out.Bytes += int64(size)
		cl.Produce(ctx, rec, promise)
		if j%100_000 == 0 {
			if err := ctx.Err(); err != nil {
				return out, err
			}
			mu.Lock()
			err := failed
			mu.Unlock()
			if err != nil {
				return out, err
			}
		}
	}
	if err := cl.Flush(ctx); err != nil {
		return out, fmt.Errorf("flushing: %w", err)
	}
	out.Took = time.Since(t0)
	out.Records = n
	mu.Lock()
	defer mu.Unlock()
	return out, failed
}

// errMismatch marks a restored store that does not hold the changelog's keys and values.
var errMismatch = errors.New("the restored store does not match the changelog")
