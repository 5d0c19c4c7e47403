package stream

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/rifflestream/riffle/serde"
	"github.com/rifflestream/riffle/state"
	"github.com/rifflestream/riffle/topology"
)

// CountSessions counts each key's records per session.
func CountSessions[K, V any](s SessionWindowedStream[K, V], opts ...Option) Table[Windowed[K], int64] {
	return AggregateSessions(s, func() int64 { return 0 },
		func(_ K, _ V, n int64) (int64, error) { return n + 1, nil },
		func(_ K, a, b int64) (int64, error) { return a + b, nil }, serde.Int64(), opts...)
}

// ReduceSessions combines each key's values per session with f (which also merges two sessions'
// results when a record bridges them).
func ReduceSessions[K, V any](s SessionWindowedStream[K, V], f func(acc, value V) (V, error), opts ...Option) Table[Windowed[K], V] {
	if f == nil {
		if s.g.s.b != nil {
			s.g.s.b.errorf("ReduceSessions", "", "the reducer is nil")
		}
		return Table[Windowed[K], V]{b: s.g.s.b}
	}
	return sessionAggregate(s, "ReduceSessions", "KSTREAM-REDUCE", nil,
		func(_ K, v V, acc V, has bool) (V, error) {
			if !has {
				return v, nil
			}
			return f(acc, v)
		},
		func(_ K, a V, hasA bool, b V) (V, error) {
			if !hasA {
				return b, nil
			}
			return f(a, b)
		}, s.g.value, opts)
}

// AggregateSessions folds each key's values per session into an aggregate, starting from init();
// merge combines two sessions' aggregates when a record bridges them.
func AggregateSessions[K, V, A any](s SessionWindowedStream[K, V], init func() A, f func(key K, value V, agg A) (A, error), merge func(key K, a, b A) (A, error), aggSerde serde.Serde[A], opts ...Option) Table[Windowed[K], A] {
	if init == nil || f == nil || merge == nil {
		if s.g.s.b != nil {
			s.g.s.b.errorf("AggregateSessions", "", "the initializer, the aggregator or the merger is nil")
		}
		return Table[Windowed[K], A]{b: s.g.s.b}
	}
	return sessionAggregate(s, "AggregateSessions", "KSTREAM-AGGREGATE", init,
		func(k K, v V, acc A, has bool) (A, error) {
			if !has {
				acc = init()
			}
			return f(k, v, acc)
		},
		func(k K, a A, hasA bool, b A) (A, error) {
			if !hasA {
				a = init()
			}
			return merge(k, a, b)
		}, aggSerde, opts)
}

func sessionAggregate[K, V, A any](s SessionWindowedStream[K, V], op, prefix string, _ func() A,
	f func(K, V, A, bool) (A, error), merge func(K, A, bool, A) (A, error), aggSerde serde.Serde[A], opts []Option) Table[Windowed[K], A] {
	g := s.g
	b := g.s.b
	if !g.s.valid(op) {
		return Table[Windowed[K], A]{b: b}
	}
	o := b.collect(op, opts, windowOpts...)
	store := o.store
	if store == "" {
		store = b.newName(prefix + "-STATE-STORE-")
	}
	proc := b.nodeName(o, prefix+"-")
	if err := s.w.validate(); err != nil {
		b.errorf(op, proc, "%v", err)
		return Table[Windowed[K], A]{b: b}
	}
	if aggSerde == nil {
		b.errorf(op, proc, "the aggregate's serde is nil")
		return Table[Windowed[K], A]{b: b}
	}
	src, ok := g.source(op, store)
	if !ok {
		return Table[Windowed[K], A]{b: b}
	}
	spec := state.NewSessionStore(store, g.key, aggSerde, s.w.storeRetention(), storeOptions(o)...)
	w, emitFinal, idle := s.w, o.emitFinal, o.idleClose
	node := topology.AddProcessor(b.topo, proc, func() topology.Processor[K, V, Windowed[K], Change[A]] {
		return &sessionAgg[K, V, A]{w: w, store: store, f: f, merge: merge, emitFinal: emitFinal, idle: idle}
	}, src.node)
	b.topo.AddStore(spec, proc)
	return Table[Windowed[K], A]{b: b, node: node, key: SessionWindowedSerde(g.key), value: aggSerde, store: store}
}

// sessionAgg aggregates into sessions (Kafka Streams' KStreamSessionWindowAggregate).
type sessionAgg[K, V, A any] struct {
	w         SessionWindows
	store     string
	f         func(K, V, A, bool) (A, error)
	merge     func(K, A, bool, A) (A, error)
	emitFinal bool
	idle      time.Duration

	ss       state.TableSessionStore[K, A]
	ctx      topology.Context[Windowed[K], Change[A]]
	clock    windowClock
	emitted  int64
	anyEmits bool
}

