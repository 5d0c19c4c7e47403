package stream

import (
	"github.com/rifflestream/riffle/serde"
	"github.com/rifflestream/riffle/topology"
)

// To writes the stream to topic, encoding keys and values with key and value (pass nil to use
// the stream's own serdes, when it has them). Records keep their timestamps and headers.
// Options: Named, WithPartitioner.
func (s Stream[K, V]) To(topic string, key serde.Serde[K], value serde.Serde[V], opts ...Option) {
	s.to("To", topic, nil, key, value, opts)
}

// ToDynamic writes each record to the topic choose returns for it. describe names the chooser in
// the topology description.
func (s Stream[K, V]) ToDynamic(choose func(rec Record[K, V]) (string, error), describe string, key serde.Serde[K], value serde.Serde[V], opts ...Option) {
	if choose == nil {
		if s.b != nil {
			s.b.topo.AddError(errorf("ToDynamic: the topic chooser is nil"))
		}
		return
	}
	s.to("ToDynamic", "", choose, key, value, opts, describe)
}

func (s Stream[K, V]) to(op, topic string, choose topology.TopicChooser[K, V], key serde.Serde[K], value serde.Serde[V], opts []Option, describe ...string) {
	if !s.valid(op) {
		return
	}
	o := s.b.collect(op, opts, optPartitioner)
	name := s.b.nodeName(o, "KSTREAM-SINK-")
	if key == nil {
		key = s.key
	}
	if value == nil {
		value = s.value
	}
	if key == nil || value == nil {
		s.b.errorf(op, name, "needs a key and a value serde: the stream's are not known after a type-changing operation, so pass them")
		return
	}
	var sinkOpts []topology.SinkOption
	if p, ok := typedOption[topology.Partitioner[K, V]](s.b, op, name, "the partitioner", o.partition); ok {
		sinkOpts = append(sinkOpts, topology.WithPartitioner(p))
	}
	parents := []topology.Node[K, V]{s.node}
	if choose != nil {
		topology.AddDynamicSink(s.b.topo, name, choose, describe[0], key, value, parents, sinkOpts...)
		return
	}
	topology.AddSink(s.b.topo, name, topic, key, value, parents, sinkOpts...)
}
