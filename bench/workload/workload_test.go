package workload

import (
	"slices"
	"strings"
	"testing"

	"github.com/rifflestream/riffle/bench/nexmark"
)

type record struct{ key, value []byte }

type input struct {
	partition int32
	key       []byte
	value     []byte
	ev        nexmark.Event
}

const testPartitions = 4

// load generates n events as the loader does: keyed, partitioned, observed by the oracle.
func load(t *testing.T, n int) ([]input, *Expected) {
	exp := NewExpected(testPartitions, All...)
	gen, err := nexmark.NewGenerator(nexmark.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	out := make([]input, n)
	for i := range out {
		in := &out[i]
		gen.Next(&in.ev)
		in.key = nexmark.AppendKey(nil, &in.ev)
		in.value = nexmark.Append(nil, &in.ev)
		in.partition = nexmark.Partition(in.key, testPartitions)
		exp.Observe(&in.ev, in.partition)
	}
	return out, exp
}

// reference computes each workload's output the way a correct system would, processing each
// partition in order with its own stream time.
func reference(t *testing.T, w Name, ins []input) []record {
	var out []record
	switch w {
	case Q0:
		for _, in := range ins {
			out = append(out, record{in.key, in.value})
		}
	case Q1, Q2:
		var bid nexmark.Bid
		for _, in := range ins {
			var v []byte
			var keep bool
			var err error
			if w == Q1 {
				v, keep, err = Q1Value(nil, in.value, &bid)
			} else {
				v, keep, err = Q2Value(nil, in.value)
			}
			if err != nil {
				t.Fatal(err)
			}
			if keep {
				out = append(out, record{in.key, v})
			}
		}
	case Count:
		counts := map[int64]int64{}
		for _, in := range ins {
			if in.ev.Kind == nexmark.KindBid {
				counts[in.ev.Bid.Auction]++
				out = append(out, record{in.key, AppendInt64(nil, counts[in.ev.Bid.Auction])})
			}
		}
	case Q7, Q5:
		for p := range int32(testPartitions) {
			open := map[windowKey]int64{}
			scanned := int64(-1)
			emit := func(streamTime int64) {
				// Every window end is a multiple of the hop advance: scan once per advance.
				if streamTime/HopAdvance.Milliseconds() == scanned {
					return
				}
				scanned = streamTime / HopAdvance.Milliseconds()
				var done []windowKey
				for k := range open {
					if k.start+WindowSize.Milliseconds() <= streamTime {
						done = append(done, k)
					}
				}
				slices.SortFunc(done, func(a, b windowKey) int { return int(a.start - b.start) })
				for _, k := range done {
					out = append(out, record{AppendPair(nil, k.auction, k.start), AppendInt64(nil, open[k])})
					delete(open, k)
				}
			}
			for _, in := range ins {
				if in.partition != p || in.ev.Kind != nexmark.KindBid {
					continue
				}
				b := in.ev.Bid
				if w == Q7 {
					k := windowKey{b.Auction, TumblingWindow(b.DateTime)}
					open[k] = max(open[k], b.Price)
				} else {
					HoppingWindows(b.DateTime, func(s int64) { open[windowKey{b.Auction, s}]++ })
				}
				emit(b.DateTime)
			}
		}
	}
	return out
}

func verify(exp *Expected, w Name, recs []record) Verdict {
	v := exp.Verifier(w)
	for _, r := range recs {
		v.Add(r.key, r.value)
	}
	return v.Verdict()
}

func TestVerifiers(t *testing.T) {
	ins, exp := load(t, 200_000) // 20 s of event time: two tumbling windows close
	for _, w := range All {
		t.Run(string(w), func(t *testing.T) {
			good := reference(t, w, ins)
			if len(good) == 0 {
				t.Fatal("the reference produced nothing")
			}
			if v := verify(exp, w, good); !v.OK {
				t.Fatalf("correct output judged wrong: %s %v", v.Summary, v.Problems)
			} else {
				t.Log(v.Summary)
			}
			if n := exp.Outputs(w); n >= 0 && int64(len(good)) != n {
				t.Fatalf("Outputs = %d, reference wrote %d", n, len(good))
			}

			// Each way of being wrong must be caught.
			mutations := map[string][]record{
				"one record lost":      good[:len(good)-1],
				"one record duplicate": append(slices.Clone(good), good[len(good)/2]),
			}
			changed := slices.Clone(good)
			at, byteAt := len(changed)/3, -1 // the last byte: a price or a count
			switch w {
			case Q1:
				byteAt = 24 // the price's low byte
			case Count:
				at = len(changed) - 1 // a final count
			}
			r := changed[at]
			v := slices.Clone(r.value)
			if byteAt < 0 {
				byteAt = len(v) - 1
			}
			v[byteAt]++
			changed[at] = record{r.key, v}
			mutations["one value changed"] = changed
			for name, recs := range mutations {
				if w == Count && name == "one record duplicate" {
					continue // an earlier update repeated mid-stream is not a wrong final count
				}
				if w == Q0 && name == "one value changed" {
					continue // q0 checks counts and sizes, not every byte
				}
				if got := verify(exp, w, recs); got.OK {
					t.Errorf("%s: judged correct: %s", name, got.Summary)
				}
			}
		})
	}
}

func TestWindowVerifierRejectsPrematureWindows(t *testing.T) {
	ins, exp := load(t, 150_000)
	good := reference(t, Q7, ins)
	// The open window of the newest bid of some partition, emitted before it closed.
	last := ins[len(ins)-1].ev.Bid
	early := record{AppendPair(nil, last.Auction, TumblingWindow(last.DateTime)), AppendInt64(nil, exp.q7[windowKey{last.Auction, TumblingWindow(last.DateTime)}])}
	got := verify(exp, Q7, append(slices.Clone(good), early))
	if got.OK || !strings.Contains(strings.Join(got.Problems, "\n"), "before its partition's stream time") {
		t.Fatalf("premature window not caught: %s %v", got.Summary, got.Problems)
	}
}

func TestHoppingWindows(t *testing.T) {
	for _, tc := range []struct {
		ts   int64
		want []int64
	}{
		{0, []int64{0}},
		{1999, []int64{0}},
		{2000, []int64{0, 2000}},
		{10_000, []int64{2000, 4000, 6000, 8000, 10_000}},
		{11_999, []int64{2000, 4000, 6000, 8000, 10_000}},
		{12_000, []int64{4000, 6000, 8000, 10_000, 12_000}},
	} {
		var got []int64
		HoppingWindows(tc.ts, func(s int64) { got = append(got, s) })
		if !slices.Equal(got, tc.want) {
			t.Errorf("HoppingWindows(%d) = %v, want %v", tc.ts, got, tc.want)
		}
	}
	if got := TumblingWindow(19_999); got != 10_000 {
		t.Errorf("TumblingWindow(19999) = %d", got)
	}
}

func TestDollarsToEuros(t *testing.T) {
	for price, want := range map[int64]int64{100: 90, 1000: 908, 99_999_999: 90_799_999, 1: 0} {
		if got := DollarsToEuros(price); got != want {
			t.Errorf("DollarsToEuros(%d) = %d, want %d", price, got, want)
		}
	}
}

func TestParseList(t *testing.T) {
	got, err := ParseList("q0, count,q5")
	if err != nil || !slices.Equal(got, []Name{Q0, Count, Q5}) {
		t.Fatalf("ParseList = %v, %v", got, err)
	}
	if _, err := ParseList("q0,q9"); err == nil {
		t.Fatal("ParseList accepted q9")
	}
}
