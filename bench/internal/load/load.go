// Package load writes Nexmark events into Kafka for the benchmark: all at once as fast as the
// broker takes them (Load), or at a fixed rate with a produce-time header for latency runs
// (Paced). It also creates and deletes the benchmark's topics.
package load

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rifflestream/riffle/bench/nexmark"
	"github.com/rifflestream/riffle/bench/workload"
)

// HeaderProduceTime is the header Paced stamps on every record: the wall-clock time the record
// was handed to the producer, as 8 bytes of big-endian unix nanoseconds.
const HeaderProduceTime = "pt"

// ProducerOpts are the producer settings of the loader, the same as every system's output
// producer (workload.ProducerLinger, ProducerBatchBytes, no compression, acks=all), with records
// placed by nexmark.Partition.
func ProducerOpts() []kgo.Opt {
	return []kgo.Opt{
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerLinger(workload.ProducerLinger),
		kgo.ProducerBatchMaxBytes(workload.ProducerBatchBytes),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.MaxBufferedRecords(100_000),
	}
}

// Observer is told of every event written, and the partition it went to.
type Observer func(ev *nexmark.Event, partition int32)

// Load writes the first n events of cfg to topic, which has the given partition count, as fast as
// the client takes them, and returns once all are acknowledged. The client must have been made
// with ProducerOpts. Each record is keyed by the event's key id, timestamped with its event time
// and placed by nexmark.Partition; observe, if not nil, is called for each.
func Load(ctx context.Context, cl *kgo.Client, topic string, partitions int32, cfg nexmark.Config, n int64, observe Observer) error {
	gen, err := nexmark.NewGenerator(cfg)
	if err != nil {
		return err
	}
	var ev nexmark.Event
	var failed firstError
	promise := func(r *kgo.Record, err error) { failed.set(r, err) }
	// Encodings are cut from large blocks: one allocation per 1 MiB, not one per event.
	var block []byte
	for i := int64(0); i < n; i++ {
		gen.Next(&ev)
		size := 8 + nexmark.EncodedSize(&ev)
		if cap(block)-len(block) < size {
			block = make([]byte, 0, max(1<<20, size))
		}
		start := len(block)
		block = nexmark.AppendKey(block, &ev)
		block = nexmark.Append(block, &ev)
		rec := &kgo.Record{
			Topic:     topic,
			Key:       block[start : start+8 : start+8],
			Value:     block[start+8 : len(block) : len(block)],
			Timestamp: time.UnixMilli(ev.Time()),
		}
		rec.Partition = nexmark.Partition(rec.Key, partitions)
		if observe != nil {
			observe(&ev, rec.Partition)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		cl.Produce(ctx, rec, promise)
		if i%100_000 == 0 && i > 0 {
			if err := failed.get(); err != nil {
				return err
			}
		}
	}
	if err := cl.Flush(ctx); err != nil {
		return fmt.Errorf("load: flushing: %w", err)
	}
	return failed.get()
}

// firstError keeps the first error that produce promises report.
type firstError struct {
	mu  sync.Mutex
	err error
}

func (f *firstError) set(r *kgo.Record, err error) {
	if err == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err = fmt.Errorf("load: producing to %s[%d]: %w", r.Topic, r.Partition, err)
	}
}

func (f *firstError) get() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// Sent describes one record Paced wrote.
type Sent struct {
	Event     *nexmark.Event
	Partition int32
	At        time.Time // the produce time stamped into the record's header
}

// Paced writes cfg's events to topic at rate events per second, from the first event on, until
// ctx is done or n events are written (n <= 0: no limit), and returns how many it handed to the
// producer. Every record carries HeaderProduceTime; sent, if not nil, is called for each record
// right after its produce time is taken. Paced flushes before it returns.
func Paced(ctx context.Context, cl *kgo.Client, topic string, partitions int32, cfg nexmark.Config, rate float64, n int64, sent func(Sent)) (int64, error) {
	if rate <= 0 {
		return 0, errors.New("load: the paced rate must be positive")
	}
	gen, err := nexmark.NewGenerator(cfg)
	if err != nil {
		return 0, err
	}
	var ev nexmark.Event
	var failed firstError
	promise := func(r *kgo.Record, err error) { failed.set(r, err) }
	start := time.Now()
	var written int64
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
loop:
	for n <= 0 || written < n {
		due := int64(time.Since(start).Seconds() * rate)
		if n > 0 {
			due = min(due, n)
		}
		for ; written < due; written++ {
			gen.Next(&ev)
			key := nexmark.AppendKey(make([]byte, 0, 8), &ev)
			now := time.Now()
			rec := &kgo.Record{
				Topic:     topic,
				Key:       key,
				Value:     nexmark.Append(make([]byte, 0, nexmark.EncodedSize(&ev)), &ev),
				Timestamp: time.UnixMilli(ev.Time()),
				Partition: nexmark.Partition(key, partitions),
				Headers:   []kgo.RecordHeader{{Key: HeaderProduceTime, Value: binary.BigEndian.AppendUint64(nil, uint64(now.UnixNano()))}},
			}
			if sent != nil {
				sent(Sent{Event: &ev, Partition: rec.Partition, At: now})
			}
			cl.Produce(context.Background(), rec, promise)
		}
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
		}
	}
	flushCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.Flush(flushCtx); err != nil {
		return written, fmt.Errorf("load: flushing: %w", err)
	}
	return written, failed.get()
}

// ProduceTime returns the HeaderProduceTime of a record's headers.
func ProduceTime(headers []kgo.RecordHeader) (time.Time, bool) {
	for _, h := range headers {
		if h.Key == HeaderProduceTime && len(h.Value) == 8 {
			return time.Unix(0, int64(binary.BigEndian.Uint64(h.Value))), true
		}
	}
	return time.Time{}, false
}

// StampAppendTime is the topic config (for CreateTopic's extra) by which the broker stamps each
// record with the time it appended it (its LogAppendTime), whatever timestamp the producer gave:
// an output topic's records then say, to the millisecond, when each became readable (under
// at-least-once; a transaction's records become readable when it commits).
var StampAppendTime = []string{"message.timestamp.type", "LogAppendTime"}

// CreateTopic creates topic with the given partitions (replication factor 1, the single test
// broker) and waits until every partition has a leader. An existing topic is an error: every
// benchmark run writes to fresh topics.
//
// The topic keeps its records whatever their timestamps (retention.ms=-1): event times start in
// 2015 (nexmark.DefaultBaseTime), and time-based retention would otherwise delete them at once.
// extra are further topic configs (name, value pairs), e.g. StampAppendTime.
func CreateTopic(ctx context.Context, adm *kadm.Client, topic string, partitions int32, extra ...string) error {
	if len(extra)%2 != 0 {
		return fmt.Errorf("load: creating topic %s: topic configs %q are not name, value pairs", topic, extra)
	}
	forever := "-1"
	configs := map[string]*string{"retention.ms": &forever}
	for i := 0; i < len(extra); i += 2 {
		configs[extra[i]] = &extra[i+1]
	}
	resp, err := adm.CreateTopic(ctx, partitions, 1, configs, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		if errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("load: topic %s already exists", topic)
		}
		return fmt.Errorf("load: creating topic %s: %w", topic, err)
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
			return fmt.Errorf("load: topic %s has no leader for every partition: %w", topic, ctx.Err())
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
