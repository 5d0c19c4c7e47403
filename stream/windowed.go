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

// Windows are the fixed windows WindowedBy takes: TimeWindows (Tumbling, Hopping) or
// SlidingWindows (Sliding).
type Windows interface {
	validate() error
	isWindows()
}

func (TimeWindows) isWindows()    {}
func (SlidingWindows) isWindows() {}

// WindowedStream is a grouped stream cut into windows (a TimeWindowedKStream), ready to aggregate.
type WindowedStream[K, V any] struct {
	g Grouped[K, V]
	w Windows
}

// WindowedBy cuts a grouped stream into time windows (Tumbling, Hopping) or sliding windows
// (Sliding). Aggregate it with CountWindows, ReduceWindows or AggregateWindows.
func WindowedBy[K, V any](g Grouped[K, V], w Windows) WindowedStream[K, V] {
	return WindowedStream[K, V]{g: g, w: w}
}

// SessionWindowedStream is a grouped stream cut into sessions, ready to aggregate.
type SessionWindowedStream[K, V any] struct {
	g Grouped[K, V]
	w SessionWindows
}

// SessionWindowedBy cuts a grouped stream into sessions. Aggregate it with CountSessions,
// ReduceSessions or AggregateSessions.
func SessionWindowedBy[K, V any](g Grouped[K, V], w SessionWindows) SessionWindowedStream[K, V] {
	return SessionWindowedStream[K, V]{g: g, w: w}
}

const (
	optEmitFinal = "EmitOnWindowClose"
	optIdleClose = "CloseIdleWindowsAfter"
)

// EmitOnWindowClose makes a windowed aggregation emit each window once, when it closes (stream
// time passes its end plus grace), with its final value, instead of an update per change: Kafka
// Streams' emitStrategy(onWindowClose), or suppress(untilWindowCloses). Emitted windows are then
// deleted from the store.
func EmitOnWindowClose() Option {
	return optionFunc{kind: optEmitFinal, f: func(o *options) { o.emitFinal = true }}
}

// CloseIdleWindowsAfter lets stream time follow the wall clock on a task that has received no
// record for d, so a quiet partition still closes (and, with EmitOnWindowClose, emits) its last
// windows. Records later than that advanced stream time are then late. Off by default: windows
// close on event time only.
func CloseIdleWindowsAfter(d time.Duration) Option {
	return optionFunc{kind: optIdleClose, f: func(o *options) { o.idleClose = d }}
}

var windowOpts = []string{optMaterialized, optInMemory, optNoCaching, optNoChangelog, optBufferBytes, optEmitFinal, optIdleClose}

// CountWindows counts each key's records per window. Records without a key are skipped.
func CountWindows[K, V any](w WindowedStream[K, V], opts ...Option) Table[Windowed[K], int64] {
	return AggregateWindows(w, func() int64 { return 0 }, func(_ K, _ V, n int64) (int64, error) { return n + 1, nil }, serde.Int64(), opts...)
}

// ReduceWindows combines each key's values per window with f.
func ReduceWindows[K, V any](w WindowedStream[K, V], f func(acc, value V) (V, error), opts ...Option) Table[Windowed[K], V] {
	if f == nil {
		if w.g.s.b != nil {
			w.g.s.b.errorf("ReduceWindows", "", "the reducer is nil")
		}
		return Table[Windowed[K], V]{b: w.g.s.b}
	}
	return windowAggregate(w, "ReduceWindows", "KSTREAM-REDUCE", func(_ K, v V, acc V, has bool) (V, error) {
		if !has {
			return v, nil
		}
		return f(acc, v)
	}, w.g.value, opts)
}

// AggregateWindows folds each key's values per window into an aggregate, starting from init().
func AggregateWindows[K, V, A any](w WindowedStream[K, V], init func() A, f func(key K, value V, agg A) (A, error), aggSerde serde.Serde[A], opts ...Option) Table[Windowed[K], A] {
	if init == nil || f == nil {
		if w.g.s.b != nil {
			w.g.s.b.errorf("AggregateWindows", "", "the initializer or the aggregator is nil")
		}
		return Table[Windowed[K], A]{b: w.g.s.b}
	}
	return windowAggregate(w, "AggregateWindows", "KSTREAM-AGGREGATE", func(k K, v V, acc A, has bool) (A, error) {
		if !has {
			acc = init()
		}
		return f(k, v, acc)
	}, aggSerde, opts)
}

