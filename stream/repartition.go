package stream

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/rifflestream/riffle/serde"
	"github.com/rifflestream/riffle/topology"
)

var generatedName = regexp.MustCompile(`^KSTREAM.*-[0-9]{10}$`)

func errorf(format string, args ...any) error { return fmt.Errorf("stream: "+format, args...) }

// RepartitionTopicConfigs are the configs of repartition topics, as Kafka Streams sets them:
// records are deleted by the app once consumed (DeleteRecords after each commit), so the topic
// keeps no retention of its own.
var repartitionTopicConfigs = map[string]string{
	"cleanup.policy":         "delete",
	"retention.ms":           "-1",
	"segment.bytes":          "52428800",
	"message.timestamp.type": "CreateTime",
}

// RepartitionTopicConfigs returns the configs Riffle creates repartition topics with.
func RepartitionTopicConfigs() map[string]string {
	out := make(map[string]string, len(repartitionTopicConfigs))
	for k, v := range repartitionTopicConfigs {
		out[k] = v
	}
	return out
}

// Repartition writes the stream through a repartition topic ("<appID>-<name>-repartition") and
// reads it back, so records are spread over partitions by their current key (or by a
// partitioner): it cuts the topology into two sub-topologies.
// Options: Named (the topic's base name), WithPartitions, WithPartitioner, WithKeySerde and
// WithValueSerde (needed when the stream's serdes are not known).
func (s Stream[K, V]) Repartition(opts ...Option) Stream[K, V] {
	if !s.valid("Repartition") {
		return Stream[K, V]{b: s.b}
	}
	o := s.b.collect("Repartition", opts, optPartitions, optPartitioner, optKeySerde, optValueSerde)
	base := s.b.nodeName(o, "KSTREAM-REPARTITION-")
	return repartition(s, "Repartition", base, o, false)
}

// repartition adds filter -> sink -> topic -> source. dropNullKeys is set for the repartition in
// front of an aggregation, which cannot use records without a key.
func repartition[K, V any](s Stream[K, V], op, base string, o *options, dropNullKeys bool) Stream[K, V] {
	b := s.b
	key, value := s.key, s.value
	if ks, ok := typedOption[serde.Serde[K]](b, op, base, "the key serde", o.keySerde); ok {
		key = ks
	}
	if vs, ok := typedOption[serde.Serde[V]](b, op, base, "the value serde", o.valueSerde); ok {
		value = vs
	}
	if key == nil || value == nil {
		var missing []string
		if key == nil {
			missing = append(missing, "key (WithKeySerde)")
		}
		if value == nil {
			missing = append(missing, "value (WithValueSerde)")
		}
		b.errorf(op, base, "the repartition topic needs a %s serde: the stream's are not known after a type-changing operation", strings.Join(missing, " and a "))
		return Stream[K, V]{b: b}
	}
	if o.partitions < 0 {
		b.errorf(op, base, "WithPartitions(%d): must be positive", o.partitions)
	}
	topic := base
	if !strings.HasSuffix(topic, "-repartition") {
		topic += "-repartition"
	}
	// Kafka Streams' rule: the counter advances either way; the nodes are named after the topic
	// unless its base name is itself generated.
	genSink, genFilter, genSource := b.newName("KSTREAM-SINK-"), b.newName("KSTREAM-FILTER-"), b.newName("KSTREAM-SOURCE-")
	sinkName, filterName, sourceName := topic+"-sink", topic+"-filter", topic+"-source"
	if generatedName.MatchString(base) {
		sinkName, filterName, sourceName = genSink, genFilter, genSource
	}
	b.topo.AddInternalTopic(topology.InternalTopic{Name: topic, Partitions: o.partitions, Configs: RepartitionTopicConfigs()})
	filter := topology.AddProcessor(b.topo, filterName, topology.ProcessorFunc(
		func(ctx topology.Context[K, V], r Record[K, V]) error {
			if dropNullKeys && r.KeyIsNull() {
				return nil
			}
			return ctx.Forward(r)
		}), s.node)
	var sinkOpts []topology.SinkOption
	if p, ok := typedOption[topology.Partitioner[K, V]](b, op, base, "the partitioner", o.partition); ok {
		sinkOpts = append(sinkOpts, topology.WithPartitioner(p))
	}
	topology.AddSink(b.topo, sinkName, topic, key, value, []topology.Node[K, V]{filter}, sinkOpts...)
	src := topology.AddSource(b.topo, sourceName, []string{topic}, key, value)
	return Stream[K, V]{b: b, node: src, key: key, value: value}
}
