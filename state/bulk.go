package state

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/bits"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2/objstorage"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/rifflestream/riffle/internal/freelist"
	"github.com/rifflestream/riffle/topology"
)

// This file holds the CPU-bound parts of Pebble's bulk restore (pebbleView.restoreIngest): the
// sort of a chunk's records by key, the gather of the sorted records into a staging buffer, and
// the guess whether a chunk's values are worth compressing.

// sortKey is one record of a chunk being sorted: its index and, as a big-endian number, the 8
// bytes of its key after the prefix every key of the chunk shares (zero-padded). Comparing those
// numbers orders keys as bytes.Compare does, except that equal numbers need the whole keys: the
// sort touches only this compact array, not the scattered keys.
type sortKey struct {
	pre uint64
	i   int32
}

// ingestScratch is the memory a bulk load reuses from one chunk to the next: the sort's two
// arrays and the staging buffer. Pooled, so an idle store holds none of it.
type ingestScratch struct {
	order, tmp []sortKey
	rank       []int32
	pos, next  []int
	stage      []byte
	wbuf       []byte // bulkWritable's buffer
}

// ingestScratches keeps the scratch memory of bulk loads between chunks and between restores:
// a sync.Pool drops its contents at every garbage collection, and a restore runs several, so
// chunks allocated it again (tens of MiB, first-touch page faults and zeroing included: ~30 ms of
// CPU per million records restored). See freelist.Cache.
var ingestScratches = freelist.Cache[ingestScratch]{Max: 8, Idle: time.Second}

// ReleaseIdleMemory releases the memory kept for bulk restores between chunks (it is released
// anyway a second after the last restore). For benchmarks that compare processes' memory and GC.
func ReleaseIdleMemory() { ingestScratches.Release() }

// sortedOrder returns the order of the writes of recs: by key, and for one key in changelog
// order (the last one wins).
func sortedOrder(recs []topology.ChangelogEntry) []sortKey {
	var s ingestScratch
	return s.sortedOrder(recs)
}

// sortedOrder is the package function with s's arrays (the result is one of them).
func (s *ingestScratch) sortedOrder(recs []topology.ChangelogEntry) []sortKey {
	n := len(recs)
	s.order, s.tmp = grow(s.order, n), grow(s.tmp, n)
	order, tmp := s.order, s.tmp
	if n == 0 {
		return order
	}
	// One pass over the keys: the first 16 bytes of each (order[i].pre, tmp[i].pre) and the
	// length of the prefix every key shares (cp). The 8 bytes after it usually lie within
	// those 16 (cp <= 8), so the keys are not read a second time.
	k0 := recs[0].Key
	a0, a1 := keyWord(k0, 0), keyWord(k0, 8)
	cp := len(k0)
	for i := range recs {
		k := recs[i].Key
		w0, w1 := keyWord(k, 0), keyWord(k, 8)
		order[i] = sortKey{pre: w0, i: int32(i)}
		tmp[i].pre = w1
		if cp == 0 {
			continue
		}
		var c int
		if x := w0 ^ a0; x != 0 {
			c = bits.LeadingZeros64(x) / 8
		} else if x := w1 ^ a1; x != 0 {
			c = 8 + bits.LeadingZeros64(x)/8
		} else {
			c = 16
			if cp > 16 && len(k) > 16 {
				m := min(cp, len(k))
				for c < m && k0[c] == k[c] {
					c++
				}
			}
		}
		cp = min(cp, c, len(k)) // the words are zero-padded: a shorter key ends the prefix
	}
	if cp <= 8 {
		if cp > 0 {
			sh := uint(8 * cp)
			for i := range order {
				order[i].pre = order[i].pre<<sh | tmp[i].pre>>(64-sh)
			}
		}
	} else {
		for i := range recs {
			order[i].pre = keyWord(recs[i].Key, cp)
		}
	}
	order = radixSort(order, tmp)
	// Equal prefixes (the same key several times, or keys that differ only after the 8 bytes)
	// are in index order (the radix sort is stable); order each such run by its whole keys,
	// stably, so the versions of one key stay in changelog order.
	for lo := 0; lo < n; {
		hi := lo + 1
		for hi < n && order[hi].pre == order[lo].pre {
			hi++
		}
		if hi-lo > 1 {
			slices.SortStableFunc(order[lo:hi], func(a, b sortKey) int {
				return bytes.Compare(recs[a.i].Key[cp:], recs[b.i].Key[cp:])
			})
		}
		lo = hi
	}
	return order
}

