package load

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"

	"github.com/rifflestream/riffle/bench/nexmark"
	"github.com/rifflestream/riffle/internal/kafkatest"
)

func TestMain(m *testing.M) { os.Exit(kafkatest.Main(m)) }

// TestLoadAndPaced writes events both ways into a real broker and reads them back: every record
// is where nexmark.Partition says, keyed and timestamped as FORMAT.md says, and survives the
// broker's retention although its timestamp is in 2015.
func TestLoadAndPaced(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	cl := kafkatest.Client(t, brokers, ProducerOpts()...)
	adm := kafkatest.Admin(t, brokers)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const partitions = 3
	cfg := nexmark.DefaultConfig()

	bulk := kafkatest.Name(t, "bulk")
	if err := CreateTopic(ctx, adm, bulk, partitions); err != nil {
		t.Fatal(err)
	}
	var observed int
	if err := Load(ctx, cl, bulk, partitions, cfg, 5000, func(*nexmark.Event, int32) { observed++ }); err != nil {
		t.Fatal(err)
	}
	if err := CreateTopic(ctx, adm, bulk, partitions); err == nil {
		t.Fatal("CreateTopic accepted an existing topic")
	}

	paced := kafkatest.Name(t, "paced")
	if err := CreateTopic(ctx, adm, paced, partitions); err != nil {
		t.Fatal(err)
	}
	var sent []Sent
	start := time.Now()
	n, err := Paced(ctx, cl, paced, partitions, cfg, 2000, 400, func(s Sent) { sent = append(sent, s) })
	if err != nil || n != 400 || len(sent) != 400 {
		t.Fatalf("Paced wrote %d (%d reported), %v", n, len(sent), err)
	}
	if took := time.Since(start); took < 150*time.Millisecond {
		t.Fatalf("400 events at 2000/s took %v: not paced", took)
	}

	// The test broker checks retention every second (tools/kafka/kafka.sh): give it the time to
	// delete records it considers expired, which it must not.
	time.Sleep(3 * time.Second)

	// Records arrive in generation order within each partition.
	check := func(topic string, want int, withPT bool) {
		gen, err := nexmark.NewGenerator(cfg)
		if err != nil {
			t.Fatal(err)
		}
		byPartition := map[int32][]nexmark.Event{}
		var ev nexmark.Event
		for range want {
			gen.Next(&ev)
			p := nexmark.Partition(nexmark.AppendKey(nil, &ev), partitions)
			byPartition[p] = append(byPartition[p], ev)
		}
		recs := kafkatest.ReadAll(t, brokers, topic, false)
		if len(recs) != want {
			t.Fatalf("%s: read %d records, want %d", topic, len(recs), want)
		}
		next := map[int32]int{}
		for _, r := range recs {
			ev := byPartition[r.Partition][next[r.Partition]]
			next[r.Partition]++
			if !bytes.Equal(r.Key, nexmark.AppendKey(nil, &ev)) || !bytes.Equal(r.Value, nexmark.Append(nil, &ev)) {
				t.Fatalf("%s[%d]@%d: not the expected event", topic, r.Partition, r.Offset)
			}
			if r.Timestamp.UnixMilli() != ev.Time() {
				t.Fatalf("%s[%d]@%d: timestamp %v, want the event time %v", topic, r.Partition, r.Offset, r.Timestamp, nexmark.UnixMilli(ev.Time()))
			}
			pt, ok := ProduceTime(r.Headers)
			if ok != withPT || (ok && (pt.Before(start) || pt.After(time.Now()))) {
				t.Fatalf("%s[%d]@%d: pt %v, %v", topic, r.Partition, r.Offset, pt, ok)
			}
		}
	}
	check(bulk, 5000, false)
	check(paced, 400, true)
	if observed != 5000 {
		t.Fatalf("observer saw %d events", observed)
	}
}
