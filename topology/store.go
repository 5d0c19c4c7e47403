package topology

import "fmt"

// StoreSpec describes a state store to the topology and the runtime. Package state implements it
// for its stores; the runtime opens a store for each task through a StoreOpener.
type StoreSpec interface {
	// StoreName is the store's name, unique in the topology.
	StoreName() string
	// Changelog returns whether the store is backed by a changelog topic
	// ("<appID>-<store>-changelog") and the topic configs it needs (cleanup.policy, retention).
	Changelog() (enabled bool, configs map[string]string)
}

type storeDef struct {
	spec StoreSpec
}

// AddStore adds a state store and connects it to the named processors (more can be connected
// with ConnectStore). Every processor of a store runs in the same sub-topology.
func (t *Topology) AddStore(spec StoreSpec, processors ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if spec == nil {
		t.addErr("AddStore: nil store")
		return
	}
	name := spec.StoreName()
	if t.sealed {
		t.addErr("cannot add store %q: the topology is already built", name)
		return
	}
	if !nameRE.MatchString(name) {
		t.addErr("store name %q: use only letters, digits, '.', '_' and '-'", name)
		return
	}
	if _, dup := t.stores[name]; dup {
		t.addErr("store %q is added twice", name)
		return
	}
	t.stores[name] = &storeDef{spec: spec}
	for _, p := range processors {
		t.connectLocked(p, name)
	}
}

// ConnectStore connects an existing store to a processor, so the processor can use it through
// ProcessorContext.StateStore.
func (t *Topology) ConnectStore(processor, store string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.connectLocked(processor, store)
}

func (t *Topology) connectLocked(processor, store string) {
	if t.sealed {
		t.addErr("cannot connect store %q: the topology is already built", store)
		return
	}
	if _, ok := t.stores[store]; !ok {
		t.addErr("processor %q: no store %q (add it with AddStore first)", processor, store)
		return
	}
	n, ok := t.byName[processor]
	if !ok || n.kind != processorKind {
		t.addErr("store %q: %q is not a processor of this topology", store, processor)
		return
	}
	if !contains(n.stores, store) {
		n.stores = append(n.stores, store)
	}
}

// Store returns the spec of the store named name.
func (p *Plan) Store(name string) (StoreSpec, error) {
	d, ok := p.topo.stores[name]
	if !ok {
		return nil, fmt.Errorf("topology: no store %q", name)
	}
	return d.spec, nil
}

// ChangelogTopic returns the changelog topic name of a store of the plan's app.
func (p *Plan) ChangelogTopic(store string) string {
	return p.AppID + "-" + store + "-changelog"
}