func windowAggregate[K, V, A any](w WindowedStream[K, V], op, prefix string, f func(K, V, A, bool) (A, error), aggSerde serde.Serde[A], opts []Option) Table[Windowed[K], A] {
	g := w.g
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
	if w.w == nil {
		b.errorf(op, proc, "no windows (WindowedBy with Tumbling, Hopping or Sliding)")
		return Table[Windowed[K], A]{b: b}
	}
	if err := w.w.validate(); err != nil {
		b.errorf(op, proc, "%v", err)
		return Table[Windowed[K], A]{b: b}
	}
	if aggSerde == nil {
		b.errorf(op, proc, "the aggregate's serde is nil")
		return Table[Windowed[K], A]{b: b}
	}
	if o.idleClose < 0 {
		b.errorf(op, proc, "CloseIdleWindowsAfter(%v) must be positive", o.idleClose)
	}
	src, ok := g.source(op, store)
	if !ok {
		return Table[Windowed[K], A]{b: b}
	}
	emitFinal, idle := o.emitFinal, o.idleClose
	var node topology.Node[Windowed[K], Change[A]]
	var outKey serde.Serde[Windowed[K]]
	switch ws := w.w.(type) {
	case TimeWindows:
		spec := state.NewWindowStore(store, g.key, aggSerde, ws.storeRetention(), storeOptions(o)...)
		node = topology.AddProcessor(b.topo, proc, func() topology.Processor[K, V, Windowed[K], Change[A]] {
			return &timeWindowAgg[K, V, A]{w: ws, store: store, f: f, emitFinal: emitFinal, idle: idle}
		}, src.node)
		b.topo.AddStore(spec, proc)
		outKey = TimeWindowedSerde(g.key, ws.size)
	case SlidingWindows:
		records := store + "-records"
		spec := state.NewWindowStore(store, g.key, aggSerde, ws.storeRetention(), storeOptions(o)...)
		// The records of the last 2d + grace: new windows are computed from them.
		rspec := state.NewWindowStore(records, g.key, serde.List(g.value), 2*ws.diff+ws.grace+2*time.Millisecond, storeOptions(o)...)
		node = topology.AddProcessor(b.topo, proc, func() topology.Processor[K, V, Windowed[K], Change[A]] {
			return &slidingWindowAgg[K, V, A]{w: ws, store: store, records: records, f: f, emitFinal: emitFinal, idle: idle}
		}, src.node)
		b.topo.AddStore(spec, proc)
		b.topo.AddStore(rspec, proc)
		outKey = TimeWindowedSerde(g.key, ws.diff)
	}
	return Table[Windowed[K], A]{b: b, node: node, key: outKey, value: aggSerde, store: store}
}

// windowClock is what every windowed processor shares: its stream time, the wall-clock idle
// close, and the punctuations that let it close windows without a new record.
type windowClock struct {
	observed   int64 // ms, math.MinInt64 before the first record
	lastRecord time.Time
	idle       time.Duration
}

// start schedules the punctuations: on stream time (so a driver advancing it closes windows) and,
// with an idle close, on the wall clock. tick closes what the (new) stream time closes; persist
// then hands the new stream time to the stores, whose checkpoints keep it, so a restart does not
// reopen windows that only a punctuation closed (their final results were emitted).
func (c *windowClock) start(ctx topology.ProcessorContext, stored time.Time, every time.Duration, tick func() error, persist ...func(time.Time)) error {
	c.observed = math.MinInt64
	if ms := stored.UnixMilli(); ms > 0 {
		c.observed = ms
	}
	c.lastRecord = ctx.WallClock()
	ticked := func() error {
		if err := tick(); err != nil {
			return err
		}
		if c.observed != math.MinInt64 {
			for _, p := range persist {
				p(time.UnixMilli(c.observed))
			}
		}
		return nil
	}
	if _, err := ctx.Schedule(max(every, time.Millisecond), topology.StreamTime, func(ts time.Time) error {
		c.see(ts.UnixMilli())
		return ticked()
	}); err != nil {
		return err
	}
	if c.idle > 0 {
		if _, err := ctx.Schedule(max(c.idle/2, time.Millisecond), topology.WallClockTime, func(now time.Time) error {
			quiet := now.Sub(c.lastRecord)
			if quiet < c.idle || c.observed == math.MinInt64 {
				return nil
			}
			c.observed += quiet.Milliseconds()
			c.lastRecord = now
			return ticked()
		}); err != nil {
			return err
		}
	}
	return nil
}

func (c *windowClock) see(ts int64) {
	if ts > c.observed {
		c.observed = ts
	}
}

