package stream

import (
	"errors"

	"github.com/rifflestream/riffle/serde"
	"github.com/rifflestream/riffle/topology"
)

// Record is a record as processors see it. See topology.Record.
type Record[K, V any] = topology.Record[K, V]

// TimestampExtractor reads a record's event time. See topology.TimestampExtractor.
type TimestampExtractor[K, V any] = topology.TimestampExtractor[K, V]

// KeyValue is a key and a value, what FlatMap returns.
type KeyValue[K, V any] struct {
	Key   K
	Value V
}

// KV makes a KeyValue.
func KV[K, V any](k K, v V) KeyValue[K, V] { return KeyValue[K, V]{Key: k, Value: v} }

// Stream is an unbounded sequence of records with keys of type K and values of type V: a KStream.
//
// Methods keep the types (Filter, Peek, Merge, Split, Repartition, To); package functions change
// them (Map, MapValues, FlatMap, SelectKey, Process, GroupBy, ...). Go has no generic methods.
//
// A Stream value is a handle: operations on it add nodes to its Builder and return new handles;
// the same Stream may feed several operations (each gets every record).
type Stream[K, V any] struct {
	b    *Builder
	node topology.Node[K, V]
	// The serdes of the records, where known (sources know them; type-changing operations lose
	// them unless given). Stateful operations and repartitioning need them.
	key   serde.Serde[K]
	value serde.Serde[V]
	// keyChanged is set after an operation that may change keys (Map, SelectKey, FlatMap,
	// Process): a following key-based stateful operation repartitions first.
	keyChanged bool
}

// Node returns the stream's topology node, for mixing the DSL with the Processor API.
func (s Stream[K, V]) Node() topology.Node[K, V] { return s.node }

// Builder returns the builder the stream belongs to.
func (s Stream[K, V]) Builder() *Builder { return s.b }

func (s Stream[K, V]) valid(op string) bool {
	if s.b == nil {
		// No builder to report to: the zero Stream. Nothing can be recorded, so the caller's
		// Build will fail on the missing node instead.
		return false
	}
	if !s.node.Valid() {
		s.b.topo.AddError(errors.New("stream: " + op + " on a stream whose declaration failed (see the other errors)"))
		return false
	}
	return true
}

// From reads topic as a stream, decoding keys and values with key and value.
// Options: Named, WithTimestampExtractor, WithOffsetReset.
func From[K, V any](b *Builder, topic string, key serde.Serde[K], value serde.Serde[V], opts ...Option) Stream[K, V] {
	return FromTopics(b, []string{topic}, key, value, opts...)
}

// FromTopics reads several topics, with the same types, as one stream.
func FromTopics[K, V any](b *Builder, topics []string, key serde.Serde[K], value serde.Serde[V], opts ...Option) Stream[K, V] {
	o := b.collect("From", opts, optExtractor, optReset)
	name := b.nodeName(o, "KSTREAM-SOURCE-")
	var srcOpts []topology.SourceOption
	if o.extractor != nil {
		if f, ok := typedOption[topology.TimestampExtractor[K, V]](b, "From", name, "the timestamp extractor", o.extractor); ok {
			srcOpts = append(srcOpts, topology.WithTimestampExtractor(f))
		}
	}
	if o.reset != topology.ResetDefault {
		srcOpts = append(srcOpts, topology.WithOffsetReset(o.reset))
	}
	node := topology.AddSource(b.topo, name, topics, key, value, srcOpts...)
	return Stream[K, V]{b: b, node: node, key: key, value: value}
}

// carry returns s as a Serde[T2] when T2 is T (so an operation that could change a type but did
// not keeps the serde), else the serde given as an option, else nil.
func carry[T2, T any](s serde.Serde[T], given serde.Serde[T2]) serde.Serde[T2] {
	if given != nil {
		return given
	}
	if s == nil {
		return nil
	}
	out, _ := any(s).(serde.Serde[T2])
	return out
}

// derive returns a stream of the same types fed by node, keeping what s knows.
func (s Stream[K, V]) derive(node topology.Node[K, V]) Stream[K, V] {
	return Stream[K, V]{b: s.b, node: node, key: s.key, value: s.value, keyChanged: s.keyChanged}
}

