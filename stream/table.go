package stream

import (
	"fmt"

	"github.com/rifflestream/riffle/serde"
	"github.com/rifflestream/riffle/state"
	"github.com/rifflestream/riffle/topology"
)

// Change is an update of a table row: its new value (absent when the row was deleted) and its
// previous one (absent when the row is new). Tables pass Changes between their nodes so that
// downstream aggregations can subtract the old value.
type Change[V any] struct {
	New, Old       V
	HasNew, HasOld bool
}

// Table is a changelog stream seen as a table: the latest value of each key (a KTable). Tables
// come from aggregations (Count, Reduce, Aggregate), from topics (TableFrom), and from other
// tables (Filter, MapValues).
//
// With caching (the default for materialized tables), a table emits at most one update per key
// per commit; without, one per input record.
type Table[K, V any] struct {
	b     *Builder
	node  topology.Node[K, Change[V]]
	key   serde.Serde[K]
	value serde.Serde[V]
	// store is the name of the store that materializes the table, if any.
	store string
}

// StoreName returns the name of the store that holds the table, or "" if it is not materialized.
// Processors connected to it (WithStores) read it with state.KeyValue.
func (t Table[K, V]) StoreName() string { return t.store }

func (t Table[K, V]) valid(op string) bool {
	if t.b == nil {
		return false
	}
	if !t.node.Valid() {
		t.b.topo.AddError(fmt.Errorf("stream: %s on a table whose declaration failed (see the other errors)", op))
		return false
	}
	return true
}

// storeOptions turns materialization options into the store spec options.
func storeOptions(o *options) []state.Option {
	var out []state.Option
	if o.memory {
		out = append(out, state.InMemory())
	}
	if o.noCaching {
		out = append(out, state.WithCaching(false))
	}
	if o.noChangelog {
		out = append(out, state.WithChangelog(false))
	}
	if o.bufferBytes > 0 {
		out = append(out, state.BufferBytes(o.bufferBytes))
	}
	return out
}

// TableFrom reads topic as a table: each record upserts its key, a null value (tombstone)
// deletes it. The table is materialized in a store (named with Materialized, else generated).
// Options: Named, Materialized, InMemory, WithoutCaching, WithoutChangelog, StoreBufferBytes,
// WithTimestampExtractor, WithOffsetReset.
func TableFrom[K, V any](b *Builder, topic string, key serde.Serde[K], value serde.Serde[V], opts ...Option) Table[K, V] {
	o := b.collect("TableFrom", opts, optExtractor, optReset, optMaterialized, optInMemory, optNoCaching, optNoChangelog, optBufferBytes)
	srcName := b.newName("KSTREAM-SOURCE-")
	var srcOpts []topology.SourceOption
	if o.extractor != nil {
		if f, ok := typedOption[topology.TimestampExtractor[K, V]](b, "TableFrom", srcName, "the timestamp extractor", o.extractor); ok {
			srcOpts = append(srcOpts, topology.WithTimestampExtractor(f))
		}
	}
	if o.reset != topology.ResetDefault {
		srcOpts = append(srcOpts, topology.WithOffsetReset(o.reset))
	}
	src := topology.AddSource(b.topo, srcName, []string{topic}, key, value, srcOpts...)
	storeName := o.store
	if storeName == "" {
		storeName = b.newName(topic + "-STATE-STORE-")
	}
	procName := b.nodeName(o, "KTABLE-SOURCE-")
	spec := state.NewKeyValue(storeName, key, value, storeOptions(o)...)
	node := topology.AddProcessor(b.topo, procName, func() topology.Processor[K, V, K, Change[V]] {
		return &tableSource[K, V]{store: storeName}
	}, src)
	b.topo.AddStore(spec, procName)
	return Table[K, V]{b: b, node: node, key: key, value: value, store: storeName}
}

// tableSource materializes a topic: upserts, and deletes on tombstones.
type tableSource[K, V any] struct {
	store string
	kv    state.TableStore[K, V]
	ctx   topology.Context[K, Change[V]]
}

func (p *tableSource[K, V]) Init(ctx topology.Context[K, Change[V]]) error {
	p.ctx = ctx
	var err error
	p.kv, err = tableStore[K, V](ctx, p.store)
	if err != nil {
		return err
	}
	p.kv.SetFlushListener(forwardFlushed(ctx))
	return nil
}

func (p *tableSource[K, V]) Process(r Record[K, V]) error {
	if r.KeyIsNull() {
		p.ctx.Logger().Debug("table source: skipping a record without a key", "topic", r.Origin.Topic, "partition", r.Origin.Partition, "offset", r.Origin.Offset)
		return nil
	}
	old, _, hadOld, err := p.kv.GetWithTimestamp(r.Key)
	if err != nil {
		return err
	}
	ch := Change[V]{Old: old, HasOld: hadOld}
	if r.ValueIsNull() {
		if !hadOld {
			return nil
		}
		if err := p.kv.Delete(r.Key); err != nil {
			return err
		}
	} else {
		if err := p.kv.Put(r.Key, r.Value); err != nil {
			return err
		}
		ch.New, ch.HasNew = r.Value, true
	}
	if p.kv.Caching() {
		return nil // forwarded at the commit, once per key
	}
	return p.ctx.Forward(topology.DeriveValue(r, ch))
}

