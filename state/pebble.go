package state

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/rifflestream/riffle/topology"
)

// Key layout in the one Pebble DB of an instance:
//
//	data:       0x01 | len(store) | store | partition (4 bytes, big-endian) | key
//	checkpoint: 0x00 | len(store) | store | partition (4 bytes, big-endian)
//
// A store partition's data is one contiguous key range, so dropping a migrated task is one
// DeleteRange, and all stores share one compaction budget and block cache.
const (
	metaTag byte = 0x00
	dataTag byte = 0x01
)

func partitionPrefix(tag byte, store string, partition int32) []byte {
	p := make([]byte, 0, 6+len(store))
	p = append(p, tag, byte(len(store)))
	p = append(p, store...)
	return binary.BigEndian.AppendUint32(p, uint32(partition))
}

// prefixEnd returns the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil // p is all 0xff: no upper bound
}

// PebbleOptions tunes the Pebble backend.
type PebbleOptions struct {
	// CacheBytes is the block cache size. Default 64 MiB.
	CacheBytes int64
	// MemTableBytes is the size of each memtable. Default 32 MiB.
	MemTableBytes uint64
}

// PebbleBackend keeps every store of an instance in one Pebble DB.
type PebbleBackend struct {
	db   *pebble.DB
	opts *pebble.Options
	// ingestDir holds the sstables a bulk restore writes before it ingests them (see
	// pebbleView.Restore); what a crash leaves there is deleted when the DB is opened.
	ingestDir string
	ingestSeq atomic.Uint64
}

// OpenPebble opens (or creates) the Pebble DB in dir.
func OpenPebble(dir string, o PebbleOptions) (*PebbleBackend, error) {
	if o.CacheBytes <= 0 {
		o.CacheBytes = 64 << 20
	}
	if o.MemTableBytes == 0 {
		o.MemTableBytes = 32 << 20
	}
	cache := pebble.NewCache(o.CacheBytes)
	defer cache.Unref()
	opts := &pebble.Options{Cache: cache, MemTableSize: o.MemTableBytes, Logger: quietLogger{}}
	opts.EnsureDefaults()
	ingestDir := filepath.Clean(dir) + ".ingest"
	if err := os.RemoveAll(ingestDir); err != nil {
		return nil, fmt.Errorf("state: clearing %s: %w", ingestDir, err)
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("state: opening Pebble in %s: %w", dir, err)
	}
	return &PebbleBackend{db: db, opts: opts, ingestDir: ingestDir}, nil
}

func (b *PebbleBackend) View(store string, partition int32) View {
	return &pebbleView{b: b, db: b.db, data: partitionPrefix(dataTag, store, partition), meta: partitionPrefix(metaTag, store, partition)}
}

func (b *PebbleBackend) Checkpointed() ([]StorePartition, error) {
	it, err := b.db.NewIter(&pebble.IterOptions{LowerBound: []byte{metaTag}, UpperBound: []byte{dataTag}})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []StorePartition
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if len(k) < 2 || len(k) != 2+int(k[1])+4 {
			return nil, fmt.Errorf("state: malformed checkpoint key %x", k)
		}
		n := int(k[1])
		out = append(out, StorePartition{Store: string(k[2 : 2+n]), Partition: int32(binary.BigEndian.Uint32(k[2+n:]))})
	}
	return out, it.Error()
}

func (b *PebbleBackend) Close() error { return b.db.Close() }

type pebbleView struct {
	b    *PebbleBackend
	db   *pebble.DB
	data []byte
	meta []byte
}

func (v *pebbleView) key(k []byte) []byte {
	out := make([]byte, 0, len(v.data)+len(k))
	return append(append(out, v.data...), k...)
}