// process adds a processor of the same types.
func (s Stream[K, V]) process(name string, f func(ctx topology.Context[K, V], r Record[K, V]) error) Stream[K, V] {
	return s.derive(topology.AddProcessor(s.b.topo, name, topology.ProcessorFunc(f), s.node))
}

// Filter keeps the records for which keep returns true.
func (s Stream[K, V]) Filter(keep func(key K, value V) bool, opts ...Option) Stream[K, V] {
	return s.filter("Filter", "KSTREAM-FILTER-", keep, false, opts)
}

// FilterNot drops the records for which drop returns true.
func (s Stream[K, V]) FilterNot(drop func(key K, value V) bool, opts ...Option) Stream[K, V] {
	return s.filter("FilterNot", "KSTREAM-FILTER-", drop, true, opts)
}

func (s Stream[K, V]) filter(op, prefix string, pred func(K, V) bool, not bool, opts []Option) Stream[K, V] {
	if !s.valid(op) {
		return Stream[K, V]{b: s.b}
	}
	o := s.b.collect(op, opts)
	name := s.b.nodeName(o, prefix)
	if pred == nil {
		s.b.errorf(op, name, "the predicate is nil")
		return Stream[K, V]{b: s.b}
	}
	keep := pred
	if not {
		keep = func(k K, v V) bool { return !pred(k, v) }
	}
	return s.derive(topology.AddFilter(s.b.topo, name, keep, s.node))
}

// Peek calls f for each record and passes the record on unchanged.
func (s Stream[K, V]) Peek(f func(key K, value V), opts ...Option) Stream[K, V] {
	if !s.valid("Peek") {
		return Stream[K, V]{b: s.b}
	}
	o := s.b.collect("Peek", opts)
	name := s.b.nodeName(o, "KSTREAM-PEEK-")
	if f == nil {
		s.b.errorf("Peek", name, "the function is nil")
		return Stream[K, V]{b: s.b}
	}
	return s.process(name, func(ctx topology.Context[K, V], r Record[K, V]) error {
		f(r.Key, r.Value)
		return ctx.Forward(r)
	})
}

// Foreach calls f for each record; the stream ends here. An error from f goes to the processing
// error handler with the record's coordinates.
func (s Stream[K, V]) Foreach(f func(key K, value V) error, opts ...Option) {
	if !s.valid("Foreach") {
		return
	}
	o := s.b.collect("Foreach", opts)
	name := s.b.nodeName(o, "KSTREAM-FOREACH-")
	if f == nil {
		s.b.errorf("Foreach", name, "the function is nil")
		return
	}
	topology.AddProcessor(s.b.topo, name, topology.ProcessorFunc(
		func(_ topology.Context[K, V], r Record[K, V]) error { return f(r.Key, r.Value) }), s.node)
}

// Merge returns a stream with the records of s and of others, each in its own order. The
// merged stream has s's serdes.
func (s Stream[K, V]) Merge(others []Stream[K, V], opts ...Option) Stream[K, V] {
	if !s.valid("Merge") {
		return Stream[K, V]{b: s.b}
	}
	o := s.b.collect("Merge", opts)
	name := s.b.nodeName(o, "KSTREAM-MERGE-")
	parents := []topology.Node[K, V]{s.node}
	keyChanged := s.keyChanged
	for _, other := range others {
		if other.b != s.b {
			s.b.errorf("Merge", name, "a stream from another builder")
			return Stream[K, V]{b: s.b}
		}
		if !other.valid("Merge") {
			return Stream[K, V]{b: s.b}
		}
		parents = append(parents, other.node)
		keyChanged = keyChanged || other.keyChanged
	}
	node := topology.AddProcessor(s.b.topo, name, topology.ProcessorFunc(
		func(ctx topology.Context[K, V], r Record[K, V]) error { return ctx.Forward(r) }), parents...)
	out := s.derive(node)
	out.keyChanged = keyChanged
	return out
}

// Serdes: an operation that may change a type keeps the stream's serde when the type stays the
// same; otherwise give one with WithKeySerde/WithValueSerde where a later operation needs it.