func (c *windowClock) record(ctx topology.ProcessorContext, ts int64) {
	c.see(ts)
	c.lastRecord = ctx.WallClock()
}

// timeWindowAgg aggregates into tumbling or hopping windows (Kafka Streams' KStreamWindowAggregate).
type timeWindowAgg[K, V, A any] struct {
	w         TimeWindows
	store     string
	f         func(K, V, A, bool) (A, error)
	emitFinal bool
	idle      time.Duration

	ws       state.TableWindowStore[K, A]
	ctx      topology.Context[Windowed[K], Change[A]]
	clock    windowClock
	emitted  int64 // windows with a start up to this were emitted (final mode)
	anyEmits bool
}

func (p *timeWindowAgg[K, V, A]) Init(ctx topology.Context[Windowed[K], Change[A]]) error {
	p.ctx = ctx
	s, err := ctx.StateStore(p.store)
	if err != nil {
		return err
	}
	ws, ok := s.(state.TableWindowStore[K, A])
	if !ok {
		return fmt.Errorf("stream: store %q is a %T, not a window store of the expected types", p.store, s)
	}
	p.ws = ws
	size := p.w.size.Milliseconds()
	if !p.emitFinal {
		ws.SetFlushListener(func(f state.WindowFlushed[K, A]) error {
			return ctx.Forward(topology.Record[Windowed[K], Change[A]]{Timestamp: f.Timestamp, Headers: f.Headers,
				Key:   Windowed[K]{Key: f.Key, Start: f.Start, End: f.Start.Add(time.Duration(size) * time.Millisecond)},
				Value: Change[A]{New: f.New, HasNew: f.HasNew, Old: f.Old, HasOld: f.HasOld}})
		})
	}
	p.clock.idle = p.idle
	return p.clock.start(ctx, ws.Observed(), p.w.advance, p.maybeEmit, ws.AdvanceObserved)
}

func (p *timeWindowAgg[K, V, A]) Process(r Record[K, V]) error {
	if r.KeyIsNull() {
		p.ctx.Logger().Debug("windowed aggregation: skipping a record without a key", "offset", r.Origin.Offset)
		return nil
	}
	ts := r.Timestamp.UnixMilli()
	p.clock.record(p.ctx, ts)
	// Emit what this record's time closes before applying it: the window store's retention
	// (size + grace) keeps every window visible until then.
	if err := p.maybeEmit(); err != nil {
		return err
	}
	closeTime := p.clock.observed - p.w.grace.Milliseconds()
	size := p.w.size.Milliseconds()
	accepted := false
	for _, start := range p.w.starts(ts) {
		end := start + size
		if end <= closeTime {
			continue // this window closed: the record is late for it
		}
		accepted = true
		st := time.UnixMilli(start)
		old, oldTS, has, err := p.ws.Fetch(r.Key, st)
		if err != nil {
			return err
		}
		agg, err := p.f(r.Key, r.Value, old, has)
		if err != nil {
			return err
		}
		at := r.Timestamp
		if has && oldTS.After(at) {
			at = oldTS
		}
		if err := p.ws.PutAt(r.Key, st, agg, at); err != nil {
			return err
		}
		if !p.emitFinal && !p.ws.Caching() {
			out := topology.Derive(r, Windowed[K]{Key: r.Key, Start: st, End: time.UnixMilli(end)}, Change[A]{New: agg, HasNew: true, Old: old, HasOld: has})
			if err := p.ctx.Forward(out.WithTimestamp(at)); err != nil {
				return err
			}
		}
	}
	if !accepted {
		return p.ctx.SkipRecord(topology.StageLate, fmt.Errorf("late record at %d: its windows closed (stream time %d, grace %v)",
			ts, p.clock.observed, p.w.grace))
	}
	return nil
}

// maybeEmit forwards, in final mode, every window that closed since the last emission, and
// deletes it.
func (p *timeWindowAgg[K, V, A]) maybeEmit() error {
	if !p.emitFinal || p.clock.observed == math.MinInt64 {
		return nil
	}
	size := p.w.size.Milliseconds()
	upper := p.clock.observed - p.w.grace.Milliseconds() - size // starts up to here are closed
	lower := int64(0)
	if p.anyEmits {
		lower = p.emitted + 1
	}
	if upper < lower {
		return nil
	}
	// Window starts lie on a grid of the advance. Stream time moves a little with almost every
	// record, but a window closes only when it crosses a grid start: search the store (a scan of
	// the segments in range) only then, not once per record, which made final results quadratic
	// in the number of records per segment.
	if adv := p.w.advance.Milliseconds(); adv > 0 && floorDiv(upper, adv) == floorDiv(lower-1, adv) {
		p.emitted, p.anyEmits = upper, true // no grid start in [lower, upper]: nothing to close
		return nil
	}
	return emitClosed(p.ctx, p.ws, lower, upper, size, func() { p.emitted, p.anyEmits = upper, true })
}