// keyWord returns the 8 bytes of k from off as a big-endian number, zero-padded past k's end.
func keyWord(k []byte, off int) uint64 {
	if len(k) >= off+8 {
		return binary.BigEndian.Uint64(k[off:])
	}
	var b [8]byte
	if off < len(k) {
		copy(b[:], k[off:])
	}
	return binary.BigEndian.Uint64(b[:])
}

// radixSort sorts a by pre, stably (least significant byte first, one counting pass per byte
// that is not the same in every element), using tmp (as long as a) as the second buffer. It
// returns the sorted slice: a or tmp.
func radixSort(a, tmp []sortKey) []sortKey {
	if len(a) < 2 {
		return a
	}
	var counts [8][256]int32
	for i := range a {
		p := a[i].pre
		counts[0][byte(p)]++
		counts[1][byte(p>>8)]++
		counts[2][byte(p>>16)]++
		counts[3][byte(p>>24)]++
		counts[4][byte(p>>32)]++
		counts[5][byte(p>>40)]++
		counts[6][byte(p>>48)]++
		counts[7][byte(p>>56)]++
	}
	src, dst := a, tmp[:len(a)]
	for b := range 8 {
		shift := uint(8 * b)
		c := &counts[b]
		if int(c[byte(src[0].pre>>shift)]) == len(src) {
			continue // every element has this byte: the pass would not move anything
		}
		var off [256]int32
		var sum int32
		for d := range 256 {
			off[d] = sum
			sum += c[d]
		}
		for _, k := range src {
			d := byte(k.pre >> shift)
			dst[off[d]] = k
			off[d]++
		}
		src, dst = dst, src
	}
	return src
}

// The bulk load writes a chunk's records to its sstable in key order, and they arrived in
// changelog order: reading them in key order would take a cache miss (and a TLB miss) per record
// on memory far larger than the caches. gather copies them instead, reading them in changelog
// order (sequentially), into a staging buffer divided into buckets of consecutive key ranks,
// each about gatherBucketBytes: a bucket is then read sequentially into the cache once and its
// records taken in key order from there.
//
// A staged record is an 8-byte header (key and value lengths, little-endian uint32s; a value
// length of stagedDelete marks a delete), the key (after the partition prefix) and the encoded
// value (encodeValue).
const (
	gatherBucketBytes        = 256 << 10
	stagedDelete      uint32 = 1<<32 - 1
)

// gather stages recs (sorted: order) for writing: s.pos[j] is where the record of rank j starts
// in s.stage, each key after prefix. It returns the bucket size in records (a power of two).
func (s *ingestScratch) gather(recs []topology.ChangelogEntry, order []sortKey, prefix []byte) int {
	n := len(recs)
	s.rank = grow(s.rank, n)
	s.pos = grow(s.pos, n)
	rank, pos := s.rank, s.pos
	for j, o := range order {
		rank[o.i] = int32(j)
	}
	total := 0
	for i := range recs {
		total += stagedSize(&recs[i], len(prefix))
	}
	// Records per bucket: the power of two nearest to gatherBucketBytes' worth.
	shift := 0
	for per := gatherBucketBytes * n / max(total, 1); 2<<shift <= per; shift++ {
	}
	nb := (n + 1<<shift - 1) >> shift
	s.next = grow(s.next, nb)
	next := s.next
	clear(next)
	for i := range recs {
		next[rank[i]>>shift] += stagedSize(&recs[i], len(prefix))
	}
	off := 0
	for b := range next {
		off, next[b] = off+next[b], off
	}
	s.stage = grow(s.stage, total)
	stage := s.stage
	for i := range recs {
		r := &recs[i]
		j := rank[i]
		b := j >> shift
		p := next[b]
		pos[j] = p
		klen := len(prefix) + len(r.Key)
		vlen := stagedDelete
		if r.Value != nil {
			vlen = uint32(8 + len(r.Value))
		}
		binary.LittleEndian.PutUint32(stage[p:], uint32(klen))
		binary.LittleEndian.PutUint32(stage[p+4:], vlen)
		q := p + 8
		q += copy(stage[q:], prefix)
		q += copy(stage[q:], r.Key)
		if r.Value != nil {
			binary.BigEndian.PutUint64(stage[q:], uint64(r.Timestamp))
			q += 8
			q += copy(stage[q:], r.Value)
		}
		next[b] = q
	}
	return 1 << shift
}

