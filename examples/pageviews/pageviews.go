package main

import (
	"fmt"
	"time"

	"github.com/rifflestream/riffle/serde"
	"github.com/rifflestream/riffle/stream"
)

// View is one page view, as JSON on the input topic, keyed by its page.
type View struct {
	Page string `json:"page"`
	// TS is when the page was viewed, in epoch milliseconds: the event time the windows use.
	TS int64 `json:"ts"`
}

// WindowSize is the size of the tumbling windows the views are counted in.
const WindowSize = time.Minute

// Topics names the example's topics.
type Topics struct {
	Views  string // input: View JSON, key = the page
	Counts string // output: one record per closed window (key: page and window start, value: count)
}

// TopicsFor names the topics of the application appID.
func TopicsFor(appID string) Topics {
	return Topics{Views: appID + "-views", Counts: appID + "-counts"}
}

// CountsStore is the name of the windowed count's store (its changelog is
// "<appID>-counts-changelog").
const CountsStore = "counts"

// CountKeySerde is the serde of the output topic's keys: the page, then the window start (Kafka
// Streams' TimeWindowedSerde of a string key, so a Java consumer reads them too).
func CountKeySerde() serde.Serde[stream.Windowed[string]] {
	return stream.TimeWindowedSerde(serde.String(), WindowSize)
}

// Build declares the count: views keyed by page, in tumbling windows of WindowSize on the event
// time read from the view itself, with grace for views that come late, counted, and written once
// per window when it closes (final results only: no intermediate counts reach the output).
func Build(t Topics, grace time.Duration) *stream.Builder {
	b := stream.NewBuilder()
	views := stream.From(b, t.Views, serde.String(), serde.JSON[View](), stream.Named("views"),
		stream.WithTimestampExtractor(viewTime))
	windows := stream.WindowedBy(stream.GroupByKey(views), stream.Tumbling(WindowSize).WithGrace(grace))
	counts := stream.CountWindows(windows, stream.Named("count-per-minute"), stream.Materialized(CountsStore),
		stream.EmitOnWindowClose())
	counts.ToStream(stream.Named("closed-windows")).To(t.Counts, CountKeySerde(), serde.Int64())
	return b
}

// viewTime is the event time of a view: its ts field, not the Kafka record's timestamp (which is
// when it was produced). A negative ts is an error, which the deserialization handler gets, as
// Kafka Streams' extractors reject negative timestamps.
func viewTime(_ string, v View, _, _ time.Time) (time.Time, error) {
	if v.TS < 0 {
		return time.Time{}, fmt.Errorf("pageviews: view of %q has a negative ts (%d)", v.Page, v.TS)
	}
	return time.UnixMilli(v.TS), nil
}