// floorDiv is a / b rounded down (b > 0), also for negative a.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// emitClosed forwards the windows with a start in [lower, upper] as final results (end = start +
// span) and deletes them.
func emitClosed[K, A any](ctx topology.Context[Windowed[K], Change[A]], ws state.TableWindowStore[K, A], lower, upper, span int64, done func()) error {
	it, err := ws.FetchAll(time.UnixMilli(lower), time.UnixMilli(upper))
	if err != nil {
		return err
	}
	type closed struct {
		k     K
		start time.Time
		v     A
		ts    time.Time
	}
	var all []closed
	for it.Next() {
		all = append(all, closed{k: it.Key(), start: it.Start(), v: it.Value(), ts: it.Timestamp()})
	}
	err = it.Err()
	it.Close()
	if err != nil {
		return err
	}
	// Oldest windows first.
	sort.SliceStable(all, func(i, j int) bool { return all[i].start.Before(all[j].start) })
	for _, c := range all {
		rec := topology.Record[Windowed[K], Change[A]]{Timestamp: c.ts,
			Key:   Windowed[K]{Key: c.k, Start: c.start, End: c.start.Add(time.Duration(span) * time.Millisecond)},
			Value: Change[A]{New: c.v, HasNew: true}}
		if err := ctx.Forward(rec); err != nil {
			return err
		}
		if err := ws.Delete(c.k, c.start); err != nil {
			return err
		}
	}
	done()
	return nil
}

func (p *timeWindowAgg[K, V, A]) Close() error { return nil }

// slidingWindowAgg aggregates into sliding windows (Kafka Streams' KStreamSlidingWindowAggregate
// semantics). It keeps the records of the last 2d + grace to build new windows; existing windows
// fold new records in as they come.
type slidingWindowAgg[K, V, A any] struct {
	w         SlidingWindows
	store     string
	records   string
	f         func(K, V, A, bool) (A, error)
	emitFinal bool
	idle      time.Duration

	ws       state.TableWindowStore[K, A]
	rs       state.TableWindowStore[K, []V]
	ctx      topology.Context[Windowed[K], Change[A]]
	clock    windowClock
	emitted  int64
	anyEmits bool
}

func (p *slidingWindowAgg[K, V, A]) Init(ctx topology.Context[Windowed[K], Change[A]]) error {
	p.ctx = ctx
	s, err := ctx.StateStore(p.store)
	if err != nil {
		return err
	}
	var ok bool
	if p.ws, ok = s.(state.TableWindowStore[K, A]); !ok {
		return fmt.Errorf("stream: store %q is a %T, not a window store of the expected types", p.store, s)
	}
	rs, err := ctx.StateStore(p.records)
	if err != nil {
		return err
	}
	if p.rs, ok = rs.(state.TableWindowStore[K, []V]); !ok {
		return fmt.Errorf("stream: store %q is a %T, not a record store of the expected types", p.records, rs)
	}
	d := p.w.diff
	if !p.emitFinal {
		p.ws.SetFlushListener(func(f state.WindowFlushed[K, A]) error {
			return ctx.Forward(topology.Record[Windowed[K], Change[A]]{Timestamp: f.Timestamp, Headers: f.Headers,
				Key:   Windowed[K]{Key: f.Key, Start: f.Start, End: f.Start.Add(d)},
				Value: Change[A]{New: f.New, HasNew: f.HasNew, Old: f.Old, HasOld: f.HasOld}})
		})
	}
	p.clock.idle = p.idle
	return p.clock.start(ctx, p.ws.Observed(), d, p.maybeEmit, p.ws.AdvanceObserved, p.rs.AdvanceObserved)
}

type timedValues[V any] struct {
	ts   int64
	vals []V
}

