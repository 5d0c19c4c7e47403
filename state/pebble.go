package state

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
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
	db *pebble.DB
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
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("state: opening Pebble in %s: %w", dir, err)
	}
	return &PebbleBackend{db: db}, nil
}

func (b *PebbleBackend) View(store string, partition int32) View {
	return &pebbleView{db: b.db, data: partitionPrefix(dataTag, store, partition), meta: partitionPrefix(metaTag, store, partition)}
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
