package state

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/rifflestream/riffle/topology"
)

// Backend keeps the stores of one application instance as bytes. A store's partition (the store
// of one task) is a View. Riffle has two: Pebble (persistent, the default) and memory.
//
// A Backend is safe for concurrent use; each View is used by one task at a time.
type Backend interface {
	// View returns the bytes of store for one partition.
	View(store string, partition int32) View
	// Checkpointed lists the store partitions that have a checkpoint: state a task can resume
	// from without restoring its whole changelog.
	Checkpointed() ([]StorePartition, error)
	// Close releases the backend. Views must not be used after.
	Close() error
}

// restorer is a View that takes restored changelog records itself, more cheaply than a WriteSet
// (Pebble's bulk load). Views without it get a WriteSet.
type restorer interface {
	// Restore writes recs (a nil Value is a delete; values are stored with encodeValue) in their
	// order, then the checkpoint c, atomically.
	Restore(recs []topology.ChangelogEntry, c Checkpoint) error
}

// StorePartition names one partition of a store.
type StorePartition struct {
	Store     string
	Partition int32
}

// View is one store partition's bytes. Values are stored with their timestamp: see encodeValue.
type View interface {
	// Get returns the stored value of key.
	Get(key []byte) (value []byte, ok bool, err error)
	// Iter iterates over keys in [lower, upper) in byte order; nil bounds are open.
	Iter(lower, upper []byte) (RawIterator, error)
	// Apply writes ws atomically: its puts and deletes, and its checkpoint if set.
	Apply(ws *WriteSet) error
	// Checkpoint returns the changelog offset the stored state corresponds to (the next offset
	// to restore from), if a checkpoint was written.
	Checkpoint() (Checkpoint, bool, error)
	// Wipe deletes the partition's data and checkpoint.
	Wipe() error
}

// Checkpoint is the position of a store partition in its changelog.
type Checkpoint struct {
	// Offset is the next changelog offset to restore from: every changelog record before it is
	// reflected in the stored state.
	Offset int64
	// Time is the largest timestamp the store had seen (window and session stores: what their
	// expiry and late-record decisions are relative to), in milliseconds.
	Time int64
	// Changelog is the ID of the changelog topic Offset is in (zero: unknown; checkpoints
	// written before IDs were kept have none).
	Changelog topology.ChangelogID
}

// RawIterator iterates over a View's keys and encoded values.
type RawIterator interface {
	Next() bool
	Key() []byte
	Value() []byte
	Err() error
	Close() error
}

// WriteSet is a batch of changes to a View, applied atomically.
type WriteSet struct {
	// DeleteRanges are applied first: each deletes the keys in [Lo, Hi).
	DeleteRanges []KeyRange
	Writes       []Write
	// Checkpoint, if not nil, is written in the same batch.
	Checkpoint *Checkpoint
}

// KeyRange is [Lo, Hi) in byte order.
type KeyRange struct{ Lo, Hi []byte }

// Write is one put (Value not nil) or delete (Value nil) of an encoded value.
type Write struct {
	Key   []byte
	Value []byte
}

// encodeValue stores a value with its timestamp: 8 bytes big-endian milliseconds, then the value.
func encodeValue(ts int64, v []byte) []byte {
	out := make([]byte, 8, 8+len(v))
	binary.BigEndian.PutUint64(out, uint64(ts))
	return append(out, v...)
}

var errCorrupt = errors.New("state: stored value is shorter than its timestamp (corrupt store?)")

func decodeValue(b []byte) (ts int64, v []byte, err error) {
	if len(b) < 8 {
		return 0, nil, errCorrupt
	}
	return int64(binary.BigEndian.Uint64(b)), b[8:], nil
}

// A checkpoint is encoded as its offset and time (8 bytes each, big-endian), then the changelog's
// ID (16 bytes) when it is known. Checkpoints written before the ID was kept are 16 bytes long.
func encodeCheckpoint(c Checkpoint) []byte {
	b := make([]byte, 16, 32)
	binary.BigEndian.PutUint64(b, uint64(c.Offset))
	binary.BigEndian.PutUint64(b[8:], uint64(c.Time))
	if c.Changelog != (topology.ChangelogID{}) {
		b = append(b, c.Changelog[:]...)
	}
	return b
}

func decodeCheckpoint(b []byte) (Checkpoint, error) {
	if len(b) != 16 && len(b) != 32 {
		return Checkpoint{}, fmt.Errorf("state: checkpoint of %d bytes, want 16 or 32", len(b))
	}
	c := Checkpoint{Offset: int64(binary.BigEndian.Uint64(b)), Time: int64(binary.BigEndian.Uint64(b[8:]))}
	copy(c.Changelog[:], b[16:])
	return c, nil
}
