package nexmark

import "time"

// Kind says which of the three Nexmark entities an event carries. Its value is the first byte of
// the event's encoding.
type Kind uint8

// The event kinds, in the order of the reference's proportions.
const (
	KindPerson  Kind = 0
	KindAuction Kind = 1
	KindBid     Kind = 2
)

func (k Kind) String() string {
	switch k {
	case KindPerson:
		return "person"
	case KindAuction:
		return "auction"
	case KindBid:
		return "bid"
	}
	return "unknown"
}

// Person is a new person registering on the auction site.
type Person struct {
	ID           int64
	DateTime     int64 // event time, unix milliseconds
	Name         string
	EmailAddress string
	CreditCard   string
	City         string
	State        string
	Extra        string
}

// Auction is a new item put up for auction.
type Auction struct {
	ID          int64
	InitialBid  int64 // cents
	Reserve     int64 // cents
	DateTime    int64 // event time, unix milliseconds
	Expires     int64 // unix milliseconds
	Seller      int64 // a Person ID
	Category    int64
	ItemName    string
	Description string
	Extra       string
}

// Bid is a bid on an auction.
type Bid struct {
	Auction  int64 // an Auction ID
	Bidder   int64 // a Person ID
	Price    int64 // cents
	DateTime int64 // event time, unix milliseconds
	Channel  string
	URL      string
	Extra    string
}

// Event is one generated event: Kind says which of Person, Auction and Bid holds it; the other
// two are left as they were. Reusing one Event across Generator.Next and Decode calls avoids an
// allocation per event.
type Event struct {
	Kind    Kind
	Person  Person
	Auction Auction
	Bid     Bid
}

// Time returns the event's event time (its DateTime) in unix milliseconds.
func (e *Event) Time() int64 {
	switch e.Kind {
	case KindPerson:
		return e.Person.DateTime
	case KindAuction:
		return e.Auction.DateTime
	default:
		return e.Bid.DateTime
	}
}

// KeyID returns the id the event's record is keyed by: the auction for a bid, the entity's own id
// for a person or an auction.
func (e *Event) KeyID() int64 {
	switch e.Kind {
	case KindPerson:
		return e.Person.ID
	case KindAuction:
		return e.Auction.ID
	default:
		return e.Bid.Auction
	}
}

// UnixMilli is a helper for DateTime fields.
func UnixMilli(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
