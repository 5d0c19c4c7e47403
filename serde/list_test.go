package serde_test

import (
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/rifflestream/riffle/serde"
)

func ptr[T any](v T) *T { return &v }

func TestList(t *testing.T) {
	check := func(name string, ser func() ([]byte, error), de func([]byte) (any, error), want any, wantHex string) {
		t.Helper()
		b, err := ser()
		if err != nil || hex.EncodeToString(b) != wantHex {
			t.Errorf("%s: Serialize = %x, %v; want %s", name, b, err, wantHex)
			return
		}
		got, err := de(b)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: Deserialize(%x) = %#v, %v; want %#v", name, b, got, err, want)
		}
	}
	ints := serde.List(serde.Int32())
	for _, tc := range []struct {
		name string
		v    []int32
		want []int32
		hex  string
	}{
		{"nil", nil, []int32{}, "00" + "00000000" + "00000000"},
		{"empty", []int32{}, []int32{}, "00" + "00000000" + "00000000"},
		{"two", []int32{1, -1}, []int32{1, -1}, "00" + "00000000" + "00000002" + "00000001" + "ffffffff"},
	} {
		check("list[int32] "+tc.name, func() ([]byte, error) { return ints.Serialize("t", tc.v) },
			func(b []byte) (any, error) { return ints.Deserialize("t", b) }, tc.want, tc.hex)
	}

	nullableInts := serde.List(serde.Nullable(serde.Int64()))
	v := []*int64{ptr[int64](5), nil}
	check("list[*int64]", func() ([]byte, error) { return nullableInts.Serialize("t", v) },
		func(b []byte) (any, error) { return nullableInts.Deserialize("t", b) }, v,
		"00"+"00000001"+"00000001"+"00000002"+"0000000000000005")

	strs := serde.List(serde.Nullable(serde.String()))
	sv := []*string{ptr("a"), nil, ptr("")}
	check("list[*string]", func() ([]byte, error) { return strs.Serialize("t", sv) },
		func(b []byte) (any, error) { return strs.Deserialize("t", b) }, sv,
		"01"+"00000003"+"00000001"+"61"+"ffffffff"+"00000000")

	nested := serde.List(serde.List(serde.String()))
	nv := [][]string{{"a", "b"}, {}}
	check("list[[]string]", func() ([]byte, error) { return nested.Serialize("t", nv) },
		func(b []byte) (any, error) { return nested.Deserialize("t", b) }, nv,
		"01"+"00000002"+"0000000f"+"01"+"00000002"+"00000001"+"61"+"00000001"+"62"+"00000005"+"01"+"00000000")

	// Appending to an element read by Bytes cannot overwrite the next element.
	blobs := serde.List(serde.Bytes())
	b, _ := blobs.Serialize("t", [][]byte{{1}, {2}})
	got, err := blobs.Deserialize("t", b)
	if err != nil {
		t.Fatal(err)
	}
	_ = append(got[0], 9)
	if got[1][0] != 2 {
		t.Error("appending to element 0 overwrote element 1")
	}
}

func TestListErrors(t *testing.T) {
	// A null needs an inner serde that handles null.
	_, err := serde.List(serde.Int32()).Deserialize("t", mustHex("00"+"00000001"+"00000000"+"00000001"))
	wantListError(t, err, "list[int32]", "serde: list[int32]: cannot deserialize: element 0 is null; read nulls with List(Nullable(...))")
	_, err = serde.List(serde.String()).Deserialize("t", mustHex("01"+"00000001"+"ffffffff"))
	wantListError(t, err, "list[string]", "serde: list[string]: cannot deserialize: element 0 is null; read nulls with List(Nullable(...))")

	// An element's error names the element and wraps the element serde's.
	_, err = serde.List(serde.Int32()).Deserialize("t", mustHex("01"+"00000001"+"00000002"+"0000"))
	wantListError(t, err, "list[int32]", "serde: list[int32]: cannot deserialize: element 0: serde: int32: cannot deserialize: want 4 bytes, got 2")
	var inner *serde.Error
	if errors.As(errors.Unwrap(err), &inner); inner == nil || inner.Serde != "int32" {
		t.Errorf("error %v does not wrap int32's", err)
	}
	fails := serde.New(func(string, int) ([]byte, error) { return nil, errors.New("boom") },
		func(string, []byte) (int, error) { return 0, nil })
	_, err = serde.List(fails).Serialize("t", []int{1})
	wantListError(t, err, "list[int]", "serde: list[int]: cannot serialize: element 0: boom")

	// Data that cannot be a list.
	for _, h := range []string{"", "02", "00", "01000000", "01ffffffff", "0100000002", "010000000100000005616263"} {
		_, err := serde.List(serde.String()).Deserialize("t", mustHex(h))
		wantListError(t, err, "list[string]", "")
	}
	// A count beyond the data is rejected before anything is allocated for it.
	_, err = serde.List(serde.Int64()).Deserialize("t", mustHex("00"+"00000000"+"7fffffff"))
	wantListError(t, err, "list[int64]", "serde: list[int64]: cannot deserialize: element count 2147483647, more than 9 bytes hold")
}

func wantListError(t *testing.T, err error, name, msg string) {
	t.Helper()
	var se *serde.Error
	if !errors.As(err, &se) || se.Serde != name {
		t.Errorf("error = %v, want a *serde.Error of %s", err, name)
		return
	}
	if msg != "" && err.Error() != msg {
		t.Errorf("error\n %q, want\n %q", err, msg)
	}
	if !strings.HasPrefix(err.Error(), "serde: "+name+": ") {
		t.Errorf("error %q does not name %s", err, name)
	}
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}
