package workload

import (
	"fmt"

	"github.com/rifflestream/riffle/bench/nexmark"
)

// windowKey is one window of one auction.
type windowKey struct{ auction, start int64 }

// Expected holds what each workload must output for one loaded input, computed from the events
// as they are loaded. Build it with NewExpected and Observe, then ask it for a Verifier.
type Expected struct {
	partitions int32

	events, valueBytes int64 // q0
	bids               int64 // q1
	q1PriceSum         int64
	q2Count, q2Sum     int64
	perAuction         map[int64]int64     // count
	q7                 map[windowKey]int64 // highest price
	q5                 map[windowKey]int64 // bids
	maxBidTime         []int64             // per partition; -1 before the first bid
}

// NewExpected returns an empty oracle for an input topic of the given partition count. Only the
// state the listed workloads need is kept.
func NewExpected(partitions int32, workloads ...Name) *Expected {
	e := &Expected{partitions: partitions, maxBidTime: make([]int64, partitions)}
	for i := range e.maxBidTime {
		e.maxBidTime[i] = -1
	}
	for _, w := range workloads {
		switch w {
		case Count:
			e.perAuction = map[int64]int64{}
		case Q7:
			e.q7 = map[windowKey]int64{}
		case Q5:
			e.q5 = map[windowKey]int64{}
		}
	}
	return e
}

// Observe records one loaded event: its encoded size and the partition it was written to.
func (e *Expected) Observe(ev *nexmark.Event, partition int32) {
	e.events++
	e.valueBytes += int64(nexmark.EncodedSize(ev))
	if ev.Kind != nexmark.KindBid {
		return
	}
	b := &ev.Bid
	e.bids++
	e.q1PriceSum += DollarsToEuros(b.Price)
	if Q2Keeps(b.Auction) {
		e.q2Count++
		e.q2Sum += b.Price
	}
	if e.perAuction != nil {
		e.perAuction[b.Auction]++
	}
	if e.q7 != nil {
		k := windowKey{b.Auction, TumblingWindow(b.DateTime)}
		if p, ok := e.q7[k]; !ok || b.Price > p {
			e.q7[k] = b.Price
		}
	}
	if e.q5 != nil {
		HoppingWindows(b.DateTime, func(start int64) { e.q5[windowKey{b.Auction, start}]++ })
	}
	e.maxBidTime[partition] = max(e.maxBidTime[partition], b.DateTime)
}

// Events returns how many events were observed.
func (e *Expected) Events() int64 { return e.events }

// Outputs returns how many output records a clean run of a stateless workload writes, or -1
// for the others, whose output count depends on caching and on when windows close.
func (e *Expected) Outputs(w Name) int64 {
	switch w {
	case Q0:
		return e.events
	case Q1:
		return e.bids
	case Q2:
		return e.q2Count
	}
	return -1
}

// Verdict is a verifier's judgement of one run's output.
type Verdict struct {
	OK       bool     `json:"ok"`
	Records  int64    `json:"records"`           // output records read
	Summary  string   `json:"summary"`           // one line: what was checked, what was found
	Problems []string `json:"problems,omitzero"` // the first few things wrong
	Count    int      `json:"problem_count,omitzero"`
}

// Verifier checks the output of one workload, record by record. It is not safe for concurrent
// use.
type Verifier interface {
	// Add takes one output record.
	Add(key, value []byte)
	// Verdict judges the records added so far as the complete output of a clean run.
	Verdict() Verdict
}

// Verifier returns the verifier of workload w. It panics if w's state was not requested from
// NewExpected.
func (e *Expected) Verifier(w Name) Verifier {
	switch w {
	case Q0:
		return &q0Verifier{exp: e}
	case Q1:
		return &q1Verifier{exp: e}
	case Q2:
		return &q2Verifier{exp: e}
	case Count:
		if e.perAuction == nil {
			panic("workload: Expected built without count")
		}
		return &countVerifier{exp: e, last: map[int64]int64{}}
	case Q7, Q5:
		want := e.q7
		if w == Q5 {
			want = e.q5
		}
		if want == nil {
			panic("workload: Expected built without " + string(w))
		}
		return &windowVerifier{exp: e, w: w, want: want, got: map[windowKey]int64{}}
	}
	panic("workload: no verifier for " + string(w))
}

