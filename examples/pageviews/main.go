// Command pageviews is Riffle's windowing example: it counts the views of each page per minute,
// on event time, and prints the final count of every window.
//
//	go run ./examples/pageviews                          # zero setup: an embedded broker and sample views
//	go run ./examples/pageviews -input views.ndjson      # count the views of a file instead
//	go run ./examples/pageviews -grace 0s                # no grace: every out-of-order view is late
//	go run ./examples/pageviews -brokers host:9092       # on real Kafka (or set KAFKA_BROKERS)
//
// The input is NDJSON, one view per line, ts in epoch milliseconds:
//
//	{"page":"/pricing","ts":1767225605000}
//
// The example produces each view to the input topic, keyed by its page, in file order; the app
// counts them per page in tumbling one-minute windows [start, start+1m) aligned to the epoch
// (stream.Tumbling, stream.CountWindows), and writes each window once, with its final count,
// when the window closes (stream.EmitOnWindowClose). At the end of the input the example prints
// every closed window, one line each, sorted by page and then window start:
//
//	<page> <window start, RFC 3339 UTC> <count>
//
// then "late <n>": how many views were dropped as late. Stdout holds nothing else (messages,
// including a warning for each late view, go to stderr), so "go run ./examples/pageviews >
// counts.txt" gives a clean file.
//
// # Event time and lateness
//
// A view's time is its ts, read from the value by a timestamp extractor
// (stream.WithTimestampExtractor), not the Kafka record's timestamp, which is when the example
// produced it. Stream time is the largest ts the app has seen. A window closes when stream time
// reaches its end plus the grace period (-grace, default 10s): its count is final and is written
// out, and a view that comes for it after that is late, dropped, and counted in the app's
// metrics (Metrics().Skipped["late"]). So with the default grace, a view at 00:00:58 that follows
// one at 00:01:05 is still counted in the 00:00 window, but not if it follows one at 00:01:10.
// A ts exactly on a minute, such as 00:01:00, is in the window starting then.
//
// When the app has processed the whole input (stream.App.WaitIdle), the windows still open would
// wait forever for more views; the example moves stream time past the end plus grace of the
// last view's window (stream.App.AdvanceStreamTime), which closes them all, so every view that
// was not late is counted.
//
// The input topic has one partition by default (-partitions), so stream time follows the file's
// order and "late" means late in file order. Stream time belongs to a task, which is one input
// partition: with several partitions (-partitions 3), each page's views go to the partition
// of its key, and a view is late only with respect to the views of the pages that share its
// partition.
//
// # Bad input
//
// A line that is not a view (not JSON, or without a non-empty "page" and an integer "ts" of at
// least 0) is skipped with a warning on stderr naming its line number: the example cannot key it by
// its page. Blank lines are ignored. The app itself skips a record it cannot decode (e.g. one
// produced to the topic by someone else) rather than stop: stream.OnDeserializationError(stream.Skip).
//
// # Names
//
// The consumer group and every topic are named after the application id ID: views are produced
// to "ID-views", closed windows go to "ID-counts" (key: the page's bytes and the window start,
// Kafka Streams' TimeWindowedSerde; value: the count, 8 bytes big-endian, Kafka's LongSerde), and
// the app owns "ID-counts-changelog". A closed window's record has the time of the window's last
// view, which may be long past, so "ID-counts" is created with retention.ms -1: Kafka's time
// retention would delete such records as soon as they are written.
//
//   - By default every run is fresh: ID is "riffle-pageviews-" and a random suffix, and the app
//     keeps its local state in a temporary directory. So a run prints its own input's windows,
//     however many ran before on the same broker. On a real broker the run deletes its topics and
//     its group when it ends (-keep keeps them, to look at).
//   - -app-id ID makes the run part of the application ID: nothing is deleted, and the run prints
//     the windows it closed itself. A later run with the same ID goes on with the same state and
//     stream time (kept across restarts, the end-of-input flush's too): its views for windows
//     earlier runs closed are late, so feed it later views.
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
	"math"
	"math/rand/v2"
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
		fmt.Fprintln(os.Stderr, "pageviews:", err)
		os.Exit(1)
	}
}

