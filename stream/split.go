package stream

import (
	"github.com/rifflestream/riffle/topology"
)

// Splitter routes each record of a stream to the first branch whose predicate accepts it. Make
// one with Stream.Split, add branches in order with Branch, and optionally end with Default for
// the records no branch took; without Default those records are dropped.
type Splitter[K, V any] struct {
	s        Stream[K, V]
	name     string
	node     topology.Node[K, V]
	branches []*branch[K, V]
	done     bool
}

type branch[K, V any] struct {
	child string
	pred  func(K, V) bool // nil: the default branch
}

// Split starts routing the stream into branches. Options: Named (the split node's name, and the
// prefix of each branch's node name, as in Kafka Streams).
func (s Stream[K, V]) Split(opts ...Option) *Splitter[K, V] {
	if !s.valid("Split") {
		return &Splitter[K, V]{s: Stream[K, V]{b: s.b}, done: true}
	}
	o := s.b.collect("Split", opts)
	name := s.b.nodeName(o, "KSTREAM-BRANCH-")
	sp := &Splitter[K, V]{s: s, name: name}
	sp.node = topology.AddProcessor(s.b.topo, name, func() topology.Processor[K, V, K, V] {
		return &splitProcessor[K, V]{sp: sp}
	}, s.node)
	return sp
}

// Branch adds a branch named name taking the records for which pred is true (and no earlier
// branch took). It returns the branch's stream. The branch node is named "<split name><name>".
func (sp *Splitter[K, V]) Branch(name string, pred func(key K, value V) bool) Stream[K, V] {
	if pred == nil {
		sp.fail(name, "the predicate is nil (use Default for the rest)")
		return Stream[K, V]{b: sp.s.b}
	}
	return sp.add(name, pred)
}

// Default adds the branch for every record no other branch took, and ends the split.
func (sp *Splitter[K, V]) Default(name string) Stream[K, V] {
	s := sp.add(name, nil)
	sp.done = true
	return s
}

func (sp *Splitter[K, V]) fail(branch, msg string) {
	if sp.s.b != nil {
		sp.s.b.errorf("Split", sp.name, "branch %q: %s", branch, msg)
	}
}

func (sp *Splitter[K, V]) add(name string, pred func(K, V) bool) Stream[K, V] {
	if sp.done {
		sp.fail(name, "added after Default, or to a failed split")
		return Stream[K, V]{b: sp.s.b}
	}
	if name == "" {
		sp.fail(name, "a branch needs a name")
		return Stream[K, V]{b: sp.s.b}
	}
	for _, b := range sp.branches {
		if b.child == sp.name+name {
			sp.fail(name, "a branch with this name already exists")
			return Stream[K, V]{b: sp.s.b}
		}
	}
	child := sp.name + name
	sp.branches = append(sp.branches, &branch[K, V]{child: child, pred: pred})
	node := topology.AddProcessor(sp.s.b.topo, child, topology.ProcessorFunc(
		func(ctx topology.Context[K, V], r Record[K, V]) error { return ctx.Forward(r) }), sp.node)
	return sp.s.derive(node)
}

type splitProcessor[K, V any] struct {
	sp  *Splitter[K, V]
	ctx topology.Context[K, V]
}

func (p *splitProcessor[K, V]) Init(ctx topology.Context[K, V]) error {
	p.ctx = ctx
	return nil
}

func (p *splitProcessor[K, V]) Process(r Record[K, V]) error {
	for _, b := range p.sp.branches {
		if b.pred == nil || b.pred(r.Key, r.Value) {
			return p.ctx.ForwardTo(b.child, r)
		}
	}
	return nil
}

func (p *splitProcessor[K, V]) Close() error { return nil }
