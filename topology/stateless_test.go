package topology_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rifflestream/riffle/serde"
	"github.com/rifflestream/riffle/topology"
)

// AddFilter and AddMapValues: what they forward, and their errors and panics reported like a
// Processor's (stage, node, input coordinates) and skipped by a Skip handler.
func TestStatelessNodes(t *testing.T) {
	topo := topology.New()
	src := topology.AddSource(topo, "src", []string{"in"}, serde.String(), serde.String())
	kept := topology.AddFilter(topo, "keep", func(_, v string) bool {
		if v == "boom" {
			panic("filter exploded")
		}
		return !strings.HasPrefix(v, "drop")
	}, src)
	upper := topology.AddMapValues(topo, "upper", func(k, v string) (string, error) {
		if v == "bad" {
			return "", errors.New("cannot map bad")
		}
		return k + ":" + strings.ToUpper(v), nil
	}, kept)
	topology.AddSink(topo, "sink", "out", serde.String(), serde.String(), []topology.Node[string, string]{upper})
	plan, err := topo.Plan("app")
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	var handled []*topology.RecordError
	skip := func(re *topology.RecordError) topology.Action {
		handled = append(handled, re)
		return topology.ActionSkip
	}
	task, err := plan.NewTask(topology.TaskID{}, topology.TaskConfig{Collector: rec, Handlers: topology.ErrorHandlers{Processing: skip}})
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Init(); err != nil {
		t.Fatal(err)
	}
	for i, v := range []string{"a", "drop-me", "bad", "boom", "b"} {
		key := []byte("k")
		if v == "b" {
			key = nil // a null key stays null through the map
		}
		raw := &topology.RawRecord{Topic: "in", Offset: int64(i), Key: key, Value: []byte(v), Timestamp: time.UnixMilli(int64(100 + i)),
			Headers: topology.Headers{{Key: "h", Value: []byte(v)}}}
		if err := task.Process(raw); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	if got := rec.values(); strings.Join(got, ",") != "k:A,:B" {
		t.Fatalf("forwarded %q, want [k:A :B]", got)
	}
	if rec.out[1].Key != nil || rec.out[0].Timestamp.UnixMilli() != 100 || string(rec.out[0].Headers[0].Value) != "a" {
		t.Fatalf("outputs lost a null key, the timestamp or headers: %+v", rec.out)
	}
	if len(handled) != 2 {
		t.Fatalf("%d handled errors, want 2 (the map's error, the filter's panic)", len(handled))
	}
	if e := handled[0]; e.Stage != topology.StageProcess || e.Node != "upper" || e.Origin.Offset != 2 || !strings.Contains(e.Error(), "cannot map bad") {
		t.Fatalf("map error reported as %v (stage %s, node %s, offset %d)", e, e.Stage, e.Node, e.Origin.Offset)
	}
	if e := handled[1]; e.Stage != topology.StageProcess || e.Node != "keep" || e.Origin.Offset != 3 || !strings.Contains(e.Error(), "filter exploded") {
		t.Fatalf("filter panic reported as %v (stage %s, node %s, offset %d)", e, e.Stage, e.Node, e.Origin.Offset)
	}
	// Declaration errors name the node.
	bad := topology.New()
	s := topology.AddSource(bad, "s", []string{"in"}, serde.String(), serde.String())
	topology.AddFilter[string, string](bad, "nil-filter", nil, s)
	topology.AddMapValues[string, string, int](bad, "nil-map", nil, s)
	if _, err := bad.Plan("app"); err == nil || !strings.Contains(err.Error(), "nil-filter") || !strings.Contains(err.Error(), "nil-map") {
		t.Fatalf("Plan error %v, want both nil functions named", err)
	}
}

// The nodes store a record's topic and headers only when they change (setOrigin, setHeaders):
// records from two topics, with and without headers, in every order, must each come out with
// their own origin and headers, never the previous record's.
func TestOriginAndHeadersFollowEachRecord(t *testing.T) {
	topo := topology.New()
	src := topology.AddSource(topo, "src", []string{"a", "b"}, serde.String(), serde.String())
	mapped := topology.AddMapValues(topo, "map", func(_, v string) (string, error) { return v + "!", nil },
		topology.AddFilter(topo, "all", func(_, _ string) bool { return true }, src))
	type seen struct {
		origin  topology.Origin
		headers string
	}
	var got []seen
	topology.AddProcessor(topo, "look", topology.ProcessorFunc(func(_ topology.Context[string, string], rec topology.Record[string, string]) error {
		h := "none"
		if rec.Headers != nil {
			h = string(rec.Headers[0].Value)
		}
		got = append(got, seen{rec.Origin, h})
		return nil
	}), mapped)
	task := startTask(t, topo, topology.TaskConfig{Collector: &recorder{}})
	inputs := []struct {
		topic   string
		headers string
	}{{"a", "none"}, {"a", "h1"}, {"a", "h1"}, {"a", "none"}, {"b", "none"}, {"b", "h2"}, {"a", "h3"}, {"a", "none"}, {"b", "none"}}
	var want []seen
	raw := &topology.RawRecord{} // reused, as the engine's runner does
	for i, in := range inputs {
		// The topic string is the same in memory for some records and a copy for others (the
		// client decodes it once per fetch response).
		topic := in.topic
		if i%3 == 0 {
			topic = strings.Clone(topic)
		}
		raw.Topic, raw.Offset = topic, int64(i)
		raw.Key, raw.Value, raw.Timestamp, raw.Headers = []byte("k"), []byte("v"), time.UnixMilli(int64(i)), nil
		if in.headers != "none" {
			raw.Headers = topology.Headers{{Key: "h", Value: []byte(in.headers)}}
		}
		if err := task.Process(raw); err != nil {
			t.Fatal(err)
		}
		want = append(want, seen{topology.Origin{Topic: in.topic, Offset: int64(i)}, in.headers})
	}
	if len(got) != len(want) {
		t.Fatalf("%d records reached the processor, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("record %d: origin %+v headers %s, want %+v headers %s", i, got[i].origin, got[i].headers, want[i].origin, want[i].headers)
		}
	}
}

// serde.Bytes() sources and sinks skip the serde's calls (sourceNode.keyBytes): Kafka null and
// empty keys and values must come out as they went in, and a map's nil []byte is an empty value,
// not null, as serde.Bytes().Serialize makes it.
func TestBytesSerdesKeepNullAndEmpty(t *testing.T) {
	topo := topology.New()
	src := topology.AddSource(topo, "src", []string{"in"}, serde.Bytes(), serde.Bytes())
	topology.AddSink(topo, "copy", "copied", serde.Bytes(), serde.Bytes(), []topology.Node[[]byte, []byte]{src})
	nilled := topology.AddMapValues(topo, "nil", func(_, _ []byte) ([]byte, error) { return nil, nil }, src)
	topology.AddSink(topo, "nilled", "nilled", serde.Bytes(), serde.Bytes(), []topology.Node[[]byte, []byte]{nilled})
	rec := &recorder{}
	task := startTask(t, topo, topology.TaskConfig{Collector: rec})
	inputs := [][2][]byte{{nil, nil}, {{}, {}}, {[]byte("k"), nil}, {nil, []byte("v")}, {[]byte("k"), []byte("v")}}
	for i, in := range inputs {
		if err := task.Process(&topology.RawRecord{Topic: "in", Offset: int64(i), Key: in[0], Value: in[1], Timestamp: time.UnixMilli(1)}); err != nil {
			t.Fatal(err)
		}
	}
	if len(rec.out) != 2*len(inputs) {
		t.Fatalf("%d outputs, want %d", len(rec.out), 2*len(inputs))
	}
	show := func(b []byte) string {
		if b == nil {
			return "null"
		}
		return "[" + string(b) + "]"
	}
	for i, in := range inputs {
		copied, nilledOut := rec.out[2*i], rec.out[2*i+1]
		if copied.Topic != "copied" || nilledOut.Topic != "nilled" {
			t.Fatalf("record %d: outputs to %s and %s", i, copied.Topic, nilledOut.Topic)
		}
		if show(copied.Key) != show(in[0]) || show(copied.Value) != show(in[1]) {
			t.Errorf("record %d: copied as key %s value %s, want key %s value %s", i, show(copied.Key), show(copied.Value), show(in[0]), show(in[1]))
		}
		if show(nilledOut.Key) != show(in[0]) || show(nilledOut.Value) != "[]" {
			t.Errorf("record %d: mapped to nil as key %s value %s, want key %s value [] (empty, not null)", i, show(nilledOut.Key), show(nilledOut.Value), show(in[0]))
		}
	}
}

// panicky is a serde whose encoding and decoding panic on the value "panic".
type panicky struct{}

func (panicky) Serialize(_ string, v string) ([]byte, error) {
	if v == "panic" {
		panic("cannot encode")
	}
	return []byte(v), nil
}

func (panicky) Deserialize(_ string, b []byte) (string, error) {
	if string(b) == "panic" {
		panic("cannot decode")
	}
	return string(b), nil
}

// A panic is the failure of the node that was running, whatever node recovers it, and is
// handled as that node's error would be: the record still goes to the other children of a node
// with several, a processor's code goes on after a Forward whose child panicked, and a panic in
// the processor's own code after a Forward is its own.
func TestPanicsAreTheRunningNodes(t *testing.T) {
	topo := topology.New()
	src := topology.AddSource(topo, "src", []string{"in"}, serde.String(), panicky{})
	// src has two children: a filter that panics on "x", and a processor forwarding two records
	// per input, then panicking on "late".
	left := topology.AddFilter(topo, "left", func(_, v string) bool {
		if v == "x" {
			panic("left exploded")
		}
		return true
	}, src)
	topology.AddSink(topo, "left-sink", "left", serde.String(), serde.String(), []topology.Node[string, string]{left})
	twice := topology.AddProcessor(topo, "twice", topology.ProcessorFunc(func(ctx topology.Context[string, string], r topology.Record[string, string]) error {
		for _, suffix := range []string{"1", "2"} {
			if err := ctx.Forward(r.WithValue(r.Value + suffix)); err != nil {
				return err
			}
		}
		if r.Value == "late" {
			panic("twice exploded after forwarding")
		}
		return nil
	}), src)
	// twice's child panics on the first record of "y", and its sink's serde on "panic".
	mapped := topology.AddMapValuesOnly(topo, "one-fails", func(v string) (string, error) {
		switch v {
		case "y1":
			panic("map exploded")
		case "z1":
			return "panic", nil
		}
		return v, nil
	}, twice)
	topology.AddSink(topo, "right-sink", "right", serde.String(), panicky{}, []topology.Node[string, string]{mapped})

	rec := &recorder{}
	var handled []*topology.RecordError
	skip := func(re *topology.RecordError) topology.Action {
		handled = append(handled, re)
		return topology.ActionSkip
	}
	task := startTask(t, topo, topology.TaskConfig{Collector: rec,
		Handlers: topology.ErrorHandlers{Processing: skip, Deserialization: skip, Production: skip}})
	for i, v := range []string{"x", "y", "late", "panic", "z"} {
		raw := &topology.RawRecord{Topic: "in", Offset: int64(i), Key: []byte("k"), Value: []byte(v), Timestamp: time.UnixMilli(int64(100 + i))}
		if err := task.Process(raw); err != nil {
			t.Fatalf("record %q: %v", v, err)
		}
	}
	var got []string
	for _, o := range rec.out {
		got = append(got, o.Topic+":"+string(o.Value))
	}
	want := "right:x1,right:x2," + // the filter's panic kept "x" from left only
		"left:y,right:y2," + // the map's panic on y1 did not stop twice's second Forward
		"left:late,right:late1,right:late2," + // twice panicked after both
		"left:z,right:z2" // z1 mapped to "panic", which right-sink's serde could not encode
	if strings.Join(got, ",") != want {
		t.Fatalf("outputs\n %s\nwant\n %s", strings.Join(got, ","), want)
	}
	type failure struct {
		stage  topology.Stage
		node   string
		offset int64
		msg    string
	}
	wantErrs := []failure{
		{topology.StageProcess, "left", 0, "left exploded"},
		{topology.StageProcess, "one-fails", 1, "map exploded"},
		{topology.StageProcess, "twice", 2, "twice exploded after forwarding"},
		{topology.StageDeserialize, "src", 3, "cannot decode"},
		{topology.StageSerialize, "right-sink", 4, "cannot encode"},
	}
	if len(handled) != len(wantErrs) {
		t.Fatalf("%d handled errors, want %d: %v", len(handled), len(wantErrs), handled)
	}
	for i, w := range wantErrs {
		e := handled[i]
		if e.Stage != w.stage || e.Node != w.node || e.Origin.Offset != w.offset || !e.Panic || !strings.Contains(e.Error(), w.msg) {
			t.Errorf("error %d: %v (stage %s, node %s, offset %d, panic %v), want stage %s, node %s, offset %d, %q",
				i, e, e.Stage, e.Node, e.Origin.Offset, e.Panic, w.stage, w.node, w.offset, w.msg)
		}
		if !strings.Contains(e.PanicStack, "stateless_test.go") {
			t.Errorf("error %d: the stack does not show the panicking code:\n%s", i, e.PanicStack)
		}
	}
}

// A mapValues node sends to an only sink directly (mapValuesNode.sink), and forwards a record to
// several children or to a sink with a topic chooser: the outputs are the same either way, with
// the key (and its nullness), the timestamp and the headers of the input.
func TestMapValuesToSinksDirectOrForwarded(t *testing.T) {
	topo := topology.New()
	src := topology.AddSource(topo, "src", []string{"in"}, serde.String(), serde.String())
	upper := func(v string) (string, error) { return strings.ToUpper(v), nil }
	sinks := func(n topology.Node[string, string]) []topology.Node[string, string] {
		return []topology.Node[string, string]{n}
	}
	direct := topology.AddMapValuesOnly(topo, "direct", upper, src)
	topology.AddSink(topo, "direct-sink", "direct", serde.String(), serde.String(), sinks(direct))
	fanOut := topology.AddMapValuesOnly(topo, "fan-out", upper, src)
	topology.AddSink(topo, "fan-out-1", "fan-out-1", serde.String(), serde.String(), sinks(fanOut))
	topology.AddSink(topo, "fan-out-2", "fan-out-2", serde.String(), serde.String(), sinks(fanOut))
	chosen := topology.AddMapValuesOnly(topo, "chosen", upper, src)
	topology.AddDynamicSink(topo, "chosen-sink", func(r topology.Record[string, string]) (string, error) { return "chosen", nil },
		"fixed", serde.String(), serde.String(), sinks(chosen))
	rec := &recorder{}
	task := startTask(t, topo, topology.TaskConfig{Collector: rec})
	for i, v := range []string{"a", "b"} {
		var key []byte
		if i == 0 {
			key = []byte("k") // the second record's key is null
		}
		raw := &topology.RawRecord{Topic: "in", Offset: int64(i), Key: key, Value: []byte(v), Timestamp: time.UnixMilli(int64(100 + i)),
			Headers: topology.Headers{{Key: "h", Value: []byte(v)}}}
		if err := task.Process(raw); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string][]string{}
	for _, o := range rec.out {
		got[o.Topic] = append(got[o.Topic], fmt.Sprintf("%s=%s@%d[%s] null key %v", o.Key, o.Value, o.Timestamp.UnixMilli(), o.Headers[0].Value, o.Key == nil))
	}
	want := []string{"k=A@100[a] null key false", "=B@101[b] null key true"}
	for _, topic := range []string{"direct", "fan-out-1", "fan-out-2", "chosen"} {
		if strings.Join(got[topic], ",") != strings.Join(want, ",") {
			t.Errorf("topic %s: %q, want %q", topic, got[topic], want)
		}
	}
}
