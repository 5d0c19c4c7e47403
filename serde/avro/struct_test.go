package avro_test

import (
	"bytes"
	"errors"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rifflestream/riffle/serde/avro"
)

const customerSchema = `{"type":"record","name":"Customer","namespace":"crm","fields":[
	{"name":"id","type":"long"},
	{"name":"name","type":"string"},
	{"name":"vip","type":"boolean"},
	{"name":"score","type":"double"},
	{"name":"ratio","type":"float"},
	{"name":"visits","type":"int"},
	{"name":"tier","type":{"type":"enum","name":"Tier","symbols":["BRONZE","SILVER","GOLD"]}},
	{"name":"hash","type":{"type":"fixed","name":"Hash","size":4}},
	{"name":"blob","type":"bytes"},
	{"name":"tags","type":{"type":"array","items":"string"}},
	{"name":"counts","type":{"type":"map","values":"long"}},
	{"name":"address","type":{"type":"record","name":"Address","fields":[
		{"name":"street","type":"string"},
		{"name":"zip","type":["null","string"],"default":null}]}},
	{"name":"previous","type":["null","Address"],"default":null},
	{"name":"history","type":{"type":"array","items":"Address"}},
	{"name":"created","type":{"type":"long","logicalType":"timestamp-millis"}},
	{"name":"born","type":{"type":"int","logicalType":"date"}},
	{"name":"opens","type":{"type":"int","logicalType":"time-millis"}},
	{"name":"updated","type":{"type":"long","logicalType":"timestamp-micros"}},
	{"name":"balance","type":{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}},
	{"name":"extra","type":["null","int","string"],"default":null},
	{"name":"origin","type":"string","default":"web"}
]}`

type tier string

type address struct {
	Street string  `avro:"street"`
	Zip    *string `avro:"zip"`
}

type customer struct {
	ID       int64            `avro:"id"`
	Name     string           `avro:"name"`
	VIP      bool             `avro:"vip"`
	Score    float64          `avro:"score"`
	Ratio    float32          `avro:"ratio"`
	Visits   int              `avro:"visits"`
	Tier     tier             `avro:"tier"`
	Hash     [4]byte          `avro:"hash"`
	Blob     []byte           `avro:"blob"`
	Tags     []string         `avro:"tags"`
	Counts   map[string]int64 `avro:"counts"`
	Address  address          `avro:"address"`
	Previous *address         `avro:"previous"`
	History  []address        `avro:"history"`
	Created  time.Time        `avro:"created"`
	Born     time.Time        `avro:"born"`
	Opens    time.Duration    `avro:"opens"`
	Updated  int64            `avro:"updated"` // the raw number of a logical type
	Balance  *big.Rat         `avro:"balance"`
	Extra    any              `avro:"extra"`
	Cache    string           `avro:"-"`
	private  int
	// origin has a default and no Go field: Serialize writes "web".
}

func sampleCustomer() customer {
	zip := "75001"
	return customer{
		ID: 42, Name: "Ada", VIP: true, Score: 9.5, Ratio: 0.5, Visits: 3, Tier: "GOLD",
		Hash: [4]byte{1, 2, 3, 4}, Blob: []byte{0xff}, Tags: []string{"a", "b"},
		Counts:   map[string]int64{"x": 1, "y": 2},
		Address:  address{Street: "Main", Zip: &zip},
		Previous: &address{Street: "Old"},
		History:  []address{{Street: "H1"}},
		Created:  time.UnixMilli(1700000000123).UTC(),
		Born:     time.Date(1990, 5, 17, 0, 0, 0, 0, time.UTC),
		Opens:    9 * time.Hour,
		Updated:  1700000000123456,
		Balance:  big.NewRat(12345, 100),
		Extra:    map[string]any{"string": "free"},
	}
}

