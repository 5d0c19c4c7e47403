package stream

import (
	"fmt"

	"github.com/rifflestream/riffle/serde"
	"github.com/rifflestream/riffle/state"
	"github.com/rifflestream/riffle/topology"
)

// Grouped is a stream grouped by key, ready to aggregate (a KGroupedStream). If its keys may have
// changed since the source, the aggregation first repartitions it by key through a topic.
type Grouped[K, V any] struct {
	s     Stream[K, V]
	key   serde.Serde[K]
	value serde.Serde[V]
	// name bases the repartition topic's name (Named on GroupBy/GroupByKey); else the store's.
	name        string
	repartition bool
}

// GroupByKey groups the stream by its current key. Options: Named (the repartition topic's base
// name, if one is needed), WithKeySerde, WithValueSerde (when the stream's are not known).
func GroupByKey[K, V any](s Stream[K, V], opts ...Option) Grouped[K, V] {
	if !s.valid("GroupByKey") {
		return Grouped[K, V]{s: Stream[K, V]{b: s.b}}
	}
	o := s.b.collect("GroupByKey", opts, optKeySerde, optValueSerde)
	ks, _ := typedOption[serde.Serde[K]](s.b, "GroupByKey", o.name, "the key serde", o.keySerde)
	vs, _ := typedOption[serde.Serde[V]](s.b, "GroupByKey", o.name, "the value serde", o.valueSerde)
	return Grouped[K, V]{s: s, key: carry(s.key, ks), value: carry(s.value, vs), name: o.name, repartition: s.keyChanged}
}

// GroupBy groups the stream by a new key computed from each record, repartitioning by it before
// the aggregation. key is the new key's serde.
func GroupBy[K, V, K2 any](s Stream[K, V], f func(key K, value V) (K2, error), key serde.Serde[K2], opts ...Option) Grouped[K2, V] {
	if !s.valid("GroupBy") {
		return Grouped[K2, V]{s: Stream[K2, V]{b: s.b}}
	}
	o := s.b.collect("GroupBy", opts, optValueSerde)
	selected := SelectKey(s, f)
	vs, _ := typedOption[serde.Serde[V]](s.b, "GroupBy", o.name, "the value serde", o.valueSerde)
	if key == nil {
		s.b.errorf("GroupBy", o.name, "the key serde is nil")
	}
	return Grouped[K2, V]{s: selected, key: key, value: carry(s.value, vs), name: o.name, repartition: true}
}

// source returns the stream the aggregation reads: the grouped stream, repartitioned if needed.
func (g Grouped[K, V]) source(op, storeName string) (Stream[K, V], bool) {
	s := g.s
	if g.key == nil || g.value == nil {
		s.b.errorf(op, storeName, "needs the key and value serdes of the grouped stream (give them with WithKeySerde/WithValueSerde on GroupBy or GroupByKey)")
		return s, false
	}
	s.key, s.value = g.key, g.value
	if !g.repartition {
		return s, true
	}
	base := g.name
	if base == "" {
		base = storeName
	}
	o := &options{given: map[string]bool{}, name: g.name}
	r := repartition(s, op, base, o, true)
	return r, r.node.Valid()
}

// aggregation holds what Count, Reduce and Aggregate share.
type aggregation struct {
	store string
	proc  string
	o     *options
}

func (b *Builder) aggregationNames(op string, opts []Option, prefix string) aggregation {
	o := b.collect(op, opts, optMaterialized, optInMemory, optNoCaching, optNoChangelog, optBufferBytes)
	store := o.store
	if store == "" {
		store = b.newName(prefix + "-STATE-STORE-")
	}
	return aggregation{store: store, proc: b.nodeName(o, prefix+"-"), o: o}
}

// Count counts the records of each key. Records with a null key or value are skipped, as in
// Kafka Streams. Options: Named, Materialized, InMemory, WithoutCaching, WithoutChangelog,
// StoreBufferBytes.
func Count[K, V any](g Grouped[K, V], opts ...Option) Table[K, int64] {
	return Aggregate(g, func() int64 { return 0 }, func(_ K, _ V, n int64) (int64, error) { return n + 1, nil }, serde.Int64(), opts...)
}

