package topology

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime/debug"
	"time"
	"unsafe"

	"github.com/rifflestream/riffle/internal/strs"
	"github.com/rifflestream/riffle/serde"
)

// receiver is a runtime node that takes Record[K, V]: a processor or a sink.
//
// The record is the caller's and valid only during the call: a receiver that keeps it copies it.
// Passing it by pointer saves a copy of the record per node and per call.
type receiver[K, V any] interface {
	process(rec *Record[K, V]) error
}

// Panics in a node's code (user functions, serdes) are recovered at guards, not in every node: a
// deferred recover in each node of a record's path was ~45 instructions per node and record
// (bench/PROFILE.md, thirteenth round). Each node marks itself running (Task.running) as it
// starts a record; a guard turns a panic below it into the failure of the node that was running,
// for that node's stage handler (Task.recovered), and returns what the handler decided, as the
// node would have with an error.
//
// Guards stand where the code above goes on after a child returns: the source (the root, for
// the whole record), each child of a node with several (forward), and Forward and ForwardTo (a
// processor's code runs on after them). Between two guards, every node hands the record to its
// only child as its last act, so a panic unwinds nothing that would have run after the failed
// node's handled error: what is skipped, and what goes on, is what it was with a recover in each
// node.

// guarded passes rec to c under a guard (see above).
func guarded[K, V any](t *Task, c receiver[K, V], rec *Record[K, V]) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = t.recovered(r)
		}
	}()
	return c.process(rec)
}

// forward passes rec to a node's children, as the node's last act: an only child directly (a
// panic goes up to the guard above the node), several each under a guard, so that a panic in
// one does not keep the record from the next.
func forward[K, V any](t *Task, children []receiver[K, V], rec *Record[K, V]) error {
	if len(children) == 1 {
		return children[0].process(rec)
	}
	for _, c := range children {
		if err := guarded(t, c, rec); err != nil {
			return err // a descendant's failure, already handled
		}
	}
	return nil
}

// rawReceiver is a source node's runtime.
type rawReceiver interface {
	processRaw(raw *RawRecord) error
}

// lifecycle is a processor node's runtime.
type lifecycle interface {
	init() error
	close() error
}

// sourceNode deserializes input records, extracts their timestamp, advances stream time and
// forwards them.
type sourceNode[K, V any] struct {
	name      string
	task      *Task
	id        int32 // in the task's nodes (Task.addNode)
	key       serde.Serde[K]
	value     serde.Serde[V]
	extractor TimestampExtractor[K, V]
	children  []receiver[K, V]
	partTime  map[string]int64 // per topic: the largest timestamp extracted (for extractors)
	// rec is the record being forwarded (see receiver): a field, so that passing its address
	// to the children does not move it to the heap.
	rec Record[K, V]

	keyNullAware, valueNullAware bool
	// keyBytes and valueBytes: the serde is serde.Bytes() (see isBytesSerde), so K (V) is []byte
	// and the raw bytes are the deserialized key (value), stored without the interface call.
	keyBytes, valueBytes bool
}

// isBytesSerde reports whether s is serde.Bytes(), whose Deserialize returns its input and whose
// Serialize returns its input or, for nil, an empty slice: a node holding it for a Serde[T] knows
// T is []byte. (Interfaces of different dynamic types compare unequal without comparing values,
// so a serde of an incomparable type is safe here.)
func isBytesSerde(s any) bool { return s == any(serde.Bytes()) }

// asBytes returns *v as the []byte it is: only for a T known to be []byte (isBytesSerde).
func asBytes[T any](v *T) *[]byte { return (*[]byte)(unsafe.Pointer(v)) }

func nullAware(s any) bool {
	na, ok := s.(serde.NullAware)
	return ok && na.HandlesNull()
}

// setHeaders stores h into *dst unless both are nil, and setOrigin stores an origin, its topic
// only when it differs: the record a node forwards lives in the node (see sourceNode.rec), so
// each pointer stored into it costs a write barrier while the garbage collector marks, and
// records of one partition have the same topic and, mostly, no headers. (The generic nodes call
// them rather than inline them: seen in their disassembly with Go 1.26.)
func setHeaders(dst *Headers, h Headers) {
	if h != nil || *dst != nil {
		*dst = h
	}
}

