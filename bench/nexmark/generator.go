package nexmark

import (
	"math"
	"math/bits"
	"math/rand/v2"
	"strconv"
	"strings"
)

// reusableExtraLen is the size of the random text Extra fields are cut from: the reference cuts
// them from one 1 MiB string too, so padding costs no random numbers per character.
const reusableExtraLen = 1 << 20

// Hot channels of bids, and how many other channels there are (the nexmark/nexmark generator's
// bid channels and URLs).
var hotChannels = [...]string{"Google", "Facebook", "Baidu", "Apple"}

const numChannels = 10_000

var (
	usStates   = [...]string{"AZ", "CA", "ID", "OR", "WA", "WY"}
	usCities   = [...]string{"Phoenix", "Los Angeles", "San Francisco", "Boise", "Portland", "Bend", "Redmond", "Seattle", "Kent", "Cheyenne"}
	firstNames = [...]string{"Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter"}
	lastNames  = [...]string{"Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris"}
)

// Generator produces the Nexmark event sequence of one Config, one event at a time. It is not
// safe for concurrent use; two Generators of the same Config produce the same sequence.
type Generator struct {
	cfg   Config
	rng   *rand.Rand
	count int64 // events generated so far: the next event's number

	extra        string // reusableExtraLen random letters
	hotURLs      [len(hotChannels)]string
	channelNames [numChannels]string
	channelURLs  [numChannels]string
	scratch      []byte
}

// NewGenerator returns a generator of cfg's events, starting at event number 0, or the error of
// cfg.Validate.
func NewGenerator(cfg Config) (*Generator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g := &Generator{
		cfg: cfg,
		rng: rand.New(rand.NewPCG(cfg.Seed, 0x6e65786d61726b)), // "nexmark"
	}
	// The fixed tables come from a stream of their own, so they cost the event stream nothing.
	tables := rand.New(rand.NewPCG(cfg.Seed, 0x7461626c6573)) // "tables"
	extra := make([]byte, reusableExtraLen)
	for i := range extra {
		extra[i] = byte('a' + tables.IntN(26))
	}
	g.extra = string(extra)
	for i := range g.hotURLs {
		g.hotURLs[i] = g.baseURL(tables)
	}
	for i := range g.channelURLs {
		url := g.baseURL(tables)
		if tables.IntN(10) > 0 {
			url += "&channel_id=" + strconv.Itoa(absInt32(int32(bits.Reverse32(uint32(i)))))
		}
		g.channelURLs[i] = url
		g.channelNames[i] = "channel-" + strconv.Itoa(i)
	}
	return g, nil
}

// Config returns the generator's configuration.
func (g *Generator) Config() Config { return g.cfg }

// Count returns how many events the generator has produced.
func (g *Generator) Count() int64 { return g.count }

// Next overwrites ev with the next event and returns it. Only the part of ev that ev.Kind names
// is written.
func (g *Generator) Next(ev *Event) *Event {
	n := g.count
	g.count++
	id := g.cfg.FirstEventID + n
	ts := g.cfg.TimestampForEvent(n)
	ev.Kind = g.cfg.KindOf(id)
	switch ev.Kind {
	case KindPerson:
		g.nextPerson(&ev.Person, id, ts)
	case KindAuction:
		g.nextAuction(&ev.Auction, n, id, ts)
	default:
		g.nextBid(&ev.Bid, id, ts)
	}
	return ev
}

func (g *Generator) nextPerson(p *Person, id, ts int64) {
	p.ID = g.cfg.lastBase0PersonID(id) + FirstPersonID
	p.DateTime = ts
	p.Name = firstNames[g.rng.IntN(len(firstNames))] + " " + lastNames[g.rng.IntN(len(lastNames))]
	p.EmailAddress = g.nextString(7, ' ') + "@" + g.nextString(5, ' ') + ".com"
	p.CreditCard = g.nextCreditCard()
	p.City = usCities[g.rng.IntN(len(usCities))]
	p.State = usStates[g.rng.IntN(len(usStates))]
	size := 8 + len(p.Name) + len(p.EmailAddress) + len(p.CreditCard) + len(p.City) + len(p.State)
	p.Extra = g.nextExtra(size, g.cfg.AvgPersonByteSize)
}

func (g *Generator) nextAuction(a *Auction, n, id, ts int64) {
	a.ID = g.cfg.lastBase0AuctionID(id) + FirstAuctionID
	if g.rng.IntN(g.cfg.HotSellersRatio) > 0 {
		// The first person of the latest batch of hotSellerBatch people.
		a.Seller = (g.cfg.lastBase0PersonID(id) / hotSellerBatch) * hotSellerBatch
	} else {
		a.Seller = g.nextBase0PersonID(id)
	}
	a.Seller += FirstPersonID
	a.Category = FirstCategoryID + int64(g.rng.IntN(numCategories))
	a.InitialBid = g.nextPrice()
	a.DateTime = ts
	a.Expires = ts + g.nextAuctionLengthMs(n, ts)
	a.ItemName = g.nextString(20, ' ')
	a.Description = g.nextString(100, ' ')
	a.Reserve = a.InitialBid + g.nextPrice()
	size := 8 + len(a.ItemName) + len(a.Description) + 8 + 8 + 8 + 8 + 8
	a.Extra = g.nextExtra(size, g.cfg.AvgAuctionByteSize)
}