func (p *tableSource[K, V]) Close() error { return nil }

// tableStore returns a connected table store typed (K, V).
func tableStore[K, V any](ctx topology.ProcessorContext, name string) (state.TableStore[K, V], error) {
	s, err := ctx.StateStore(name)
	if err != nil {
		return nil, err
	}
	ts, ok := s.(state.TableStore[K, V])
	if !ok {
		return nil, fmt.Errorf("stream: store %q is a %T, not a table store of the expected types", name, s)
	}
	return ts, nil
}

// forwardFlushed forwards each key's update at a commit, as a Change, with its timestamp.
func forwardFlushed[K, V any](ctx topology.Context[K, Change[V]]) func(state.Flushed[K, V]) error {
	return func(f state.Flushed[K, V]) error {
		return ctx.Forward(topology.Record[K, Change[V]]{Key: f.Key, Timestamp: f.Timestamp, Headers: f.Headers,
			Value: Change[V]{New: f.New, HasNew: f.HasNew, Old: f.Old, HasOld: f.HasOld}})
	}
}

// ToStream turns the table's updates into a stream: an update is a record with the new value, a
// delete a record with a null value (a tombstone when written to a topic).
func (t Table[K, V]) ToStream(opts ...Option) Stream[K, V] {
	if !t.valid("ToStream") {
		return Stream[K, V]{b: t.b}
	}
	o := t.b.collect("ToStream", opts)
	name := t.b.nodeName(o, "KTABLE-TOSTREAM-")
	node := topology.AddProcessor(t.b.topo, name, topology.ProcessorFunc(
		func(ctx topology.Context[K, V], r Record[K, Change[V]]) error {
			if r.Value.HasNew {
				return ctx.Forward(topology.DeriveValue(r, r.Value.New))
			}
			return ctx.Forward(topology.DeriveValue(r, r.Value.New).WithNullValue())
		}), t.node)
	return Stream[K, V]{b: t.b, node: node, key: t.key, value: t.value}
}

// Filter keeps the rows for which keep is true: an update whose new value fails becomes a delete
// of the row (if its old value passed), so the result stays a table.
func (t Table[K, V]) Filter(keep func(key K, value V) bool, opts ...Option) Table[K, V] {
	return t.filter("Filter", keep, false, opts)
}

// FilterNot drops the rows for which drop is true.
func (t Table[K, V]) FilterNot(drop func(key K, value V) bool, opts ...Option) Table[K, V] {
	return t.filter("FilterNot", drop, true, opts)
}

func (t Table[K, V]) filter(op string, pred func(K, V) bool, not bool, opts []Option) Table[K, V] {
	if !t.valid(op) {
		return Table[K, V]{b: t.b}
	}
	o := t.b.collect(op, opts)
	name := t.b.nodeName(o, "KTABLE-FILTER-")
	if pred == nil {
		t.b.errorf(op, name, "the predicate is nil")
		return Table[K, V]{b: t.b}
	}
	node := topology.AddProcessor(t.b.topo, name, topology.ProcessorFunc(
		func(ctx topology.Context[K, Change[V]], r Record[K, Change[V]]) error {
			ch := r.Value
			out := Change[V]{}
			if ch.HasNew && pred(r.Key, ch.New) != not {
				out.New, out.HasNew = ch.New, true
			}
			if ch.HasOld && pred(r.Key, ch.Old) != not {
				out.Old, out.HasOld = ch.Old, true
			}
			if !out.HasNew && !out.HasOld {
				return nil // the row was not in the filtered table and still is not
			}
			return ctx.Forward(r.WithValue(out))
		}), t.node)
	return Table[K, V]{b: t.b, node: node, key: t.key, value: t.value}
}

// MapTableValues changes each row's value (and its type).
func MapTableValues[K, V, V2 any](t Table[K, V], f func(key K, value V) (V2, error), opts ...Option) Table[K, V2] {
	if !t.valid("MapTableValues") {
		return Table[K, V2]{b: t.b}
	}
	o := t.b.collect("MapTableValues", opts, optValueSerde)
	name := t.b.nodeName(o, "KTABLE-MAPVALUES-")
	if f == nil {
		t.b.errorf("MapTableValues", name, "the function is nil")
		return Table[K, V2]{b: t.b}
	}
	node := topology.AddProcessor(t.b.topo, name, topology.ProcessorFunc(
		func(ctx topology.Context[K, Change[V2]], r Record[K, Change[V]]) error {
			var out Change[V2]
			var err error
			if r.Value.HasNew {
				if out.New, err = f(r.Key, r.Value.New); err != nil {
					return err
				}
				out.HasNew = true
			}
			if r.Value.HasOld {
				if out.Old, err = f(r.Key, r.Value.Old); err != nil {
					return err
				}
				out.HasOld = true
			}
			return ctx.Forward(topology.DeriveValue(r, out))
		}), t.node)
	vs, _ := typedOption[serde.Serde[V2]](t.b, "MapTableValues", name, "the value serde", o.valueSerde)
	return Table[K, V2]{b: t.b, node: node, key: t.key, value: carry(t.value, vs)}
}
