package nexmark

import (
	"bytes"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestCodecRoundTrip(t *testing.T) {
	events := generate(t, DefaultConfig(), 5_000)
	var buf []byte
	for i := range events {
		in := &events[i]
		buf = Append(buf[:0], in)
		if len(buf) != EncodedSize(in) {
			t.Fatalf("event %d: encoded %d bytes, EncodedSize says %d", i, len(buf), EncodedSize(in))
		}
		var out Event
		if err := Decode(buf, &out); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		switch in.Kind {
		case KindPerson:
			if out.Person != in.Person {
				t.Fatalf("person %d: got %+v, want %+v", i, out.Person, in.Person)
			}
		case KindAuction:
			if out.Auction != in.Auction {
				t.Fatalf("auction %d: got %+v, want %+v", i, out.Auction, in.Auction)
			}
		case KindBid:
			if out.Bid != in.Bid {
				t.Fatalf("bid %d: got %+v, want %+v", i, out.Bid, in.Bid)
			}
			auction, price, ts, err := BidFields(buf)
			if err != nil || auction != in.Bid.Auction || price != in.Bid.Price || ts != in.Bid.DateTime {
				t.Fatalf("bid %d: BidFields = %d, %d, %d, %v", i, auction, price, ts, err)
			}
		}
		if k, err := KindOf(buf); err != nil || k != in.Kind {
			t.Fatalf("event %d: KindOf = %v, %v; want %v", i, k, err, in.Kind)
		}
	}
}

// TestCodecLayout pins the byte layout FORMAT.md documents, which the Java peer decodes.
func TestCodecLayout(t *testing.T) {
	bid := Bid{Auction: 0x0102, Bidder: 3, Price: 4, DateTime: 5, Channel: "ch", URL: "u", Extra: ""}
	want := []byte{
		2,
		0, 0, 0, 0, 0, 0, 1, 2,
		0, 0, 0, 0, 0, 0, 0, 3,
		0, 0, 0, 0, 0, 0, 0, 4,
		0, 0, 0, 0, 0, 0, 0, 5,
		0, 0, 0, 2, 'c', 'h',
		0, 0, 0, 1, 'u',
		0, 0, 0, 0,
	}
	if got := AppendBid(nil, &bid); !bytes.Equal(got, want) {
		t.Fatalf("bid encoding\n got %v\nwant %v", got, want)
	}
	ev := Event{Kind: KindBid, Bid: bid}
	if got := AppendKey(nil, &ev); !bytes.Equal(got, []byte{0, 0, 0, 0, 0, 0, 1, 2}) {
		t.Fatalf("bid key %v", got)
	}
}

func TestCodecRejectsMalformed(t *testing.T) {
	events := generate(t, DefaultConfig(), 60)
	var valid [3][]byte
	for i := range events {
		valid[events[i].Kind] = Append(nil, &events[i])
	}
	cases := map[string][]byte{
		"empty":           {},
		"unknown kind":    {7, 0, 0},
		"short bid":       valid[KindBid][:20],
		"cut string":      valid[KindBid][:len(valid[KindBid])-1],
		"trailing bytes":  append(append([]byte{}, valid[KindBid]...), 0),
		"short person":    valid[KindPerson][:10],
		"cut person":      valid[KindPerson][:len(valid[KindPerson])-3],
		"cut auction":     valid[KindAuction][:fixedAuction+2],
		"huge string len": append(append([]byte{}, valid[KindBid][:fixedBid]...), 0xff, 0xff, 0xff, 0xff),
	}
	for name, b := range cases {
		var ev Event
		if err := Decode(b, &ev); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Decode error %v, want ErrMalformed", name, err)
		}
	}
	if _, _, _, err := BidFields(valid[KindPerson]); !errors.Is(err, ErrMalformed) {
		t.Errorf("BidFields of a person: %v, want ErrMalformed", err)
	}
	if err := DecodeBid(valid[KindAuction], new(Bid)); !errors.Is(err, ErrMalformed) {
		t.Errorf("DecodeBid of an auction: %v, want ErrMalformed", err)
	}
}

func TestCodecAllocations(t *testing.T) {
	events := generate(t, DefaultConfig(), 50)
	var bid *Event
	for i := range events {
		if events[i].Kind == KindBid {
			bid = &events[i]
			break
		}
	}
	buf := make([]byte, 0, 1024)
	if n := testing.AllocsPerRun(100, func() { buf = Append(buf[:0], bid) }); n != 0 {
		t.Errorf("Append: %.0f allocations, want 0", n)
	}
	enc := Append(nil, bid)
	var out Bid
	if n := testing.AllocsPerRun(100, func() { _ = DecodeBid(enc, &out) }); n > 1 {
		t.Errorf("DecodeBid: %.0f allocations, want at most 1", n)
	}
	if n := testing.AllocsPerRun(100, func() { _, _, _, _ = BidFields(enc) }); n != 0 {
		t.Errorf("BidFields: %.0f allocations, want 0", n)
	}
}

// TestPartitionMatchesKafka checks Partition against franz-go's Kafka-compatible key
// partitioner, which places keyed records as the Java client does.
func TestPartitionMatchesKafka(t *testing.T) {
	p := kgo.StickyKeyPartitioner(nil).ForTopic("t")
	for _, n := range []int{1, 3, 4, 7} {
		for id := int64(0); id < 5000; id += 7 {
			ev := Event{Kind: KindPerson, Person: Person{ID: id}}
			key := AppendKey(nil, &ev)
			if got, want := Partition(key, int32(n)), p.Partition(&kgo.Record{Key: key}, n); int(got) != want {
				t.Fatalf("key %d of %d partitions: Partition %d, Kafka %d", id, n, got, want)
			}
		}
		for _, key := range [][]byte{{}, {1}, {1, 2}, {1, 2, 3}, []byte("hello")} {
			if got, want := Partition(key, int32(n)), p.Partition(&kgo.Record{Key: key}, n); int(got) != want {
				t.Fatalf("key %q of %d partitions: Partition %d, Kafka %d", key, n, got, want)
			}
		}
	}
}

func BenchmarkGenerator(b *testing.B) {
	g := newGenerator(b, DefaultConfig())
	var ev Event
	b.ReportAllocs()
	for b.Loop() {
		g.Next(&ev)
	}
}

func BenchmarkDecodeBid(b *testing.B) {
	g := newGenerator(b, DefaultConfig())
	var ev Event
	for g.Next(&ev).Kind != KindBid {
	}
	enc := Append(nil, &ev)
	var bid Bid
	b.ReportAllocs()
	b.SetBytes(int64(len(enc)))
	for b.Loop() {
		if err := DecodeBid(enc, &bid); err != nil {
			b.Fatal(err)
		}
	}
}