func (g *Generator) nextBid(b *Bid, id, ts int64) {
	if g.rng.IntN(g.cfg.HotAuctionRatio) > 0 {
		// The first auction of the latest batch of hotAuctionBatch auctions.
		b.Auction = (g.cfg.lastBase0AuctionID(id) / hotAuctionBatch) * hotAuctionBatch
	} else {
		b.Auction = g.nextBase0AuctionID(id)
	}
	b.Auction += FirstAuctionID
	if g.rng.IntN(g.cfg.HotBiddersRatio) > 0 {
		// The second person of the latest batch, so hot bidders and hot sellers differ.
		b.Bidder = (g.cfg.lastBase0PersonID(id)/hotBidderBatch)*hotBidderBatch + 1
	} else {
		b.Bidder = g.nextBase0PersonID(id)
	}
	b.Bidder += FirstPersonID
	b.Price = g.nextPrice()
	if g.rng.IntN(2) > 0 {
		i := g.rng.IntN(len(hotChannels))
		b.Channel, b.URL = hotChannels[i], g.hotURLs[i]
	} else {
		i := g.rng.IntN(numChannels)
		b.Channel, b.URL = g.channelNames[i], g.channelURLs[i]
	}
	b.DateTime = ts
	b.Extra = g.nextExtra(8+8+8+8, g.cfg.AvgBidByteSize)
}

// nextBase0PersonID picks a person among the NumActivePeople latest, or up to personIDLead
// people not created yet.
func (g *Generator) nextBase0PersonID(eventID int64) int64 {
	numPeople := g.cfg.lastBase0PersonID(eventID) + 1
	active := min(numPeople, int64(g.cfg.NumActivePeople))
	return numPeople - active + g.rng.Int64N(active+personIDLead)
}

// nextBase0AuctionID picks an auction among the NumInFlightAuctions latest, or up to
// auctionIDLead auctions not created yet.
func (g *Generator) nextBase0AuctionID(eventID int64) int64 {
	hi := g.cfg.lastBase0AuctionID(eventID)
	lo := max(hi-int64(g.cfg.NumInFlightAuctions), 0)
	return lo + g.rng.Int64N(hi-lo+1+auctionIDLead)
}

// nextAuctionLengthMs picks an auction length averaging the event-time span until
// NumInFlightAuctions more auctions will have been created.
func (g *Generator) nextAuctionLengthMs(n, ts int64) int64 {
	eventsForAuctions := int64(g.cfg.NumInFlightAuctions) * g.cfg.totalProportion() / int64(g.cfg.AuctionProportion)
	horizon := g.cfg.TimestampForEvent(n+eventsForAuctions) - ts
	return 1 + g.rng.Int64N(max(horizon*2, 1))
}

// nextPrice returns a price in cents, log-uniform between $1 and $1,000,000.
func (g *Generator) nextPrice() int64 {
	return int64(math.Round(math.Pow(10, g.rng.Float64()*6) * 100))
}

// nextString returns 3 to maxLen-1 random lower-case letters, with special standing for about one
// in 13 of them, trimmed of spaces at both ends.
func (g *Generator) nextString(maxLen int, special byte) string {
	n := 3 + g.rng.IntN(maxLen-3)
	b := g.scratch[:0]
	for range n {
		if g.rng.IntN(13) == 0 {
			b = append(b, special)
		} else {
			b = append(b, byte('a'+g.rng.IntN(26)))
		}
	}
	g.scratch = b
	return strings.Trim(string(b), " ")
}

// nextExtra returns padding that brings an entity of currentSize bytes to desiredAvg bytes on
// average, within 20%.
func (g *Generator) nextExtra(currentSize, desiredAvg int) string {
	if currentSize > desiredAvg {
		return ""
	}
	desiredAvg -= currentSize
	delta := int(math.Round(float64(desiredAvg) * 0.2))
	size := desiredAvg - delta
	if delta > 0 {
		size += g.rng.IntN(2 * delta)
	}
	off := g.rng.IntN(len(g.extra) - size)
	return g.extra[off : off+size]
}

func (g *Generator) nextCreditCard() string {
	b := g.scratch[:0]
	for i := range 4 {
		if i > 0 {
			b = append(b, ' ')
		}
		v := g.rng.IntN(10_000)
		b = append(b, byte('0'+v/1000), byte('0'+v/100%10), byte('0'+v/10%10), byte('0'+v%10))
	}
	g.scratch = b
	return string(b)
}

func (g *Generator) baseURL(r *rand.Rand) string {
	part := func() string {
		n := 3 + r.IntN(5-3)
		b := make([]byte, n)
		for i := range b {
			if r.IntN(13) == 0 {
				b[i] = '_'
			} else {
				b[i] = byte('a' + r.IntN(26))
			}
		}
		return string(b)
	}
	return "https://www.nexmark.com/" + part() + "/" + part() + "/" + part() + "/item.htm?query=1"
}

func absInt32(v int32) int {
	if v < 0 {
		return -int(v)
	}
	return int(v)
}