// Reduce combines the values of each key with f (the first value of a key is kept as it is).
func Reduce[K, V any](g Grouped[K, V], f func(acc, value V) (V, error), opts ...Option) Table[K, V] {
	if !g.s.valid("Reduce") {
		return Table[K, V]{b: g.s.b}
	}
	if f == nil {
		g.s.b.errorf("Reduce", "", "the reducer is nil")
		return Table[K, V]{b: g.s.b}
	}
	return aggregate(g, "Reduce", "KSTREAM-REDUCE", func(_ K, v V, acc V, has bool) (V, error) {
		if !has {
			return v, nil
		}
		return f(acc, v)
	}, g.value, opts)
}

// Aggregate folds the values of each key into an aggregate of type A, starting from init().
// aggSerde is the aggregate's serde (for its store and changelog).
func Aggregate[K, V, A any](g Grouped[K, V], init func() A, f func(key K, value V, agg A) (A, error), aggSerde serde.Serde[A], opts ...Option) Table[K, A] {
	if !g.s.valid("Aggregate") {
		return Table[K, A]{b: g.s.b}
	}
	if init == nil || f == nil {
		g.s.b.errorf("Aggregate", "", "the initializer or the aggregator is nil")
		return Table[K, A]{b: g.s.b}
	}
	return aggregate(g, "Aggregate", "KSTREAM-AGGREGATE", func(k K, v V, acc A, has bool) (A, error) {
		if !has {
			acc = init()
		}
		return f(k, v, acc)
	}, aggSerde, opts)
}

func aggregate[K, V, A any](g Grouped[K, V], op, prefix string, f func(K, V, A, bool) (A, error), aggSerde serde.Serde[A], opts []Option) Table[K, A] {
	b := g.s.b
	names := b.aggregationNames(op, opts, prefix)
	if aggSerde == nil {
		b.errorf(op, names.proc, "the aggregate's serde is nil")
		return Table[K, A]{b: b}
	}
	src, ok := g.source(op, names.store)
	if !ok {
		return Table[K, A]{b: b}
	}
	spec := state.NewKeyValue(names.store, g.key, aggSerde, storeOptions(names.o)...)
	store := names.store
	node := topology.AddProcessor(b.topo, names.proc, func() topology.Processor[K, V, K, Change[A]] {
		return &streamAggregate[K, V, A]{store: store, f: f}
	}, src.node)
	b.topo.AddStore(spec, names.proc)
	return Table[K, A]{b: b, node: node, key: g.key, value: aggSerde, store: names.store}
}

// streamAggregate is the processor of Count, Reduce and Aggregate on a stream.
type streamAggregate[K, V, A any] struct {
	store   string
	f       func(K, V, A, bool) (A, error)
	kv      state.TableStore[K, A]
	ctx     topology.Context[K, Change[A]]
	dropped int64
}

func (p *streamAggregate[K, V, A]) Init(ctx topology.Context[K, Change[A]]) error {
	p.ctx = ctx
	var err error
	if p.kv, err = tableStore[K, A](ctx, p.store); err != nil {
		return err
	}
	p.kv.SetFlushListener(forwardFlushed(ctx))
	return nil
}

func (p *streamAggregate[K, V, A]) Process(r Record[K, V]) error {
	if r.KeyIsNull() || r.ValueIsNull() {
		// Kafka Streams' rule: aggregations skip records without a key or a value.
		p.dropped++
		p.ctx.Logger().Debug("aggregation: skipping a record with a null key or value", "topic", r.Origin.Topic,
			"partition", r.Origin.Partition, "offset", r.Origin.Offset)
		return nil
	}
	old, oldTS, has, err := p.kv.GetWithTimestamp(r.Key)
	if err != nil {
		return err
	}
	agg, err := p.f(r.Key, r.Value, old, has)
	if err != nil {
		return err
	}
	if err := p.kv.Put(r.Key, agg); err != nil {
		return err
	}
	if p.kv.Caching() {
		return nil // forwarded at the commit, once per key
	}
	out := topology.DeriveValue(r, Change[A]{New: agg, HasNew: true, Old: old, HasOld: has})
	if has && oldTS.After(out.Timestamp) {
		out.Timestamp = oldTS // an aggregate is as recent as its latest input
	}
	return p.ctx.Forward(out)
}