func run() error {
	brokersFlag := flag.String("brokers", os.Getenv("KAFKA_BROKERS"), "Kafka bootstrap brokers, comma-separated (default: $KAFKA_BROKERS, else an embedded broker)")
	inputFile := flag.String("input", "", `NDJSON file of views, {"page":"/a","ts":<epoch ms>} per line (default: the bundled sample)`)
	grace := flag.Duration("grace", 10*time.Second, "grace period: how long after a window's end (in event time) views may still come and be counted")
	partitions := flag.Int("partitions", 1, "partitions of the topics a run creates; stream time, and so lateness, is per partition")
	appIDFlag := flag.String("app-id", "", `application id; names the group and topics (default: a fresh "riffle-pageviews-<random>")`)
	keep := flag.Bool("keep", false, "keep the topics and group of a fresh run on a real broker instead of deleting them")
	flag.Parse()
	switch {
	case flag.NArg() > 0:
		return fmt.Errorf("unexpected arguments %q (see -h)", flag.Args())
	case *grace < 0:
		return fmt.Errorf("-grace %v: must not be negative", *grace)
	case *partitions < 1 || *partitions > math.MaxInt32:
		return fmt.Errorf("-partitions %d: must be from 1 to %d", *partitions, math.MaxInt32)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	info := func(format string, args ...any) { fmt.Fprintf(os.Stderr, "pageviews: "+format+"\n", args...) }

	var input io.Reader = bytes.NewReader(sample)
	inputName := "the bundled sample"
	if *inputFile != "" {
		f, err := os.Open(*inputFile)
		if err != nil {
			return err
		}
		defer f.Close()
		input, inputName = f, *inputFile
	}
	views, err := readViews(input, func(line int, err error) {
		info("%s, line %d: not a view, skipped: %v", inputName, line, err)
	})
	if err != nil {
		return err
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
	fresh := appID == ""
	if fresh {
		appID = fmt.Sprintf("riffle-pageviews-%08x", rand.Uint32())
	}
	topics := TopicsFor(appID)
	info("application %q: views to %q, closed windows to %q, grace %v", appID, topics.Views, topics.Counts, *grace)

	// A short metadata age: kafka.EnsureTopics polls metadata until the topics it created are
	// ready, and with kgo's default (5s) it would see its own cached "unknown topic" for 5s.
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.MetadataMinAge(100*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if fresh && !embedded && !*keep {
		defer func() {
			// Not ctx: clean up after an interrupt too.
			cleanCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := deleteApp(cleanCtx, adm, appID); err != nil {
				info("cleaning up: %v", err)
			}
		}()
	}

	if err := ensureTopics(ctx, adm, int32(*partitions), topics); err != nil {
		return err
	}
	before, err := endOffsets(ctx, adm, topics.Counts)
	if err != nil {
		return err
	}
	if err := produceViews(ctx, brokers, topics.Views, views); err != nil {
		return err
	}
	info("produced %d views from %s", len(views), inputName)

	opts := []stream.AppOption{stream.AppID(appID), stream.Brokers(brokers...), stream.Logger(log),
		stream.OnDeserializationError(stream.Skip)}
	if fresh {
		dir, err := os.MkdirTemp("", "riffle-pageviews-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		opts = append(opts, stream.StateDir(dir))
	}
	app, err := stream.NewApp(Build(topics, *grace), opts...)
	if err != nil {
		return err
	}
	// Stream time just past the last window, so every window closes (and a later run with the
	// same -app-id can count views after it: stream time, moved by AdvanceStreamTime too, is kept
	// across restarts).
	var last int64
	for _, v := range views {
		last = max(last, v.TS)
	}
	m, err := runToEnd(ctx, app, time.UnixMilli(last).Add(WindowSize+*grace))
	if err != nil {
		return err
	}
	if n := m.Skipped["deserialize"]; n > 0 {
		info("%d records of %q could not be decoded and were skipped", n, topics.Views)
	}
	windows, err := readWindows(ctx, brokers, adm, topics.Counts, before)
	if err != nil {
		return err
	}

	out := bufio.NewWriter(os.Stdout)
	for _, w := range windows {
		fmt.Fprintln(out, w)
	}
	fmt.Fprintf(out, "late %d\n", m.Skipped["late"])
	return out.Flush()
}

// runToEnd runs app until it has processed everything in its input topic, closes the windows still
// open, stops the app, and returns its metrics. Once it returns, every window the app closed is
// written to the output topic and acknowledged (the app's shutdown waits for that).
func runToEnd(ctx context.Context, app *stream.App, endOfTime time.Time) (stream.Metrics, error) {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- app.Run(runCtx) }()
	err := closeAllWindows(ctx, app, endOfTime)
	cancel()
	if runErr := <-done; runErr != nil {
		return stream.Metrics{}, runErr
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return stream.Metrics{}, errors.New("interrupted")
	}
	if err != nil {
		return stream.Metrics{}, err
	}
	return app.Metrics(), nil
}

// closeAllWindows waits until the running app has processed its input, then moves stream time
// past every window, so the windows still open close and are emitted, and has that committed.
// The second WaitIdle does not wait for the emitted windows to be acknowledged (they come from no
// input offset, and the input offsets are committed already): stopping the app does, so read the
// output only after Run has returned.
func closeAllWindows(ctx context.Context, app *stream.App, endOfTime time.Time) error {
	if err := app.WaitIdle(ctx); err != nil {
		return fmt.Errorf("waiting for the views to be processed: %w", err)
	}
	if err := app.AdvanceStreamTime(ctx, endOfTime); err != nil {
		return fmt.Errorf("closing the open windows: %w", err)
	}
	if err := app.WaitIdle(ctx); err != nil {
		return fmt.Errorf("waiting for the last windows to be committed: %w", err)
	}
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