func setOrigin(dst *Origin, topic string, partition int32, offset int64) {
	if !strs.Same(dst.Topic, topic) {
		dst.Topic = topic
	}
	dst.Partition, dst.Offset = partition, offset
}

func (s *sourceNode[K, V]) processRaw(raw *RawRecord) (err error) {
	// The record's root guard (see guarded): a panic here, or in the nodes downstream up to the
	// next guard, is the failure of the node that was running.
	defer func() {
		if r := recover(); r != nil {
			err = s.task.recovered(r)
		}
	}()
	s.task.running = s.id
	// Field by field, not a composite literal: assigning a whole Record zeroes and copies it
	// with write barriers for every pointer in it, on every record; the topic and the headers
	// only when they change (setHeaders, setOrigin).
	rec := &s.rec
	rec.Timestamp, rec.flags = raw.Timestamp, 0
	setHeaders(&rec.Headers, raw.Headers)
	setOrigin(&rec.Origin, raw.Topic, raw.Partition, raw.Offset)
	// Kafka null is "no value" (the zero value, flagged), except for a serde that gives null a
	// value of its own (serde.NullAware, e.g. serde.Nullable): it decodes null like any bytes.
	if raw.Key == nil {
		rec.flags |= nullKey
	}
	if s.keyBytes {
		*asBytes(&rec.Key) = raw.Key
	} else if raw.Key != nil || s.keyNullAware {
		if rec.Key, err = s.key.Deserialize(raw.Topic, raw.Key); err != nil {
			return s.task.fail(StageDeserialize, s.name, fmt.Errorf("key: %w", err), false, "")
		}
	} else {
		var zero K
		rec.Key = zero
	}
	if raw.Value == nil {
		rec.flags |= nullValue
	}
	if s.valueBytes {
		*asBytes(&rec.Value) = raw.Value
	} else if raw.Value != nil || s.valueNullAware {
		if rec.Value, err = s.value.Deserialize(raw.Topic, raw.Value); err != nil {
			return s.task.fail(StageDeserialize, s.name, fmt.Errorf("value: %w", err), false, "")
		}
	} else {
		var zero V
		rec.Value = zero
	}
	ms := raw.Timestamp.UnixMilli()
	if s.extractor != nil {
		if s.partTime == nil {
			s.partTime = map[string]int64{}
		}
		pt, ok := s.partTime[raw.Topic]
		ptime := time.Time{}
		if ok {
			ptime = time.UnixMilli(pt)
		}
		ts, err := s.extractor(rec.Key, rec.Value, raw.Timestamp, ptime)
		if err != nil {
			return s.task.fail(StageDeserialize, s.name, fmt.Errorf("timestamp extractor: %w", err), false, "")
		}
		rec.Timestamp = ts
		ms = ts.UnixMilli()
		if !ok || ms > pt {
			s.partTime[raw.Topic] = ms
		}
	}
	if ms < 0 {
		return s.task.fail(StageDeserialize, s.name, fmt.Errorf("invalid timestamp %d: negative (a record without a timestamp?); set a timestamp extractor", ms), false, "")
	}
	s.task.advanceStreamTime(ms)
	s.task.currentTS = ms
	return forward(s.task, s.children, rec)
}

// processorNode runs a user or DSL processor, turning its errors and panics into handled
// RecordErrors.
type processorNode[KIn, VIn, KOut, VOut any] struct {
	name string
	task *Task
	id   int32 // in the task's nodes (Task.addNode)
	proc Processor[KIn, VIn, KOut, VOut]
	ctx  *nodeContext[KOut, VOut]
}

// process runs the processor on rec. A panic in it goes up to the guard above (see guarded).
func (n *processorNode[KIn, VIn, KOut, VOut]) process(rec *Record[KIn, VIn]) error {
	n.task.running = n.id
	if err := n.proc.Process(*rec); err != nil {
		if isFatal(err) {
			return err // a descendant's failure, already handled
		}
		return n.task.fail(StageProcess, n.name, err, false, "")
	}
	return nil
}