func (p *slidingWindowAgg[K, V, A]) Process(r Record[K, V]) error {
	if r.KeyIsNull() || r.ValueIsNull() {
		p.ctx.Logger().Debug("sliding windows: skipping a record with a null key or value", "offset", r.Origin.Offset)
		return nil
	}
	t := r.Timestamp.UnixMilli()
	d := p.w.diff.Milliseconds()
	p.clock.record(p.ctx, t)
	if err := p.maybeEmit(); err != nil { // before applying the record, as for time windows
		return err
	}
	closeTime := p.clock.observed - p.w.grace.Milliseconds()
	if t+d < closeTime {
		return p.ctx.SkipRecord(topology.StageLate, fmt.Errorf("late record at %d: its windows closed (stream time %d, grace %v)",
			t, p.clock.observed, p.w.grace))
	}
	vals, _, _, err := p.rs.Fetch(r.Key, r.Timestamp)
	if err != nil {
		return err
	}
	if err := p.rs.Put(r.Key, r.Timestamp, append(vals, r.Value)); err != nil {
		return err
	}
	// The records around t decide which windows exist near it.
	near, err := p.recordsIn(r.Key, t-2*d-1, t+2*d+1)
	if err != nil {
		return err
	}
	has := func(lo, hi int64) bool { // a record in [lo, hi]?
		i := sort.Search(len(near), func(i int) bool { return near[i].ts >= lo })
		return i < len(near) && near[i].ts <= hi
	}
	// Candidate window starts: left windows of records in [t, t+d] (they contain t), right
	// windows of records in [t-d-1, t-1] (they contain t), and t's own right window.
	cands := map[int64]bool{}
	for _, n := range near {
		if n.ts >= t && n.ts <= t+d {
			cands[max(0, n.ts-d)] = true
		}
		if n.ts >= t-d-1 && n.ts <= t-1 && has(n.ts+1, n.ts+1+d) {
			cands[n.ts+1] = true
		}
	}
	if has(t+1, t+1+d) {
		cands[t+1] = true
	}
	starts := make([]int64, 0, len(cands))
	for s := range cands {
		starts = append(starts, s)
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i] < starts[j] })
	for _, s := range starts {
		end := s + d
		if end < closeTime {
			continue // closed: Kafka Streams does not update it either
		}
		st := time.UnixMilli(s)
		old, oldTS, exists, err := p.ws.Fetch(r.Key, st)
		if err != nil {
			return err
		}
		var agg A
		at := r.Timestamp
		switch {
		case exists && s <= t:
			// An existing window that contains t folds the new record in.
			if agg, err = p.f(r.Key, r.Value, old, true); err != nil {
				return err
			}
			if oldTS.After(at) {
				at = oldTS
			}
		case exists:
			continue // t's right window, already there: t is not in it
		default:
			// A new window: fold its records in timestamp order.
			first := true
			var latest int64
			for _, n := range near {
				if n.ts < s || n.ts > end {
					continue
				}
				for _, v := range n.vals {
					if agg, err = p.f(r.Key, v, agg, !first); err != nil {
						return err
					}
					first = false
				}
				latest = n.ts
			}
			at = time.UnixMilli(latest)
		}
		if err := p.ws.PutAt(r.Key, st, agg, at); err != nil {
			return err
		}
		if !p.emitFinal && !p.ws.Caching() {
			out := topology.Derive(r, Windowed[K]{Key: r.Key, Start: st, End: time.UnixMilli(end)}, Change[A]{New: agg, HasNew: true, Old: old, HasOld: exists})
			if err := p.ctx.Forward(out.WithTimestamp(at)); err != nil {
				return err
			}
		}
	}
	return p.maybeEmit()
}

func (p *slidingWindowAgg[K, V, A]) recordsIn(key K, lo, hi int64) ([]timedValues[V], error) {
	it, err := p.rs.FetchRange(key, time.UnixMilli(max(lo, 0)), time.UnixMilli(hi))
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []timedValues[V]
	for it.Next() {
		out = append(out, timedValues[V]{ts: it.Start().UnixMilli(), vals: it.Value()})
	}
	return out, it.Err()
}

// maybeEmit forwards, in final mode, every sliding window that closed (its end before stream time
// minus grace) since the last emission, and deletes it.
func (p *slidingWindowAgg[K, V, A]) maybeEmit() error {
	if !p.emitFinal || p.clock.observed == math.MinInt64 {
		return nil
	}
	d := p.w.diff.Milliseconds()
	upper := p.clock.observed - p.w.grace.Milliseconds() - d - 1
	lower := int64(0)
	if p.anyEmits {
		lower = p.emitted + 1
	}
	if upper < lower {
		return nil
	}
	return emitClosed(p.ctx, p.ws, lower, upper, d, func() { p.emitted, p.anyEmits = upper, true })
}

func (p *slidingWindowAgg[K, V, A]) Close() error { return nil }
