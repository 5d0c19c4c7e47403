package nexmark

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// The layout of FORMAT.md: a kind byte, the fixed-width int64 fields, then the strings.
const (
	fixedPerson  = 1 + 2*8
	fixedAuction = 1 + 7*8
	fixedBid     = 1 + 4*8

	// Byte offsets of a bid's fixed fields.
	bidAuctionAt  = 1
	bidBidderAt   = 9
	bidPriceAt    = 17
	bidDateTimeAt = 25
)

// ErrMalformed is returned, wrapped with what was wrong, when bytes are not an encoded event.
var ErrMalformed = errors.New("nexmark: malformed event")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

// EncodedSize returns the length of ev's encoding.
func EncodedSize(ev *Event) int {
	switch ev.Kind {
	case KindPerson:
		p := &ev.Person
		return fixedPerson + 6*4 + len(p.Name) + len(p.EmailAddress) + len(p.CreditCard) + len(p.City) + len(p.State) + len(p.Extra)
	case KindAuction:
		a := &ev.Auction
		return fixedAuction + 3*4 + len(a.ItemName) + len(a.Description) + len(a.Extra)
	default:
		return BidSize(&ev.Bid)
	}
}

// BidSize returns the length of b's encoding.
func BidSize(b *Bid) int { return fixedBid + 3*4 + len(b.Channel) + len(b.URL) + len(b.Extra) }

// Append appends ev's encoding to dst and returns the extended slice. It panics if a string is
// longer than math.MaxInt32 bytes, which no generated event comes near.
func Append(dst []byte, ev *Event) []byte {
	switch ev.Kind {
	case KindPerson:
		p := &ev.Person
		dst = append(dst, byte(KindPerson))
		dst = binary.BigEndian.AppendUint64(dst, uint64(p.ID))
		dst = binary.BigEndian.AppendUint64(dst, uint64(p.DateTime))
		dst = appendString(dst, p.Name)
		dst = appendString(dst, p.EmailAddress)
		dst = appendString(dst, p.CreditCard)
		dst = appendString(dst, p.City)
		dst = appendString(dst, p.State)
		return appendString(dst, p.Extra)
	case KindAuction:
		a := &ev.Auction
		dst = append(dst, byte(KindAuction))
		for _, v := range [...]int64{a.ID, a.InitialBid, a.Reserve, a.DateTime, a.Expires, a.Seller, a.Category} {
			dst = binary.BigEndian.AppendUint64(dst, uint64(v))
		}
		dst = appendString(dst, a.ItemName)
		dst = appendString(dst, a.Description)
		return appendString(dst, a.Extra)
	default:
		return AppendBid(dst, &ev.Bid)
	}
}

// AppendBid appends the encoding of a bid event to dst and returns the extended slice.
func AppendBid(dst []byte, b *Bid) []byte {
	dst = append(dst, byte(KindBid))
	dst = binary.BigEndian.AppendUint64(dst, uint64(b.Auction))
	dst = binary.BigEndian.AppendUint64(dst, uint64(b.Bidder))
	dst = binary.BigEndian.AppendUint64(dst, uint64(b.Price))
	dst = binary.BigEndian.AppendUint64(dst, uint64(b.DateTime))
	dst = appendString(dst, b.Channel)
	dst = appendString(dst, b.URL)
	return appendString(dst, b.Extra)
}

// AppendKey appends the 8-byte record key of ev (KeyID, big-endian) to dst.
func AppendKey(dst []byte, ev *Event) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(ev.KeyID()))
}

func appendString(dst []byte, s string) []byte {
	if len(s) > math.MaxInt32 {
		panic("nexmark: string longer than 2 GiB")
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(s)))
	return append(dst, s...)
}

// KindOf returns the kind byte of an encoded event without decoding it.
func KindOf(b []byte) (Kind, error) {
	if len(b) == 0 {
		return 0, malformed("empty")
	}
	if k := Kind(b[0]); k <= KindBid {
		return k, nil
	}
	return 0, malformed("kind byte %d", b[0])
}

// IsBid reports whether b is an encoded bid (by its kind byte only).
func IsBid(b []byte) bool { return len(b) >= fixedBid && b[0] == byte(KindBid) }

