// Command router is Riffle's stateless example: it reads JSON user events, drops bots, and routes
// purchases, clicks and other events to their own topics. Undecodable events go to the app's
// dead-letter topic with headers saying what was wrong and where.
//
//	go run ./examples/router                 # zero setup: an embedded broker and sample events
//	go run ./examples/router -brokers host:9092 -input events.ndjson
//	go run ./examples/router -follow         # keep running; produce to "events" yourself
//
// Without -brokers or KAFKA_BROKERS it starts an in-process broker (franz-go's kfake), which is
// not Kafka: for anything real, point it at a broker (docker compose up, or make kafka-up).
package main

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rifflestream/riffle/connectors/kafka"
	"github.com/rifflestream/riffle/stream"
)

//go:embed sample.ndjson
var sample []byte

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "router:", err)
		os.Exit(1)
	}
}

func run() error {
	brokersFlag := flag.String("brokers", os.Getenv("KAFKA_BROKERS"), "Kafka bootstrap brokers (default: $KAFKA_BROKERS, else an embedded broker)")
	input := flag.String("input", "", "NDJSON file of events to produce (default: the bundled sample)")
	follow := flag.Bool("follow", false, "keep running after the input is processed")
	appID := flag.String("app-id", "riffle-router-example", "application id (consumer group)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	brokers := splitList(*brokersFlag)
	if len(brokers) == 0 {
		eb, err := kafka.StartEmbedded()
		if err != nil {
			return err
		}
		defer eb.Close()
		brokers = eb.Brokers()
		fmt.Println("no -brokers or KAFKA_BROKERS: using an embedded in-process broker at", brokers[0])
	}
	t := DefaultTopics
	if err := createTopics(ctx, brokers, t.Events, t.Purchases, t.Clicks, t.Other); err != nil {
		return err
	}
	events := sample
	if *input != "" {
		b, err := os.ReadFile(*input)
		if err != nil {
			return err
		}
		events = b
	}
	n, err := produceLines(ctx, brokers, t.Events, events)
	if err != nil {
		return err
	}
	fmt.Printf("produced %d events to %q\n", n, t.Events)

	outputs := []string{t.Purchases, t.Clicks, t.Other, *appID + "-dlq"}
	before, err := endOffsets(ctx, brokers, outputs)
	if err != nil {
		return err
	}
	app, err := stream.NewApp(Build(t), stream.AppID(*appID), stream.Brokers(brokers...), stream.Logger(log),
		stream.CommitInterval(time.Second), stream.OnDeserializationError(stream.DeadLetter))
	if err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- app.Run(runCtx) }()
	if *follow {
		fmt.Println("running; Ctrl-C to stop")
		return <-done
	}
	waitCtx, cancelWait := context.WithTimeout(ctx, 2*time.Minute)
	defer cancelWait()
	if err := app.WaitIdle(waitCtx); err != nil {
		cancel()
		<-done
		return fmt.Errorf("waiting for the input to be processed: %w", err)
	}
	cancel()
	if err := <-done; err != nil {
		return err
	}
	for _, topic := range outputs {
		if err := printTopic(ctx, brokers, topic, before[topic]); err != nil {
			return err
		}
	}
	m := app.Metrics()
	fmt.Printf("processed %d events, %d dead-lettered\n", m.RecordsProcessed, m.DeadLettered)
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

func createTopics(ctx context.Context, brokers []string, topics ...string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	existing, err := adm.ListTopics(ctx, topics...)
	if err != nil {
		return err
	}
	for _, topic := range topics {
		if existing.Has(topic) {
			continue
		}
		if _, err := adm.CreateTopic(ctx, 3, -1, nil, topic); err != nil {
			return fmt.Errorf("creating topic %q: %w", topic, err)
		}
	}
	return nil
}

// produceLines writes each non-empty line as one record, keyed by its "user" field when it has one.
func produceLines(ctx context.Context, brokers []string, topic string, data []byte) (int, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var e struct{ User string }
		_ = json.Unmarshal(line, &e)
		if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(e.User), Value: append([]byte(nil), line...)}).FirstErr(); err != nil {
			return n, err
		}
		n++
	}
	return n, sc.Err()
}

// endOffsets returns each topic's end offset per partition (a topic that does not exist yet has none).
func endOffsets(ctx context.Context, brokers []string, topics []string) (map[string]map[int32]int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, err
	}
	out := map[string]map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			return
		}
		if out[o.Topic] == nil {
			out[o.Topic] = map[int32]int64{}
		}
		out[o.Topic][o.Partition] = o.Offset
	})
	return out, nil
}

// printTopic prints the records of a topic written after the offsets in from.
func printTopic(ctx context.Context, brokers []string, topic string, from map[int32]int64) error {
	now, err := endOffsets(ctx, brokers, []string{topic})
	if err != nil {
		return err
	}
	var total int64
	starts := map[int32]kgo.Offset{}
	for p, end := range now[topic] {
		total += end - from[p]
		starts[p] = kgo.NewOffset().At(from[p])
	}
	fmt.Printf("\n%s (%d records)\n", topic, total)
	if total == 0 {
		return nil
	}
	rd, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: starts}))
	if err != nil {
		return err
	}
	defer rd.Close()
	for seen := int64(0); seen < total; {
		fs := rd.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			return err
		}
		fs.EachRecord(func(r *kgo.Record) {
			seen++
			line := fmt.Sprintf("  %s  %s", r.Key, r.Value)
			for _, h := range r.Headers {
				if h.Key == "riffle.error.message" || h.Key == "riffle.source.offset" {
					line += fmt.Sprintf("  [%s=%s]", h.Key, h.Value)
				}
			}
			fmt.Println(line)
		})
	}
	return nil
}
