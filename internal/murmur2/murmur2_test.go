package murmur2_test

import (
	"bufio"
	"encoding/hex"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rifflestream/riffle/internal/murmur2"
)

// javaVectors is written by Kafka's own Java code (serde/testdata/java/SerdeVectors.java tells
// how); its murmur2 lines are "murmur2 <key hex> <Utils.murmur2> <partitionForKey for n = ...>".
const javaVectors = "../../serde/testdata/java_vectors.txt"

// javaPartitionCounts are the n of the partitionForKey columns, as the file's header says.
var javaPartitionCounts = []int32{1, 3, 7, 12, 100}

type vector struct {
	line       int
	key        []byte
	hash       int32
	partitions []int32
}

func readVectors(t testing.TB) []vector {
	t.Helper()
	f, err := os.Open(javaVectors)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var vs []vector
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || fields[0] != "murmur2" {
			continue
		}
		if len(fields) != 3+len(javaPartitionCounts) {
			t.Fatalf("%s:%d: want %d fields, got %q", javaVectors, n, 3+len(javaPartitionCounts), sc.Text())
		}
		v := vector{line: n, key: []byte{}}
		if fields[1] != "-" {
			if v.key, err = hex.DecodeString(fields[1]); err != nil {
				t.Fatalf("%s:%d: %v", javaVectors, n, err)
			}
		}
		for i, s := range fields[2:] {
			x, err := strconv.ParseInt(s, 10, 32)
			if err != nil {
				t.Fatalf("%s:%d: %v", javaVectors, n, err)
			}
			if i == 0 {
				v.hash = int32(x)
			} else {
				v.partitions = append(v.partitions, int32(x))
			}
		}
		vs = append(vs, v)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(vs) < 50 {
		t.Fatalf("%s: only %d murmur2 vectors", javaVectors, len(vs))
	}
	return vs
}

func TestJavaVectors(t *testing.T) {
	negative := 0
	for _, v := range readVectors(t) {
		if got := murmur2.Hash(v.key); got != v.hash {
			t.Errorf("line %d: Hash(%x) = %d, Java Utils.murmur2 = %d", v.line, v.key, got, v.hash)
		}
		if v.hash < 0 {
			negative++
		}
		for i, n := range javaPartitionCounts {
			if got := murmur2.Partition(v.key, n); got != v.partitions[i] {
				t.Errorf("line %d: Partition(%x, %d) = %d, Java partitionForKey = %d", v.line, v.key, n, got, v.partitions[i])
			}
		}
	}
	if negative == 0 {
		t.Error("no vector has a negative hash: ToPositive is not exercised")
	}
}

func TestToPositive(t *testing.T) {
	for _, tc := range []struct{ in, want int32 }{
		{0, 0},
		{1, 1},
		{-1, math.MaxInt32},
		{math.MaxInt32, math.MaxInt32},
		{math.MinInt32, 0},
		{-1467612647, 679871001}, // a Java hash from the vectors: sign bit cleared, not negated
	} {
		if got := murmur2.ToPositive(tc.in); got != tc.want {
			t.Errorf("ToPositive(%d) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestPartitionBadCount(t *testing.T) {
	for _, n := range []int32{0, -1, math.MinInt32} {
		if got := murmur2.Partition([]byte("k"), n); got != -1 {
			t.Errorf("Partition(k, %d) = %d, want -1", n, got)
		}
	}
}

// TestFranzGo checks that Riffle's partition for a keyed record is franz-go's, the client that
// produces Riffle's records: kgo's default partitioner for keyed records hashes with murmur2.
func TestFranzGo(t *testing.T) {
	keys := [][]byte{{}}
	for _, v := range readVectors(t) {
		keys = append(keys, v.key)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		k := make([]byte, rng.IntN(64))
		for i := range k {
			k[i] = byte(rng.Uint32())
		}
		keys = append(keys, k)
	}
	p := kgo.StickyKeyPartitioner(nil).ForTopic("riffle")
	for _, k := range keys {
		for _, n := range []int{1, 2, 3, 7, 12, 16, 100, 1000, math.MaxInt32} {
			want := p.Partition(&kgo.Record{Key: k}, n)
			if got := murmur2.Partition(k, int32(n)); int(got) != want {
				t.Fatalf("Partition(%x, %d) = %d, franz-go = %d", k, n, got, want)
			}
		}
	}
}

func TestNoAllocs(t *testing.T) {
	key := []byte("order-1000:customer-42")
	if a := testing.AllocsPerRun(100, func() { murmur2.Partition(key, 12) }); a != 0 {
		t.Errorf("Partition allocates %v times per call", a)
	}
}

func BenchmarkHash(b *testing.B) {
	for _, size := range []int{8, 16, 36, 128, 1024} {
		key := make([]byte, size)
		for i := range key {
			key[i] = byte(i * 31)
		}
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				murmur2.Hash(key)
			}
		})
	}
}

func BenchmarkPartition(b *testing.B) {
	key := []byte("user-4242")
	b.ReportAllocs()
	for b.Loop() {
		murmur2.Partition(key, 12)
	}
}
