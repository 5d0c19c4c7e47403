package streamtest

import (
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/rifflestream/riffle/internal/murmur2"
	"github.com/rifflestream/riffle/state"
	"github.com/rifflestream/riffle/topology"
)

// TB is the part of testing.TB the driver uses: *testing.T, *testing.B and *testing.F satisfy it.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// Topologist is anything that yields a topology: *stream.Builder, or a *topology.Topology
// through FromTopology.
type Topologist interface {
	Build() (*topology.Topology, error)
}

type builtTopology struct{ t *topology.Topology }

func (b builtTopology) Build() (*topology.Topology, error) { return b.t, b.t.Err() }

// FromTopology wraps a topology made with the Processor API for New.
func FromTopology(t *topology.Topology) Topologist { return builtTopology{t: t} }

// Driver runs a topology on in-memory topics, deterministically, with no broker: records piped
// into input topics are processed at once, through every sub-topology (repartition topics are
// followed inside the driver), and what sinks write can be read from output topics.
//
// Topics have partitions (1 unless set with Partitions or TopicPartitions), and keyed records land
// in the partition Kafka's default partitioner would choose (murmur2 of the serialized key), so
// a multi-partition test sees the same task placement as production. There is one task per
// sub-topology and partition, as in the real engine, and they run the same Task executor.
//
// After each piped record, the driver processes everything it caused and then commits every
// task (flushing caches), so outputs are visible at once, like Kafka Streams' TopologyTestDriver.
//
// A Driver is not safe for concurrent use.
type Driver struct {
	tb       TB
	plan     *topology.Plan
	cfg      config
	topics   map[string]*memTopic
	tasks    map[topology.TaskID]*topology.Task
	taskList []*topology.Task // in id order
	clock    time.Time
	queue    []pending
	seq      int64 // global produce order
	failed   error
	manager  *state.Manager // the default (memory) state, when the test gives none
	// changelogNext is, per task, the offset after its last changelog record in each topic.
	changelogNext map[topology.TaskID]map[string]int64
}

type pending struct {
	topic     string
	partition int32
	offset    int64
}

type config struct {
	appID      string
	partitions int32
	perTopic   map[string]int32
	start      time.Time
	handlers   topology.ErrorHandlers
	logger     *slog.Logger
	stores     topology.StoreOpener
}

// Option configures a Driver.
type Option func(*config)

// AppID sets the application id (default "streamtest"); internal topics are named after it.
func AppID(id string) Option { return func(c *config) { c.appID = id } }

// Partitions sets the partition count of every topic not set with TopicPartitions (default 1).
func Partitions(n int32) Option { return func(c *config) { c.partitions = n } }

// TopicPartitions sets the partition count of one topic.
func TopicPartitions(topic string, n int32) Option {
	return func(c *config) { c.perTopic[topic] = n }
}

// StartTime sets the initial wall-clock time and the first default record timestamp (default
// 2025-01-01T00:00:00Z: fixed, so tests are repeatable).
func StartTime(t time.Time) Option { return func(c *config) { c.start = t } }

// ErrorHandlers sets the error handlers (default: fail on every error, which fails the test).
func ErrorHandlers(h topology.ErrorHandlers) Option { return func(c *config) { c.handlers = h } }

// Logger sets the tasks' logger (default: discard).
func Logger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// Stores sets how tasks open state stores (default: package state's stores, all kept in memory).
func Stores(o topology.StoreOpener) Option { return func(c *config) { c.stores = o } }

// DefaultStartTime is the driver's default start time.
var DefaultStartTime = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// New builds the topology and starts a driver for it. Declaration errors fail the test. The driver
// closes its tasks when the test ends.
func New(tb TB, t Topologist, opts ...Option) *Driver {
	tb.Helper()
	d, err := Start(t, opts...)
	if err != nil {
		tb.Fatalf("streamtest: %v", err)
		return nil
	}
	d.tb = tb
	tb.Cleanup(func() { _ = d.Close() })
	return d
}

