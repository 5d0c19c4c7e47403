package stream

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/rifflestream/riffle/serde"
	"github.com/rifflestream/riffle/topology"
)

// Option configures one DSL operation. Each operation accepts the options that make sense for it
// and reports any other as a build error naming the node.
type Option interface {
	applyOption(*options)
}

type options struct {
	given      map[string]bool
	name       string
	keySerde   any // serde.Serde[K]
	valueSerde any // serde.Serde[V]
	partitions int32
	partition  any // topology.Partitioner[K, V]
	extractor  any // topology.TimestampExtractor[K, V]
	reset      topology.OffsetReset
	stores     []string
	// materialization
	store       string
	memory      bool
	noCaching   bool
	noChangelog bool
	bufferBytes int
	// windows
	emitFinal bool
	idleClose time.Duration
}

type optionFunc struct {
	kind string
	f    func(*options)
}

func (o optionFunc) applyOption(opts *options) {
	opts.given[o.kind] = true
	o.f(opts)
}

const (
	optNamed        = "Named"
	optKeySerde     = "WithKeySerde"
	optValueSerde   = "WithValueSerde"
	optPartitions   = "WithPartitions"
	optPartitioner  = "WithPartitioner"
	optExtractor    = "WithTimestampExtractor"
	optReset        = "WithOffsetReset"
	optStores       = "WithStores"
	optMaterialized = "Materialized"
	optInMemory     = "InMemory"
	optNoCaching    = "WithoutCaching"
	optNoChangelog  = "WithoutChangelog"
	optBufferBytes  = "StoreBufferBytes"
)

// Materialized names the store of a stateful operation (and so its changelog topic,
// "<appID>-<name>-changelog", and the repartition topic in front of it). Without it the name is
// generated, e.g. "KSTREAM-AGGREGATE-STATE-STORE-0000000003". Kafka Streams' Materialized.as.
func Materialized(storeName string) Option {
	return optionFunc{kind: optMaterialized, f: func(o *options) { o.store = storeName }}
}

// InMemory keeps the operation's store in memory instead of Pebble: restarts restore it in full
// from its changelog.
func InMemory() Option { return optionFunc{kind: optInMemory, f: func(o *options) { o.memory = true }} }

// WithoutCaching makes the operation pass every update downstream and to the changelog at once,
// instead of the last one per key at each commit.
func WithoutCaching() Option {
	return optionFunc{kind: optNoCaching, f: func(o *options) { o.noCaching = true }}
}

// WithoutChangelog gives the operation's store no changelog topic: its state is not fault
// tolerant (a moved or crashed task starts empty).
func WithoutChangelog() Option {
	return optionFunc{kind: optNoChangelog, f: func(o *options) { o.noChangelog = true }}
}

// StoreBufferBytes sets the per-task write buffer of the operation's store; when it fills up the
// task commits early. Default 4 MiB.
func StoreBufferBytes(n int) Option {
	return optionFunc{kind: optBufferBytes, f: func(o *options) { o.bufferBytes = n }}
}

// Named names the node an operation creates (and, for operations that create internal topics
// or stores, the base of their names). Without it, names are generated as Kafka Streams does,
// e.g. "KSTREAM-FILTER-0000000002". Names must be unique in the topology.
func Named(name string) Option {
	return optionFunc{kind: optNamed, f: func(o *options) { o.name = name }}
}

// WithKeySerde sets the key serde an operation uses where the stream's own is not known (after a
// key-changing operation), e.g. for a repartition topic. Its type must be the stream's key type.
func WithKeySerde[K any](s serde.Serde[K]) Option {
	return optionFunc{kind: optKeySerde, f: func(o *options) { o.keySerde = s }}
}

// WithValueSerde is WithKeySerde for values.
func WithValueSerde[V any](s serde.Serde[V]) Option {
	return optionFunc{kind: optValueSerde, f: func(o *options) { o.valueSerde = s }}
}

// WithPartitions sets the partition count of a repartition topic. The default is the largest
// partition count of the source topics upstream of it.
func WithPartitions(n int32) Option {
	return optionFunc{kind: optPartitions, f: func(o *options) { o.partitions = n }}
}

// WithPartitioner sets how a sink or a repartition picks partitions. The default is murmur2 of
// the serialized key, like Kafka's Java producer. Its types must be the stream's.
func WithPartitioner[K, V any](p topology.Partitioner[K, V]) Option {
	return optionFunc{kind: optPartitioner, f: func(o *options) { o.partition = p }}
}

// WithTimestampExtractor sets how a source reads each record's event time. The default is the
// Kafka record timestamp (negative ones are rejected, as by Kafka Streams' default extractor).
func WithTimestampExtractor[K, V any](f topology.TimestampExtractor[K, V]) Option {
	return optionFunc{kind: optExtractor, f: func(o *options) { o.extractor = f }}
}

// WithOffsetReset sets where a source starts reading when the app has no committed offset.
func WithOffsetReset(r topology.OffsetReset) Option {
	return optionFunc{kind: optReset, f: func(o *options) { o.reset = r }}
}

// WithStores connects state stores (by name) to a Process node.
func WithStores(names ...string) Option {
	return optionFunc{kind: optStores, f: func(o *options) { o.stores = append(o.stores, names...) }}
}

// collect applies opts and reports the ones op does not take. node is the name used in errors
// before the real name is known.
func (b *Builder) collect(op string, opts []Option, allowed ...string) *options {
	o := &options{given: map[string]bool{}}
	for _, opt := range opts {
		if opt == nil {
			b.topo.AddError(fmt.Errorf("stream: %s: a nil option", op))
			continue
		}
		opt.applyOption(o)
	}
	var bad []string
	for k := range o.given {
		if !contains(allowed, k) && k != optNamed {
			bad = append(bad, k)
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		b.topo.AddError(fmt.Errorf("stream: %s does not take %s", op, strings.Join(bad, ", ")))
	}
	return o
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// typedOption returns the option value as T, or reports a type mismatch naming the node.
func typedOption[T any](b *Builder, op, node, what string, v any) (T, bool) {
	var zero T
	if v == nil {
		return zero, false
	}
	t, ok := v.(T)
	if !ok {
		b.errorf(op, node, "%s is a %T, which is not a %s (the stream's types)", what, v, fmt.Sprintf("%T", (*T)(nil))[1:])
		return zero, false
	}
	return t, true
}