func (p *sessionAgg[K, V, A]) Init(ctx topology.Context[Windowed[K], Change[A]]) error {
	p.ctx = ctx
	s, err := ctx.StateStore(p.store)
	if err != nil {
		return err
	}
	var ok bool
	if p.ss, ok = s.(state.TableSessionStore[K, A]); !ok {
		return fmt.Errorf("stream: store %q is a %T, not a session store of the expected types", p.store, s)
	}
	if !p.emitFinal {
		p.ss.SetFlushListener(func(f state.SessionFlushed[K, A]) error {
			return ctx.Forward(topology.Record[Windowed[K], Change[A]]{Timestamp: f.Timestamp, Headers: f.Headers,
				Key:   Windowed[K]{Key: f.Key, Start: f.Start, End: f.End},
				Value: Change[A]{New: f.New, HasNew: f.HasNew, Old: f.Old, HasOld: f.HasOld}})
		})
	}
	p.clock.idle = p.idle
	return p.clock.start(ctx, p.ss.Observed(), p.w.gap, p.maybeEmit, p.ss.AdvanceObserved)
}

// closeTime: a session ending before it can no longer grow or merge (Kafka Streams counts the
// gap too: a record within the gap after a session's end would still extend it).
func (p *sessionAgg[K, V, A]) closeTime() int64 {
	return p.clock.observed - p.w.grace.Milliseconds() - p.w.gap.Milliseconds()
}

type sessionEntry[A any] struct {
	start, end time.Time
	v          A
}

func (p *sessionAgg[K, V, A]) Process(r Record[K, V]) error {
	if r.KeyIsNull() {
		p.ctx.Logger().Debug("session windows: skipping a record without a key", "offset", r.Origin.Offset)
		return nil
	}
	t := r.Timestamp.UnixMilli()
	p.clock.record(p.ctx, t)
	if err := p.maybeEmit(); err != nil { // before applying the record: the store keeps it visible
		return err
	}
	closeTime := p.closeTime()
	gap := p.w.gap
	it, err := p.ss.FindSessions(r.Key, r.Timestamp.Add(-gap), r.Timestamp.Add(gap))
	if err != nil {
		return err
	}
	var merged []sessionEntry[A]
	for it.Next() {
		merged = append(merged, sessionEntry[A]{start: it.Start(), end: it.End(), v: it.Value()})
	}
	err = it.Err()
	it.Close()
	if err != nil {
		return err
	}
	start, end := r.Timestamp, r.Timestamp
	var agg A
	has := false
	for _, m := range merged {
		if agg, err = p.merge(r.Key, agg, has, m.v); err != nil {
			return err
		}
		has = true
		if m.start.Before(start) {
			start = m.start
		}
		if m.end.After(end) {
			end = m.end
		}
	}
	if end.UnixMilli() < closeTime {
		if err := p.ctx.SkipRecord(topology.StageLate, fmt.Errorf("late record at %d: its session [%d,%d] closed (stream time %d, gap %v, grace %v)",
			t, start.UnixMilli(), end.UnixMilli(), p.clock.observed, p.w.gap, p.w.grace)); err != nil {
			return err
		}
		return nil
	}
	for _, m := range merged {
		if m.start.Equal(start) && m.end.Equal(end) {
			continue // the merged session is this one: Put overwrites it
		}
		if err := p.ss.Remove(r.Key, m.start, m.end); err != nil {
			return err
		}
		if !p.emitFinal && !p.ss.Caching() {
			del := topology.Derive(r, Windowed[K]{Key: r.Key, Start: m.start, End: m.end}, Change[A]{Old: m.v, HasOld: true})
			if err := p.ctx.Forward(del.WithTimestamp(m.end)); err != nil {
				return err
			}
		}
	}
	if agg, err = p.f(r.Key, r.Value, agg, has); err != nil {
		return err
	}
	if err := p.ss.Put(r.Key, start, end, agg); err != nil {
		return err
	}
	if !p.emitFinal && !p.ss.Caching() {
		out := topology.Derive(r, Windowed[K]{Key: r.Key, Start: start, End: end}, Change[A]{New: agg, HasNew: true})
		if err := p.ctx.Forward(out.WithTimestamp(end)); err != nil {
			return err
		}
	}
	return nil
}

// maybeEmit forwards, in final mode, the sessions that closed since the last emission (ending
// before the close time), and deletes them.
func (p *sessionAgg[K, V, A]) maybeEmit() error {
	if !p.emitFinal || p.clock.observed == math.MinInt64 {
		return nil
	}
	upper := p.closeTime() - 1
	lower := int64(0)
	if p.anyEmits {
		lower = p.emitted + 1
	}
	if upper < lower {
		return nil
	}
	it, err := p.ss.FetchEnded(time.UnixMilli(lower), time.UnixMilli(upper))
	if err != nil {
		return err
	}
	type closed struct {
		k          K
		start, end time.Time
		v          A
	}
	var all []closed
	for it.Next() {
		all = append(all, closed{k: it.Key(), start: it.Start(), end: it.End(), v: it.Value()})
	}
	err = it.Err()
	it.Close()
	if err != nil {
		return err
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].end.Before(all[j].end) })
	for _, c := range all {
		rec := topology.Record[Windowed[K], Change[A]]{Timestamp: c.end,
			Key: Windowed[K]{Key: c.k, Start: c.start, End: c.end}, Value: Change[A]{New: c.v, HasNew: true}}
		if err := p.ctx.Forward(rec); err != nil {
			return err
		}
		if err := p.ss.Remove(c.k, c.start, c.end); err != nil {
			return err
		}
	}
	p.emitted, p.anyEmits = upper, true
	return nil
}

func (p *sessionAgg[K, V, A]) Close() error { return nil }