// Start is New for code that is not a test (examples, tools): it returns errors instead of
// failing a test, and the caller closes the driver. Without a test, methods that would fail one
// record the error instead: Err returns it, and the Try variants return it directly.
func Start(t Topologist, opts ...Option) (*Driver, error) {
	cfg := config{appID: "streamtest", partitions: 1, perTopic: map[string]int32{}, start: DefaultStartTime}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.partitions < 1 {
		return nil, fmt.Errorf("streamtest: Partitions(%d): need at least 1", cfg.partitions)
	}
	topo, err := t.Build()
	if err != nil {
		return nil, err
	}
	plan, err := topo.Plan(cfg.appID)
	if err != nil {
		return nil, err
	}
	d := &Driver{plan: plan, cfg: cfg, topics: map[string]*memTopic{}, tasks: map[topology.TaskID]*topology.Task{},
		clock: cfg.start, changelogNext: map[topology.TaskID]map[string]int64{}}
	if cfg.stores == nil {
		m, err := state.OpenManager(state.ManagerOptions{}) // memory only
		if err != nil {
			return nil, err
		}
		d.manager = m
		d.cfg.stores = m
	}
	external := map[string]int32{}
	for _, topic := range plan.ExternalSourceTopics() {
		external[topic] = d.topic(topic).partitionCount()
	}
	internal, err := plan.InternalPartitions(external)
	if err != nil {
		return nil, err
	}
	for name, n := range internal {
		if _, set := cfg.perTopic[name]; !set {
			d.topics[name] = newMemTopic(name, n)
		}
	}
	counts := map[string]int32{}
	for _, topic := range plan.SourceTopics() {
		counts[topic] = d.topic(topic).partitionCount()
	}
	for _, group := range plan.CoPartitioned {
		if err := checkCoPartitioned(group, counts); err != nil {
			return nil, err
		}
	}
	tasks, err := plan.TaskCount(counts)
	if err != nil {
		return nil, err
	}
	subs := make([]int, 0, len(tasks))
	for s := range tasks {
		subs = append(subs, s)
	}
	sort.Ints(subs)
	for _, s := range subs {
		for p := int32(0); p < tasks[s]; p++ {
			id := topology.TaskID{Subtopology: s, Partition: p}
			task, err := plan.NewTask(id, topology.TaskConfig{
				Collector: collector{d: d, task: id},
				Handlers:  cfg.handlers,
				Logger:    cfg.logger,
				Clock:     func() time.Time { return d.clock },
				Stores:    d.cfg.stores,
			})
			if err != nil {
				_ = d.Close()
				return nil, err
			}
			d.tasks[id] = task
			d.taskList = append(d.taskList, task)
			if err := task.Init(); err != nil {
				_ = d.Close()
				return nil, err
			}
		}
	}
	return d, nil
}

func checkCoPartitioned(group []string, counts map[string]int32) error {
	for _, t := range group[1:] {
		if counts[t] != counts[group[0]] {
			var parts []string
			for _, g := range group {
				parts = append(parts, fmt.Sprintf("%s=%d", g, counts[g]))
			}
			return fmt.Errorf("streamtest: topics %v must be co-partitioned (same partition count), but have %v", group, parts)
		}
	}
	return nil
}

// Plan returns the compiled topology the driver runs.
func (d *Driver) Plan() *topology.Plan { return d.plan }

// Task returns a task by id (for inspecting its stores and metrics).
func (d *Driver) Task(id topology.TaskID) (*topology.Task, bool) {
	t, ok := d.tasks[id]
	return t, ok
}

// Tasks returns every task, ordered by id.
func (d *Driver) Tasks() []*topology.Task { return append([]*topology.Task(nil), d.taskList...) }

// WallClock returns the driver's wall-clock time.
func (d *Driver) WallClock() time.Time { return d.clock }

// AdvanceWallClock moves wall-clock time forward, fires the wall-clock punctuations that makes
// due, and processes what they emit.
func (d *Driver) AdvanceWallClock(by time.Duration) {
	d.helper()
	d.fatal(d.TryAdvanceWallClock(by))
}

// TryAdvanceWallClock is AdvanceWallClock returning a fatal processing error instead of failing
// the test.
func (d *Driver) TryAdvanceWallClock(by time.Duration) error {
	if d.failed != nil {
		return d.failed
	}
	if by < 0 {
		return errors.New("streamtest: the wall clock cannot go back")
	}
	d.clock = d.clock.Add(by)
	for _, t := range d.taskList {
		if err := t.PunctuateWallClock(d.clock); err != nil {
			return d.fail(err)
		}
	}
	return d.settle()
}

// AdvanceStreamTime moves every task's stream time to ts (never back), firing the stream-time
// punctuations it makes due, and processes what they emit. Use it to close windows at the end of
// a test without piping a record.
func (d *Driver) AdvanceStreamTime(ts time.Time) {
	d.helper()
	if d.failed != nil {
		d.fatal(d.failed)
		return
	}
	for _, t := range d.taskList {
		if err := t.AdvanceStreamTime(ts); err != nil {
			d.fatal(d.fail(err))
			return
		}
	}
	d.fatal(d.settle())
}

// Err returns the fatal error that stopped the driver, if any.
func (d *Driver) Err() error { return d.failed }