// BidFields returns the auction, price and date-time of an encoded bid without decoding the
// rest and without allocating: the fast path of filters and aggregations that need only these.
func BidFields(b []byte) (auction, price, dateTime int64, err error) {
	if !IsBid(b) {
		if len(b) > 0 && b[0] != byte(KindBid) {
			return 0, 0, 0, malformed("kind %d is not a bid", b[0])
		}
		return 0, 0, 0, malformed("bid of %d bytes", len(b))
	}
	return int64(binary.BigEndian.Uint64(b[bidAuctionAt:])),
		int64(binary.BigEndian.Uint64(b[bidPriceAt:])),
		int64(binary.BigEndian.Uint64(b[bidDateTimeAt:])), nil
}

// Decode decodes an encoded event into ev, overwriting ev.Kind and the entity it names. Strings
// are copied: ev does not refer to b afterwards.
func Decode(b []byte, ev *Event) error {
	k, err := KindOf(b)
	if err != nil {
		return err
	}
	ev.Kind = k
	switch k {
	case KindPerson:
		return decodePerson(b, &ev.Person)
	case KindAuction:
		return decodeAuction(b, &ev.Auction)
	default:
		return DecodeBid(b, &ev.Bid)
	}
}

// DecodeBid decodes an encoded bid into bid: the fast path for queries that read whole bids. It
// allocates once, for the three strings together. Strings are copied: bid does not refer to b
// afterwards.
func DecodeBid(b []byte, bid *Bid) error {
	if !IsBid(b) {
		_, _, _, err := BidFields(b)
		return err
	}
	bid.Auction = int64(binary.BigEndian.Uint64(b[bidAuctionAt:]))
	bid.Bidder = int64(binary.BigEndian.Uint64(b[bidBidderAt:]))
	bid.Price = int64(binary.BigEndian.Uint64(b[bidPriceAt:]))
	bid.DateTime = int64(binary.BigEndian.Uint64(b[bidDateTimeAt:]))
	r := stringReader{all: string(b[fixedBid:]), b: b, at: fixedBid}
	bid.Channel = r.next()
	bid.URL = r.next()
	bid.Extra = r.next()
	return r.done("bid")
}

func decodePerson(b []byte, p *Person) error {
	if len(b) < fixedPerson {
		return malformed("person of %d bytes", len(b))
	}
	p.ID = int64(binary.BigEndian.Uint64(b[1:]))
	p.DateTime = int64(binary.BigEndian.Uint64(b[9:]))
	r := stringReader{all: string(b[fixedPerson:]), b: b, at: fixedPerson}
	p.Name = r.next()
	p.EmailAddress = r.next()
	p.CreditCard = r.next()
	p.City = r.next()
	p.State = r.next()
	p.Extra = r.next()
	return r.done("person")
}

func decodeAuction(b []byte, a *Auction) error {
	if len(b) < fixedAuction {
		return malformed("auction of %d bytes", len(b))
	}
	at := 1
	for _, f := range [...]*int64{&a.ID, &a.InitialBid, &a.Reserve, &a.DateTime, &a.Expires, &a.Seller, &a.Category} {
		*f = int64(binary.BigEndian.Uint64(b[at:]))
		at += 8
	}
	r := stringReader{all: string(b[fixedAuction:]), b: b, at: fixedAuction}
	a.ItemName = r.next()
	a.Description = r.next()
	a.Extra = r.next()
	return r.done("auction")
}

// stringReader reads the length-prefixed strings that follow an event's fixed fields, slicing
// them out of all, one string copy of that whole tail.
type stringReader struct {
	all string // b[base:] as a string
	b   []byte
	at  int // offset in b
	err error
}

func (r *stringReader) next() string {
	if r.err != nil {
		return ""
	}
	if len(r.b)-r.at < 4 {
		r.err = malformed("string length at offset %d past the end (%d bytes)", r.at, len(r.b))
		return ""
	}
	n := int(binary.BigEndian.Uint32(r.b[r.at:]))
	start := r.at + 4
	if n < 0 || n > len(r.b)-start {
		r.err = malformed("string of %d bytes at offset %d overruns %d bytes", n, start, len(r.b))
		return ""
	}
	r.at = start + n
	base := len(r.b) - len(r.all)
	return r.all[start-base : r.at-base]
}

func (r *stringReader) done(what string) error {
	if r.err != nil {
		return fmt.Errorf("%s: %w", what, r.err)
	}
	if r.at != len(r.b) {
		return malformed("%s: %d trailing bytes", what, len(r.b)-r.at)
	}
	return nil
}
