package stream_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rifflestream/riffle/internal/kafkatest"
	"github.com/rifflestream/riffle/serde"
	"github.com/rifflestream/riffle/stream"
)

// The app end to end on the in-process fake broker: every input reaches the output, doubled.
func TestAppOnFakeBroker(t *testing.T) {
	_, brokers := kafkatest.Fake(t, kfakeSeed("in", 4), kfakeSeed("out", 4))
	b := stream.NewBuilder()
	in := stream.From(b, "in", serde.String(), serde.Int64())
	stream.MapValues(in, func(v int64) (int64, error) { return v * 2, nil }).To("out", nil, nil)
	app, err := stream.NewApp(b, stream.AppID("fake-app"), stream.Brokers(brokers...), stream.CommitInterval(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	_, stop := kafkatest.RunApp(t, app)

	cl := kafkatest.Client(t, brokers)
	const n = 1000
	for i := 0; i < n; i++ {
		cl.Produce(context.Background(), &kgo.Record{Topic: "in", Key: []byte(strconv.Itoa(i % 37)), Value: serde8(int64(i))}, nil)
	}
	if err := cl.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	var got []*kgo.Record
	for time.Now().Before(deadline) {
		got = kafkatest.ReadAll(t, brokers, "out", false)
		if len(got) >= n {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	sum := int64(0)
	for _, r := range got {
		v, _ := serde.Int64().Deserialize("out", r.Value)
		sum += v
	}
	if len(got) != n || sum != int64(n*(n-1)) {
		t.Fatalf("got %d records summing to %d, want %d summing to %d", len(got), sum, n, n*(n-1))
	}
	fmt.Println(app.Metrics())
}

func serde8(v int64) []byte { b, _ := serde.Int64().Serialize("", v); return b }
