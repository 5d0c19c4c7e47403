// Command nexmark-load writes Nexmark events into a Kafka topic, the input of the Riffle
// benchmarks, and prints how many it wrote.
//
//	nexmark-load -brokers 127.0.0.1:19092 -topic nexmark -n 1000000 -partitions 4
//	nexmark-load -brokers 127.0.0.1:19092 -topic nexmark-paced -rate 20000 -n 600000
//
// Without -rate it writes -n events as fast as the broker takes them. With -rate it writes them
// at that many events per second, each with the "pt" produce-time header of the latency runs
// (bench/nexmark/FORMAT.md); -n 0 then means until interrupted. The topic is created with
// -partitions partitions unless -create=false. The same -seed and -n always write the same
// events, keyed and partitioned as FORMAT.md says.
package main

import (
	"context"
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

	"github.com/rifflestream/riffle/bench/internal/load"
	"github.com/rifflestream/riffle/bench/nexmark"
)

func main() {
	brokers := flag.String("brokers", envOr("KAFKA_BROKERS", "127.0.0.1:9092"), "comma-separated bootstrap brokers (default $KAFKA_BROKERS)")
	topic := flag.String("topic", "nexmark", "topic to write")
	n := flag.Int64("n", 1_000_000, "number of events (with -rate, 0 means until interrupted)")
	partitions := flag.Int("partitions", 4, "partitions of the topic when it is created")
	seed := flag.Uint64("seed", 1, "generator seed")
	rate := flag.Float64("rate", 0, "events per second; 0 writes as fast as possible, without the pt header")
	create := flag.Bool("create", true, "create the topic (it must not exist)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, strings.Split(*brokers, ","), *topic, *n, int32(*partitions), *seed, *rate, *create); err != nil {
		slog.Error("nexmark-load failed", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, brokers []string, topic string, n int64, partitions int32, seed uint64, rate float64, create bool) error {
	cl, err := kgo.NewClient(append(load.ProducerOpts(), kgo.SeedBrokers(brokers...))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	if create {
		if err := load.CreateTopic(ctx, kadm.NewClient(cl), topic, partitions); err != nil {
			return err
		}
	} else {
		md, err := kadm.NewClient(cl).Metadata(ctx, topic)
		if err != nil {
			return err
		}
		td, ok := md.Topics[topic]
		if !ok || td.Err != nil {
			return fmt.Errorf("nexmark-load: topic %s not found", topic)
		}
		partitions = int32(len(td.Partitions))
	}
	cfg := nexmark.DefaultConfig()
	cfg.Seed = seed
	start := time.Now()
	written := n
	if rate > 0 {
		written, err = load.Paced(ctx, cl, topic, partitions, cfg, rate, n, nil)
	} else {
		err = load.Load(ctx, cl, topic, partitions, cfg, n, nil)
	}
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	slog.Info("loaded", "topic", topic, "events", written, "partitions", partitions, "seconds", elapsed.Seconds(),
		"events_per_second", int64(float64(written)/elapsed.Seconds()))
	fmt.Println(written)
	return nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
