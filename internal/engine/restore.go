package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rifflestream/riffle/connectors/kafka"
	"github.com/rifflestream/riffle/internal/freelist"
	"github.com/rifflestream/riffle/topology"
)

// restoreChunkBytes is how many bytes of changelog keys and values are applied to a store at
// once (with the checkpoint reached, atomically). A Pebble store sorts a large chunk and ingests
// it as an sstable: larger chunks mean fewer sstables whose key ranges overlap (and so less
// compaction after a restore of unordered keys), at the price of memory: each restoring task
// holds its chunk's fetched records.
const restoreChunkBytes = 16 << 20

// restoreFetchPartitionBytes is how many bytes of its partition a restore asks for per fetch
// request. A fetch is held only until its records are copied into the chunk, and the batches
// are parsed in place (changelogread.go), so a large fetch costs no large slab of decoded
// records: it means fewer requests for the broker to serve (measured: 4 MiB fetches cost the
// broker about half the CPU of 1 MiB ones for the same changelog).
const restoreFetchPartitionBytes = 4 << 20

// restore brings every store of the runner's task up to the end of its changelog, from the
// store's checkpoint (or from the start without one). It runs on the runner goroutine before the
// task's processors start, so the task processes only once its state is whole.
func (r *runner) restore(ctx context.Context) error {
	for _, st := range r.task.Stores() {
		rs, ok := st.(topology.Restorable)
		if !ok {
			continue
		}
		spec, err := r.e.cfg.Plan.Store(st.Name())
		if err != nil {
			return err
		}
		if on, _ := spec.Changelog(); !on {
			continue
		}
		if err := r.restoreStore(ctx, rs, r.e.cfg.Plan.ChangelogTopic(st.Name())); err != nil {
			return fmt.Errorf("restoring store %q of task %s: %w", st.Name(), r.id, err)
		}
	}
	return nil
}

func (r *runner) restoreStore(ctx context.Context, rs topology.Restorable, topic string) error {
	cr := &ChangelogRestorer{
		Brokers:    r.e.cfg.Brokers,
		ClientOpts: r.e.cfg.ClientOpts,
		Isolation:  r.e.isolation(),
		Log:        r.e.log,
		Bounds:     r.e.changelogBounds,
		TopicID:    r.e.changelogID,
		Restored:   func(n int64) { r.e.restored.Add(n) },
		Slots:      r.e.restoreSlots,
	}
	_, err := cr.Restore(ctx, rs, topic, r.id.Partition, r.id.String())
	return err
}

// ChangelogRestorer restores store partitions from their changelog topics. It is what a task
// runs when it is assigned (before its processors start), exported for the restore benchmark
// (bench/cmd/restorebench), which measures this very code.
type ChangelogRestorer struct {
	Brokers    []string
	ClientOpts []kgo.Opt
	// Isolation is the changelog's read isolation: read_committed under exactly-once.
	Isolation kgo.IsolationLevel
	Log       *slog.Logger
	// Bounds returns the first offset and the end of a changelog partition (the high watermark,
	// or the last stable offset when reading committed).
	Bounds func(ctx context.Context, topic string, p int32) (start, end int64, err error)
	// TopicID, if not nil, returns the changelog topic's ID (zero: unknown), which a store
	// implementing topology.ChangelogTracking keeps with its checkpoints: a checkpoint kept with
	// another ID is of a changelog that was deleted since, and the store is wiped.
	TopicID func(ctx context.Context, topic string) (topology.ChangelogID, error)
	// Restored, if not nil, is told how many records each applied chunk held.
	Restored func(n int64)
	// Slots, if not nil, bounds the restores that run at once: a restore with records to
	// restore holds a token of it (a send) until it returns. One with nothing to restore (a
	// clean restart) takes none.
	Slots chan struct{}
	// ChunkBytes is how many bytes of keys and values are applied at once (default
	// restoreChunkBytes); FetchPartitionBytes the changelog client's fetch.max.partition.bytes
	// (default restoreFetchPartitionBytes). Set by the benchmark to compare settings.
	ChunkBytes          int
	FetchPartitionBytes int32
}