// problems collects what is wrong, keeping the first few for the report.
type problems struct {
	list  []string
	count int
}

const keptProblems = 8

func (p *problems) addf(format string, args ...any) {
	p.count++
	if len(p.list) < keptProblems {
		p.list = append(p.list, fmt.Sprintf(format, args...))
	}
}

func (p *problems) verdict(records int64, summary string) Verdict {
	return Verdict{OK: p.count == 0, Records: records, Summary: summary, Problems: p.list, Count: p.count}
}

type q0Verifier struct {
	exp          *Expected
	n, bytes     int64
	bids, badKey int64
	p            problems
}

func (v *q0Verifier) Add(key, value []byte) {
	v.n++
	v.bytes += int64(len(value))
	if nexmark.IsBid(value) {
		v.bids++
		if auction, _, _, err := nexmark.BidFields(value); err == nil {
			if k, ok := Int64(key); !ok || k != auction {
				v.badKey++
			}
		}
	}
}

func (v *q0Verifier) Verdict() Verdict {
	if v.n != v.exp.events {
		v.p.addf("%d records, want %d", v.n, v.exp.events)
	}
	if v.bytes != v.exp.valueBytes {
		v.p.addf("%d value bytes, want %d", v.bytes, v.exp.valueBytes)
	}
	if v.bids != v.exp.bids {
		v.p.addf("%d bids, want %d", v.bids, v.exp.bids)
	}
	if v.badKey > 0 {
		v.p.addf("%d bids keyed by something else than their auction", v.badKey)
	}
	return v.p.verdict(v.n, fmt.Sprintf("%d records (want %d), %d value bytes (want %d)", v.n, v.exp.events, v.bytes, v.exp.valueBytes))
}

type q1Verifier struct {
	exp    *Expected
	n, sum int64
	bid    nexmark.Bid
	p      problems
}

func (v *q1Verifier) Add(key, value []byte) {
	v.n++
	if err := nexmark.DecodeBid(value, &v.bid); err != nil {
		v.p.addf("record %d: %v", v.n, err)
		return
	}
	v.sum += v.bid.Price
	if k, ok := Int64(key); !ok || k != v.bid.Auction {
		v.p.addf("record %d: key %x, want auction %d", v.n, key, v.bid.Auction)
	}
}

func (v *q1Verifier) Verdict() Verdict {
	if v.n != v.exp.bids {
		v.p.addf("%d records, want %d bids", v.n, v.exp.bids)
	}
	if v.sum != v.exp.q1PriceSum {
		v.p.addf("euro prices sum to %d, want %d", v.sum, v.exp.q1PriceSum)
	}
	return v.p.verdict(v.n, fmt.Sprintf("%d bids (want %d), euro price sum %d (want %d)", v.n, v.exp.bids, v.sum, v.exp.q1PriceSum))
}

type q2Verifier struct {
	exp    *Expected
	n, sum int64
	p      problems
}

func (v *q2Verifier) Add(key, value []byte) {
	v.n++
	auction, price, ok := Pair(value)
	if !ok {
		v.p.addf("record %d: value of %d bytes, want 16", v.n, len(value))
		return
	}
	if !Q2Keeps(auction) {
		v.p.addf("record %d: auction %d is not a multiple of %d", v.n, auction, Q2Modulus)
	}
	if k, ok := Int64(key); !ok || k != auction {
		v.p.addf("record %d: key %x, want auction %d", v.n, key, auction)
	}
	v.sum += price
}

func (v *q2Verifier) Verdict() Verdict {
	if v.n != v.exp.q2Count {
		v.p.addf("%d records, want %d", v.n, v.exp.q2Count)
	}
	if v.sum != v.exp.q2Sum {
		v.p.addf("prices sum to %d, want %d", v.sum, v.exp.q2Sum)
	}
	return v.p.verdict(v.n, fmt.Sprintf("%d records (want %d), price sum %d (want %d)", v.n, v.exp.q2Count, v.sum, v.exp.q2Sum))
}

