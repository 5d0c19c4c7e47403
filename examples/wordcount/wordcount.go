package main

import (
	"strings"
	"unicode"

	"github.com/rifflestream/riffle/serde"
	"github.com/rifflestream/riffle/stream"
)

// Topics names the example's topics.
type Topics struct {
	// Lines holds the input: one record per line of text, the line as a UTF-8 string value
	// (keys are ignored and may be null).
	Lines string
	// Counts receives every update of a word's count: the word as a string key, the count as an
	// int64 (Kafka's LongSerde). The last record of a word is its count.
	Counts string
}

// TopicsFor returns the topics of the application appID: "<appID>-lines" and "<appID>-counts".
// Naming them after the application keeps a fresh application apart from earlier runs.
func TopicsFor(appID string) Topics {
	return Topics{Lines: appID + "-lines", Counts: appID + "-counts"}
}

// StoreName is the name of the store that holds each word's count. It also names the app's
// internal topics: "<appID>-counts-repartition" and "<appID>-counts-changelog".
const StoreName = "counts"

// Build declares the word count: split each line into words, regroup the words by word (through a
// repartition topic, so all occurrences of a word meet in one task), count them in the store
// StoreName, and write each new count to t.Counts.
func Build(t Topics) *stream.Builder {
	b := stream.NewBuilder()
	lines := stream.From(b, t.Lines, serde.String(), serde.String(), stream.Named("lines"))
	words := stream.FlatMapValues(lines, func(line string) ([]string, error) { return Words(line), nil }, stream.Named("split-words"))
	byWord := stream.GroupBy(words, func(_, word string) (string, error) { return word, nil }, serde.String())
	counts := stream.Count(byWord, stream.Materialized(StoreName))
	counts.ToStream().To(t.Counts, serde.String(), serde.Int64(), stream.Named("counts-sink"))
	return b
}

// Words returns the words of line in order: its maximal runs of Unicode letters and digits, each
// lower-cased. Every other rune (space, punctuation, symbol, combining mark, invalid UTF-8) separates
// words.
func Words(line string) []string {
	words := strings.FieldsFunc(line, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	for i, w := range words {
		words[i] = strings.ToLower(w)
	}
	return words
}