// Restore brings rs up to the end of partition p of its changelog topic, from its checkpoint (or
// from the start without one), and returns how many records it applied. task names the task in
// logs.
func (c *ChangelogRestorer) Restore(ctx context.Context, rs topology.Restorable, topic string, p int32, task string) (int64, error) {
	log := c.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	from, has, err := rs.RestoreFrom()
	if err != nil {
		return 0, err
	}
	start, end, err := c.Bounds(ctx, topic, p)
	if err != nil {
		return 0, err
	}
	var id, was topology.ChangelogID
	if ct, ok := rs.(topology.ChangelogTracking); ok && c.TopicID != nil {
		if id, err = c.TopicID(ctx, topic); err != nil {
			return 0, err
		}
		if was, err = ct.CheckpointChangelog(); err != nil {
			return 0, err
		}
		ct.UseChangelog(id)
	}
	var zero topology.ChangelogID
	switch {
	case has && id != zero && was != zero && id != was:
		// The checkpoint is an offset of another topic of this name, deleted since (an
		// application reset, or a topic lost and created again): no position in this one, even
		// below its end. The local state cannot be trusted; rebuild it.
		log.Warn("local state is of a changelog that was deleted and created again; wiping it and restoring from the changelog",
			"task", task, "store", rs.Name(), "checkpoint", from, "changelog_end", end)
		if err := rs.Wipe(); err != nil {
			return 0, err
		}
		has = false
	case has && from > end:
		// The changelog is behind the local state: it was deleted and recreated, or truncated.
		// The local state cannot be trusted; rebuild it.
		log.Warn("local state is ahead of its changelog; wiping it and restoring from the changelog",
			"task", task, "store", rs.Name(), "checkpoint", from, "changelog_end", end)
		if err := rs.Wipe(); err != nil {
			return 0, err
		}
		has = false
	}
	if !has || from < start {
		from = start
	}
	if from >= end {
		return 0, nil
	}
	if c.Slots != nil {
		select {
		case c.Slots <- struct{}{}:
		default:
			log.Info("waiting for another task's restore to finish", "task", task, "store", rs.Name(), "slots", cap(c.Slots))
			select {
			case c.Slots <- struct{}{}:
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}
		defer func() { <-c.Slots }()
	}
	t0 := time.Now()
	log.Info("restoring", "task", task, "store", rs.Name(), "from", from, "to", end, "records", end-from)
	chunkBytes := c.ChunkBytes
	if chunkBytes <= 0 {
		chunkBytes = restoreChunkBytes
	}
	fetchBytes := c.FetchPartitionBytes
	if fetchBytes <= 0 {
		fetchBytes = restoreFetchPartitionBytes
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.WithLogger(kgoLogger{log}),
	}, c.ClientOpts...)...)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	committed := c.Isolation == kgo.ReadCommitted()
	fetchCtx, stopFetching := context.WithCancel(ctx)
	fetched := make(chan changelogBatch, 1) // one response parsed, one waiting, one being fetched
	fetcher := &changelogFetcher{cl: cl, topic: topic, partition: p, committed: committed, maxBytes: fetchBytes, log: log,
		bounds: func(ctx context.Context) (int64, error) {
			start, _, err := c.Bounds(ctx, topic, p)
			return start, err
		}}
	fetcherDone := make(chan struct{})
	go func() {
		defer close(fetcherDone)
		fetcher.run(fetchCtx, from, end, fetched)
	}()
	defer func() {
		stopFetching()
		<-fetcherDone
	}()
	reader := &batchReader{topic: topic, partition: p, committed: committed, dec: restoreDecompressor}

	// Fetching and writing overlap: this goroutine fills a chunk while a writer goroutine applies
	// the previous one. There are up to two chunk buffers, so at most one chunk waits for the
	// writer and fetching pauses while it does; the second buffer is made only while fewer
	// restores run than the process has CPUs (activeRestores): with as many restores as CPUs,
	// the others keep the CPUs busy while one writes, and a second buffer per restore (a chunk's
	// worth of memory, allocated, cleared and collected each time) measured more CPU, not less.
	// The writer applies chunks one at a time in changelog order, each with the checkpoint after
	// its last record (atomically: Restorable.Restore), so the store is at one of its
	// checkpoints whenever a restore stops, even by a failure.
	activeRestores.Add(1)
	defer activeRestores.Add(-1)
	type chunk struct {
		buf  *restoreChunk
		next int64
	}
	var (
		toWrite  = make(chan chunk)
		free     = make(chan *restoreChunk, 2)
		writerOK = make(chan struct{}) // closed when the writer is done
		failed   = make(chan struct{}) // closed when a write failed: stop fetching
		werr     error                 // the writer's error, read after writerOK is closed
		restored atomic.Int64
	)
	free <- restoreChunks.Get()
	buffers := 1
	go func() {
		defer close(writerOK)
		for ch := range toWrite {
			recs := ch.buf.entries()
			if werr == nil {
				if err := rs.Restore(recs, ch.next); err != nil {
					werr = err
					close(failed)
				} else {
					restored.Add(int64(len(recs)))
					if c.Restored != nil {
						c.Restored(int64(len(recs)))
					}
				}
			}
			ch.buf.reset()
			free <- ch.buf
		}
	}()
	var cur *restoreChunk
	finish := func(err error) (int64, error) {
		close(toWrite)
		<-writerOK
		// The writer is done: every buffer is back in free (reset), or is cur (not sent).
		for len(free) > 0 {
			restoreChunks.Put(<-free)
		}
		if cur != nil {
			cur.reset()
			restoreChunks.Put(cur)
			cur = nil
		}
		return restored.Load(), errors.Join(err, werr)
	}
	lastLog := time.Now()
	take := func() error { // the next free buffer, once the writer gave one back
		if buffers < 2 && int(activeRestores.Load()) < runtime.GOMAXPROCS(0) {
			select {
			case cur = <-free:
			default:
				cur = restoreChunks.Get()
				buffers++
			}
			return nil
		}
		select {
		case cur = <-free:
			return nil
		case <-failed:
			return nil // finish returns werr
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	// send hands cur to the writer with the checkpoint next, and takes the next free buffer
	// unless the changelog's end is reached; false: stop (finish returns the error).
	send := func(next int64) (bool, error) {
		select {
		case toWrite <- chunk{buf: cur, next: next}:
		case <-failed:
			return false, nil
		}
		cur = nil
		if next < end {
			if err := take(); err != nil || werrSet(failed) {
				return false, err
			}
		}
		return true, nil
	}
	if err := take(); err != nil || werrSet(failed) {
		return finish(err)
	}
	for next := from; next < end; {
		var b changelogBatch
		select {
		case b = <-fetched:
		case <-ctx.Done():
			return finish(ctx.Err())
		}
		if b.err != nil {
			return finish(b.err)
		}
		if b.raw == nil && b.through == 0 { // the fetcher stopped: ctx is done
			if err := ctx.Err(); err != nil {
				return finish(err)
			}
			return finish(fmt.Errorf("reading changelog %s[%d] stopped at offset %d, before its end %d", topic, p, next, end))
		}
		var sendErr error
		stopped := false
		after, err := reader.read(b, next, func(rec *changelogRecord) {
			if stopped || rec.Offset >= end {
				return
			}
			next = rec.Offset + 1
			cur.add(rec, chunkBytes, end-rec.Offset)
			if cur.size >= chunkBytes && next < end {
				if ok, err := send(next); !ok {
					stopped, sendErr = true, err
				}
			}
		})
		if err != nil {
			return finish(err)
		}
		if stopped {
			return finish(sendErr)
		}
		// Past the batches' last offsets (records compacted away, control records) and over
		// ranges with no batches left.
		next = max(next, min(max(after, b.through), end))
		if next >= end {
			if ok, err := send(next); !ok {
				return finish(err)
			}
		}
		if time.Since(lastLog) > 5*time.Second {
			lastLog = time.Now()
			log.Info("restore progress", "task", task, "store", rs.Name(), "restored", restored.Load(), "remaining", end-next)
		}
	}
	if n, err := finish(nil); err != nil {
		return n, err
	}
	log.Info("restored", "task", task, "store", rs.Name(), "records", restored.Load(), "took", time.Since(t0).Round(time.Millisecond))
	return restored.Load(), nil
}

// werrSet reports whether the restore writer failed (failed is closed).
func werrSet(failed <-chan struct{}) bool {
	select {
	case <-failed:
		return true
	default:
		return false
	}
}

// changelogID returns the ID of a changelog topic, as listed at start-up (zero if the broker
// keeps none).
func (e *Engine) changelogID(_ context.Context, topic string) (topology.ChangelogID, error) {
	return e.changelogIDs[topic], nil
}

// changelogBounds returns the first offset and the end of a changelog partition: the high
// watermark under at-least-once, the last stable offset under exactly-once. Transient errors are
// retried for up to a minute: a topic created a moment ago may not be served by its leader yet,
// and a broker that is restarting refuses connections (kafka.Retriable).
func (e *Engine) changelogBounds(ctx context.Context, topic string, p int32) (start, end int64, err error) {
	err = kafka.RetryTransientFor(ctx, time.Minute, func() (err error) {
		start, end, err = e.changelogBoundsOnce(ctx, topic, p)
		return err
	})
	if err != nil && ctx.Err() != nil {
		return 0, 0, ctx.Err()
	}
	return start, end, err
}

func (e *Engine) changelogBoundsOnce(ctx context.Context, topic string, p int32) (int64, int64, error) {
	starts, err := e.adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return 0, 0, err
	}
	var ends kadm.ListedOffsets
	if e.cfg.Guarantee == ExactlyOnce {
		ends, err = e.adm.ListCommittedOffsets(ctx, topic)
	} else {
		ends, err = e.adm.ListEndOffsets(ctx, topic)
	}
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return 0, 0, err
	}
	s, ok1 := starts.Lookup(topic, p)
	en, ok2 := ends.Lookup(topic, p)
	if !ok1 || !ok2 {
		return 0, 0, errors.New("no such partition")
	}
	return s.Offset, en.Offset, nil
}

