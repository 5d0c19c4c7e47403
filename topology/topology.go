package topology

import (
	"errors"
	"fmt"
	"regexp"
	"sync"
	"time"

	"github.com/rifflestream/riffle/serde"
)

// Topology is a graph of source, processor and sink nodes, declared with AddSource, AddProcessor
// and AddSink (or built by package stream's DSL). Declaration mistakes do not panic: they are
// collected and returned, joined and naming the node, by Err, and by every driver that would run
// the topology. A topology is sealed the first time a driver compiles it; later additions fail.
//
// A Topology is safe to share between drivers once sealed: each task builds its own processor
// instances from the node suppliers.
type Topology struct {
	mu     sync.Mutex
	nodes  []*nodeDef // in the order they were added
	byName map[string]*nodeDef
	stores map[string]*storeDef
	// internal (repartition) topics by name without the application id prefix
	internal   map[string]*InternalTopic
	copartners [][]string // groups of source topics that must have equal partition counts
	errs       []error
	sealed     bool
	compiled   *compiled
}

// New returns an empty topology.
func New() *Topology {
	return &Topology{byName: map[string]*nodeDef{}, stores: map[string]*storeDef{}, internal: map[string]*InternalTopic{}}
}

// Node is a typed handle on a node whose records are Record[K, V]: what AddSource and
// AddProcessor return and what AddProcessor and AddSink take as parents. The zero Node is not a
// node; using one is a declaration error.
type Node[K, V any] struct {
	def *nodeDef
}

// Name returns the node's name ("" for the zero Node).
func (n Node[K, V]) Name() string {
	if n.def == nil {
		return ""
	}
	return n.def.name
}

// Valid reports whether n refers to a node.
func (n Node[K, V]) Valid() bool { return n.def != nil }

type nodeKind int

const (
	sourceKind nodeKind = iota
	processorKind
	sinkKind
)

func (k nodeKind) String() string {
	switch k {
	case sourceKind:
		return "source"
	case processorKind:
		return "processor"
	}
	return "sink"
}

// nodeDef is the untyped description of a node; typed behaviour lives in its closures.
type nodeDef struct {
	name     string
	kind     nodeKind
	parents  []*nodeDef
	children []*nodeDef
	stores   []string

	// sources
	topics []string
	source sourceInfo

	// sinks
	topic          string // static topic, or "" with topicExtractor set
	topicExtractor string // description of the dynamic topic chooser

	// instantiate builds this node's runtime for a task. children are already built and held in
	// built by name. It returns the runtime node: a rawReceiver for sources, a receiver[K,V] of
	// the node's input type otherwise.
	instantiate func(t *Task, built map[string]any) (any, error)
}

type sourceInfo struct {
	reset OffsetReset
}

// OffsetReset says where a source starts when its consumer group has no committed offset.
type OffsetReset int

const (
	// ResetDefault uses the application's setting (which defaults to ResetEarliest).
	ResetDefault OffsetReset = iota
	// ResetEarliest starts at the beginning of each partition (Kafka Streams' default).
	ResetEarliest
	// ResetLatest starts at the end: only records written after the app starts are read.
	ResetLatest
)

func (r OffsetReset) String() string {
	switch r {
	case ResetEarliest:
		return "earliest"
	case ResetLatest:
		return "latest"
	}
	return "default"
}

// InternalTopic is a topic the topology owns (a repartition topic), created by the runtime.
type InternalTopic struct {
	// Name as declared, without the application id: the real topic is "<appID>-<Name>". (In a
	// Plan's InternalTopics, Name is the real name.)
	Name string
	// Partitions is the partition count, or 0 to use the largest partition count of the
	// source topics of the sub-topology that writes to it (Kafka Streams' rule).
	Partitions int32
	// Configs are topic configs for creation (cleanup.policy, retention, ...).
	Configs map[string]string
}

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)

func (t *Topology) addErr(format string, args ...any) {
	t.errs = append(t.errs, fmt.Errorf("topology: "+format, args...))
}

// AddError records a declaration error; package stream uses it to report DSL misuse. The error
// is returned by Err and by drivers.
func (t *Topology) AddError(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.errs = append(t.errs, err)
}

