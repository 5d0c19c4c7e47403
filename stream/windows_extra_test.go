package stream_test

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rifflestream/riffle/serde"
	"github.com/rifflestream/riffle/stream"
	"github.com/rifflestream/riffle/streamtest"
	"github.com/rifflestream/riffle/topology"
)

// The windowed serdes write what Kafka Streams' TimeWindowedSerializer and
// SessionWindowedSerializer write (testdata/windowed_vectors.txt, made by Kafka Streams itself).
func TestWindowedSerdesMatchKafkaStreams(t *testing.T) {
	f, err := os.Open("testdata/windowed_vectors.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		fs := strings.Fields(line)
		key := fs[1]
		if key == `""` {
			key = ""
		}
		start, _ := strconv.ParseInt(fs[2], 10, 64)
		end, _ := strconv.ParseInt(fs[3], 10, 64)
		want, _ := hex.DecodeString(fs[4])
		w := stream.Windowed[string]{Key: key, Start: time.UnixMilli(start), End: time.UnixMilli(end)}
		var s serde.Serde[stream.Windowed[string]]
		if fs[0] == "time" {
			s = stream.TimeWindowedSerde(serde.String(), time.Duration(end-start)*time.Millisecond)
		} else {
			s = stream.SessionWindowedSerde(serde.String())
		}
		got, err := s.Serialize("t", w)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: serialize %v = %x, %v; Kafka Streams wrote %x", line, w, got, err, want)
		}
		back, err := s.Deserialize("t", want)
		if err != nil || back.Key != key || back.Start.UnixMilli() != start || back.End.UnixMilli() != end {
			t.Fatalf("%s: deserialize gave %v, %v", line, back, err)
		}
		n++
	}
	if n < 30 {
		t.Fatalf("only %d vectors", n)
	}
	if _, err := stream.TimeWindowedSerde(serde.String(), time.Second).Deserialize("t", []byte{1, 2}); err == nil {
		t.Fatal("7 bytes decoded as a time-windowed key")
	}
	if _, err := stream.SessionWindowedSerde(serde.String()).Deserialize("t", make([]byte, 15)); err == nil {
		t.Fatal("15 bytes decoded as a session-windowed key")
	}
}

func FuzzWindowedSerdes(f *testing.F) {
	f.Add([]byte("a\x00\x00\x00\x00\x00\x00\x00\x05"))
	f.Add(make([]byte, 16))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, s := range []serde.Serde[stream.Windowed[string]]{stream.TimeWindowedSerde(serde.String(), time.Minute), stream.SessionWindowedSerde(serde.String())} {
			w, err := s.Deserialize("t", b)
			if err != nil {
				continue
			}
			again, err := s.Serialize("t", w)
			if err != nil || !bytes.Equal(again, b) {
				t.Fatalf("%x decoded to %v re-encodes to %x", b, w, again)
			}
		}
	})
}

// Late records go to the dead-letter topic when configured, with the late stage in their headers.
func TestLateRecordsToDeadLetter(t *testing.T) {
	b := stream.NewBuilder()
	g := stream.GroupByKey(stream.From(b, "in", serde.String(), serde.String()))
	stream.CountWindows(stream.WindowedBy(g, stream.Tumbling(10*time.Millisecond))).ToStream().To("out", nil, nil)
	d := streamtest.New(t, b, streamtest.ErrorHandlers(topology.ErrorHandlers{Late: topology.DeadLetter, DeadLetterTopic: "dlq"}))
	in := streamtest.Input(d, "in", serde.String(), serde.String())
	in.PipeAt("a", "on time", time.UnixMilli(25))
	in.PipeAt("a", "late", time.UnixMilli(3))
	dlq := streamtest.Output(d, "dlq", serde.String(), serde.String()).ReadRecords()
	if len(dlq) != 1 || dlq[0].Value != "late" {
		t.Fatalf("dlq: %+v", dlq)
	}
	if stage, _ := dlq[0].Headers.Get(topology.HeaderErrorStage); string(stage) != "late" {
		t.Fatalf("stage header %q", stage)
	}
}

// With CloseIdleWindowsAfter, a quiet task's stream time follows the wall clock, so its last
// window is emitted without a later record.
func TestIdleCloseEmitsLastWindows(t *testing.T) {
	b := stream.NewBuilder()
	g := stream.GroupByKey(stream.From(b, "in", serde.String(), serde.String()))
	stream.CountWindows(stream.WindowedBy(g, stream.Tumbling(time.Minute).WithGrace(10*time.Second)),
		stream.EmitOnWindowClose(), stream.CloseIdleWindowsAfter(30*time.Second)).ToStream().
		To("out", stream.TimeWindowedSerde(serde.String(), time.Minute), nil)
	start := time.Date(2026, 1, 1, 0, 0, 5, 0, time.UTC)
	d := streamtest.New(t, b, streamtest.StartTime(start))
	in := streamtest.Input(d, "in", serde.String(), serde.String())
	in.PipeAt("a", "x", start)
	in.PipeAt("a", "x", start.Add(20*time.Second))
	out := streamtest.Output(d, "out", stream.TimeWindowedSerde(serde.String(), time.Minute), serde.Int64())
	d.AdvanceWallClock(20 * time.Second)
	if out.Len() != 0 {
		t.Fatal("emitted before the task went idle")
	}
	// Idle for 30s+: stream time follows the wall clock; the window [0:00, 1:00) closes at
	// 1:10 of stream time, i.e. after ~45s more of quiet.
	for i := 0; i < 10; i++ {
		d.AdvanceWallClock(15 * time.Second)
	}
	got := out.ReadKeyValues()
	want := []streamtest.KeyValue[stream.Windowed[string], int64]{{Key: stream.Windowed[string]{Key: "a",
		Start: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 1, 1, 0, 1, 0, 0, time.UTC)}, Value: 2}}
	if len(got) != 1 || !got[0].Key.Start.Equal(want[0].Key.Start) || !got[0].Key.End.Equal(want[0].Key.End) || got[0].Value != 2 {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// Window stores keep windows for their retention only: old segments go as stream time advances.
func TestWindowRetention(t *testing.T) {
	b := stream.NewBuilder()
	g := stream.GroupByKey(stream.From(b, "in", serde.String(), serde.String()))
	stream.CountWindows(stream.WindowedBy(g, stream.Tumbling(time.Minute).WithRetention(10*time.Minute)), stream.Materialized("w"))
	d := streamtest.New(t, b)
	in := streamtest.Input(d, "in", serde.String(), serde.String())
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for m := 0; m < 30; m++ {
		in.PipeAt("k", "x", base.Add(time.Duration(m)*time.Minute))
	}
	ws, err := streamtest.WindowStore[string, int64](d, "w", 0)
	if err != nil {
		t.Fatal(err)
	}
	var starts []int
	it, err := ws.FetchAll(base, base.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for it.Next() {
		starts = append(starts, int(it.Start().Sub(base).Minutes()))
	}
	it.Close()
	// Stream time is minute 29: windows starting before minute 20 are out of the 10-minute
	// retention and invisible (their segments go once they are wholly expired).
	want := []int{20, 21, 22, 23, 24, 25, 26, 27, 28, 29}
	if !reflect.DeepEqual(starts, want) {
		t.Fatalf("windows kept: %v, want %v", starts, want)
	}
}