func (p *streamAggregate[K, V, A]) Close() error { return nil }

// GroupedTable is a table regrouped by a new key (a KGroupedTable): its aggregations add each new
// value and subtract each old one.
type GroupedTable[K, V any] struct {
	src   Stream[K, Change[V]] // re-keyed changes, to repartition
	key   serde.Serde[K]
	value serde.Serde[V]
	ok    bool
}

// GroupTable regroups a table by a new key and value computed from each row. The regrouped rows
// go through a repartition topic ("<appID>-<name>-repartition", name from Named or the store).
func GroupTable[K, V, K2, V2 any](t Table[K, V], f func(key K, value V) (K2, V2, error), key serde.Serde[K2], value serde.Serde[V2], opts ...Option) GroupedTable[K2, V2] {
	if !t.valid("GroupTable") {
		return GroupedTable[K2, V2]{}
	}
	o := t.b.collect("GroupTable", opts)
	name := t.b.nodeName(o, "KTABLE-SELECT-")
	if f == nil || key == nil || value == nil {
		t.b.errorf("GroupTable", name, "needs a function and the new key and value serdes")
		return GroupedTable[K2, V2]{}
	}
	// An update becomes a subtraction of the old row (under its old key) then an addition of the
	// new one (under its new key), so each aggregate sees both.
	sel := topology.AddProcessor(t.b.topo, name, topology.ProcessorFunc(
		func(ctx topology.Context[K2, Change[V2]], r Record[K, Change[V]]) error {
			if r.Value.HasOld {
				k2, v2, err := f(r.Key, r.Value.Old)
				if err != nil {
					return err
				}
				if err := ctx.Forward(topology.Derive(r, k2, Change[V2]{Old: v2, HasOld: true})); err != nil {
					return err
				}
			}
			if r.Value.HasNew {
				k2, v2, err := f(r.Key, r.Value.New)
				if err != nil {
					return err
				}
				return ctx.Forward(topology.Derive(r, k2, Change[V2]{New: v2, HasNew: true}))
			}
			return nil
		}), t.node)
	src := Stream[K2, Change[V2]]{b: t.b, node: sel, key: key, value: changeSerde(value), keyChanged: true}
	return GroupedTable[K2, V2]{src: src, key: key, value: value, ok: true}
}

// AggregateTable aggregates a regrouped table: add folds a row in, subtract takes an old one out.
func AggregateTable[K, V, A any](g GroupedTable[K, V], init func() A, add, subtract func(key K, value V, agg A) (A, error), aggSerde serde.Serde[A], opts ...Option) Table[K, A] {
	b := g.src.b
	if !g.ok || b == nil {
		return Table[K, A]{b: b}
	}
	names := b.aggregationNames("AggregateTable", opts, "KTABLE-AGGREGATE")
	if init == nil || add == nil || subtract == nil || aggSerde == nil {
		b.errorf("AggregateTable", names.proc, "needs an initializer, an adder, a subtractor and the aggregate's serde")
		return Table[K, A]{b: b}
	}
	base := names.store
	o := &options{given: map[string]bool{}}
	src := repartition(g.src, "AggregateTable", base, o, true)
	if !src.node.Valid() {
		return Table[K, A]{b: b}
	}
	spec := state.NewKeyValue(names.store, g.key, aggSerde, storeOptions(names.o)...)
	store := names.store
	node := topology.AddProcessor(b.topo, names.proc, func() topology.Processor[K, Change[V], K, Change[A]] {
		return &tableAggregate[K, V, A]{store: store, init: init, add: add, subtract: subtract}
	}, src.node)
	b.topo.AddStore(spec, names.proc)
	return Table[K, A]{b: b, node: node, key: g.key, value: aggSerde, store: names.store}
}

