package stream

import (
	"fmt"

	"github.com/rifflestream/riffle/topology"
)

// Builder collects a topology declared with the DSL. DSL mistakes never panic: they are recorded
// with the node they concern and returned, joined, by Build (and by NewApp and streamtest.New).
type Builder struct {
	topo *topology.Topology
	seq  int
}

// NewBuilder returns an empty builder.
func NewBuilder() *Builder {
	return &Builder{topo: topology.New()}
}

// Build returns the declared topology, or every declaration error joined. The topology is
// sealed when a driver first runs it.
func (b *Builder) Build() (*topology.Topology, error) {
	if err := b.topo.Describe().Err; err != nil {
		return nil, err
	}
	return b.topo, nil
}

// Topology returns the topology being built, errors and all (for Describe while declaring).
func (b *Builder) Topology() *topology.Topology { return b.topo }

// AddStore adds a state store to the topology, for custom processors: connect it with WithStores
// on Process and reach it in the processor with state.KeyValue.
func (b *Builder) AddStore(spec topology.StoreSpec) { b.topo.AddStore(spec) }

// Describe describes the topology built so far.
func (b *Builder) Describe() topology.Description { return b.topo.Describe() }

// newName makes a name the way Kafka Streams does: a prefix and a builder-wide counter.
func (b *Builder) newName(prefix string) string {
	n := fmt.Sprintf("%s%010d", prefix, b.seq)
	b.seq++
	return n
}

func (b *Builder) errorf(op, node, format string, args ...any) {
	b.topo.AddError(fmt.Errorf("stream: %s %q: %s", op, node, fmt.Sprintf(format, args...)))
}

// nodeName returns the name given with Named, or a generated one. The counter advances either
// way, as in Kafka Streams, so naming one node does not rename the others.
func (b *Builder) nodeName(o *options, prefix string) string {
	gen := b.newName(prefix)
	if o.name != "" {
		return o.name
	}
	return gen
}
