package state

import (
	"bytes"
	"sort"
	"sync"

	"github.com/google/btree"
)

// MemoryBackend keeps stores in memory: nothing survives the process, so every task restores its
// whole changelog when it starts. Use it for small state, tests, and stores without a changelog
// that can be rebuilt.
type MemoryBackend struct {
	mu    sync.Mutex
	parts map[StorePartition]*memPart
}

type memPart struct {
	mu         sync.RWMutex
	tree       *btree.BTreeG[kvPair]
	checkpoint *Checkpoint
}

type kvPair struct {
	key, value []byte
}

func lessPair(a, b kvPair) bool { return bytes.Compare(a.key, b.key) < 0 }

// NewMemory returns an empty memory backend.
func NewMemory() *MemoryBackend { return &MemoryBackend{parts: map[StorePartition]*memPart{}} }

func (m *MemoryBackend) View(store string, partition int32) View {
	m.mu.Lock()
	defer m.mu.Unlock()
	sp := StorePartition{store, partition}
	p, ok := m.parts[sp]
	if !ok {
		p = &memPart{tree: btree.NewG(16, lessPair)}
		m.parts[sp] = p
	}
	return p
}

func (m *MemoryBackend) Checkpointed() ([]StorePartition, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []StorePartition
	for sp, p := range m.parts {
		p.mu.RLock()
		if p.checkpoint != nil {
			out = append(out, sp)
		}
		p.mu.RUnlock()
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Store < out[j].Store || out[i].Store == out[j].Store && out[i].Partition < out[j].Partition
	})
	return out, nil
}

func (m *MemoryBackend) Close() error { return nil }

func (p *memPart) Get(key []byte) ([]byte, bool, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	kv, ok := p.tree.Get(kvPair{key: key})
	if !ok {
		return nil, false, nil
	}
	return kv.value, true, nil
}

// Iter copies the range first: iterators see the state when they were made.
func (p *memPart) Iter(lower, upper []byte) (RawIterator, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	var items []kvPair
	visit := func(kv kvPair) bool { items = append(items, kv); return true }
	switch {
	case lower == nil && upper == nil:
		p.tree.Ascend(visit)
	case upper == nil:
		p.tree.AscendGreaterOrEqual(kvPair{key: lower}, visit)
	case lower == nil:
		p.tree.AscendLessThan(kvPair{key: upper}, visit)
	default:
		p.tree.AscendRange(kvPair{key: lower}, kvPair{key: upper}, visit)
	}
	return &sliceIter{items: items, i: -1}, nil
}

func (p *memPart) Apply(ws *WriteSet) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range ws.DeleteRanges {
		var doomed []kvPair
		visit := func(kv kvPair) bool { doomed = append(doomed, kv); return true }
		if r.Hi == nil {
			p.tree.AscendGreaterOrEqual(kvPair{key: r.Lo}, visit)
		} else {
			p.tree.AscendRange(kvPair{key: r.Lo}, kvPair{key: r.Hi}, visit)
		}
		for _, kv := range doomed {
			p.tree.Delete(kv)
		}
	}
	for _, w := range ws.Writes {
		if w.Value == nil {
			p.tree.Delete(kvPair{key: w.Key})
		} else {
			p.tree.ReplaceOrInsert(kvPair{key: bytes.Clone(w.Key), value: bytes.Clone(w.Value)})
		}
	}
	if ws.Checkpoint != nil {
		c := *ws.Checkpoint
		p.checkpoint = &c
	}
	return nil
}

func (p *memPart) Checkpoint() (Checkpoint, bool, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.checkpoint == nil {
		return Checkpoint{}, false, nil
	}
	return *p.checkpoint, true, nil
}

func (p *memPart) Wipe() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tree.Clear(false)
	p.checkpoint = nil
	return nil
}

// sliceIter iterates over a snapshot of pairs.
type sliceIter struct {
	items []kvPair
	i     int
}

func (s *sliceIter) Next() bool    { s.i++; return s.i < len(s.items) }
func (s *sliceIter) Key() []byte   { return s.items[s.i].key }
func (s *sliceIter) Value() []byte { return s.items[s.i].value }
func (s *sliceIter) Err() error    { return nil }
func (s *sliceIter) Close() error  { return nil }
