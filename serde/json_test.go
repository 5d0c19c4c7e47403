package serde_test

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/rifflestream/riffle/serde"
)

type event struct {
	ID    int64             `json:"id"`
	Kind  string            `json:"kind"`
	Tags  []string          `json:"tags,omitempty"`
	Attrs map[string]string `json:"attrs,omitempty"`
}

func TestJSON(t *testing.T) {
	s := serde.JSON[event]()
	for _, tc := range []struct {
		v    event
		json string
	}{
		{event{}, `{"id":0,"kind":""}`},
		{event{ID: 7, Kind: "click", Tags: []string{"a", "é"}}, `{"id":7,"kind":"click","tags":["a","é"]}`},
		{event{ID: -1, Attrs: map[string]string{"b": "2", "a": "1"}}, `{"id":-1,"kind":"","attrs":{"a":"1","b":"2"}}`},
	} {
		b, err := s.Serialize("t", tc.v)
		if err != nil || string(b) != tc.json {
			t.Errorf("Serialize(%+v) = %s, %v; want %s", tc.v, b, err, tc.json)
			continue
		}
		got, err := s.Deserialize("t", b)
		if err != nil || !reflect.DeepEqual(got, tc.v) {
			t.Errorf("Deserialize(%s) = %+v, %v; want %+v", b, got, err, tc.v)
		}
	}
	// Unknown fields are ignored, as json.Unmarshal does.
	if got, err := s.Deserialize("t", []byte(`{"id":3,"extra":true}`)); err != nil || got.ID != 3 {
		t.Errorf("Deserialize with an unknown field = %+v, %v", got, err)
	}
}

func TestJSONErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  func() error
		want string
	}{
		{"empty", func() error { _, err := serde.JSON[event]().Deserialize("t", []byte{}); return err },
			"serde: json[serde_test.event]: cannot deserialize: invalid JSON: unexpected end of JSON input"},
		{"syntax", func() error { _, err := serde.JSON[event]().Deserialize("t", []byte(`{"id":`)); return err },
			"serde: json[serde_test.event]: cannot deserialize: invalid JSON: unexpected end of JSON input"},
		{"trailing", func() error { _, err := serde.JSON[event]().Deserialize("t", []byte(`{} {}`)); return err },
			"serde: json[serde_test.event]: cannot deserialize: invalid JSON: invalid character '{' after top-level value"},
		{"type", func() error { _, err := serde.JSON[event]().Deserialize("t", []byte(`{"id":"x"}`)); return err },
			"serde: json[serde_test.event]: cannot deserialize: JSON does not fit the type: json: cannot unmarshal string into Go struct field event.id of type int64"},
		{"slice", func() error { _, err := serde.JSON[[]int]().Deserialize("t", []byte(`{}`)); return err },
			"serde: json[[]int]: cannot deserialize: JSON does not fit the type: json: cannot unmarshal object into Go value of type []int"},
		{"NaN", func() error { _, err := serde.JSON[float64]().Serialize("t", math.NaN()); return err },
			"serde: json[float64]: cannot serialize: json.Marshal failed: json: unsupported value: NaN"},
		{"chan", func() error { _, err := serde.JSON[chan int]().Serialize("t", nil); return err },
			"serde: json[chan int]: cannot serialize: json.Marshal failed: json: unsupported type: chan int"},
	} {
		err := tc.err()
		var se *serde.Error
		if !errors.As(err, &se) || se.Err == nil || !strings.HasPrefix(se.Serde, "json[") {
			t.Errorf("%s: error %v, want a *serde.Error of json[...] wrapping encoding/json's", tc.name, err)
			continue
		}
		if err.Error() != tc.want {
			t.Errorf("%s: error\n %q, want\n %q", tc.name, err, tc.want)
		}
	}
}
