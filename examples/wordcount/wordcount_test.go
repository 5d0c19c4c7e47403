package main

import (
	"fmt"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/rifflestream/riffle/serde"
	"github.com/rifflestream/riffle/streamtest"
	"github.com/rifflestream/riffle/topology"
)

// tricky lines: case, punctuation, digits of other scripts, marks, invalid UTF-8, empty lines.
var tricky = []string{
	"",
	"   \t ",
	"— ... —",
	"Don't STOP: CAFÉ, café; Café! (naïve) NAÏVE",
	"x1 X1 2x 42 042 ٣٤ ४२",
	"Straße STRASSE İstanbul ǅemal ΣΊΣΥΦΟΣ σίσυφος",
	"日本語のテキスト 日本語のテキスト",
	"decomposed: cafe\u0301 e\u0301te\u0301",
	"tab\tseparated\u00a0nbsp under_score hyphen-ated emoji😀word",
	"bad\xffbytes \xc3",
}

// countWords counts words as the example defines them, written apart from Words so that it checks
// it: a word is a maximal run of letters and digits, lower-cased rune by rune.
func countWords(lines []string) map[string]int64 {
	counts := map[string]int64{}
	for _, line := range lines {
		var word []rune
		flush := func() {
			if len(word) > 0 {
				counts[string(word)]++
				word = word[:0]
			}
		}
		for _, r := range line {
			if unicode.IsLetter(r) || unicode.IsDigit(r) {
				word = append(word, unicode.ToLower(r))
			} else {
				flush()
			}
		}
		flush()
	}
	return counts
}

func sampleLines(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("sample.txt")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(string(b), "\n")
}

func TestWords(t *testing.T) {
	for _, tc := range []struct {
		line string
		want []string
	}{
		{"", nil},
		{" ,.;— ", nil},
		{"Hello, World!", []string{"hello", "world"}},
		{"Don't stop", []string{"don", "t", "stop"}},
		{"CAFÉ naïve", []string{"café", "naïve"}},
		{"battle-field, 19th 1863", []string{"battle", "field", "19th", "1863"}},
		{"ΣΊΣΥΦΟΣ İ", []string{"σίσυφοσ", "i"}}, // rune by rune: no final sigma, no dotted i
		{"cafe\u0301!", []string{"cafe"}},       // a combining mark is not a letter
		{"a\xffb", []string{"a", "b"}},
		{"٣٤ ४२", []string{"٣٤", "४२"}},
	} {
		if got := Words(tc.line); !slices.Equal(got, tc.want) {
			t.Errorf("Words(%q) = %q, want %q", tc.line, got, tc.want)
		}
	}
}

// The whole topology on three partitions, without a broker: the store and the output topic hold
// the count of every word of the input.
func TestWordCount(t *testing.T) {
	lines := append(sampleLines(t), tricky...)
	want := countWords(lines)
	if len(want) < 200 || want["the"] == 0 || want["café"] != 3 {
		t.Fatalf("the test's input is not what it should be: %d words, %d times \"the\", %d times \"café\"",
			len(want), want["the"], want["café"])
	}

	topics := TopicsFor("wc")
	d := streamtest.New(t, Build(topics), streamtest.Partitions(3))
	in := streamtest.Input(d, topics.Lines, serde.String(), serde.String())
	for i, line := range lines {
		rec := topology.Record[string, string]{Value: line}
		if i%2 == 0 { // keys do not matter: null ones, as a console producer writes, and others
			rec = rec.WithNullKey()
		} else {
			rec.Key = fmt.Sprint(i)
		}
		in.PipeRecord(rec)
	}

	if got := streamtest.ReadStore[string, int64](d, StoreName); !reflect.DeepEqual(got, want) {
		t.Errorf("store %q:\n%s", StoreName, diffCounts(got, want))
	}
	out := streamtest.Output(d, topics.Counts, serde.String(), serde.Int64())
	if got := streamtest.LastByKey(out); !reflect.DeepEqual(got, want) {
		t.Errorf("topic %q, last count of each word:\n%s", topics.Counts, diffCounts(got, want))
	}
}

// diffCounts describes how got differs from want, word by word.
func diffCounts(got, want map[string]int64) string {
	var b strings.Builder
	for _, w := range slices.Sorted(maps.Keys(want)) {
		if g, ok := got[w]; !ok || g != want[w] {
			fmt.Fprintf(&b, "  %q: got %d (present: %v), want %d\n", w, g, ok, want[w])
		}
	}
	for _, w := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[w]; !ok {
			fmt.Fprintf(&b, "  %q: got %d, want none\n", w, got[w])
		}
	}
	return b.String()
}