func (e *Engine) isolation() kgo.IsolationLevel {
	if e.cfg.Guarantee == ExactlyOnce {
		return kgo.ReadCommitted()
	}
	return kgo.ReadUncommitted()
}

// restoreChunk is a chunk of changelog records being restored. Their keys and values are copied
// into arena one after the other as they are fetched, and described by meta: offsets, not
// slices, so that while a chunk fills (most of a restore's life) it holds no pointers for the
// garbage collector to scan, and the arena can grow by reallocation. The copy frees the fetch
// (and the client's pooled records) at once. The writer makes the entries (entries) just before
// it applies the chunk. A chunk's memory is reused from chunk to chunk.
type restoreChunk struct {
	meta  []chunkRecord
	arena []byte
	size  int // bytes of keys and values in the chunk
	recs  []topology.ChangelogEntry
}

// chunkRecord is one record of a chunk: its key is arena[off:off+klen], then its value of vlen
// bytes (-1: a tombstone).
type chunkRecord struct {
	ts         int64
	off        int
	klen, vlen int32
}

// add appends a copy of rec. The first record of a chunk sizes its arena, unless the arena (kept
// from an earlier chunk or restore) is large enough already: a chunk holds about chunkBytes, or,
// when fewer records are left (left counts rec too), twice what they would take if they were
// rec's size: a restore of a few records does not allocate a whole chunk (16 MiB), and a
// changelog of larger records than the first grows the arena by reallocation.
func (c *restoreChunk) add(rec *changelogRecord, chunkBytes int, left int64) {
	if len(c.meta) == 0 { // the chunk's first record: make sure the arena is large enough
		n := int64(chunkBytes + chunkBytes/8)
		if est := 2 * left * int64(len(rec.Key)+len(rec.Value)+16); est < n {
			n = max(est, 64<<10)
		}
		if int64(cap(c.arena)) < n {
			c.arena = make([]byte, 0, n)
		}
	}
	if len(c.meta) == cap(c.meta) && len(c.meta) >= 1024 {
		// Grow to what a whole chunk of records of this size holds, not by doubling.
		want := int(int64(chunkBytes)*int64(len(c.meta))/int64(max(c.size, 1))) + 1024
		c.meta = slices.Grow(c.meta, max(want, 2*len(c.meta))-len(c.meta))
	}
	m := chunkRecord{ts: rec.Timestamp, off: len(c.arena), klen: int32(len(rec.Key)), vlen: -1}
	c.arena = append(c.arena, rec.Key...)
	if rec.Value != nil { // nil is a tombstone; an empty value stays an empty value
		m.vlen = int32(len(rec.Value))
		c.arena = append(c.arena, rec.Value...)
	}
	c.meta = append(c.meta, m)
	c.size += len(rec.Key) + len(rec.Value)
}