func (v *pebbleView) Get(key []byte) ([]byte, bool, error) {
	val, closer, err := v.db.Get(v.key(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	out := append([]byte(nil), val...)
	return out, true, closer.Close()
}

func (v *pebbleView) Iter(lower, upper []byte) (RawIterator, error) {
	o := &pebble.IterOptions{LowerBound: v.key(lower)}
	if upper != nil {
		o.UpperBound = v.key(upper)
	} else {
		o.UpperBound = prefixEnd(v.data)
	}
	it, err := v.db.NewIter(o)
	if err != nil {
		return nil, err
	}
	return &pebbleIter{it: it, prefix: len(v.data)}, nil
}

func (v *pebbleView) Apply(ws *WriteSet) error {
	b := v.db.NewBatch()
	defer b.Close()
	for _, r := range ws.DeleteRanges {
		hi := prefixEnd(v.data)
		if r.Hi != nil {
			hi = v.key(r.Hi)
		}
		if err := b.DeleteRange(v.key(r.Lo), hi, nil); err != nil {
			return err
		}
	}
	for _, w := range ws.Writes {
		var err error
		if w.Value == nil {
			err = b.Delete(v.key(w.Key), nil)
		} else {
			err = b.Set(v.key(w.Key), w.Value, nil)
		}
		if err != nil {
			return err
		}
	}
	if ws.Checkpoint != nil {
		if err := b.Set(v.meta, encodeCheckpoint(*ws.Checkpoint), nil); err != nil {
			return err
		}
	}
	// No fsync: the changelog in Kafka is the durable copy. A crash may lose the last batches,
	// but a batch and its checkpoint are lost together, so the store stays a changelog prefix.
	return b.Commit(pebble.NoSync)
}

// ingestMinBytes is the smallest chunk of restored records (keys and values) written as an
// ingested sstable rather than a batch: below it, the fixed costs of an ingestion (two files
// synced, a manifest edit synced) outweigh what it saves.
const ingestMinBytes = 1 << 20

// Restore implements restorer: changelog records (a nil Value is a delete) and the checkpoint c,
// atomically. A small chunk is one batch. A large one is a bulk load: sorted and written as an
// sstable, the checkpoint as a second one, and both ingested together, which skips the WAL, the
// memtable and its flush, and, when the chunk's keys do not overlap what the DB holds (a
// restore from scratch of chunks with disjoint key ranges), any compaction. An ingestion is
// atomic (one manifest edit) and comes after every earlier write to the same keys (Pebble
// flushes an overlapping memtable first; every earlier write of the partition's data wrote its
// checkpoint key too), so a crash at any point leaves the store at one of its checkpoints.
func (v *pebbleView) Restore(recs []topology.ChangelogEntry, c Checkpoint) error {
	size := 0
	for i := range recs {
		size += len(recs[i].Key) + len(recs[i].Value)
	}
	if size < ingestMinBytes {
		return v.restoreBatch(recs, c, size)
	}
	return v.restoreIngest(recs, c)
}

// restoreBatch writes recs and c in one batch, encoding keys and values in place.
func (v *pebbleView) restoreBatch(recs []topology.ChangelogEntry, c Checkpoint, size int) error {
	b := v.db.NewBatchWithSize(size + len(recs)*(len(v.data)+8+8) + 64)
	defer b.Close()
	for i := range recs {
		r := &recs[i]
		if r.Value == nil {
			op := b.DeleteDeferred(len(v.data) + len(r.Key))
			copy(op.Key[copy(op.Key, v.data):], r.Key)
			if err := op.Finish(); err != nil {
				return err
			}
			continue
		}
		op := b.SetDeferred(len(v.data)+len(r.Key), 8+len(r.Value))
		copy(op.Key[copy(op.Key, v.data):], r.Key)
		binary.BigEndian.PutUint64(op.Value, uint64(r.Timestamp))
		copy(op.Value[8:], r.Value)
		if err := op.Finish(); err != nil {
			return err
		}
	}
	if err := b.Set(v.meta, encodeCheckpoint(c), nil); err != nil {
		return err
	}
	return b.Commit(pebble.NoSync) // see Apply
}

// restoreIngest writes recs (the last write of each key) as one sorted sstable and c as another,
// and ingests both at once.
func (v *pebbleView) restoreIngest(recs []topology.ChangelogEntry, c Checkpoint) (err error) {
	s := ingestScratches.Get()
	defer ingestScratches.Put(s)
	order := s.sortedOrder(recs)
	if err := os.MkdirAll(v.b.ingestDir, 0o755); err != nil {
		return err
	}
	seq := v.b.ingestSeq.Add(1)
	dataPath := filepath.Join(v.b.ingestDir, fmt.Sprintf("%06d-data.sst", seq))
	metaPath := filepath.Join(v.b.ingestDir, fmt.Sprintf("%06d-checkpoint.sst", seq))
	defer func() {
		// Ingest hard-links (or copies) the files into the DB: these names are no longer needed.
		err = errors.Join(err, removeIfExists(dataPath), removeIfExists(metaPath))
	}()
	wopts := v.b.opts.MakeWriterOptions(6, v.db.TableFormat())
	dataOpts := wopts
	if !worthCompressing(recs) {
		dataOpts.Compression = sstable.NoCompression
	}
	per := s.gather(recs, order, v.data)
	err = writeTable(s, dataPath, dataOpts, func(w *sstable.Writer) error {
		for j := range order {
			if j%per == 0 {
				s.warm(j / per)
			}
			key, val := s.staged(s.pos[j])
			if j+1 < len(order) && order[j+1].pre == order[j].pre {
				if next, _ := s.staged(s.pos[j+1]); bytes.Equal(next, key) {
					continue // a later write of the same key follows
				}
			}
			var err error
			if val == nil {
				// Kept even when restoring from scratch: an earlier chunk may hold the key.
				err = w.Delete(key)
			} else {
				err = w.Set(key, val)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	err = writeTable(s, metaPath, wopts, func(w *sstable.Writer) error { return w.Set(v.meta, encodeCheckpoint(c)) })
	if err != nil {
		return err
	}
	return v.db.Ingest(context.Background(), []string{dataPath, metaPath})
}

// ingestBytesPerSync is how often an ingested sstable's writeback is started while it is written.
const ingestBytesPerSync = 1 << 20

// writeTable writes an sstable at path with write and syncs it, buffering in s.wbuf.
func writeTable(s *ingestScratch, path string, o sstable.WriterOptions, write func(*sstable.Writer) error) error {
	f, err := vfs.Default.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	// Start the file's writeback as it is written (sync_file_range on Linux), so the device works
	// while the table is built and the sync that ends the table has little left to wait for.
	f = vfs.NewSyncingFile(f, vfs.SyncingFileOptions{BytesPerSync: ingestBytesPerSync})
	if cap(s.wbuf) < ingestWriteBuffer {
		s.wbuf = make([]byte, 0, ingestWriteBuffer)
	}
	w := sstable.NewWriter(&bulkWritable{f: f, buf: s.wbuf[:0]}, o)
	if err := write(w); err != nil {
		_ = w.Close()
		return err
	}
	return w.Close() // flushes, syncs and closes the file
}

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

func (v *pebbleView) Checkpoint() (Checkpoint, bool, error) {
	val, closer, err := v.db.Get(v.meta)
	if errors.Is(err, pebble.ErrNotFound) {
		return Checkpoint{}, false, nil
	}
	if err != nil {
		return Checkpoint{}, false, err
	}
	defer closer.Close()
	c, err := decodeCheckpoint(val)
	return c, err == nil, err
}

func (v *pebbleView) Wipe() error {
	b := v.db.NewBatch()
	defer b.Close()
	if err := b.DeleteRange(v.data, prefixEnd(v.data), nil); err != nil {
		return err
	}
	if err := b.Delete(v.meta, nil); err != nil {
		return err
	}
	return b.Commit(pebble.NoSync)
}

type pebbleIter struct {
	it      *pebble.Iterator
	prefix  int
	started bool
}

func (i *pebbleIter) Next() bool {
	if !i.started {
		i.started = true
		return i.it.First()
	}
	return i.it.Next()
}

func (i *pebbleIter) Key() []byte   { return bytes.Clone(i.it.Key()[i.prefix:]) }
func (i *pebbleIter) Value() []byte { return bytes.Clone(i.it.Value()) }
func (i *pebbleIter) Err() error    { return i.it.Error() }
func (i *pebbleIter) Close() error  { return i.it.Close() }

// quietLogger drops Pebble's info logs; errors surface as returned errors.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf("pebble: "+format, args...))
}