// add registers a node with its parents. It returns nil (and records an error) if the node
// cannot be added.
func (t *Topology) add(def *nodeDef, parents []*nodeDef) *nodeDef {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sealed {
		t.addErr("cannot add %s %q: the topology is already built", def.kind, def.name)
		return nil
	}
	if def.name == "" {
		t.addErr("a %s node needs a name", def.kind)
		return nil
	}
	if !nameRE.MatchString(def.name) {
		t.addErr("%s name %q: use only letters, digits, '.', '_' and '-'", def.kind, def.name)
		return nil
	}
	if _, dup := t.byName[def.name]; dup {
		t.addErr("%s %q: a node with this name already exists", def.kind, def.name)
		return nil
	}
	if def.kind != sourceKind && len(parents) == 0 {
		t.addErr("%s %q has no parent", def.kind, def.name)
		return nil
	}
	for i, p := range parents {
		if p == nil {
			t.addErr("%s %q: parent %d is not a node of this topology (the zero Node, or a failed declaration)", def.kind, def.name, i)
			return nil
		}
		if t.byName[p.name] != p {
			t.addErr("%s %q: parent %q belongs to another topology", def.kind, def.name, p.name)
			return nil
		}
		if p.kind == sinkKind {
			t.addErr("%s %q: parent %q is a sink; sinks have no children", def.kind, def.name, p.name)
			return nil
		}
		for _, q := range parents[:i] {
			if q == p {
				t.addErr("%s %q: parent %q is given twice", def.kind, def.name, p.name)
				return nil
			}
		}
	}
	def.parents = parents
	for _, p := range parents {
		p.children = append(p.children, def)
	}
	t.nodes = append(t.nodes, def)
	t.byName[def.name] = def
	return def
}

func defs[K, V any](parents []Node[K, V]) []*nodeDef {
	out := make([]*nodeDef, len(parents))
	for i, p := range parents {
		out[i] = p.def
	}
	return out
}

// SourceOption configures a source node.
type SourceOption interface{ applySource(*sourceConfig) }

type sourceConfig struct {
	reset     OffsetReset
	extractor any // TimestampExtractor[K, V], checked against the node's types
}

type sourceOptionFunc func(*sourceConfig)

func (f sourceOptionFunc) applySource(c *sourceConfig) { f(c) }

// WithOffsetReset sets where the source starts when the group has no committed offset.
func WithOffsetReset(r OffsetReset) SourceOption {
	return sourceOptionFunc(func(c *sourceConfig) { c.reset = r })
}

// TimestampExtractor returns the event time of a deserialized record. recordTime is the Kafka
// record's timestamp; partitionTime is the largest timestamp extracted so far on the record's
// partition (the zero time before the first). An error goes to the deserialization error handler
// like bad bytes do. Kafka Streams' default extractor uses the record timestamp, and rejects
// negative ones; so does Riffle's.
type TimestampExtractor[K, V any] func(key K, value V, recordTime, partitionTime time.Time) (time.Time, error)

// WithTimestampExtractor sets the source's timestamp extractor. Its types must match the
// source's key and value types; a mismatch is a declaration error naming the node.
func WithTimestampExtractor[K, V any](f TimestampExtractor[K, V]) SourceOption {
	return sourceOptionFunc(func(c *sourceConfig) { c.extractor = f })
}

