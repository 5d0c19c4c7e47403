// Command testapp is the Riffle app that integration and fault tests run as subprocesses, so they
// can kill it with SIGKILL. It reads int64 values keyed by string and writes, per input record, one
// output record with the same key:
//
//	-mode echo: the value {"seq": v, "instance": ..., "partition": p, "offset": o}
//	-mode count: per key k, the running count of its records, under key "c-"+k (through a
//	             repartition topic and a Pebble store with a changelog)
//	-mode window: the value is an event time (ms); per key, counts per 1s tumbling window (grace
//	             1h), windowed keys in Kafka Streams' time-windowed format
//	-mode fault: the fault suite's app, two sub-topologies: the echo above to -output, and per
//	             key (through a repartition topic) the running count, sum, min and max of the
//	             values, with caching off so every input yields one output, to -output-agg
//
// With -metrics-every, it prints its metrics as one JSON line ("metrics {...}") that often.
// It exits 0 on SIGTERM/SIGINT after a clean shutdown, and 1 with the error on a fatal one.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rifflestream/riffle/serde"
	"github.com/rifflestream/riffle/stream"
	"github.com/rifflestream/riffle/topology"
)

// Agg is the output value of the fault mode's aggregation: the running aggregate of a key's
// values, and the value that produced it.
type Agg struct {
	Count int64 `json:"count"`
	Sum   int64 `json:"sum"`
	Min   int64 `json:"min"`
	Max   int64 `json:"max"`
	Last  int64 `json:"last"`
}

// Echo is the output value of -mode echo.
type Echo struct {
	Seq       int64  `json:"seq"`
	Instance  string `json:"instance"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
}

func main() {
	brokers := flag.String("brokers", os.Getenv("KAFKA_BROKERS"), "bootstrap brokers")
	appID := flag.String("app-id", "", "application id")
	input := flag.String("input", "", "input topic")
	output := flag.String("output", "", "output topic")
	instance := flag.String("instance", "", "instance name, echoed in outputs")
	mode := flag.String("mode", "echo", "echo, or count (per key, through a repartition, with state)")
	stateDir := flag.String("state-dir", "", "state dir (count mode)")
	session := flag.Duration("session-timeout", 6*time.Second, "group session timeout")
	commit := flag.Duration("commit-interval", 0, "commit interval (0: the guarantee's default)")
	guarantee := flag.String("guarantee", "at_least_once", "at_least_once or exactly_once")
	outputAgg := flag.String("output-agg", "", "output topic of the aggregation (fault mode)")
	metricsEvery := flag.Duration("metrics-every", 0, "print metrics this often (0: never)")
	inline := flag.Bool("inline", false, "process the stateless tasks on the poll loop (stream.InlineStatelessTasks)")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("instance", *instance)

	b := stream.NewBuilder()
	var in stream.Stream[string, int64]
	if *mode != "window" {
		in = stream.From(b, *input, serde.String(), serde.Int64())
	}
	echo := func() {
		out := stream.Process(in, topology.ProcessorFunc(func(ctx topology.Context[string, Echo], r topology.Record[string, int64]) error {
			return ctx.Forward(topology.DeriveValue(r, Echo{Seq: r.Value, Instance: *instance, Partition: r.Origin.Partition, Offset: r.Origin.Offset}))
		}))
		out.To(*output, serde.String(), serde.JSON[Echo]())
	}
	switch *mode {
	case "echo":
		echo()
	case "fault":
		echo()
		grouped := stream.GroupBy(in, func(k string, _ int64) (string, error) { return k, nil }, serde.String(), stream.Named("by-key"))
		aggs := stream.Aggregate(grouped, func() Agg { return Agg{} }, func(_ string, v int64, a Agg) (Agg, error) {
			if a.Count == 0 || v < a.Min {
				a.Min = v
			}
			if a.Count == 0 || v > a.Max {
				a.Max = v
			}
			a.Count++
			a.Sum += v
			a.Last = v
			return a, nil
		}, serde.JSON[Agg](), stream.Materialized("aggs"), stream.WithoutCaching())
		aggs.ToStream().To(*outputAgg, nil, nil)
	case "window":
		// Event time is the value (ms); counts per key per 1s tumbling window, updates at commits.
		in := stream.From(b, *input+"", serde.String(), serde.Int64(), stream.Named("events"),
			stream.WithTimestampExtractor(func(_ string, v int64, _, _ time.Time) (time.Time, error) { return time.UnixMilli(v), nil }))
		counts := stream.CountWindows(stream.WindowedBy(stream.GroupByKey(in), stream.Tumbling(time.Second).WithGrace(time.Hour)),
			stream.Materialized("w"))
		counts.ToStream().To(*output, stream.TimeWindowedSerde(serde.String(), time.Second), nil)
	case "count":
		counts := stream.Count(stream.GroupBy(in, func(k string, _ int64) (string, error) { return "c-" + k, nil }, serde.String()),
			stream.Materialized("counts"))
		counts.ToStream().To(*output, nil, nil)
	default:
		fmt.Fprintf(os.Stderr, "testapp: unknown mode %q\n", *mode)
		os.Exit(2)
	}
	opts := []stream.AppOption{}
	switch *guarantee {
	case "at_least_once":
		opts = append(opts, stream.ProcessingGuarantee(stream.AtLeastOnce))
	case "exactly_once":
		opts = append(opts, stream.ProcessingGuarantee(stream.ExactlyOnce))
	default:
		fmt.Fprintf(os.Stderr, "testapp: unknown guarantee %q\n", *guarantee)
		os.Exit(2)
	}
	if *commit > 0 {
		opts = append(opts, stream.CommitInterval(*commit))
	}
	if *inline {
		opts = append(opts, stream.InlineStatelessTasks())
	}
	if *stateDir != "" {
		opts = append(opts, stream.StateDir(*stateDir))
	}
	app, err := stream.NewApp(b, append(opts, stream.AppID(*appID), stream.Brokers(strings.Split(*brokers, ",")...),
		stream.Logger(log),
		stream.ClientOptions(kgo.SessionTimeout(*session), kgo.HeartbeatInterval(*session/6)))...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if *metricsEvery > 0 {
		go func() {
			t := time.NewTicker(*metricsEvery)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				b, _ := json.Marshal(app.Metrics())
				fmt.Printf("metrics %s\n", b)
			}
		}()
	}
	if err := app.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "testapp:", err)
		os.Exit(1)
	}
}