// CountTable counts the rows of each new key of a regrouped table.
func CountTable[K, V any](g GroupedTable[K, V], opts ...Option) Table[K, int64] {
	return AggregateTable(g, func() int64 { return 0 },
		func(_ K, _ V, n int64) (int64, error) { return n + 1, nil },
		func(_ K, _ V, n int64) (int64, error) { return n - 1, nil }, serde.Int64(), opts...)
}

// tableAggregate is the processor of AggregateTable.
type tableAggregate[K, V, A any] struct {
	store         string
	init          func() A
	add, subtract func(K, V, A) (A, error)
	kv            state.TableStore[K, A]
	ctx           topology.Context[K, Change[A]]
}

func (p *tableAggregate[K, V, A]) Init(ctx topology.Context[K, Change[A]]) error {
	p.ctx = ctx
	var err error
	if p.kv, err = tableStore[K, A](ctx, p.store); err != nil {
		return err
	}
	p.kv.SetFlushListener(forwardFlushed(ctx))
	return nil
}

func (p *tableAggregate[K, V, A]) Process(r Record[K, Change[V]]) error {
	if r.KeyIsNull() {
		return nil
	}
	old, has, err := p.kv.Get(r.Key)
	if err != nil {
		return err
	}
	agg := old
	if !has {
		agg = p.init()
	}
	if r.Value.HasOld {
		if agg, err = p.subtract(r.Key, r.Value.Old, agg); err != nil {
			return err
		}
	}
	if r.Value.HasNew {
		if agg, err = p.add(r.Key, r.Value.New, agg); err != nil {
			return err
		}
	}
	if err := p.kv.Put(r.Key, agg); err != nil {
		return err
	}
	if p.kv.Caching() {
		return nil
	}
	return p.ctx.Forward(topology.DeriveValue(r, Change[A]{New: agg, HasNew: true, Old: old, HasOld: has}))
}

func (p *tableAggregate[K, V, A]) Close() error { return nil }

// changeSerde encodes a Change for a repartition topic: a flags byte (1 new, 2 old), then the
// new value's length (4 bytes) and bytes if present, then the old value's bytes if present.
func changeSerde[V any](s serde.Serde[V]) serde.Serde[Change[V]] {
	return serde.New(func(topic string, c Change[V]) ([]byte, error) {
		var flags byte
		out := []byte{0}
		if c.HasNew {
			flags |= 1
			nb, err := s.Serialize(topic, c.New)
			if err != nil {
				return nil, err
			}
			out = append(out, byte(len(nb)>>24), byte(len(nb)>>16), byte(len(nb)>>8), byte(len(nb)))
			out = append(out, nb...)
		}
		if c.HasOld {
			flags |= 2
			ob, err := s.Serialize(topic, c.Old)
			if err != nil {
				return nil, err
			}
			out = append(out, ob...)
		}
		out[0] = flags
		return out, nil
	}, func(topic string, b []byte) (Change[V], error) {
		var c Change[V]
		if len(b) < 1 || b[0] > 3 {
			return c, &serde.Error{Serde: "change", Op: "deserialize", Reason: "missing or bad flags byte"}
		}
		flags, rest := b[0], b[1:]
		var err error
		if flags&1 != 0 {
			if len(rest) < 4 {
				return c, &serde.Error{Serde: "change", Op: "deserialize", Reason: "truncated length"}
			}
			n := int(rest[0])<<24 | int(rest[1])<<16 | int(rest[2])<<8 | int(rest[3])
			if n < 0 || n > len(rest)-4 {
				return c, &serde.Error{Serde: "change", Op: "deserialize", Reason: fmt.Sprintf("new value of %d bytes, %d left", n, len(rest)-4)}
			}
			if c.New, err = s.Deserialize(topic, rest[4:4+n]); err != nil {
				return c, err
			}
			c.HasNew, rest = true, rest[4+n:]
		}
		if flags&2 != 0 {
			if c.Old, err = s.Deserialize(topic, rest); err != nil {
				return c, err
			}
			c.HasOld = true
		} else if len(rest) > 0 {
			return c, &serde.Error{Serde: "change", Op: "deserialize", Reason: "trailing bytes"}
		}
		return c, nil
	})
}