func (n *processorNode[KIn, VIn, KOut, VOut]) init() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("processor %q panicked in Init: %v\n%s", n.name, r, debug.Stack())
		}
	}()
	if err := n.proc.Init(n.ctx); err != nil {
		return fmt.Errorf("processor %q: Init: %w", n.name, err)
	}
	return nil
}

func (n *processorNode[KIn, VIn, KOut, VOut]) close() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("processor %q panicked in Close: %v", n.name, r)
		}
	}()
	if err := n.proc.Close(); err != nil {
		return fmt.Errorf("processor %q: Close: %w", n.name, err)
	}
	return nil
}

// nodeContext is the Context a processor gets.
type nodeContext[K, V any] struct {
	task       *Task
	node       string
	id         int32 // the processor node's, in the task's nodes
	stores     []string
	children   []receiver[K, V]
	childNames []string
	log        *slog.Logger
	// fwd is the record being forwarded (see receiver and sourceNode.rec).
	fwd Record[K, V]
}

func (c *nodeContext[K, V]) AppID() string        { return c.task.plan.AppID }
func (c *nodeContext[K, V]) TaskID() TaskID       { return c.task.id }
func (c *nodeContext[K, V]) NodeName() string     { return c.node }
func (c *nodeContext[K, V]) RequestCommit()       { c.task.commitRequested = true }
func (c *nodeContext[K, V]) WallClock() time.Time { return c.task.clock() }

func (c *nodeContext[K, V]) StreamTime() time.Time {
	if c.task.streamTime == math.MinInt64 {
		return time.Time{}
	}
	return time.UnixMilli(c.task.streamTime)
}

func (c *nodeContext[K, V]) Logger() *slog.Logger {
	if c.log == nil {
		c.log = c.task.log.With("node", c.node)
	}
	return c.log
}

func (c *nodeContext[K, V]) Schedule(interval time.Duration, kind PunctuationType, fn Punctuator) (func(), error) {
	return c.task.addSchedule(c.node, interval, kind, fn)
}

func (c *nodeContext[K, V]) StateStore(name string) (StateStore, error) {
	if !contains(c.stores, name) {
		return nil, fmt.Errorf("topology: processor %q is not connected to store %q (connected: %v)", c.node, name, c.stores)
	}
	s, ok := c.task.stores[name]
	if !ok {
		return nil, fmt.Errorf("topology: task %s has no open store %q", c.task.id, name)
	}
	return s, nil
}

func (c *nodeContext[K, V]) SkipRecord(stage Stage, reason error) error {
	return c.task.fail(stage, c.node, reason, false, "")
}

func (c *nodeContext[K, V]) Forward(rec Record[K, V]) error {
	if !c.task.inRecord {
		// A record from a punctuation or a store flush: stores downstream stamp writes with it.
		prev := c.task.currentTS
		c.task.currentTS = rec.Timestamp.UnixMilli()
		defer func() { c.task.currentTS = prev }()
	}
	// Each child under a guard: the processor's code goes on after Forward returns, so a panic
	// downstream must not unwind it (see guarded). The processor's node is running again when
	// Forward returns to its code.
	c.fwd = rec
	var err error
	for _, ch := range c.children {
		if err = guarded(c.task, ch, &c.fwd); err != nil {
			break
		}
	}
	c.task.running = c.id
	return err
}

func (c *nodeContext[K, V]) ForwardTo(child string, rec Record[K, V]) error {
	if !c.task.inRecord {
		prev := c.task.currentTS
		c.task.currentTS = rec.Timestamp.UnixMilli()
		defer func() { c.task.currentTS = prev }()
	}
	for i, name := range c.childNames {
		if name == child {
			c.fwd = rec
			err := guarded(c.task, c.children[i], &c.fwd)
			c.task.running = c.id
			return err
		}
	}
	return fmt.Errorf("topology: processor %q has no child %q (children: %v)", c.node, child, c.childNames)
}

