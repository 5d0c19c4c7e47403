package main

import (
	"fmt"

	"github.com/rifflestream/riffle/bench/nexmark"
	"github.com/rifflestream/riffle/bench/workload"
	"github.com/rifflestream/riffle/serde"
	"github.com/rifflestream/riffle/stream"
)

// build declares workload w from input to output, the way bench/WORKLOADS.md defines it and
// the Kafka Streams peer (bench/peers/kafkastreams, Workloads.java) writes it: the same
// operators in the same order, byte serdes where the peer has them.
func build(w workload.Name, input, output string) (*stream.Builder, error) {
	b := stream.NewBuilder()
	switch w {
	case workload.Q0:
		raw(b, input).To(output, serde.Bytes(), serde.Bytes())
	case workload.Q1:
		stream.MapValues(raw(b, input).Filter(isBid), inEuros, stream.WithValueSerde(bidSerde)).
			To(output, serde.Bytes(), bidSerde)
	case workload.Q2:
		selected := raw(b, input).Filter(func(_, v []byte) bool {
			if !nexmark.IsBid(v) {
				return false // before BidFields, which makes an error for every other event
			}
			auction, _, _, err := nexmark.BidFields(v)
			return err == nil && workload.Q2Keeps(auction)
		})
		stream.MapValues(selected, auctionPrice).To(output, serde.Bytes(), serde.Bytes())
	case workload.Count:
		counts := stream.Count(stream.GroupByKey(bids(b, input)),
			stream.Materialized("bids-per-auction"), stream.StoreBufferBytes(workload.RecordCacheBytes))
		counts.ToStream().To(output, serde.Int64(), serde.Int64())
	case workload.Q7:
		prices := stream.MapValues(bids(b, input), bidPrice, stream.WithValueSerde(serde.Int64()))
		windows := stream.WindowedBy(stream.GroupByKey(prices), stream.Tumbling(workload.WindowSize).WithGrace(0))
		highest := stream.AggregateWindows(windows, func() int64 { return 0 },
			func(_ int64, price, top int64) (int64, error) { return max(price, top), nil }, serde.Int64(),
			stream.Materialized("highest-bid"), stream.EmitOnWindowClose())
		windowPairs(highest).To(output, serde.Bytes(), serde.Int64())
	case workload.Q5:
		windows := stream.WindowedBy(stream.GroupByKey(bids(b, input)),
			stream.Hopping(workload.WindowSize, workload.HopAdvance).WithGrace(0))
		counts := stream.CountWindows(windows, stream.Materialized("bids-per-window"), stream.EmitOnWindowClose())
		windowPairs(counts).To(output, serde.Bytes(), serde.Int64())
	default:
		return nil, fmt.Errorf("riffle-bench: no topology for workload %q", w)
	}
	return b, nil
}

// raw is every event, key and value as bytes.
func raw(b *stream.Builder, input string) stream.Stream[[]byte, []byte] {
	return stream.From(b, input, serde.Bytes(), serde.Bytes(), stream.Named("events"))
}

// bids are the bids, keyed by their auction id (the input key).
func bids(b *stream.Builder, input string) stream.Stream[int64, []byte] {
	return stream.From(b, input, serde.Int64(), serde.Bytes(), stream.Named("events")).
		Filter(func(_ int64, v []byte) bool { return nexmark.IsBid(v) })
}

func isBid(_, v []byte) bool { return nexmark.IsBid(v) }

// inEuros is q1's map: the bid with its price converted to euros. The sink encodes it again
// with bidSerde.
func inEuros(v []byte) (nexmark.Bid, error) {
	var bid nexmark.Bid
	if err := nexmark.DecodeBid(v, &bid); err != nil {
		return nexmark.Bid{}, err
	}
	bid.Price = workload.DollarsToEuros(bid.Price)
	return bid, nil
}

// bidSerde is a bid as bench/nexmark/FORMAT.md encodes it. It is a serde.Appender, so the sink
// encodes each bid into its task's output buffer.
var bidSerde = serde.NewAppending(
	func(dst []byte, _ string, bid nexmark.Bid) ([]byte, error) { return nexmark.AppendBid(dst, &bid), nil },
	func(_ string, data []byte) (nexmark.Bid, error) {
		var bid nexmark.Bid
		err := nexmark.DecodeBid(data, &bid)
		return bid, err
	}, 96)

// auctionPrice is q2's projection: (auction, price).
func auctionPrice(v []byte) ([]byte, error) {
	auction, price, _, err := nexmark.BidFields(v)
	if err != nil {
		return nil, err
	}
	return workload.AppendPair(make([]byte, 0, 16), auction, price), nil
}

func bidPrice(v []byte) (int64, error) {
	_, price, _, err := nexmark.BidFields(v)
	return price, err
}

// windowPairs turns each final window result into the output record (auction, window start) ->
// value, as the peer's .toStream().map(...) does.
func windowPairs(t stream.Table[stream.Windowed[int64], int64]) stream.Stream[[]byte, int64] {
	return stream.Map(t.ToStream(), func(w stream.Windowed[int64], v int64) ([]byte, int64, error) {
		return workload.AppendPair(make([]byte, 0, 16), w.Key, w.Start.UnixMilli()), v, nil
	})
}