// stagedSize is how many bytes gather stages r in.
func stagedSize(r *topology.ChangelogEntry, prefix int) int {
	n := 8 + prefix + len(r.Key)
	if r.Value != nil {
		n += 8 + len(r.Value)
	}
	return n
}

// staged returns the key and encoded value (nil for a delete) of the staged record at p.
func (s *ingestScratch) staged(p int) (key, value []byte) {
	klen := int(binary.LittleEndian.Uint32(s.stage[p:]))
	vlen := binary.LittleEndian.Uint32(s.stage[p+4:])
	key = s.stage[p+8 : p+8+klen : p+8+klen]
	if vlen == stagedDelete {
		return key, nil
	}
	v := p + 8 + klen
	return key, s.stage[v : v+int(vlen) : v+int(vlen)]
}

// warm reads bucket b of s.stage sequentially, a byte per cache line, so that its records,
// taken in key order next, are in the cache.
func (s *ingestScratch) warm(bucket int) {
	lo := 0
	if bucket > 0 {
		lo = s.next[bucket-1] // gather leaves each bucket's end in next
	}
	var x byte
	b := s.stage[lo:s.next[bucket]]
	for q := 0; q < len(b); q += 64 {
		x ^= b[q]
	}
	warmSink = x
}

// warmSink keeps warm's loads from being optimized away.
var warmSink byte

// grow returns s with length n, reusing its array when it is large enough.
func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n, n+n/8)
	}
	return s[:n]
}

// worthCompressing guesses whether the values of a chunk compress enough for compression's CPU
// to pay (an sstable block is stored compressed only if that saves an eighth of it): it runs a
// small LZ77-style match finder over a sample of the values (up to 32 KiB from records spread
// over the chunk, in runs of consecutive records) and says yes if repeats cover a fifth of the
// sample. Random or already compressed values are written uncompressed, so the restore does not
// spend a snappy pass on every block to keep none of it; the next compaction of the sstable
// compresses it with the DB's setting either way.
func worthCompressing(recs []topology.ChangelogEntry) bool {
	const (
		sampleBytes = 32 << 10
		runs        = 8
		hashBits    = 12
	)
	var sample [sampleBytes]byte
	n := 0
	per := sampleBytes / runs
	for r := 0; r < runs && n < sampleBytes; r++ {
		start := len(recs) * r / runs
		lim := min(n+per, sampleBytes)
		for i := start; i < len(recs) && n < lim; i++ {
			n += copy(sample[n:lim], recs[i].Value)
		}
	}
	if n < 64 {
		return true // too little to judge: let Pebble decide
	}
	b := sample[:n]
	var table [1 << hashBits]int32 // position+1 of the last 4 bytes with each hash
	matched := 0
	for p := 0; p+4 <= len(b); {
		x := binary.LittleEndian.Uint32(b[p:])
		h := (x * 0x9e3779b1) >> (32 - hashBits)
		c := int(table[h]) - 1
		table[h] = int32(p + 1)
		if c >= 0 && binary.LittleEndian.Uint32(b[c:]) == x {
			l := 4
			for p+l < len(b) && b[c+l] == b[p+l] {
				l++
			}
			matched += l
			p += l
			continue
		}
		p++
	}
	return matched*5 >= len(b)
}

// ingestWriteBuffer is how much of an sstable being written is buffered before a write system
// call: Pebble's own file writable buffers 4 KiB, about one data block, so a restore made one
// system call per 4 KiB block.
const ingestWriteBuffer = 1 << 20

// bulkWritable is an objstorage.Writable on a file with a large buffer (see ingestWriteBuffer).
type bulkWritable struct {
	f   vfs.File
	buf []byte
}

var _ objstorage.Writable = (*bulkWritable)(nil)

func (w *bulkWritable) Write(p []byte) error {
	if len(w.buf)+len(p) > cap(w.buf) {
		if err := w.flush(); err != nil {
			return err
		}
		if len(p) >= cap(w.buf) {
			_, err := w.f.Write(p)
			return err
		}
	}
	w.buf = append(w.buf, p...)
	return nil
}

func (w *bulkWritable) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	_, err := w.f.Write(w.buf) // a short write returns an error
	w.buf = w.buf[:0]
	return err
}

// Finish writes what is buffered, syncs the file and closes it.
func (w *bulkWritable) Finish() error {
	err := w.flush()
	if err == nil {
		err = w.f.Sync()
	}
	return errors.Join(err, w.f.Close())
}

func (w *bulkWritable) Abort() { _ = w.f.Close() }
