package nexmark_test

import (
	"fmt"

	"github.com/rifflestream/riffle/bench/nexmark"
)

func Example() {
	gen, err := nexmark.NewGenerator(nexmark.DefaultConfig())
	if err != nil {
		fmt.Println(err)
		return
	}
	var ev nexmark.Event
	var kinds [3]int
	var buf []byte
	for range 50 {
		gen.Next(&ev)
		kinds[ev.Kind]++
		buf = nexmark.Append(buf[:0], &ev)
	}
	// The 50th event is a bid; decode its encoding back.
	var bid nexmark.Bid
	if err := nexmark.DecodeBid(buf, &bid); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("people, auctions, bids:", kinds)
	fmt.Println("last bid's event time:", nexmark.UnixMilli(bid.DateTime))
	// Output:
	// people, auctions, bids: [1 3 46]
	// last bid's event time: 2015-07-15 00:00:00.004 +0000 UTC
}
