package main

import (
	"bytes"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rifflestream/riffle/bench/nexmark"
	"github.com/rifflestream/riffle/bench/workload"
)

// TestTransforms checks the loop's in-place transforms against the workload package's reference
// functions, on every kind of event.
func TestTransforms(t *testing.T) {
	gen, err := nexmark.NewGenerator(nexmark.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	l := &loop{output: "out"}
	var ev nexmark.Event
	var bid nexmark.Bid
	var kept [2]int
	for i := range 20_000 {
		gen.Next(&ev)
		value := nexmark.Append(nil, &ev)
		for j, tc := range []struct {
			transform func(*kgo.Record) (bool, error)
			reference func([]byte) ([]byte, bool, error)
		}{
			{l.q1, func(v []byte) ([]byte, bool, error) { return workload.Q1Value(nil, v, &bid) }},
			{l.q2, func(v []byte) ([]byte, bool, error) { return workload.Q2Value(nil, v) }},
		} {
			r := &kgo.Record{Value: bytes.Clone(value)}
			keep, err := tc.transform(r)
			want, wantKeep, wantErr := tc.reference(value)
			if err != nil || wantErr != nil {
				t.Fatalf("event %d: %v / %v", i, err, wantErr)
			}
			if keep != wantKeep || (keep && !bytes.Equal(r.Value, want)) {
				t.Fatalf("event %d, transform %d: kept %v %x, want %v %x", i, j, keep, r.Value, wantKeep, want)
			}
			if keep {
				kept[j]++
			}
		}
	}
	if kept[0] == 0 || kept[1] == 0 {
		t.Fatalf("kept %v: the test exercised no output", kept)
	}
	if _, err := l.q1(&kgo.Record{Value: []byte{9}}); err == nil {
		t.Fatal("q1 accepted a malformed event")
	}
}

func TestConfigValidate(t *testing.T) {
	good := config{workload: "q1", brokers: "b:1", input: "in", output: "out", appID: "app", threads: 2}
	if w, err := good.validate(); err != nil || w != workload.Q1 {
		t.Fatalf("validate = %v, %v", w, err)
	}
	for name, mutate := range map[string]func(*config){
		"stateful":   func(c *config) { c.workload = "count" },
		"unknown":    func(c *config) { c.workload = "q9" },
		"no output":  func(c *config) { c.output = "" },
		"no threads": func(c *config) { c.threads = 0 },
	} {
		c := good
		mutate(&c)
		if _, err := c.validate(); err == nil {
			t.Errorf("%s: accepted %+v", name, c)
		}
	}
}