// entries returns the chunk's records, their keys and values in the arena.
func (c *restoreChunk) entries() []topology.ChangelogEntry {
	c.recs = slices.Grow(c.recs[:0], len(c.meta))[:len(c.meta)]
	a := c.arena
	for i, m := range c.meta {
		k := m.off + int(m.klen)
		e := topology.ChangelogEntry{Key: a[m.off:k:k], Timestamp: m.ts}
		if m.vlen >= 0 {
			v := k + int(m.vlen)
			e.Value = a[k:v:v]
		}
		c.recs[i] = e
	}
	return c.recs
}

// reset empties c for the next chunk, keeping its memory.
func (c *restoreChunk) reset() {
	clear(c.recs) // no pointers are left while the next chunk fills
	c.recs = c.recs[:0]
	c.meta = c.meta[:0]
	c.arena = c.arena[:0]
	c.size = 0
}

// restoreChunks keeps chunk buffers (a full chunk's arena and record tables: ~30 MiB) between
// restores while restores run: an instance restoring many tasks, a few at a time, reuses them
// instead of allocating (and page-faulting) them for every task. See freelist.Cache.
var restoreChunks = freelist.Cache[restoreChunk]{Max: 8, Idle: time.Second}

// ReleaseIdleRestoreMemory releases the chunk buffers kept between restores (they are released
// anyway a second after the last restore). For benchmarks that compare processes' memory and GC.
func ReleaseIdleRestoreMemory() { restoreChunks.Release() }

// activeRestores counts the restores running in the process (ChangelogRestorer.Restore).
var activeRestores atomic.Int32

// restoreDecompressor decompresses the compressed batches of changelogs (franz-go's codecs).
var restoreDecompressor = kgo.DefaultDecompressor()