// Close closes every task.
func (d *Driver) Close() error {
	var errs []error
	for _, t := range d.taskList {
		if err := t.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	d.taskList = nil
	if d.manager != nil {
		errs = append(errs, d.manager.Close())
		d.manager = nil
	}
	return errors.Join(errs...)
}

func (d *Driver) helper() {
	if d.tb != nil {
		d.tb.Helper()
	}
}

func (d *Driver) fatal(err error) {
	if err == nil {
		return
	}
	if d.tb != nil {
		d.tb.Helper()
		d.tb.Fatalf("streamtest: %v", err)
	}
}

func (d *Driver) fail(err error) error {
	if d.failed == nil {
		d.failed = err
	}
	return err
}

// topic returns the in-memory topic, creating it with its configured partition count.
func (d *Driver) topic(name string) *memTopic {
	if t, ok := d.topics[name]; ok {
		return t
	}
	n, ok := d.cfg.perTopic[name]
	if !ok {
		n = d.cfg.partitions
	}
	t := newMemTopic(name, n)
	d.topics[name] = t
	return t
}

// append writes a record to a topic and queues it for processing if the topology reads it.
func (d *Driver) append(topic string, partition int32, r stored) error {
	_, err := d.appendAt(topic, partition, r)
	return err
}

func (d *Driver) appendAt(topic string, partition int32, r stored) (int64, error) {
	t := d.topic(topic)
	if partition < 0 {
		partition = t.partitionFor(r.key)
	}
	if partition >= t.partitionCount() {
		return 0, fmt.Errorf("streamtest: partition %d of topic %q, which has %d", partition, topic, t.partitionCount())
	}
	d.seq++
	r.seq = d.seq
	off := t.append(partition, r)
	if _, ok := d.plan.SubtopologyOf(topic); ok {
		d.queue = append(d.queue, pending{topic: topic, partition: partition, offset: off})
	}
	return off, nil
}

// settle processes queued records until none is left, then commits every task (flushing
// caches) and processes what that emitted, until nothing moves.
func (d *Driver) settle() error {
	for {
		for len(d.queue) > 0 {
			p := d.queue[0]
			d.queue = d.queue[1:]
			if err := d.processOne(p); err != nil {
				return d.fail(err)
			}
		}
		for _, t := range d.taskList {
			t.CommitRequested()
			if err := t.Flush(); err != nil {
				return d.fail(err)
			}
		}
		if len(d.queue) == 0 {
			// Everything flushed is "acknowledged" at once here: commit the stores.
			for _, t := range d.taskList {
				if err := t.CommitStores(d.changelogNext[t.ID()]); err != nil {
					return d.fail(err)
				}
			}
			return nil
		}
	}
}

func (d *Driver) processOne(p pending) error {
	sub, _ := d.plan.SubtopologyOf(p.topic)
	task, ok := d.tasks[topology.TaskID{Subtopology: sub, Partition: p.partition}]
	if !ok {
		return fmt.Errorf("streamtest: no task for topic %q partition %d (sub-topology %d)", p.topic, p.partition, sub)
	}
	r := d.topics[p.topic].partitions[p.partition][p.offset]
	raw := &topology.RawRecord{Topic: p.topic, Partition: p.partition, Offset: p.offset,
		Key: r.key, Value: r.value, Timestamp: r.ts, Headers: r.headers}
	return task.Process(raw)
}

// collector appends what a task emits to the in-memory topics.
type collector struct {
	d    *Driver
	task topology.TaskID
}

func (c collector) Send(rec *topology.OutRecord) {
	off, err := c.d.appendAt(rec.Topic, rec.Partition, stored{key: rec.Key, value: rec.Value, ts: rec.Timestamp, headers: rec.Headers})
	if err != nil {
		_ = c.d.fail(err)
		return
	}
	if rec.Changelog {
		if c.d.changelogNext[c.task] == nil {
			c.d.changelogNext[c.task] = map[string]int64{}
		}
		c.d.changelogNext[c.task][rec.Topic] = off + 1
	}
}

func (c collector) PartitionCount(topic string) (int32, error) {
	return c.d.topic(topic).partitionCount(), nil
}

// stored is a record in an in-memory topic.
type stored struct {
	key, value []byte
	ts         time.Time
	headers    topology.Headers
	seq        int64
}

type memTopic struct {
	name       string
	partitions [][]stored
	rr         int32 // round robin for null keys
}

func newMemTopic(name string, n int32) *memTopic {
	return &memTopic{name: name, partitions: make([][]stored, n)}
}

func (t *memTopic) partitionCount() int32 { return int32(len(t.partitions)) }

// partitionFor is Kafka's default partitioner: murmur2 of the key bytes; records without a key
// go round robin (the Java producer's sticky partitioner is not deterministic; this is).
func (t *memTopic) partitionFor(key []byte) int32 {
	if key == nil {
		p := t.rr % t.partitionCount()
		t.rr++
		return p
	}
	return murmur2.Partition(key, t.partitionCount())
}

func (t *memTopic) append(p int32, r stored) int64 {
	t.partitions[p] = append(t.partitions[p], r)
	return int64(len(t.partitions[p]) - 1)
}
