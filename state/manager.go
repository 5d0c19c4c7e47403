package state

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/rifflestream/riffle/topology"
)

// Manager holds an instance's state: the state dir (locked, so a second live instance on it is an
// error), the Pebble backend and the memory backend. It opens tasks' stores (it is a
// topology.StoreOpener). The caller MUST Close it.
type Manager struct {
	dir    string
	lock   *dirLock
	pebble *PebbleBackend
	memory *MemoryBackend
}

// ManagerOptions configures a Manager.
type ManagerOptions struct {
	// Dir is the instance's state dir ("<stateDir>/<appID>"). Empty means memory only: every store
	// lives in memory whatever its spec says (tests, streamtest).
	Dir    string
	Pebble PebbleOptions
}

// OpenManager locks the state dir and opens the backends.
func OpenManager(o ManagerOptions) (*Manager, error) {
	m := &Manager{dir: o.Dir, memory: NewMemory()}
	if o.Dir == "" {
		return m, nil
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("state: creating state dir: %w", err)
	}
	lock, err := lockDir(o.Dir)
	if err != nil {
		return nil, err
	}
	m.lock = lock
	pb, err := OpenPebble(filepath.Join(o.Dir, "pebble"), o.Pebble)
	if err != nil {
		_ = lock.release()
		return nil, err
	}
	m.pebble = pb
	return m, nil
}

// Dir returns the state dir ("" when memory only).
func (m *Manager) Dir() string { return m.dir }

func (m *Manager) view(memory bool, store string, partition int32) View {
	if memory || m.pebble == nil {
		return m.memory.View(store, partition)
	}
	return m.pebble.View(store, partition)
}

// opener is implemented by the store specs of this package.
type opener interface {
	open(m *Manager, ctx topology.StoreContext) (topology.StateStore, error)
}

// OpenStore implements topology.StoreOpener.
func (m *Manager) OpenStore(ctx topology.StoreContext) (topology.StateStore, error) {
	o, ok := ctx.Spec.(opener)
	if !ok {
		return nil, fmt.Errorf("state: store %q: %T is not a store spec of package state", ctx.Spec.StoreName(), ctx.Spec)
	}
	return o.open(m, ctx)
}

// Checkpointed lists the store partitions with local state (Pebble only: memory stores do not
// survive a restart).
func (m *Manager) Checkpointed() ([]StorePartition, error) {
	if m.pebble == nil {
		return nil, nil
	}
	return m.pebble.Checkpointed()
}

// Drop deletes a store partition's local state (a task that moved away long ago).
func (m *Manager) Drop(store string, partition int32) error {
	if m.pebble != nil {
		if err := m.pebble.View(store, partition).Wipe(); err != nil {
			return err
		}
	}
	return m.memory.View(store, partition).Wipe()
}

// Close closes the backends and releases the state dir.
func (m *Manager) Close() error {
	var errs []error
	if m.pebble != nil {
		errs = append(errs, m.pebble.Close())
	}
	if m.lock != nil {
		errs = append(errs, m.lock.release())
	}
	return errors.Join(errs...)
}
