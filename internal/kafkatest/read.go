package kafkatest

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ReadAll reads every record of topic from the start of each partition to its end as of the call,
// and returns the data records in partition order, then offset order. With committed set it reads
// read_committed up to the last stable offset (aborted records are not returned); otherwise
// read_uncommitted up to the high watermark.
//
// It knows where a partition ends even when the tail holds transaction markers or compaction left
// gaps: control records are fetched too (and dropped from the result), so every offset the log
// still has is seen.
func ReadAll(t testing.TB, brokers []string, topic string, committed bool) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	recs, err := ReadAllContext(ctx, brokers, topic, committed)
	if err != nil {
		t.Fatalf("kafkatest: reading %s: %v", topic, err)
	}
	return recs
}

// ReadAllContext is ReadAll for code that is not a test (verifiers in subprocesses, benchmarks).
func ReadAllContext(ctx context.Context, brokers []string, topic string, committed bool) ([]*kgo.Record, error) {
	adm, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return nil, err
	}
	defer adm.Close()
	var ends kadm.ListedOffsets
	if committed {
		ends, err = kadm.NewClient(adm).ListCommittedOffsets(ctx, topic)
	} else {
		ends, err = kadm.NewClient(adm).ListEndOffsets(ctx, topic)
	}
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, err
	}
	// A partition whose records all expired (retention) has nothing to read, whatever its end.
	firsts, err := kadm.NewClient(adm).ListStartOffsets(ctx, topic)
	if err == nil {
		err = firsts.Error()
	}
	if err != nil {
		return nil, err
	}
	starts := map[int32]kgo.Offset{}
	pending := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		starts[o.Partition] = kgo.NewOffset().AtStart()
		if first, ok := firsts.Lookup(o.Topic, o.Partition); o.Offset > 0 && (!ok || first.Offset < o.Offset) {
			pending[o.Partition] = o.Offset
		}
	})
	byPart := map[int32][]*kgo.Record{}
	if len(pending) > 0 {
		iso := kgo.ReadUncommitted()
		if committed {
			iso = kgo.ReadCommitted()
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.FetchIsolationLevel(iso),
			kgo.KeepControlRecords(), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: starts}))
		if err != nil {
			return nil, err
		}
		defer cl.Close()
		for len(pending) > 0 {
			fs := cl.PollFetches(ctx)
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			var ferr error
			fs.EachError(func(_ string, _ int32, err error) { ferr = err })
			if ferr != nil {
				return nil, ferr
			}
			fs.EachRecord(func(r *kgo.Record) {
				end, ok := pending[r.Partition]
				if !ok || r.Offset >= end {
					return
				}
				if !r.Attrs.IsControl() {
					byPart[r.Partition] = append(byPart[r.Partition], r)
				}
				if r.Offset+1 >= end {
					delete(pending, r.Partition)
				}
			})
		}
	}
	var out []*kgo.Record
	for p := int32(0); len(byPart) > 0; p++ {
		out = append(out, byPart[p]...)
		delete(byPart, p)
	}
	return out, nil
}
