package engine

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// rawBatch encodes a v2 record batch at base (records offset 0, 1, ... from it, timestamps
// baseTime plus their index) with a valid CRC. A nil value is a tombstone.
func rawBatch(base int64, attrs int16, producer int64, baseTime int64, kvs ...[2][]byte) []byte {
	var recs []byte
	for i, kv := range kvs {
		var r []byte
		r = append(r, 0)                     // attributes
		r = binary.AppendVarint(r, int64(i)) // timestamp delta
		r = binary.AppendVarint(r, int64(i)) // offset delta
		r = binary.AppendVarint(r, int64(len(kv[0])))
		r = append(r, kv[0]...)
		if kv[1] == nil {
			r = binary.AppendVarint(r, -1)
		} else {
			r = binary.AppendVarint(r, int64(len(kv[1])))
			r = append(r, kv[1]...)
		}
		r = binary.AppendVarint(r, 1) // one header, which the reader skips
		r = binary.AppendVarint(r, 1)
		r = append(r, 'h')
		r = binary.AppendVarint(r, 1)
		r = append(r, 'v')
		recs = binary.AppendVarint(recs, int64(len(r)))
		recs = append(recs, r...)
	}
	b := kmsg.RecordBatch{FirstOffset: base, Magic: 2, Attributes: attrs, LastOffsetDelta: int32(max(len(kvs)-1, 0)),
		FirstTimestamp: baseTime, MaxTimestamp: baseTime + 1000, ProducerID: producer, NumRecords: int32(len(kvs)), Records: recs}
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[batchCRC:], crc32.Checksum(raw[batchAttrs:], castagnoli))
	return raw
}

func kv(k, v string) [2][]byte { return [2][]byte{[]byte(k), []byte(v)} }

// readAll runs a batchReader over raw (complete batches) from from, and returns the records as
// "offset:key=value@ts" ("key=<nil>" for a tombstone) and the offset after the last batch.
func readAll(t *testing.T, committed bool, raw []byte, aborted []kmsg.FetchResponseTopicPartitionAbortedTransaction, from int64) ([]string, int64, error) {
	t.Helper()
	r := &batchReader{topic: "cl", partition: 3, committed: committed, dec: restoreDecompressor}
	var got []string
	next, err := r.read(changelogBatch{raw: raw, aborted: aborted}, from, func(rec *changelogRecord) {
		v := string(rec.Value)
		if rec.Value == nil {
			v = "<nil>"
		}
		got = append(got, fmt.Sprintf("%d:%s=%s@%d", rec.Offset, rec.Key, v, rec.Timestamp))
	})
	return got, next, err
}

func TestBatchReaderRecords(t *testing.T) {
	var raw []byte
	raw = append(raw, rawBatch(10, 0, -1, 100, kv("a", "1"), [2][]byte{[]byte("b"), nil}, kv("c", ""))...)
	raw = append(raw, rawBatch(13, attrLogAppendTime, -1, 200, kv("d", "4"))...)
	got, next, err := readAll(t, false, raw, nil, 11) // from 11: the first record is before it
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"11:b=<nil>@101", "12:c=@102", "13:d=4@1200"} // LogAppendTime: the batch's max time
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("got %v, want %v", got, want)
	}
	if next != 14 {
		t.Fatalf("next %d, want 14", next)
	}
	n, end, err := completeBatches(append(raw, rawBatch(14, 0, -1, 0, kv("e", "5"))[:30]...), 10)
	if err != nil || n != len(raw) || end != 14 {
		t.Fatalf("completeBatches: %d bytes up to %d (%v), want %d up to 14: a batch cut by the fetch is left for the next", n, end, err, len(raw))
	}
}

