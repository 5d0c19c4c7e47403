package main

import (
	"bytes"
	"runtime"
	"strings"
	"testing"
)

func TestKeys(t *testing.T) {
	if got := string(keyOf(42)); got != "key-0000000042" {
		t.Fatalf("keyOf(42) = %q", got)
	}
	for _, i := range []int64{0, 7, 999_999, 4_294_967_295} {
		if got, err := parseKey(keyOf(i)); err != nil || got != i {
			t.Fatalf("parseKey(keyOf(%d)) = %d, %v", i, got, err)
		}
	}
	if _, err := parseKey([]byte("kez-0000000001")); err == nil {
		t.Fatal("parseKey accepted a foreign key")
	}
}

func TestValues(t *testing.T) {
	a, b := appendValue(nil, 1, 100), appendValue(nil, 2, 100)
	if len(a) != 100 || bytes.Equal(a, b) || !bytes.Equal(a, appendValue(nil, 1, 100)) {
		t.Fatalf("values: %x / %x", a, b)
	}
	if got := appendValue(nil, 1, 13); !bytes.Equal(got, a[:13]) {
		t.Fatalf("a 13-byte value is not the stream's first 13 bytes: %x", got)
	}
}

func TestWriteOrderIsABijection(t *testing.T) {
	for _, n := range []int64{1, 2, 10, 1000, 65_536, 100_003} {
		o := newWriteOrder(n)
		seen := make([]bool, n)
		ascending := 0 // consecutive writes of consecutive keys
		for j := int64(0); j < n; j++ {
			i := o.at(j)
			if i < 0 || i >= n || seen[i] {
				t.Fatalf("n=%d: at(%d) = %d repeats or is out of range", n, j, i)
			}
			seen[i] = true
			if j > 0 && i == o.at(j-1)+1 {
				ascending++
			}
		}
		if n >= 1000 && ascending > int(n/100) {
			t.Fatalf("n=%d: %d writes follow the previous key: not scrambled", n, ascending)
		}
	}
}

func TestSpread(t *testing.T) {
	s := spreadOf([]float64{5, 1, 3, 9})
	if s.Median != 4 || s.Min != 1 || s.Max != 9 {
		t.Fatalf("spread = %+v", s)
	}
	if s := spreadOf([]float64{2, 8, 5}); s.Median != 5 {
		t.Fatalf("odd median = %v", s.Median)
	}
}

func TestSpliceSection(t *testing.T) {
	doc := "# T\n\nintro\n\n" + markBegin + "\nold\n" + markEnd + "\n\n## Notes\nkept\n"
	got := spliceSection(doc, "new")
	if !strings.Contains(got, markBegin+"\nnew\n"+markEnd) || strings.Contains(got, "old") ||
		!strings.HasPrefix(got, "# T\n\nintro\n\n") || !strings.HasSuffix(got, "## Notes\nkept\n") {
		t.Fatalf("spliced:\n%s", got)
	}
	if got := spliceSection("", "x"); !strings.Contains(got, markBegin+"\nx\n"+markEnd) {
		t.Fatalf("new doc:\n%s", got)
	}
}

func TestCommandDropsMachineFlags(t *testing.T) {
	got := command([]string{"-brokers", "h:1", "-keys", "10", "-kafka-run=/x", "-reps", "3"})
	if got != "go run ./bench/cmd/restorebench -keys 10 -reps 3" {
		t.Fatalf("command = %q", got)
	}
}

func TestFlags(t *testing.T) {
	if _, err := parseFlags([]string{"-keys", "0"}, &bytes.Buffer{}); err == nil {
		t.Fatal("-keys 0 accepted")
	}
	c, err := parseFlags([]string{"-reps", "2"}, &bytes.Buffer{})
	if err != nil || c.reps != 2 || c.keys != 1_000_000 || c.valueBytes != 100 || c.partitions != 4 {
		t.Fatalf("parseFlags = %+v, %v", c, err)
	}
}

// TestGCStats: a forced collection is counted, and the GC's CPU time does not go backwards.
func TestGCStats(t *testing.T) {
	n0, cpu0 := gcStats()
	runtime.GC()
	n1, cpu1 := gcStats()
	if n1 < n0+1 || cpu1 < cpu0 {
		t.Fatalf("gcStats: %d cycles, %v before a runtime.GC; %d, %v after", n0, cpu0, n1, cpu1)
	}
}
