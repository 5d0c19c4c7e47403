package topology

import (
	"errors"
	"fmt"
	"sort"
)

// compiled is the sealed topology split into sub-topologies.
type compiled struct {
	subs          []*subtopology
	bySourceTopic map[string]*subtopology // by short topic name
}

type subtopology struct {
	id     int
	nodes  []*nodeDef // insertion order
	topics []string   // source topics, short names, in declaration order
	sinks  []string   // static sink topics, short names
	stores []string
}

// compile seals the topology and splits it into sub-topologies: the connected parts of the graph,
// where a node is connected to its parents and children and to the other processors of its
// stores. Topics cut the graph (a sink and a source of one topic are different nodes), which is
// how repartition topics separate sub-topologies. Ids are given in the order of each
// sub-topology's first node, as Kafka Streams does.
func (t *Topology) compile() (*compiled, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.compiled != nil {
		return t.compiled, nil
	}
	t.sealed = true
	c, err := t.analyzeLocked()
	if err != nil {
		return nil, err
	}
	t.compiled = c
	return c, nil
}

// analyzeLocked splits and checks the graph without sealing it. t.mu must be held.
func (t *Topology) analyzeLocked() (*compiled, error) {
	if err := errors.Join(t.errs...); err != nil {
		return nil, err
	}
	var errs []error
	if len(t.nodes) == 0 {
		return nil, errors.New("topology: it has no nodes")
	}

	// Union-find over nodes.
	parent := make(map[*nodeDef]*nodeDef, len(t.nodes))
	var find func(n *nodeDef) *nodeDef
	find = func(n *nodeDef) *nodeDef {
		for parent[n] != n {
			parent[n] = parent[parent[n]]
			n = parent[n]
		}
		return n
	}
	union := func(a, b *nodeDef) {
		ra, rb := find(a), find(b)
		if ra != rb {
			parent[rb] = ra
		}
	}
	for _, n := range t.nodes {
		parent[n] = n
	}
	for _, n := range t.nodes {
		for _, p := range n.parents {
			union(n, p)
		}
	}
	storeUsers := map[string]*nodeDef{}
	for _, n := range t.nodes {
		for _, s := range n.stores {
			if first, ok := storeUsers[s]; ok {
				union(first, n)
			} else {
				storeUsers[s] = n
			}
		}
	}
	for name := range t.stores {
		if _, used := storeUsers[name]; !used {
			errs = append(errs, fmt.Errorf("topology: store %q is connected to no processor", name))
		}
	}

	c := &compiled{bySourceTopic: map[string]*subtopology{}}
	byRoot := map[*nodeDef]*subtopology{}
	for _, n := range t.nodes {
		r := find(n)
		s, ok := byRoot[r]
		if !ok {
			s = &subtopology{id: len(c.subs)}
			byRoot[r] = s
			c.subs = append(c.subs, s)
		}
		s.nodes = append(s.nodes, n)
		switch n.kind {
		case sourceKind:
			s.topics = append(s.topics, n.topics...)
			for _, topic := range n.topics {
				c.bySourceTopic[topic] = s
			}
		case sinkKind:
			if n.topic != "" && !contains(s.sinks, n.topic) {
				s.sinks = append(s.sinks, n.topic)
			}
		}
		for _, st := range n.stores {
			if !contains(s.stores, st) {
				s.stores = append(s.stores, st)
			}
		}
	}
	for _, s := range c.subs {
		if len(s.topics) == 0 {
			errs = append(errs, fmt.Errorf("topology: nodes %v are connected to no source", nodeNames(s.nodes)))
		}
	}

	// Internal topics must be written by a sink and read by a source.
	for name := range t.internal {
		written := false
		for _, n := range t.nodes {
			if n.kind == sinkKind && n.topic == name {
				written = true
			}
		}
		if !written {
			errs = append(errs, fmt.Errorf("topology: internal topic %q is written by no sink", name))
		}
		if _, read := c.bySourceTopic[name]; !read {
			errs = append(errs, fmt.Errorf("topology: internal topic %q is read by no source", name))
		}
	}
	for _, group := range t.copartners {
		for _, topic := range group {
			if _, ok := c.bySourceTopic[topic]; !ok {
				errs = append(errs, fmt.Errorf("topology: co-partitioned topic %q is read by no source", topic))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

func nodeNames(nodes []*nodeDef) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.name
	}
	return out
}

// Plan is a compiled topology bound to an application id: the sub-topologies with their real
// topic names, what drivers need to subscribe, create internal topics and make tasks.
type Plan struct {
	AppID         string
	Subtopologies []SubtopologyPlan
	// InternalTopics are the repartition topics to create, with real names.
	InternalTopics []InternalTopic
	// CoPartitioned are groups of real source topic names that must have equal partition counts.
	CoPartitioned [][]string

	topo     *Topology
	c        *compiled
	realName map[string]string // short -> real, for every topic the topology names
	bySource map[string]int    // real source topic -> sub-topology id
}

// SubtopologyPlan is one sub-topology: its tasks are (ID, partition) for each partition of its
// source topics.
type SubtopologyPlan struct {
	ID int
	// SourceTopics are the real names of the topics the sub-topology reads.
	SourceTopics []string
	// Internal marks the source topics that are repartition topics owned by the app.
	Internal map[string]bool
	// Reset is each source topic's offset reset policy.
	Reset map[string]OffsetReset
	// Stores are the names of the sub-topology's state stores.
	Stores []string
}

// Plan compiles the topology (sealing it) for application appID.
func (t *Topology) Plan(appID string) (*Plan, error) {
	if appID == "" {
		return nil, errors.New("topology: an application id is needed")
	}
	c, err := t.compile()
	if err != nil {
		return nil, err
	}
	p := &Plan{AppID: appID, topo: t, c: c, realName: map[string]string{}, bySource: map[string]int{}}
	real := func(short string) string {
		if _, ok := t.internal[short]; ok {
			return appID + "-" + short
		}
		return short
	}
	var internalNames []string
	for name := range t.internal {
		internalNames = append(internalNames, name)
	}
	sort.Strings(internalNames)
	for _, name := range internalNames {
		it := *t.internal[name]
		it.Name = real(name)
		p.InternalTopics = append(p.InternalTopics, it)
	}
	for _, s := range c.subs {
		sp := SubtopologyPlan{ID: s.id, Internal: map[string]bool{}, Reset: map[string]OffsetReset{}, Stores: append([]string(nil), s.stores...)}
		for _, n := range s.nodes {
			if n.kind != sourceKind {
				continue
			}
			for _, topic := range n.topics {
				r := real(topic)
				p.realName[topic] = r
				p.bySource[r] = s.id
				sp.SourceTopics = append(sp.SourceTopics, r)
				sp.Reset[r] = n.source.reset
				if _, ok := t.internal[topic]; ok {
					sp.Internal[r] = true
				}
			}
		}
		for _, topic := range s.sinks {
			p.realName[topic] = real(topic)
		}
		p.Subtopologies = append(p.Subtopologies, sp)
	}
	for _, group := range t.copartners {
		var g []string
		for _, topic := range group {
			g = append(g, real(topic))
		}
		p.CoPartitioned = append(p.CoPartitioned, g)
	}
	return p, nil
}

// SubtopologyOf returns the sub-topology that reads the real topic name.
func (p *Plan) SubtopologyOf(topic string) (int, bool) {
	id, ok := p.bySource[topic]
	return id, ok
}

// SourceTopics returns every real source topic of the plan, sorted.
func (p *Plan) SourceTopics() []string {
	out := make([]string, 0, len(p.bySource))
	for t := range p.bySource {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// ExternalSourceTopics returns the source topics that are not internal, sorted: the topics that
// must exist before the app starts.
func (p *Plan) ExternalSourceTopics() []string {
	var out []string
	for _, s := range p.Subtopologies {
		for _, t := range s.SourceTopics {
			if !s.Internal[t] {
				out = append(out, t)
			}
		}
	}
	sort.Strings(out)
	return out
}

// ExternalSinkTopics returns the static topics sinks write that are not internal, sorted: topics
// the app writes but does not create. Topics a TopicChooser picks per record are not known before
// the records are.
func (p *Plan) ExternalSinkTopics() []string {
	var out []string
	for _, s := range p.c.subs {
		for _, short := range s.sinks {
			if _, internal := p.topo.internal[short]; !internal && !contains(out, short) {
				out = append(out, short)
			}
		}
	}
	sort.Strings(out)
	return out
}

// TaskCount returns the number of tasks of each sub-topology given the partition counts of the
// real source topics: the largest partition count among its sources. Every source topic must be
// in counts.
func (p *Plan) TaskCount(counts map[string]int32) (map[int]int32, error) {
	out := map[int]int32{}
	for _, s := range p.Subtopologies {
		var n int32
		for _, t := range s.SourceTopics {
			c, ok := counts[t]
			if !ok {
				return nil, fmt.Errorf("topology: no partition count for topic %q", t)
			}
			n = max(n, c)
		}
		out[s.ID] = n
	}
	return out, nil
}

// InternalPartitions computes the partition count of each internal topic from the partition
// counts of the external source topics: a declared count wins, otherwise the largest partition
// count among the source topics of the sub-topology that writes it, following chains of
// repartition topics. It returns counts for the internal topics by real name.
func (p *Plan) InternalPartitions(external map[string]int32) (map[string]int32, error) {
	counts := map[string]int32{}
	for t, n := range external {
		counts[t] = n
	}
	for _, it := range p.InternalTopics {
		if it.Partitions > 0 {
			counts[it.Name] = it.Partitions
		}
	}
	// writers: internal topic -> sub-topologies whose sinks write it.
	writers := map[string][]*subtopology{}
	for _, s := range p.c.subs {
		for _, short := range s.sinks {
			if r := p.realName[short]; r != short {
				writers[r] = append(writers[r], s)
			}
		}
	}
	for changed := true; changed; {
		changed = false
		for _, it := range p.InternalTopics {
			if _, done := counts[it.Name]; done {
				continue
			}
			var n int32
			known := true
			for _, s := range writers[it.Name] {
				for _, short := range s.topics {
					c, ok := counts[p.realName[short]]
					if !ok {
						known = false
						break
					}
					n = max(n, c)
				}
			}
			if known && n > 0 {
				counts[it.Name] = n
				changed = true
			}
		}
	}
	out := map[string]int32{}
	for _, it := range p.InternalTopics {
		n, ok := counts[it.Name]
		if !ok {
			return nil, fmt.Errorf("topology: cannot tell the partition count of internal topic %q (its writers read topics of unknown size)", it.Name)
		}
		out[it.Name] = n
	}
	return out, nil
}

// RealTopic maps a topic name as declared in the topology to the name used in Kafka.
func (p *Plan) RealTopic(short string) string {
	if r, ok := p.realName[short]; ok {
		return r
	}
	return short
}

// Describe describes the topology.
func (p *Plan) Describe() Description { return p.topo.Describe() }
