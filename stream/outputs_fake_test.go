package stream_test

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rifflestream/riffle/internal/kafkatest"
	"github.com/rifflestream/riffle/serde"
	"github.com/rifflestream/riffle/stream"
)

// Several outputs per input, to two topics, with keys and values of very different sizes: the
// engine reuses an input's kgo.Record for its first output and sinks encode into a task buffer
// (serde.Appender), and neither may let one record's bytes, headers or delivery disturb another's.
func TestManyOutputsPerInput(t *testing.T) {
	_, brokers := kafkatest.Fake(t, kfakeSeed("many-in", 4), kfakeSeed("many-a", 3), kfakeSeed("many-b", 2))
	const n, fanout = 2000, 3
	// A key of 1 to ~3000 bytes: some outputs outgrow the sink's free buffer and chunk.
	key := func(i, j int) string { return strings.Repeat(string(rune('a'+j)), 1+(i*7+j*131)%3001) }
	b := stream.NewBuilder()
	in := stream.From(b, "many-in", serde.String(), serde.Int64())
	out := stream.FlatMap(in, func(_ string, v int64) ([]stream.KeyValue[string, int64], error) {
		kvs := make([]stream.KeyValue[string, int64], fanout)
		for j := range kvs {
			kvs[j] = stream.KV(key(int(v), j), v*10+int64(j))
		}
		return kvs, nil
	})
	out.Filter(func(_ string, v int64) bool { return v%10 < 2 }).To("many-a", serde.String(), serde.Int64())
	out.Filter(func(_ string, v int64) bool { return v%10 == 2 }).To("many-b", serde.String(), serde.Int64())
	app, err := stream.NewApp(b, stream.AppID("many"), stream.Brokers(brokers...), stream.CommitInterval(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	var inputs []*kgo.Record
	for i := 0; i < n; i++ {
		inputs = append(inputs, &kgo.Record{Topic: "many-in", Key: []byte(strconv.Itoa(i)), Value: serde8(int64(i)),
			Headers: []kgo.RecordHeader{{Key: "i", Value: []byte(strconv.Itoa(i))}}})
	}
	runOver(t, app, brokers, inputs)

	check := func(topic string, js ...int) {
		var want, got []string
		for i := 0; i < n; i++ {
			for _, j := range js {
				want = append(want, fmt.Sprintf("%s=%d i=%d", key(i, j), i*10+j, i))
			}
		}
		for _, r := range kafkatest.ReadAll(t, brokers, topic, false) {
			v, err := serde.Int64().Deserialize(topic, r.Value)
			if err != nil {
				t.Fatalf("%s[%d]@%d: %v", topic, r.Partition, r.Offset, err)
			}
			h := ""
			if len(r.Headers) == 1 && r.Headers[0].Key == "i" {
				h = string(r.Headers[0].Value)
			}
			got = append(got, fmt.Sprintf("%s=%d i=%s", r.Key, v, h))
		}
		sort.Strings(want)
		sort.Strings(got)
		if len(got) != len(want) {
			t.Fatalf("%s: %d records, want %d", topic, len(got), len(want))
		}
		for k := range want {
			if got[k] != want[k] {
				t.Fatalf("%s: record %q, want %q (sorted, index %d)", topic, short(got[k]), short(want[k]), k)
			}
		}
	}
	check("many-a", 0, 1)
	check("many-b", 2)
}

// runOver runs app, produces in, waits until the app has processed all of it and is idle, and
// stops the app.
func runOver(t *testing.T, app *stream.App, brokers []string, in []*kgo.Record) {
	t.Helper()
	ctx, stop := kafkatest.RunApp(t, app)
	cl := kafkatest.Client(t, brokers)
	for _, r := range in {
		cl.Produce(context.Background(), r, nil)
	}
	if err := cl.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	for app.Metrics().RecordsProcessed < int64(len(in)) && app.State() != "failed" {
		time.Sleep(10 * time.Millisecond)
	}
	if err := app.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

func short(s string) string {
	if len(s) > 60 {
		return s[:30] + "..." + s[len(s)-30:]
	}
	return s
}

// Many outputs per input, through one partition: they must reach the topic all and in the order
// they were sent (kept from an attempt to produce a batch's outputs when the batch ends, which
// held records back in groups of 1024; see bench/PROFILE.md, tenth round).
func TestOutputsKeepTheirOrder(t *testing.T) {
	_, brokers := kafkatest.Fake(t, kfakeSeed("order-in", 1), kfakeSeed("order-out", 1))
	const n, fanout = 40, 2500
	b := stream.NewBuilder()
	in := stream.From(b, "order-in", serde.String(), serde.Int64())
	stream.FlatMapValues(in, func(v int64) ([]int64, error) {
		out := make([]int64, fanout)
		for j := range out {
			out[j] = v*fanout + int64(j)
		}
		return out, nil
	}).To("order-out", serde.String(), serde.Int64())
	app, err := stream.NewApp(b, stream.AppID("order"), stream.Brokers(brokers...), stream.CommitInterval(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	var inputs []*kgo.Record
	for i := 0; i < n; i++ {
		inputs = append(inputs, &kgo.Record{Topic: "order-in", Key: []byte("k"), Value: serde8(int64(i))})
	}
	runOver(t, app, brokers, inputs)
	recs := kafkatest.ReadAll(t, brokers, "order-out", false)
	if len(recs) != n*fanout {
		t.Fatalf("%d output records, want %d", len(recs), n*fanout)
	}
	for i, r := range recs {
		v, err := serde.Int64().Deserialize("order-out", r.Value)
		if err != nil {
			t.Fatalf("order-out@%d: %v", r.Offset, err)
		}
		if v != int64(i) || string(r.Key) != "k" {
			t.Fatalf("output %d is %s=%d, want k=%d", i, r.Key, v, i)
		}
	}
}
