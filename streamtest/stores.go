package streamtest

import (
	"fmt"

	"github.com/rifflestream/riffle/state"
	"github.com/rifflestream/riffle/topology"
)

// KeyValueStore returns the store named name of the task that owns partition (of its
// sub-topology's source topics), typed (K, V): to inspect state from a test.
func KeyValueStore[K, V any](d *Driver, name string, partition int32) (state.KeyValueStore[K, V], error) {
	for _, t := range d.taskList {
		if t.ID().Partition != partition {
			continue
		}
		s, ok := t.Store(name)
		if !ok {
			continue
		}
		kv, ok := s.(state.KeyValueStore[K, V])
		if !ok {
			return nil, fmt.Errorf("streamtest: store %q is a %T, not a key-value store of the types asked", name, s)
		}
		return kv, nil
	}
	return nil, fmt.Errorf("streamtest: no task of partition %d has a store %q", partition, name)
}

// ReadStore returns the contents of a key-value store across every task (every partition).
// It fails the test on an error.
func ReadStore[K comparable, V any](d *Driver, name string) map[K]V {
	d.helper()
	out, err := TryReadStore[K, V](d, name)
	d.fatal(err)
	return out
}

// TryReadStore is ReadStore returning the error.
func TryReadStore[K comparable, V any](d *Driver, name string) (map[K]V, error) {
	out := map[K]V{}
	found := false
	for _, t := range d.taskList {
		s, ok := t.Store(name)
		if !ok {
			continue
		}
		found = true
		kv, ok := s.(state.KeyValueStore[K, V])
		if !ok {
			return nil, fmt.Errorf("streamtest: store %q is a %T, not a key-value store of the types asked", name, s)
		}
		it, err := kv.All()
		if err != nil {
			return nil, err
		}
		for it.Next() {
			out[it.Key()] = it.Value()
		}
		err = it.Err()
		it.Close()
		if err != nil {
			return nil, err
		}
	}
	if !found {
		return nil, fmt.Errorf("streamtest: no task has a store %q", name)
	}
	return out, nil
}

var _ topology.StoreOpener = (*state.Manager)(nil)

// WindowStore returns the window store named name of the task that owns partition, typed (K, V).
func WindowStore[K, V any](d *Driver, name string, partition int32) (state.WindowStore[K, V], error) {
	for _, t := range d.taskList {
		if t.ID().Partition != partition {
			continue
		}
		s, ok := t.Store(name)
		if !ok {
			continue
		}
		ws, ok := s.(state.WindowStore[K, V])
		if !ok {
			return nil, fmt.Errorf("streamtest: store %q is a %T, not a window store of the types asked", name, s)
		}
		return ws, nil
	}
	return nil, fmt.Errorf("streamtest: no task of partition %d has a store %q", partition, name)
}