// sinkNode serializes records and hands them to the task's collector.
type sinkNode[K, V any] struct {
	name        string
	task        *Task
	id          int32  // in the task's nodes (Task.addNode)
	topic       string // short name; resolved per task
	realTopic   string
	choose      TopicChooser[K, V]
	key         serde.Serde[K]
	value       serde.Serde[V]
	partitioner Partitioner[K, V]
	// keyApp and valueApp are key and value as serde.Appenders, when they are: the sink then
	// encodes into the task's output buffer (see appendTo).
	keyApp   serde.Appender[K]
	valueApp serde.Appender[V]
	// keyBytes and valueBytes: see sourceNode.keyBytes.
	keyBytes, valueBytes bool
	// out is the record sent, reused (see Collector.Send).
	out OutRecord
}

// bytesSerialized is what serde.Bytes().Serialize returns for b: b, or an empty slice for nil (a
// record not flagged null has a value, even an empty one).
func bytesSerialized(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func newSinkNode[K, V any](s *sinkNode[K, V]) *sinkNode[K, V] {
	s.keyApp, _ = s.key.(serde.Appender[K])
	s.valueApp, _ = s.value.(serde.Appender[V])
	s.keyBytes, s.valueBytes = isBytesSerde(s.key), isBytesSerde(s.value)
	return s
}

// serializeKey and serializeValue take the key or value by pointer: a typed value (88 bytes in
// the q1 benchmark) is then copied once, into the serde's call, not once per function on the way.
func (s *sinkNode[K, V]) serializeKey(topic string, k *K) ([]byte, error) {
	if s.keyBytes {
		return bytesSerialized(*asBytes(k)), nil
	}
	if s.keyApp != nil {
		return appendTo(s.task, s.keyApp, topic, k)
	}
	return s.key.Serialize(topic, *k)
}

func (s *sinkNode[K, V]) serializeValue(topic string, v *V) ([]byte, error) {
	if s.valueBytes {
		return bytesSerialized(*asBytes(v)), nil
	}
	if s.valueApp != nil {
		return appendTo(s.task, s.valueApp, topic, v)
	}
	return s.value.Serialize(topic, *v)
}

// process serializes rec and sends it. A panic in it (a serde, the topic chooser, the
// partitioner) goes up to the guard above (see guarded).
func (s *sinkNode[K, V]) process(rec *Record[K, V]) error {
	s.task.running = s.id
	return s.emit(&rec.Key, &rec.Value, rec.flags, rec.Timestamp, rec.Headers, rec)
}

// emit serializes and sends a record of key *k and value *v. rec is the whole record, for a topic
// chooser; nil when a mapValues node sends its result straight to the sink (mapValuesNode.sink),
// which it does only for a sink without one.
func (s *sinkNode[K, V]) emit(k *K, v *V, flags recordFlags, ts time.Time, headers Headers, rec *Record[K, V]) (err error) {
	topic := s.realTopic
	if topic == "" {
		if s.choose == nil {
			topic = s.task.plan.RealTopic(s.topic)
			s.realTopic = topic
		} else if topic, err = s.choose(*rec); err != nil || topic == "" {
			if err == nil {
				err = errors.New("the topic chooser returned an empty topic")
			}
			return s.task.fail(StageSerialize, s.name, fmt.Errorf("choosing the topic: %w", err), false, "")
		}
	}
	// The flags, not KeyIsNull and ValueIsNull: a method with a value receiver on a generic record
	// copied the whole record (a typed value of 80 bytes in q1) to the stack for each call.
	var key, value []byte
	if flags&nullKey == 0 {
		if key, err = s.serializeKey(topic, k); err != nil {
			return s.task.fail(StageSerialize, s.name, fmt.Errorf("key for topic %q: %w", topic, err), false, "")
		}
	}
	if flags&nullValue == 0 {
		if value, err = s.serializeValue(topic, v); err != nil {
			return s.task.fail(StageSerialize, s.name, fmt.Errorf("value for topic %q: %w", topic, err), false, "")
		}
	}
	partition := int32(-1)
	if s.partitioner != nil {
		n, err := s.task.collector.PartitionCount(topic)
		if err != nil {
			return s.task.fail(StageSerialize, s.name, fmt.Errorf("partition count of %q: %w", topic, err), false, "")
		}
		p := s.partitioner(topic, *k, *v, n)
		if p >= n || p < -1 {
			return s.task.fail(StageSerialize, s.name, fmt.Errorf("partitioner chose partition %d of topic %q, which has %d", p, topic, n), false, "")
		}
		partition = p
	}
	// Field by field into the node's record (see Collector.Send), the topic only when it is
	// another string (internal/strs.Same).
	o := &s.out
	if !strs.Same(o.Topic, topic) {
		o.Topic = topic
	}
	o.Partition, o.Key, o.Value, o.Timestamp = partition, key, value, ts
	if o.Headers != nil || headers != nil {
		o.Headers = headers
	}
	s.task.collector.Send(o)
	return nil
}

// filterNode is a stateless filter (AddFilter): the record goes on to the children, or not,
// without the copies into a Processor and through its Context that a ProcessorFunc costs.
type filterNode[K, V any] struct {
	name     string
	task     *Task
	id       int32 // in the task's nodes (Task.addNode)
	keep     func(K, V) bool
	children []receiver[K, V]
}

func (n *filterNode[K, V]) process(rec *Record[K, V]) error {
	n.task.running = n.id
	if !n.keep(rec.Key, rec.Value) {
		return nil
	}
	return forward(n.task, n.children, rec)
}

// mapValuesNode is a stateless value mapping (AddMapValues, AddMapValuesOnly), see filterNode.
type mapValuesNode[K, V, V2 any] struct {
	name     string
	task     *Task
	id       int32                  // in the task's nodes (Task.addNode)
	f        func(K, V) (V2, error) // one of f and fv is set
	fv       func(V) (V2, error)
	children []receiver[K, V2]
	out      Record[K, V2] // the record forwarded (see sourceNode.rec)
	// sink is the only child when it is a sink without a topic chooser (a stateless pipeline's
	// usual end): the mapped value goes to it from the stack, not through out. Copying a typed
	// value (88 bytes in the q1 benchmark) into the node's record cost a write barrier per
	// pointer in it while the collector marks, besides the copy and the forwarding call.
	sink *sinkNode[K, V2]
}

// fuseSink sets n.sink when n's only child is a sink it may send to directly.
func (n *mapValuesNode[K, V, V2]) fuseSink() {
	if len(n.children) != 1 {
		return
	}
	if s, ok := n.children[0].(*sinkNode[K, V2]); ok && s.choose == nil {
		n.sink = s
	}
}

func (n *mapValuesNode[K, V, V2]) process(rec *Record[K, V]) error {
	n.task.running = n.id
	if n.sink != nil {
		var v V2
		if err := n.mapInto(&v, rec); err != nil {
			return n.task.fail(StageProcess, n.name, err, false, "")
		}
		// As forwarding to the sink would (DeriveValue, then the sink's process); the
		// record's origin is the task's, which the sink does not read.
		n.sink.task.running = n.sink.id
		return n.sink.emit(&rec.Key, &v, rec.flags&nullKey, rec.Timestamp, rec.Headers, nil)
	}
	// The new value goes straight into the forwarded record: a typed value (80 bytes in the q1
	// benchmark) is copied once less than through a local.
	o := &n.out
	if err := n.mapInto(&o.Value, rec); err != nil {
		return n.task.fail(StageProcess, n.name, err, false, "")
	}
	// DeriveValue, field by field (see sourceNode.processRaw).
	o.Key, o.Timestamp, o.flags = rec.Key, rec.Timestamp, rec.flags&nullKey
	setHeaders(&o.Headers, rec.Headers)
	setOrigin(&o.Origin, rec.Origin.Topic, rec.Origin.Partition, rec.Origin.Offset)
	return forward(n.task, n.children, o)
}

// mapInto sets *dst to rec's mapped value, and returns the function's error.
func (n *mapValuesNode[K, V, V2]) mapInto(dst *V2, rec *Record[K, V]) (err error) {
	if n.fv != nil {
		*dst, err = n.fv(rec.Value)
	} else {
		*dst, err = n.f(rec.Key, rec.Value)
	}
	return err
}
