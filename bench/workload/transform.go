package workload

import "github.com/rifflestream/riffle/bench/nexmark"

// Q1Value appends q1's output value for one input value to dst: the bid re-encoded with its
// price in euros. keep is false for people and auctions, which q1 drops. bid is scratch space
// for the decoded bid, reused across calls.
func Q1Value(dst, value []byte, bid *nexmark.Bid) (out []byte, keep bool, err error) {
	if !nexmark.IsBid(value) {
		if _, err := nexmark.KindOf(value); err != nil {
			return dst, false, err
		}
		return dst, false, nil
	}
	if err := nexmark.DecodeBid(value, bid); err != nil {
		return dst, false, err
	}
	bid.Price = DollarsToEuros(bid.Price)
	return nexmark.AppendBid(dst, bid), true, nil
}

// Q2Value appends q2's output value for one input value to dst: (auction, price) of a bid on an
// auction that is a multiple of 123. keep is false for every other event.
func Q2Value(dst, value []byte) (out []byte, keep bool, err error) {
	if !nexmark.IsBid(value) {
		if _, err := nexmark.KindOf(value); err != nil {
			return dst, false, err
		}
		return dst, false, nil
	}
	auction, price, _, err := nexmark.BidFields(value)
	if err != nil || !Q2Keeps(auction) {
		return dst, false, err
	}
	return AppendPair(dst, auction, price), true, nil
}
