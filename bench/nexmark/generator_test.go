package nexmark

import (
	"bytes"
	"math"
	"sort"
	"testing"
	"time"
)

// newGenerator is NewGenerator for configs that are valid.
func newGenerator(tb testing.TB, cfg Config) *Generator {
	tb.Helper()
	g, err := NewGenerator(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return g
}

func generate(t *testing.T, cfg Config, n int) []Event {
	g := newGenerator(t, cfg)
	out := make([]Event, n)
	for i := range out {
		g.Next(&out[i])
	}
	return out
}

func TestGeneratorIsReproducible(t *testing.T) {
	encode := func(seed uint64) []byte {
		cfg := DefaultConfig()
		cfg.Seed = seed
		g := newGenerator(t, cfg)
		var ev Event
		var buf []byte
		for range 20_000 {
			buf = Append(buf, g.Next(&ev))
		}
		return buf
	}
	a, b := encode(7), encode(7)
	if !bytes.Equal(a, b) {
		t.Fatal("two generators with the same seed produced different events")
	}
	if bytes.Equal(a, encode(8)) {
		t.Fatal("generators with different seeds produced the same events")
	}
}

func TestGeneratorProportionsAndIDs(t *testing.T) {
	const epochs = 2000
	events := generate(t, DefaultConfig(), 50*epochs)
	var people, auctions, bids int
	var lastPerson, lastAuction int64 = FirstPersonID - 1, FirstAuctionID - 1
	for i, ev := range events {
		switch ev.Kind {
		case KindPerson:
			people++
			if ev.Person.ID != lastPerson+1 {
				t.Fatalf("event %d: person id %d after %d", i, ev.Person.ID, lastPerson)
			}
			lastPerson = ev.Person.ID
		case KindAuction:
			auctions++
			if ev.Auction.ID != lastAuction+1 {
				t.Fatalf("event %d: auction id %d after %d", i, ev.Auction.ID, lastAuction)
			}
			lastAuction = ev.Auction.ID
			if ev.Auction.Seller < FirstPersonID || ev.Auction.Seller > lastPerson+personIDLead {
				t.Fatalf("event %d: seller %d outside [%d, %d]", i, ev.Auction.Seller, FirstPersonID, lastPerson+personIDLead)
			}
			if ev.Auction.Expires <= ev.Auction.DateTime || ev.Auction.Reserve < ev.Auction.InitialBid {
				t.Fatalf("event %d: auction %+v", i, ev.Auction)
			}
		case KindBid:
			bids++
			b := ev.Bid
			if b.Auction < FirstAuctionID || b.Auction > lastAuction+auctionIDLead {
				t.Fatalf("event %d: bid on auction %d outside [%d, %d]", i, b.Auction, FirstAuctionID, lastAuction+auctionIDLead)
			}
			if b.Bidder < FirstPersonID || b.Bidder > lastPerson+personIDLead {
				t.Fatalf("event %d: bidder %d outside [%d, %d]", i, b.Bidder, FirstPersonID, lastPerson+personIDLead)
			}
		}
	}
	if people != epochs || auctions != 3*epochs || bids != 46*epochs {
		t.Fatalf("people:auctions:bids = %d:%d:%d, want %d:%d:%d", people, auctions, bids, epochs, 3*epochs, 46*epochs)
	}
	if events[0].Kind != KindPerson || events[0].Person.ID != FirstPersonID {
		t.Fatalf("first event %v %+v, want person %d", events[0].Kind, events[0].Person, FirstPersonID)
	}
	if events[1].Kind != KindAuction || events[1].Auction.ID != FirstAuctionID {
		t.Fatalf("second event %v %+v, want auction %d", events[1].Kind, events[1].Auction, FirstAuctionID)
	}
}

func TestGeneratorHotKeysAndPrices(t *testing.T) {
	cfg := DefaultConfig()
	events := generate(t, cfg, 200_000)
	var bids, hotAuction, hotBidder int
	var prices []int64
	for i, ev := range events {
		if ev.Kind != KindBid {
			continue
		}
		bids++
		id := cfg.FirstEventID + int64(i)
		if ev.Bid.Auction == cfg.lastBase0AuctionID(id)/hotAuctionBatch*hotAuctionBatch+FirstAuctionID {
			hotAuction++
		}
		if ev.Bid.Bidder == cfg.lastBase0PersonID(id)/hotBidderBatch*hotBidderBatch+1+FirstPersonID {
			hotBidder++
		}
		prices = append(prices, ev.Bid.Price)
	}
	// P(hot) = 1 - 1/ratio, plus the few random picks that land on the hot id.
	within := func(name string, got int, want float64) {
		t.Helper()
		if f := float64(got) / float64(bids); math.Abs(f-want) > 0.02 {
			t.Errorf("%s: fraction %.3f, want about %.3f", name, f, want)
		}
	}
	within("hot auctions", hotAuction, 0.5)
	within("hot bidders", hotBidder, 0.75)

	sort.Slice(prices, func(i, j int) bool { return prices[i] < prices[j] })
	if prices[0] < 100 || prices[len(prices)-1] > 100_000_000 {
		t.Errorf("prices span [%d, %d], want within [100, 1e8] cents", prices[0], prices[len(prices)-1])
	}
	// Log-uniform over 6 decades: the median is 10^3 dollars.
	if med := float64(prices[len(prices)/2]); med < 0.8e5 || med > 1.25e5 {
		t.Errorf("median price %.0f cents, want about 100000", med)
	}
}

func TestGeneratorEventTime(t *testing.T) {
	cfg := DefaultConfig()
	events := generate(t, cfg, 100)
	base := DefaultBaseTime.UnixMilli()
	for n, ev := range events {
		// 10,000 events/s: 10 events per millisecond.
		if want := base + int64(n)/10; ev.Time() != want {
			t.Fatalf("event %d at %d, want %d", n, ev.Time(), want)
		}
	}
	if got := cfg.TimestampForEvent(1_000_000); got != base+100_000 {
		t.Fatalf("event 1e6 at +%dms, want +100000ms", got-base)
	}
}

func TestGeneratorSizes(t *testing.T) {
	events := generate(t, DefaultConfig(), 50_000)
	sum := map[Kind]int{}
	count := map[Kind]int{}
	for i := range events {
		sum[events[i].Kind] += EncodedSize(&events[i])
		count[events[i].Kind]++
	}
	for k, r := range map[Kind][2]int{KindPerson: {150, 300}, KindAuction: {450, 650}, KindBid: {120, 260}} {
		avg := sum[k] / count[k]
		t.Logf("%v: %d events, %d bytes on average", k, count[k], avg)
		if avg < r[0] || avg > r[1] {
			t.Errorf("%v: average encoding %d bytes, want within %v", k, avg, r)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for name, mutate := range map[string]func(*Config){
		"rate":        func(c *Config) { c.EventsPerSecond = 0 },
		"auctions":    func(c *Config) { c.AuctionProportion = 0 },
		"hot":         func(c *Config) { c.HotAuctionRatio = 0 },
		"active":      func(c *Config) { c.NumActivePeople = 0 },
		"no basetime": func(c *Config) { c.BaseTime = time.Time{} },
	} {
		cfg := DefaultConfig()
		mutate(&cfg)
		if err := cfg.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, cfg)
		}
		if _, err := NewGenerator(cfg); err == nil {
			t.Errorf("%s: NewGenerator accepted %+v", name, cfg)
		}
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig: %v", err)
	}
}