type countVerifier struct {
	exp  *Expected
	n    int64
	last map[int64]int64
	p    problems
}

func (v *countVerifier) Add(key, value []byte) {
	v.n++
	auction, ok1 := Int64(key)
	count, ok2 := Int64(value)
	if !ok1 || !ok2 {
		v.p.addf("record %d: key of %d bytes, value of %d bytes, want 8 and 8", v.n, len(key), len(value))
		return
	}
	v.last[auction] = count
}

func (v *countVerifier) Verdict() Verdict {
	wrong := 0
	for auction, want := range v.exp.perAuction {
		got, ok := v.last[auction]
		switch {
		case !ok:
			v.p.addf("auction %d: no count, want %d", auction, want)
			wrong++
		case got != want:
			v.p.addf("auction %d: last count %d, want %d", auction, got, want)
			wrong++
		}
	}
	for auction, got := range v.last {
		if _, ok := v.exp.perAuction[auction]; !ok {
			v.p.addf("auction %d: count %d, but it has no bids", auction, got)
			wrong++
		}
	}
	return v.p.verdict(v.n, fmt.Sprintf("%d updates for %d auctions (want %d auctions), %d wrong final counts",
		v.n, len(v.last), len(v.exp.perAuction), wrong))
}

// windowVerifier checks final window results. A window [start, start+size) of an auction in
// partition p is closed once that partition's stream time (its newest bid) reaches its end (grace
// 0); a system may instead close windows on the oldest stream time of all partitions. So every
// window that ends by the smallest per-partition newest bid time must be emitted, a window may be
// emitted if it ends by its own partition's newest bid time, and no other may; every emitted
// window must hold the value computed from all its bids, and be emitted once.
type windowVerifier struct {
	exp        *Expected
	w          Name
	want, got  map[windowKey]int64
	n, repeats int64
	p          problems
}

func (v *windowVerifier) Add(key, value []byte) {
	v.n++
	auction, start, ok1 := Pair(key)
	val, ok2 := Int64(value)
	if !ok1 || !ok2 {
		v.p.addf("record %d: key of %d bytes, value of %d bytes, want 16 and 8", v.n, len(key), len(value))
		return
	}
	k := windowKey{auction, start}
	if prev, seen := v.got[k]; seen {
		v.repeats++
		if prev != val {
			v.p.addf("auction %d window %d: emitted %d and then %d", auction, start, prev, val)
		}
	}
	v.got[k] = val
}

func (v *windowVerifier) Verdict() Verdict {
	size := WindowSize.Milliseconds()
	// The newest bid time of the partition that is furthest behind.
	required := int64(-1)
	for _, t := range v.exp.maxBidTime {
		if t >= 0 && (required < 0 || t < required) {
			required = t
		}
	}
	partitionOf := func(auction int64) int32 {
		return nexmark.Partition(AppendInt64(nil, auction), v.exp.partitions)
	}
	var mandatory, wrong int
	for k, want := range v.want {
		end := k.start + size
		got, ok := v.got[k]
		if end <= required {
			mandatory++
			if !ok {
				v.p.addf("auction %d window %d: missing (want %d)", k.auction, k.start, want)
				wrong++
				continue
			}
		}
		if ok && got != want {
			v.p.addf("auction %d window %d: %d, want %d", k.auction, k.start, got, want)
			wrong++
		}
	}
	var premature int
	for k := range v.got {
		if _, ok := v.want[k]; !ok {
			v.p.addf("auction %d window %d: emitted, but no bid falls in it", k.auction, k.start)
			wrong++
			continue
		}
		if k.start+size > v.exp.maxBidTime[partitionOf(k.auction)] {
			v.p.addf("auction %d window %d: emitted before its partition's stream time reached its end", k.auction, k.start)
			premature++
		}
	}
	if v.repeats > 0 {
		v.p.addf("%d windows emitted more than once", v.repeats)
	}
	return v.p.verdict(v.n, fmt.Sprintf("%d final windows (%d required, %d in all), %d wrong, %d premature, %d repeated",
		len(v.got), mandatory, len(v.want), wrong, premature, v.repeats))
}