// Map changes each record's key and value (and their types). Keys may change, so a later
// key-based stateful operation repartitions first. An error from f goes to the processing error
// handler.
func Map[K, V, K2, V2 any](s Stream[K, V], f func(key K, value V) (K2, V2, error), opts ...Option) Stream[K2, V2] {
	if !s.valid("Map") {
		return Stream[K2, V2]{b: s.b}
	}
	o := s.b.collect("Map", opts, optKeySerde, optValueSerde)
	name := s.b.nodeName(o, "KSTREAM-MAP-")
	if f == nil {
		s.b.errorf("Map", name, "the function is nil")
		return Stream[K2, V2]{b: s.b}
	}
	node := topology.AddProcessor(s.b.topo, name, topology.ProcessorFunc(
		func(ctx topology.Context[K2, V2], r Record[K, V]) error {
			k, v, err := f(r.Key, r.Value)
			if err != nil {
				return err
			}
			return ctx.Forward(topology.Derive(r, k, v))
		}), s.node)
	ks, _ := typedOption[serde.Serde[K2]](s.b, "Map", name, "the key serde", o.keySerde)
	vs, _ := typedOption[serde.Serde[V2]](s.b, "Map", name, "the value serde", o.valueSerde)
	return Stream[K2, V2]{b: s.b, node: node, key: carry(s.key, ks), value: carry(s.value, vs), keyChanged: true}
}

// MapValues changes each record's value (and its type); keys stay, so no repartition follows.
func MapValues[K, V, V2 any](s Stream[K, V], f func(value V) (V2, error), opts ...Option) Stream[K, V2] {
	return mapValues(s, f == nil, opts, func(name string) topology.Node[K, V2] {
		return topology.AddMapValuesOnly(s.b.topo, name, f, s.node)
	})
}

// MapValuesWithKey is MapValues with read-only access to the key.
func MapValuesWithKey[K, V, V2 any](s Stream[K, V], f func(key K, value V) (V2, error), opts ...Option) Stream[K, V2] {
	return mapValues(s, f == nil, opts, func(name string) topology.Node[K, V2] {
		return topology.AddMapValues(s.b.topo, name, f, s.node)
	})
}

// mapValues is MapValues and MapValuesWithKey: add makes the node, named name.
func mapValues[K, V, V2 any](s Stream[K, V], nilFunc bool, opts []Option, add func(name string) topology.Node[K, V2]) Stream[K, V2] {
	if !s.valid("MapValues") {
		return Stream[K, V2]{b: s.b}
	}
	o := s.b.collect("MapValues", opts, optValueSerde)
	name := s.b.nodeName(o, "KSTREAM-MAPVALUES-")
	if nilFunc {
		s.b.errorf("MapValues", name, "the function is nil")
		return Stream[K, V2]{b: s.b}
	}
	node := add(name)
	vs, _ := typedOption[serde.Serde[V2]](s.b, "MapValues", name, "the value serde", o.valueSerde)
	return Stream[K, V2]{b: s.b, node: node, key: s.key, value: carry(s.value, vs), keyChanged: s.keyChanged}
}

// FlatMap turns each record into zero or more records with new keys and values.
func FlatMap[K, V, K2, V2 any](s Stream[K, V], f func(key K, value V) ([]KeyValue[K2, V2], error), opts ...Option) Stream[K2, V2] {
	if !s.valid("FlatMap") {
		return Stream[K2, V2]{b: s.b}
	}
	o := s.b.collect("FlatMap", opts, optKeySerde, optValueSerde)
	name := s.b.nodeName(o, "KSTREAM-FLATMAP-")
	if f == nil {
		s.b.errorf("FlatMap", name, "the function is nil")
		return Stream[K2, V2]{b: s.b}
	}
	node := topology.AddProcessor(s.b.topo, name, topology.ProcessorFunc(
		func(ctx topology.Context[K2, V2], r Record[K, V]) error {
			kvs, err := f(r.Key, r.Value)
			if err != nil {
				return err
			}
			for _, kv := range kvs {
				if err := ctx.Forward(topology.Derive(r, kv.Key, kv.Value)); err != nil {
					return err
				}
			}
			return nil
		}), s.node)
	ks, _ := typedOption[serde.Serde[K2]](s.b, "FlatMap", name, "the key serde", o.keySerde)
	vs, _ := typedOption[serde.Serde[V2]](s.b, "FlatMap", name, "the value serde", o.valueSerde)
	return Stream[K2, V2]{b: s.b, node: node, key: carry(s.key, ks), value: carry(s.value, vs), keyChanged: true}
}

