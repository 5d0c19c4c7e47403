// Command wordcount is Riffle's classic stateful example: it counts the words of lines of text
// with GroupBy and Count, keeping the counts in a fault-tolerant store.
//
//	go run ./examples/wordcount                      # zero setup: an embedded broker and a bundled text
//	go run ./examples/wordcount -input notes.txt     # count the lines of a file instead
//	go run ./examples/wordcount -brokers host:9092   # on real Kafka (or set KAFKA_BROKERS)
//	go run ./examples/wordcount -follow              # keep counting what you produce
//
// It produces its input to Kafka, one record per line (null key, the line as the value, in file
// order), waits until the app has processed all of it (App.WaitIdle), prints the final count of
// every word, one "<word> <count>" line per word sorted by word, and exits. The counts are read
// back from the app's output topic, the last count of each word. Stdout holds nothing else
// (messages go to stderr), so "go run ./examples/wordcount > counts.txt" gives a clean file.
//
// A word is a maximal run of Unicode letters and digits, lower-cased: every other rune separates
// words, so "Don't stop, CAFÉ café!" has the words don, t, stop, café (twice).
//
// # Names
//
// The consumer group and every topic are named after the application id ID: the app reads lines
// from "ID-lines", writes each new count to "ID-counts" (key: the word; value: the count as an
// 8-byte big-endian integer, Kafka's LongSerde), and owns "ID-counts-repartition" and
// "ID-counts-changelog".
//
//   - By default every run is fresh: ID is "riffle-wordcount-" and a random suffix, and the app
//     keeps its local state in a temporary directory. So a run prints the counts of its own input,
//     however many ran before on the same broker. On a real broker the run deletes its topics and
//     its group when it ends (-keep keeps them, to look at).
//   - -app-id ID makes a run part of the application ID: nothing is deleted, and its counts go on
//     from where the last run with that ID left them (it prints the totals).
//   - -follow uses the ID "riffle-wordcount" unless -app-id is given: it feeds its input, then
//     keeps counting whatever else is produced to "riffle-wordcount-lines" until SIGINT or
//     SIGTERM, and prints nothing; read the counts from "riffle-wordcount-counts". Each start
//     feeds its input again (-input /dev/null feeds nothing).
//
// With -follow on a real broker, type more lines in with, for example:
//
//	kafka-console-producer.sh --bootstrap-server host:9092 --topic riffle-wordcount-lines
//
// Without -brokers or KAFKA_BROKERS it starts an in-process broker (franz-go's kfake), which is
// not Kafka and whose data is gone when the command exits: for anything real, point it at a
// broker (docker compose up, or make kafka-up).
package main

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rifflestream/riffle/connectors/kafka"
	"github.com/rifflestream/riffle/stream"
)

//go:embed sample.txt
var sample []byte

// followAppID is the application id of -follow without -app-id.
const followAppID = "riffle-wordcount"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "wordcount:", err)
		os.Exit(1)
	}
}

func run() error {
	brokersFlag := flag.String("brokers", os.Getenv("KAFKA_BROKERS"), "Kafka bootstrap brokers, comma-separated (default: $KAFKA_BROKERS, else an embedded broker)")
	inputFile := flag.String("input", "", "text file whose lines to count (default: the bundled sample)")
	follow := flag.Bool("follow", false, "keep running after the input is processed, counting the lines produced to the input topic")
	appIDFlag := flag.String("app-id", "", `application id; names the group and topics (default: a fresh "riffle-wordcount-<random>", or "`+followAppID+`" with -follow)`)
	keep := flag.Bool("keep", false, "keep the topics and group of a fresh run on a real broker instead of deleting them")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (see -h)", flag.Args())
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	info := func(format string, args ...any) { fmt.Fprintf(os.Stderr, "wordcount: "+format+"\n", args...) }

	var input io.Reader = bytes.NewReader(sample)
	if *inputFile != "" {
		f, err := os.Open(*inputFile)
		if err != nil {
			return err
		}
		defer f.Close()
		input = f
	}

	brokers := splitList(*brokersFlag)
	embedded := len(brokers) == 0
	if embedded {
		eb, err := kafka.StartEmbedded()
		if err != nil {
			return err
		}
		defer eb.Close()
		brokers = eb.Brokers()
		info("no -brokers or KAFKA_BROKERS: using an embedded in-process broker at %s", brokers[0])
	}

	appID := *appIDFlag
	fresh := appID == "" && !*follow
	switch {
	case appID != "":
	case *follow:
		appID = followAppID
	default:
		appID = fmt.Sprintf("riffle-wordcount-%08x", rand.Uint32())
	}
	topics := TopicsFor(appID)
	info("application %q: reading lines from %q, writing counts to %q", appID, topics.Lines, topics.Counts)

	// A short metadata age: kafka.EnsureTopics polls metadata until the topics it created are
	// ready, and with kgo's default (5s) it would see its own cached "unknown topic" for 5s.
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.MetadataMinAge(100*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	opts := []stream.AppOption{stream.AppID(appID), stream.Brokers(brokers...), stream.Logger(log),
		stream.CommitInterval(time.Second)} // -follow: counts show up within a second
	if fresh {
		dir, err := os.MkdirTemp("", "riffle-wordcount-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		opts = append(opts, stream.StateDir(dir))
		if !embedded && !*keep {
			// Deferred before the app starts, so it runs after the app has stopped, even on an
			// error or a signal.
			defer func() {
				cleanCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
				defer cancel()
				if err := deleteApp(cleanCtx, adm, appID); err != nil {
					info("cleaning up: %v", err)
				}
			}()
		}
	}

	if err := ensureTopics(ctx, adm, topics.Lines, topics.Counts); err != nil {
		return err
	}
	n, err := produceLines(ctx, brokers, topics.Lines, input)
	if err != nil {
		return err
	}
	info("produced %d lines", n)

	app, err := stream.NewApp(Build(topics), opts...)
	if err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- app.Run(runCtx) }()
	if *follow {
		info("counting; produce lines to %q, read counts from %q; Ctrl-C to stop", topics.Lines, topics.Counts)
		return <-done
	}

	idleErr := app.WaitIdle(ctx)
	cancel()
	runErr := <-done
	if ctx.Err() != nil {
		return errors.New("interrupted")
	}
	if err := errors.Join(idleErr, runErr); err != nil {
		return fmt.Errorf("counting: %w", err)
	}

	counts, err := readCounts(ctx, brokers, adm, topics.Counts)
	if err != nil {
		return err
	}
	out := bufio.NewWriter(os.Stdout)
	for _, w := range slices.Sorted(maps.Keys(counts)) {
		fmt.Fprintf(out, "%s %d\n", w, counts[w])
	}
	return out.Flush()
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