// AddSource adds a source node reading topics, deserialized with key and value.
func AddSource[K, V any](t *Topology, name string, topics []string, key serde.Serde[K], value serde.Serde[V], opts ...SourceOption) Node[K, V] {
	var cfg sourceConfig
	for _, o := range opts {
		o.applySource(&cfg)
	}
	var extractor TimestampExtractor[K, V]
	if cfg.extractor != nil {
		var ok bool
		if extractor, ok = cfg.extractor.(TimestampExtractor[K, V]); !ok {
			t.AddError(fmt.Errorf("topology: source %q: the timestamp extractor is a %T, but the source's records are (%s, %s)", name, cfg.extractor, typeName[K](), typeName[V]()))
			return Node[K, V]{}
		}
	}
	if len(topics) == 0 {
		t.AddError(fmt.Errorf("topology: source %q reads no topic", name))
		return Node[K, V]{}
	}
	if key == nil || value == nil {
		t.AddError(fmt.Errorf("topology: source %q needs a key and a value serde", name))
		return Node[K, V]{}
	}
	def := &nodeDef{name: name, kind: sourceKind, topics: append([]string(nil), topics...), source: sourceInfo{reset: cfg.reset}}
	def.instantiate = func(task *Task, built map[string]any) (any, error) {
		children, err := childReceivers[K, V](def, built)
		if err != nil {
			return nil, err
		}
		return &sourceNode[K, V]{name: def.name, task: task, id: task.addNode(def.name, StageDeserialize), key: key, value: value, extractor: extractor, children: children,
			keyNullAware: nullAware(key), valueNullAware: nullAware(value), keyBytes: isBytesSerde(key), valueBytes: isBytesSerde(value)}, nil
	}
	if t.add(def, nil) == nil {
		return Node[K, V]{}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, topic := range topics {
		for _, n := range t.nodes {
			if n != def && n.kind == sourceKind && contains(n.topics, topic) {
				t.addErr("source %q: topic %q is already read by source %q", name, topic, n.name)
			}
		}
	}
	return Node[K, V]{def: def}
}

// AddProcessor adds a processor node made by supplier, child of parents.
func AddProcessor[KIn, VIn, KOut, VOut any](t *Topology, name string, supplier Supplier[KIn, VIn, KOut, VOut], parents ...Node[KIn, VIn]) Node[KOut, VOut] {
	if supplier == nil {
		t.AddError(fmt.Errorf("topology: processor %q has no supplier", name))
		return Node[KOut, VOut]{}
	}
	return addProcessorNode(t, name, defs(parents), func(def *nodeDef, task *Task, children []receiver[KOut, VOut]) (any, error) {
		p := supplier()
		if p == nil {
			return nil, fmt.Errorf("topology: the supplier of processor %q returned nil", def.name)
		}
		n := &processorNode[KIn, VIn, KOut, VOut]{name: def.name, task: task, id: task.addNode(def.name, StageProcess), proc: p}
		n.ctx = &nodeContext[KOut, VOut]{task: task, node: def.name, id: n.id, stores: def.stores, children: children, childNames: childNames(def)}
		return n, nil
	})
}

// addProcessorNode adds a processor node, child of parents, whose instance in a task is what
// build makes of the task and the node's children.
func addProcessorNode[KOut, VOut any](t *Topology, name string, parents []*nodeDef, build func(def *nodeDef, task *Task, children []receiver[KOut, VOut]) (any, error)) Node[KOut, VOut] {
	def := &nodeDef{name: name, kind: processorKind}
	def.instantiate = func(task *Task, built map[string]any) (any, error) {
		children, err := childReceivers[KOut, VOut](def, built)
		if err != nil {
			return nil, err
		}
		return build(def, task, children)
	}
	if t.add(def, parents) == nil {
		return Node[KOut, VOut]{}
	}
	return Node[KOut, VOut]{def: def}
}

// AddFilter adds a stateless processor that forwards the records for which keep returns true and
// drops the others. It is what AddProcessor with a filtering ProcessorFunc does, for less: no
// Processor, no Context, and the record is not copied on its way through. A panic in keep is a
// processing error of the node, like a Processor's.
func AddFilter[K, V any](t *Topology, name string, keep func(key K, value V) bool, parents ...Node[K, V]) Node[K, V] {
	if keep == nil {
		t.AddError(fmt.Errorf("topology: filter %q has no predicate", name))
		return Node[K, V]{}
	}
	return addProcessorNode(t, name, defs(parents), func(def *nodeDef, task *Task, children []receiver[K, V]) (any, error) {
		return &filterNode[K, V]{name: def.name, task: task, id: task.addNode(def.name, StageProcess), keep: keep, children: children}, nil
	})
}

// AddMapValues adds a stateless processor that forwards each record with its value replaced by
// f(key, value), keeping its key (and the key's nullness), timestamp, headers and origin: what
// DeriveValue in a ProcessorFunc does, without a Processor and the copies (see AddFilter). An
// error from f, or a panic, is a processing error of the node.
func AddMapValues[K, V, V2 any](t *Topology, name string, f func(key K, value V) (V2, error), parents ...Node[K, V]) Node[K, V2] {
	return addMapValues(t, name, f == nil, mapValuesNode[K, V, V2]{f: f}, parents)
}

// AddMapValuesOnly is AddMapValues for a function of the value alone (Kafka Streams'
// ValueMapper, where AddMapValues takes a ValueMapperWithKey). Wrapping such a function into one
// that takes the key costs a call and a copy of the value per record.
func AddMapValuesOnly[K, V, V2 any](t *Topology, name string, f func(value V) (V2, error), parents ...Node[K, V]) Node[K, V2] {
	return addMapValues(t, name, f == nil, mapValuesNode[K, V, V2]{fv: f}, parents)
}

// addMapValues is AddMapValues and AddMapValuesOnly: each task's node is a copy of proto, whose
// function is set.
func addMapValues[K, V, V2 any](t *Topology, name string, nilFunc bool, proto mapValuesNode[K, V, V2], parents []Node[K, V]) Node[K, V2] {
	if nilFunc {
		t.AddError(fmt.Errorf("topology: mapValues %q has no function", name))
		return Node[K, V2]{}
	}
	return addProcessorNode(t, name, defs(parents), func(def *nodeDef, task *Task, children []receiver[K, V2]) (any, error) {
		n := proto
		n.name, n.task, n.id, n.children = def.name, task, task.addNode(def.name, StageProcess), children
		n.fuseSink()
		return &n, nil
	})
}

// SinkOption configures a sink node.
type SinkOption interface{ applySink(*sinkConfig) }

type sinkConfig struct {
	partitioner any // Partitioner[K, V]
}

type sinkOptionFunc func(*sinkConfig)

func (f sinkOptionFunc) applySink(c *sinkConfig) { f(c) }

// Partitioner chooses the partition of an output record among n. Return -1 to use the default
// (murmur2 of the serialized key, like Kafka's Java producer).
type Partitioner[K, V any] func(topic string, key K, value V, n int32) int32

// WithPartitioner sets a sink's partitioner. Its types must match the sink's.
func WithPartitioner[K, V any](p Partitioner[K, V]) SinkOption {
	return sinkOptionFunc(func(c *sinkConfig) { c.partitioner = p })
}

// TopicChooser picks the output topic of a record for a dynamic sink.
type TopicChooser[K, V any] func(rec Record[K, V]) (string, error)

// AddSink adds a sink node writing to topic, serialized with key and value.
func AddSink[K, V any](t *Topology, name string, topic string, key serde.Serde[K], value serde.Serde[V], parents []Node[K, V], opts ...SinkOption) {
	if topic == "" {
		t.AddError(fmt.Errorf("topology: sink %q has no topic", name))
		return
	}
	addSink(t, name, topic, nil, "", key, value, parents, opts)
}

// AddDynamicSink adds a sink node that chooses each record's topic with choose. describe names the
// chooser in Describe (e.g. "by region").
func AddDynamicSink[K, V any](t *Topology, name string, choose TopicChooser[K, V], describe string, key serde.Serde[K], value serde.Serde[V], parents []Node[K, V], opts ...SinkOption) {
	if choose == nil {
		t.AddError(fmt.Errorf("topology: sink %q has no topic chooser", name))
		return
	}
	if describe == "" {
		describe = "func"
	}
	addSink(t, name, "", choose, describe, key, value, parents, opts)
}

func addSink[K, V any](t *Topology, name, topic string, choose TopicChooser[K, V], describe string, key serde.Serde[K], value serde.Serde[V], parents []Node[K, V], opts []SinkOption) {
	var cfg sinkConfig
	for _, o := range opts {
		o.applySink(&cfg)
	}
	var part Partitioner[K, V]
	if cfg.partitioner != nil {
		var ok bool
		if part, ok = cfg.partitioner.(Partitioner[K, V]); !ok {
			t.AddError(fmt.Errorf("topology: sink %q: the partitioner is a %T, but the sink's records are (%s, %s)", name, cfg.partitioner, typeName[K](), typeName[V]()))
			return
		}
	}
	if key == nil || value == nil {
		t.AddError(fmt.Errorf("topology: sink %q needs a key and a value serde", name))
		return
	}
	def := &nodeDef{name: name, kind: sinkKind, topic: topic, topicExtractor: describe}
	def.instantiate = func(task *Task, _ map[string]any) (any, error) {
		return newSinkNode(&sinkNode[K, V]{name: def.name, task: task, id: task.addNode(def.name, StageSerialize), topic: topic, choose: choose, key: key, value: value, partitioner: part}), nil
	}
	t.add(def, defs(parents))
}

// AddInternalTopic declares a repartition topic owned by the topology; the runtime creates it as
// "<appID>-<name>". Sources and sinks refer to it by its short name.
func (t *Topology) AddInternalTopic(it InternalTopic) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sealed {
		t.addErr("cannot add internal topic %q: the topology is already built", it.Name)
		return
	}
	if _, dup := t.internal[it.Name]; dup {
		t.addErr("internal topic %q is declared twice", it.Name)
		return
	}
	if it.Partitions < 0 {
		t.addErr("internal topic %q: partitions %d < 0", it.Name, it.Partitions)
		return
	}
	c := it
	t.internal[it.Name] = &c
}

// CoPartition declares that topics must have the same partition count, because records with the
// same key in them must meet in one task (joins). Drivers check it against the real topics.
func (t *Topology) CoPartition(topics ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.copartners = append(t.copartners, append([]string(nil), topics...))
}

// Err returns every declaration error so far, joined, or nil.
func (t *Topology) Err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return errors.Join(t.errs...)
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

func typeName[T any]() string {
	var p *T
	return fmt.Sprintf("%T", p)[1:]
}

func childNames(def *nodeDef) []string {
	out := make([]string, len(def.children))
	for i, c := range def.children {
		out[i] = c.name
	}
	return out
}

// childReceivers collects the built runtimes of def's children as receivers of Record[K, V].
func childReceivers[K, V any](def *nodeDef, built map[string]any) ([]receiver[K, V], error) {
	out := make([]receiver[K, V], 0, len(def.children))
	for _, c := range def.children {
		r, ok := built[c.name].(receiver[K, V])
		if !ok {
			return nil, fmt.Errorf("topology: node %q forwards (%s, %s) records but its child %q takes something else (%T)",
				def.name, typeName[K](), typeName[V](), c.name, built[c.name])
		}
		out = append(out, r)
	}
	return out, nil
}