func TestStructRoundTrip(t *testing.T) {
	s, err := avro.Struct[customer](customerSchema)
	if err != nil {
		t.Fatal(err)
	}
	in := sampleCustomer()
	b, err := s.Serialize("t", in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Deserialize("t", b)
	if err != nil {
		t.Fatal(err)
	}
	if out.Balance.Cmp(in.Balance) != 0 {
		t.Fatalf("balance %v, want %v", out.Balance, in.Balance)
	}
	out.Balance, in.Balance = nil, nil
	if !reflect.DeepEqual(out, in) {
		t.Fatalf("got  %+v\nwant %+v", out, in)
	}

	// The struct and the generic serde write the same bytes, and the generic one sees the
	// default of the field the struct does not have.
	g, err := avro.Generic(customerSchema)
	if err != nil {
		t.Fatal(err)
	}
	native, err := g.Deserialize("t", b)
	if err != nil {
		t.Fatal(err)
	}
	if native["origin"] != "web" || native["tier"] != "GOLD" || native["id"] != int64(42) {
		t.Fatalf("generic view: %v", native)
	}
	again, err := g.Serialize("t", native)
	if err != nil || !bytes.Equal(again, b) {
		t.Fatalf("generic re-encoding differs: %x\n%x (%v)", again, b, err)
	}

	// nil pointers and nil slices and maps.
	in = sampleCustomer()
	in.Previous, in.Address.Zip, in.Tags, in.Counts, in.Extra = nil, nil, nil, nil, nil
	b, err = s.Serialize("t", in)
	if err != nil {
		t.Fatal(err)
	}
	out, err = s.Deserialize("t", b)
	if err != nil {
		t.Fatal(err)
	}
	if out.Previous != nil || out.Address.Zip != nil || len(out.Tags) != 0 || len(out.Counts) != 0 || out.Extra != nil {
		t.Fatalf("got %+v", out)
	}
}

func TestStructValueErrors(t *testing.T) {
	type small struct {
		N int64  `avro:"n"`
		T string `avro:"t"`
	}
	s, err := avro.Struct[small](`{"type":"record","name":"S","fields":[{"name":"n","type":"int"},
		{"name":"t","type":{"type":"enum","name":"E","symbols":["A"]}}]}`)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Serialize("t", small{N: 1 << 40, T: "A"})
	var ae *avro.Error
	if !errors.As(err, &ae) || ae.Field != "n" || !strings.Contains(err.Error(), "does not fit an avro int") {
		t.Fatalf("got %v", err)
	}
	if _, err = s.Serialize("t", small{N: 1, T: "B"}); err == nil || !strings.Contains(err.Error(), `"t"`) {
		t.Fatalf("got %v", err)
	}

	// Reading into a narrower Go type than the schema's fails for values that do not fit.
	type narrow struct {
		N int8   `avro:"n"`
		T string `avro:"t"`
	}
	ns, err := avro.Struct[narrow](`{"type":"record","name":"S","fields":[{"name":"n","type":"int"},
		{"name":"t","type":{"type":"enum","name":"E","symbols":["A"]}}]}`)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Serialize("t", small{N: 300, T: "A"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ns.Deserialize("t", b); !errors.As(err, &ae) || ae.Field != "n" {
		t.Fatalf("got %v", err)
	}
}

// TestStructMismatch: every way a struct can fail to fit its schema is caught by the
// constructor, which names the field.
func TestStructMismatch(t *testing.T) {
	const schema = `{"type":"record","name":"R","fields":[
		{"name":"a","type":"int"},
		{"name":"u","type":["null","string"],"default":null},
		{"name":"w","type":["null","int","string"],"default":null},
		{"name":"f","type":{"type":"fixed","name":"F","size":4},"default":"abcd"},
		{"name":"d","type":{"type":"bytes","logicalType":"decimal","precision":4,"scale":1},"default":"\u0000"},
		{"name":"m","type":{"type":"map","values":"int"},"default":{}},
		{"name":"r","type":{"type":"record","name":"In","fields":[{"name":"x","type":"int"}]},"default":{"x":1}}
	]}`
	check := func(t *testing.T, err error, want ...string) {
		t.Helper()
		if err == nil {
			t.Fatal("constructor accepted the struct")
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Fatalf("error %q does not contain %q", err, w)
			}
		}
		if !strings.HasPrefix(err.Error(), "avro: ") {
			t.Fatalf("error %q does not start with avro:", err)
		}
	}
	t.Run("wrong type", func(t *testing.T) {
		type s struct {
			A string `avro:"a"`
		}
		_, err := avro.Struct[s](schema)
		check(t, err, "field a", "string cannot hold avro int")
	})
	t.Run("unsigned", func(t *testing.T) {
		type s struct {
			A uint32 `avro:"a"`
		}
		_, err := avro.Struct[s](schema)
		check(t, err, "field a", "uint32")
	})
	t.Run("missing field without default", func(t *testing.T) {
		type s struct {
			U *string `avro:"u"`
		}
		_, err := avro.Struct[s](schema)
		check(t, err, "field a", "no default")
	})
	t.Run("Go field not in schema", func(t *testing.T) {
		type s struct {
			A     int32 `avro:"a"`
			Typo  int32 `avro:"aa"`
			Other int32
		}
		_, err := avro.Struct[s](schema)
		check(t, err, "field Typo", `no field "aa"`)
	})
	t.Run("untagged field not in schema", func(t *testing.T) {
		type s struct {
			A     int32 `avro:"a"`
			Other int32
		}
		_, err := avro.Struct[s](schema)
		check(t, err, "field Other", `no field "Other"`)
	})
	t.Run("two Go fields for one avro field", func(t *testing.T) {
		type s struct {
			A int32 `avro:"a"`
			B int64 `avro:"a"`
		}
		_, err := avro.Struct[s](schema)
		check(t, err, "both map to avro field")
	})
	t.Run("nullable union without pointer", func(t *testing.T) {
		type s struct {
			A int32  `avro:"a"`
			U string `avro:"u"`
		}
		_, err := avro.Struct[s](schema)
		check(t, err, "field u", "needs a pointer")
	})
	t.Run("wide union without any", func(t *testing.T) {
		type s struct {
			A int32   `avro:"a"`
			W *string `avro:"w"`
		}
		_, err := avro.Struct[s](schema)
		check(t, err, "field w", "only any")
	})
	t.Run("fixed of the wrong size", func(t *testing.T) {
		type s struct {
			A int32   `avro:"a"`
			F [3]byte `avro:"f"`
		}
		_, err := avro.Struct[s](schema)
		check(t, err, "field f", "size is 4")
	})
	t.Run("decimal without big.Rat", func(t *testing.T) {
		type s struct {
			A int32   `avro:"a"`
			D float64 `avro:"d"`
		}
		_, err := avro.Struct[s](schema)
		check(t, err, "field d", "*big.Rat")
	})
	t.Run("map with int keys", func(t *testing.T) {
		type s struct {
			A int32         `avro:"a"`
			M map[int]int32 `avro:"m"`
		}
		_, err := avro.Struct[s](schema)
		check(t, err, "field m", "string keys")
	})
	t.Run("nested field", func(t *testing.T) {
		type in struct {
			X float32 `avro:"x"`
		}
		type s struct {
			A int32 `avro:"a"`
			R in    `avro:"r"`
		}
		_, err := avro.Struct[s](schema)
		check(t, err, "field r.x", "float32 cannot hold avro int")
	})
	t.Run("not a struct", func(t *testing.T) {
		_, err := avro.Struct[map[string]any](schema)
		check(t, err, "not a struct")
	})
	t.Run("time without logical type", func(t *testing.T) {
		type s struct {
			A time.Time `avro:"a"`
		}
		_, err := avro.Struct[s](schema)
		check(t, err, "field a", "logicalType")
	})
}

func TestStructRecursive(t *testing.T) {
	type node struct {
		V    int32 `avro:"v"`
		Next *node `avro:"next"`
	}
	s, err := avro.Struct[node](`{"type":"record","name":"Node","fields":[{"name":"v","type":"int"},{"name":"next","type":["null","Node"]}]}`)
	if err != nil {
		t.Fatal(err)
	}
	in := node{V: 1, Next: &node{V: 2, Next: &node{V: 3}}}
	b, err := s.Serialize("t", in)
	if err != nil {
		t.Fatal(err)
	}
	// v=1, branch Node, v=2, branch Node, v=3, branch null.
	if !bytes.Equal(b, []byte{2, 2, 4, 2, 6, 0}) {
		t.Fatalf("got %x", b)
	}
	out, err := s.Deserialize("t", b)
	if err != nil || !reflect.DeepEqual(out, in) {
		t.Fatalf("got %+v, %v", out, err)
	}
}

// TestStructEvolution: a struct serde on version 2 reads version 1's bytes.
func TestStructEvolution(t *testing.T) {
	type orderV2T struct {
		ID     string  `avro:"id"`
		Amount int64   `avro:"amount"`
		Status string  `avro:"status"`
		Note   *string `avro:"note"`
	}
	_, cl := newRegistry(t)
	v1, err := avro.Generic(orderV1, avro.SchemaRegistry(cl))
	if err != nil {
		t.Fatal(err)
	}
	v2, err := avro.Struct[orderV2T](orderV2, avro.SchemaRegistry(cl))
	if err != nil {
		t.Fatal(err)
	}
	b, err := v1.Serialize("orders", map[string]any{"id": "o-1", "amount": int32(12), "status": "PAID"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := v2.Deserialize("orders", b)
	if err != nil {
		t.Fatal(err)
	}
	if want := (orderV2T{ID: "o-1", Amount: 12, Status: "PAID"}); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}
