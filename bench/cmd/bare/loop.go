package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rifflestream/riffle/bench/internal/benchenv"
	"github.com/rifflestream/riffle/bench/nexmark"
	"github.com/rifflestream/riffle/bench/workload"
)

// loop is one consume -> transform -> produce loop over one client.
//
// Records are produced asynchronously as they are polled; nothing waits for an acknowledgement
// per record or per poll. Once per commit interval the loop flushes the producer (waits until
// everything produced so far is acknowledged) and then commits the offsets of everything polled
// so far, so a committed offset never covers an input whose output could still be lost. The
// same flush-then-commit runs before partitions are revoked and at shutdown.
type loop struct {
	cl        *kgo.Client
	log       *slog.Logger
	output    string
	transform func(r *kgo.Record) (keep bool, err error)
	// ackedFn is l.acked as a func value, made once: the method value passed to Produce
	// escapes, and would be allocated for every record.
	ackedFn func(r *kgo.Record, err error)

	mu         sync.Mutex
	produceErr error // the first failed produce; the loop stops and commits nothing more

	slab []byte // output values are cut from it, one allocation per MiB
	bid  nexmark.Bid
}

func run(ctx context.Context, log *slog.Logger, c config, w workload.Name) error {
	l := &loop{log: log, output: c.output}
	l.ackedFn = l.acked
	switch w {
	case workload.Q0:
		l.transform = func(*kgo.Record) (bool, error) { return true, nil }
	case workload.Q1:
		l.transform = l.q1
	case workload.Q2:
		l.transform = l.q2
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.brokerList()...),
		kgo.ConsumerGroup(c.appID),
		kgo.ConsumeTopics(c.input),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, _ map[string][]int32) {
			if err := l.commit(ctx); err != nil {
				log.Error("bare: commit before revocation", "err", err)
			}
		}),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerLinger(workload.ProducerLinger),
		kgo.ProducerBatchMaxBytes(workload.ProducerBatchBytes),
	}
	io := benchenv.NewIOStats() // RIFFLE_BENCH_IOSTATS
	if io != nil {
		opts = append(opts, io.Opts()...)
		defer io.Report(os.Stderr)
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("bare: new client: %w", err)
	}
	l.cl = cl
	defer cl.Close()

	err = l.run(ctx)
	// Whatever stopped the loop, what was produced and acknowledged is committed, bounded in time.
	stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if cerr := l.commit(stopCtx); cerr != nil && err == nil {
		err = cerr
	}
	return err
}

func (l *loop) run(ctx context.Context) error {
	next := time.Now().Add(workload.CommitInterval)
	for {
		pollCtx, cancel := context.WithDeadline(ctx, next)
		fs := l.cl.PollFetches(pollCtx)
		cancel()
		if ctx.Err() != nil || fs.IsClientClosed() {
			l.cl.AllowRebalance()
			return nil
		}
		var fetchErr error
		fs.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) && fetchErr == nil {
				fetchErr = fmt.Errorf("bare: fetching %s[%d]: %w", topic, p, err)
			}
		})
		if fetchErr != nil {
			l.cl.AllowRebalance()
			return fetchErr
		}
		var tErr error
		fs.EachRecord(func(r *kgo.Record) {
			if tErr != nil {
				return
			}
			keep, err := l.transform(r)
			if err != nil {
				tErr = fmt.Errorf("bare: %s[%d]@%d: %w", r.Topic, r.Partition, r.Offset, err)
				return
			}
			if keep {
				l.produce(r)
			}
		})
		l.cl.AllowRebalance()
		if tErr != nil {
			return tErr
		}
		if now := time.Now(); !now.Before(next) {
			if err := l.commit(ctx); err != nil {
				return err
			}
			next = now.Add(workload.CommitInterval)
		}
	}
}

// produce turns the consumed record r into its output record in place and produces it. The
// consumed record is not used after polling, so reusing it saves an allocation per record; the
// key, timestamp and headers (the latency runs' "pt") are forwarded as they are.
func (l *loop) produce(r *kgo.Record) {
	*r = kgo.Record{Topic: l.output, Key: r.Key, Value: r.Value, Headers: r.Headers, Timestamp: r.Timestamp}
	// The produce context only bounds the wait for buffer space; records are never abandoned.
	l.cl.Produce(context.Background(), r, l.ackedFn)
}

func (l *loop) acked(r *kgo.Record, err error) {
	if err == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.produceErr == nil {
		l.produceErr = fmt.Errorf("bare: producing to %s[%d]: %w", r.Topic, r.Partition, err)
	}
}

// commit waits until everything produced so far is acknowledged, then commits the offsets of
// everything polled so far. It commits nothing once a produce has failed.
func (l *loop) commit(ctx context.Context) error {
	if err := l.cl.Flush(ctx); err != nil {
		return fmt.Errorf("bare: flushing: %w", err)
	}
	l.mu.Lock()
	err := l.produceErr
	l.mu.Unlock()
	if err != nil {
		return err
	}
	if err := l.cl.CommitUncommittedOffsets(ctx); err != nil {
		return fmt.Errorf("bare: committing: %w", err)
	}
	return nil
}

// alloc returns a zero-length slice with capacity n cut from the slab.
func (l *loop) alloc(n int) []byte {
	if cap(l.slab)-len(l.slab) < n {
		l.slab = make([]byte, 0, max(1<<20, n))
	}
	start := len(l.slab)
	l.slab = l.slab[:start+n]
	return l.slab[start : start : start+n]
}

func (l *loop) q1(r *kgo.Record) (bool, error) {
	if !nexmark.IsBid(r.Value) {
		_, err := nexmark.KindOf(r.Value)
		return false, err
	}
	// Decode once to size the output exactly (the euro price has the same width).
	if err := nexmark.DecodeBid(r.Value, &l.bid); err != nil {
		return false, err
	}
	l.bid.Price = workload.DollarsToEuros(l.bid.Price)
	r.Value = nexmark.AppendBid(l.alloc(nexmark.BidSize(&l.bid)), &l.bid)
	return true, nil
}

func (l *loop) q2(r *kgo.Record) (bool, error) {
	if !nexmark.IsBid(r.Value) {
		_, err := nexmark.KindOf(r.Value)
		return false, err
	}
	auction, price, _, err := nexmark.BidFields(r.Value)
	if err != nil || !workload.Q2Keeps(auction) {
		return false, err
	}
	r.Value = workload.AppendPair(l.alloc(16), auction, price)
	return true, nil
}