// FlatMapValues turns each record's value into zero or more values, each forwarded with the
// record's key.
func FlatMapValues[K, V, V2 any](s Stream[K, V], f func(value V) ([]V2, error), opts ...Option) Stream[K, V2] {
	if f == nil {
		return FlatMapValuesWithKey[K, V, V2](s, nil, opts...)
	}
	return FlatMapValuesWithKey(s, func(_ K, v V) ([]V2, error) { return f(v) }, opts...)
}

// FlatMapValuesWithKey is FlatMapValues with read-only access to the key.
func FlatMapValuesWithKey[K, V, V2 any](s Stream[K, V], f func(key K, value V) ([]V2, error), opts ...Option) Stream[K, V2] {
	if !s.valid("FlatMapValues") {
		return Stream[K, V2]{b: s.b}
	}
	o := s.b.collect("FlatMapValues", opts, optValueSerde)
	name := s.b.nodeName(o, "KSTREAM-FLATMAPVALUES-")
	if f == nil {
		s.b.errorf("FlatMapValues", name, "the function is nil")
		return Stream[K, V2]{b: s.b}
	}
	node := topology.AddProcessor(s.b.topo, name, topology.ProcessorFunc(
		func(ctx topology.Context[K, V2], r Record[K, V]) error {
			vs, err := f(r.Key, r.Value)
			if err != nil {
				return err
			}
			for _, v := range vs {
				if err := ctx.Forward(topology.DeriveValue(r, v)); err != nil {
					return err
				}
			}
			return nil
		}), s.node)
	vs, _ := typedOption[serde.Serde[V2]](s.b, "FlatMapValues", name, "the value serde", o.valueSerde)
	return Stream[K, V2]{b: s.b, node: node, key: s.key, value: carry(s.value, vs), keyChanged: s.keyChanged}
}

// SelectKey gives each record a new key computed from it; the value stays. A later key-based
// stateful operation repartitions first.
func SelectKey[K, V, K2 any](s Stream[K, V], f func(key K, value V) (K2, error), opts ...Option) Stream[K2, V] {
	if !s.valid("SelectKey") {
		return Stream[K2, V]{b: s.b}
	}
	o := s.b.collect("SelectKey", opts, optKeySerde)
	name := s.b.nodeName(o, "KSTREAM-KEY-SELECT-")
	if f == nil {
		s.b.errorf("SelectKey", name, "the function is nil")
		return Stream[K2, V]{b: s.b}
	}
	node := topology.AddProcessor(s.b.topo, name, topology.ProcessorFunc(
		func(ctx topology.Context[K2, V], r Record[K, V]) error {
			k, err := f(r.Key, r.Value)
			if err != nil {
				return err
			}
			return ctx.Forward(topology.DeriveKey(r, k))
		}), s.node)
	ks, _ := typedOption[serde.Serde[K2]](s.b, "SelectKey", name, "the key serde", o.keySerde)
	return Stream[K2, V]{b: s.b, node: node, key: carry(s.key, ks), value: s.value, keyChanged: true}
}

// Process adds a custom processor (the Processor API) to the stream. Its output may have new
// keys, so a later key-based stateful operation repartitions first.
// Options: Named, WithStores (connect state stores to the processor), WithKeySerde and
// WithValueSerde (the output's serdes, if later operations need them).
func Process[K, V, K2, V2 any](s Stream[K, V], supplier topology.Supplier[K, V, K2, V2], opts ...Option) Stream[K2, V2] {
	if !s.valid("Process") {
		return Stream[K2, V2]{b: s.b}
	}
	o := s.b.collect("Process", opts, optStores, optKeySerde, optValueSerde)
	name := s.b.nodeName(o, "KSTREAM-PROCESSOR-")
	if supplier == nil {
		s.b.errorf("Process", name, "the supplier is nil")
		return Stream[K2, V2]{b: s.b}
	}
	node := topology.AddProcessor(s.b.topo, name, supplier, s.node)
	for _, st := range o.stores {
		s.b.topo.ConnectStore(name, st)
	}
	ks, _ := typedOption[serde.Serde[K2]](s.b, "Process", name, "the key serde", o.keySerde)
	vs, _ := typedOption[serde.Serde[V2]](s.b, "Process", name, "the value serde", o.valueSerde)
	return Stream[K2, V2]{b: s.b, node: node, key: carry(s.key, ks), value: carry(s.value, vs), keyChanged: true}
}