// Read committed, a transaction the response lists as aborted is dropped from its first offset
// to its producer's marker, whatever order the list comes in; another producer's records and the
// same producer's later (committed) transaction are kept.
func TestBatchReaderDropsAbortedTransactions(t *testing.T) {
	const p1, p2 = 7, 8
	marker := func(base, producer int64) []byte {
		return rawBatch(base, attrControl|attrTransactional, producer, 0, [2][]byte{{0, 0, 0, 0}, {0, 0, 0, 0, 0, 0}})
	}
	var raw []byte
	raw = append(raw, rawBatch(0, attrTransactional, p1, 0, kv("x", "aborted1"))...)
	raw = append(raw, rawBatch(1, attrTransactional, p2, 0, kv("y", "kept"))...)
	raw = append(raw, marker(2, p1)...)
	raw = append(raw, rawBatch(3, attrTransactional, p1, 0, kv("x", "committed"))...)
	raw = append(raw, marker(4, p1)...) // its commit marker: p1 is not in the list from 3 on
	raw = append(raw, rawBatch(5, attrTransactional, p1, 0, kv("x", "aborted2"))...)
	raw = append(raw, marker(6, p1)...)
	raw = append(raw, rawBatch(7, 0, -1, 0, kv("z", "plain"))...)
	at := func(producer, first int64) kmsg.FetchResponseTopicPartitionAbortedTransaction {
		a := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
		a.ProducerID, a.FirstOffset = producer, first
		return a
	}
	aborted := []kmsg.FetchResponseTopicPartitionAbortedTransaction{at(p1, 5), at(p1, 0)} // highest first
	got, next, err := readAll(t, true, raw, aborted, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := "1:y=kept@0 3:x=committed@0 7:z=plain@0"
	if strings.Join(got, " ") != want {
		t.Fatalf("read committed: got %v, want %s", got, want)
	}
	if next != 8 {
		t.Fatalf("next %d, want 8", next)
	}
	got, _, err = readAll(t, false, raw, aborted, 0)
	if err != nil || len(got) != 5 {
		t.Fatalf("read uncommitted: got %v (%v), want the 5 data records", got, err)
	}
}

// Damaged input is an error naming the changelog, partition and batch, not a panic or a silent
// skip.
func TestBatchReaderRejectsDamagedBatches(t *testing.T) {
	good := rawBatch(40, 0, -1, 0, kv("a", "1"), kv("b", "2"))
	flipped := append([]byte{}, good...)
	flipped[len(flipped)-3] ^= 0xff
	truncated := rawBatch(40, 0, -1, 0, kv("a", "1"), kv("b", "2"))
	binary.BigEndian.PutUint32(truncated[batchCount:], 3) // claims a third record
	binary.BigEndian.PutUint32(truncated[batchCRC:], crc32.Checksum(truncated[batchAttrs:], castagnoli))
	for name, tc := range map[string]struct {
		raw  []byte
		want string
	}{
		"crc":       {flipped, "CRC does not match"},
		"truncated": {truncated, "record 2 of 3 does not decode"},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := readAll(t, false, tc.raw, nil, 0)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "changelog cl[3], batch at offset 40") {
				t.Fatalf("error %v, want one naming cl[3], offset 40 and %q", err, tc.want)
			}
		})
	}
	old := append([]byte{}, good...)
	old[batchMagic] = 1
	if _, _, err := completeBatches(old, 40); err == nil || !strings.Contains(err.Error(), "magic 1") {
		t.Fatalf("a v1 batch: %v", err)
	}
}

// A compressed batch is decompressed with franz-go's codecs.
func TestBatchReaderDecompresses(t *testing.T) {
	plain := rawBatch(0, 0, -1, 0, kv("k1", strings.Repeat("v", 300)), kv("k2", "w"))
	records := plain[batchHeaderBytes:]
	comp, err := kgo.DefaultCompressor(kgo.ZstdCompression())
	if err != nil {
		t.Fatal(err)
	}
	packed, codec := comp.Compress(new(bytes.Buffer), records)
	if codec != kgo.CodecZstd {
		t.Fatalf("compressed with codec %d", codec)
	}
	b := append(append([]byte{}, plain[:batchHeaderBytes]...), packed...)
	binary.BigEndian.PutUint16(b[batchAttrs:], uint16(codec))
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[batchCRC:], crc32.Checksum(b[batchAttrs:], castagnoli))
	got, _, err := readAll(t, false, b, nil, 0)
	if err != nil || len(got) != 2 || got[1] != "1:k2=w@1" {
		t.Fatalf("got %v (%v)", got, err)
	}
}

// The fetcher over scripted responses: a range of the log with no batches left below what is
// readable (compacted away) is passed over once a second fetch finds it empty too, so the
// restore reaches its end instead of waiting for records that will never come; a retriable
// error is retried; batches are sent with the offset after them.
func TestChangelogFetcherPassesOverEmptyRanges(t *testing.T) {
	var fetches []int64
	respond := map[int64]func() (*kmsg.FetchResponseTopicPartition, error){
		0: func() (*kmsg.FetchResponseTopicPartition, error) {
			p := kmsg.NewFetchResponseTopicPartition()
			p.HighWatermark, p.LastStableOffset = 100, 100
			p.RecordBatches = append(rawBatch(0, 0, -1, 0, kv("a", "1")), rawBatch(1, 0, -1, 0, kv("b", "2"), kv("c", "3"))...)
			return &p, nil
		},
		3: func() (*kmsg.FetchResponseTopicPartition, error) {
			if len(fetches) == 2 { // the first fetch at 3: a leader moving
				return nil, kerr.NotLeaderForPartition
			}
			p := kmsg.NewFetchResponseTopicPartition()
			p.HighWatermark, p.LastStableOffset = 100, 100 // nothing from 3 to 100
			return &p, nil
		},
	}
	f := &changelogFetcher{topic: "cl", partition: 0, maxBytes: 1 << 20,
		locateFn: func(context.Context) error { return nil },
		fetchFn: func(_ context.Context, off int64) (*kmsg.FetchResponseTopicPartition, error) {
			fetches = append(fetches, off)
			r, ok := respond[off]
			if !ok {
				return nil, fmt.Errorf("unexpected fetch at %d", off)
			}
			return r()
		}}
	out := make(chan changelogBatch, 10)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f.run(ctx, 0, 90, out) // the restore's end: 90
	var got []string
	for b := range out {
		if b.err != nil {
			t.Fatal(b.err)
		}
		got = append(got, fmt.Sprintf("%d bytes through %d", len(b.raw), b.through))
	}
	if len(got) != 2 || !strings.HasSuffix(got[0], "through 3") || got[1] != "0 bytes through 90" {
		t.Fatalf("sent %v, want the batches through 3, then the empty range through the end 90", got)
	}
	if fmt.Sprint(fetches) != "[0 3 3 3]" {
		t.Fatalf("fetched at %v, want [0 3 3 3] (a retry, then the empty range asked twice)", fetches)
	}
}
