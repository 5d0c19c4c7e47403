package nexmark

import (
	"errors"
	"fmt"
	"time"
)

// Constants of the reference generator that are not configuration there either.
const (
	// FirstPersonID, FirstAuctionID and FirstCategoryID are where ids start, so even a small
	// data set has joins that match.
	FirstPersonID   = 1000
	FirstAuctionID  = 1000
	FirstCategoryID = 10

	numCategories = 5
	// personIDLead and auctionIDLead: how many not-yet-created ids a random pick may reach.
	personIDLead  = 10
	auctionIDLead = 10
	// Hot sellers, auctions and bidders are chosen among the first id of each batch of this many.
	hotSellerBatch  = 100
	hotAuctionBatch = 100
	hotBidderBatch  = 100
)

// DefaultBaseTime is the event time of the first event: the reference's fixed BASE_TIME, so event
// times, and hence windows, are the same on every run.
var DefaultBaseTime = time.Date(2015, 7, 15, 0, 0, 0, 0, time.UTC)

// Config controls a Generator. The zero value is not valid; start from DefaultConfig. Every
// default is the reference generator's (NexmarkConfiguration).
type Config struct {
	// Seed seeds the random numbers. Default 1.
	Seed uint64

	// BaseTime is the event time of event number 0. Default DefaultBaseTime.
	BaseTime time.Time
	// EventsPerSecond is the nominal event rate that spaces event times: event n happens
	// n*1e6/EventsPerSecond microseconds after BaseTime, truncated to milliseconds. It says
	// nothing about how fast events are produced. Default 10,000 (firstEventRate).
	EventsPerSecond int

	// FirstEventID is the id of event number 0; ids pick the entity kind and the entity ids.
	// Default 0 (Beam's standard generator config).
	FirstEventID int64

	// PersonProportion, AuctionProportion and BidProportion: of every
	// PersonProportion+AuctionProportion+BidProportion consecutive events, this many are people,
	// then auctions, then bids. Defaults 1, 3, 46.
	PersonProportion  int
	AuctionProportion int
	BidProportion     int

	// HotAuctionRatio: a bid is on the current hot auction with probability
	// 1 - 1/HotAuctionRatio. Default 2.
	HotAuctionRatio int
	// HotSellersRatio: an auction is by the current hot seller with probability
	// 1 - 1/HotSellersRatio. Default 4.
	HotSellersRatio int
	// HotBiddersRatio: a bid is by the current hot bidder with probability
	// 1 - 1/HotBiddersRatio. Default 4.
	HotBiddersRatio int

	// NumInFlightAuctions: a random auction is picked among this many latest ones. Default 100.
	NumInFlightAuctions int
	// NumActivePeople: a random person is picked among this many latest ones. Default 1000.
	NumActivePeople int

	// AvgPersonByteSize, AvgAuctionByteSize, AvgBidByteSize: the idealised average sizes the
	// Extra strings pad entities to. Defaults 200, 500, 100.
	AvgPersonByteSize  int
	AvgAuctionByteSize int
	AvgBidByteSize     int
}

// DefaultConfig returns the reference generator's defaults with seed 1.
func DefaultConfig() Config {
	return Config{
		Seed:                1,
		BaseTime:            DefaultBaseTime,
		EventsPerSecond:     10_000,
		PersonProportion:    1,
		AuctionProportion:   3,
		BidProportion:       46,
		HotAuctionRatio:     2,
		HotSellersRatio:     4,
		HotBiddersRatio:     4,
		NumInFlightAuctions: 100,
		NumActivePeople:     1000,
		AvgPersonByteSize:   200,
		AvgAuctionByteSize:  500,
		AvgBidByteSize:      100,
	}
}

// ErrInvalidConfig is returned, wrapped, by Config.Validate.
var ErrInvalidConfig = errors.New("nexmark: invalid config")

// Validate reports the first setting a Generator cannot run with.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
	}
	switch {
	case c.EventsPerSecond <= 0:
		return bad("EventsPerSecond %d <= 0", c.EventsPerSecond)
	case c.PersonProportion <= 0 || c.AuctionProportion <= 0 || c.BidProportion < 0:
		return bad("proportions %d:%d:%d need people and auctions", c.PersonProportion, c.AuctionProportion, c.BidProportion)
	case c.HotAuctionRatio <= 0 || c.HotSellersRatio <= 0 || c.HotBiddersRatio <= 0:
		return bad("hot ratios must be positive")
	case c.NumInFlightAuctions <= 0 || c.NumActivePeople <= 0:
		return bad("NumInFlightAuctions and NumActivePeople must be positive")
	case c.FirstEventID < 0:
		return bad("FirstEventID %d < 0", c.FirstEventID)
	case c.BaseTime.IsZero():
		return bad("BaseTime is not set")
	}
	return nil
}

func (c Config) totalProportion() int64 {
	return int64(c.PersonProportion + c.AuctionProportion + c.BidProportion)
}

// interEventDelayUs is the event-time gap between two events, in microseconds.
func (c Config) interEventDelayUs() float64 { return 1e6 / float64(c.EventsPerSecond) }

// TimestampForEvent returns the event time, in unix milliseconds, of event number n (counted
// from 0): BaseTime plus n inter-event delays, truncated to the millisecond.
func (c Config) TimestampForEvent(n int64) int64 {
	return c.BaseTime.UnixMilli() + int64(float64(n)*c.interEventDelayUs())/1000
}

// KindOf returns the kind of the event with the given event id.
func (c Config) KindOf(eventID int64) Kind {
	rem := eventID % c.totalProportion()
	switch {
	case rem < int64(c.PersonProportion):
		return KindPerson
	case rem < int64(c.PersonProportion+c.AuctionProportion):
		return KindAuction
	default:
		return KindBid
	}
}

// lastBase0PersonID is the id (from 0) of the newest person as of event eventID: that event's
// own id if it is a person.
func (c Config) lastBase0PersonID(eventID int64) int64 {
	total := c.totalProportion()
	epoch, offset := eventID/total, eventID%total
	if offset >= int64(c.PersonProportion) {
		offset = int64(c.PersonProportion) - 1
	}
	return epoch*int64(c.PersonProportion) + offset
}

// lastBase0AuctionID is the id (from 0) of the newest auction as of event eventID: that event's
// own id if it is an auction.
func (c Config) lastBase0AuctionID(eventID int64) int64 {
	total := c.totalProportion()
	epoch, offset := eventID/total, eventID%total
	switch {
	case offset < int64(c.PersonProportion):
		// A person: the last auction is the last one of the previous epoch.
		epoch--
		offset = int64(c.AuctionProportion) - 1
	case offset >= int64(c.PersonProportion+c.AuctionProportion):
		// A bid: the last auction is the last one of this epoch.
		offset = int64(c.AuctionProportion) - 1
	default:
		offset -= int64(c.PersonProportion)
	}
	return epoch*int64(c.AuctionProportion) + offset
}
