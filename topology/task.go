package topology

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rifflestream/riffle/internal/strs"
	"github.com/rifflestream/riffle/serde"
)

// TaskID names a task: a sub-topology and a partition of its source topics. It prints as
// "<subtopology>_<partition>", e.g. "0_3", like Kafka Streams.
type TaskID struct {
	Subtopology int
	Partition   int32
}

func (id TaskID) String() string {
	return strconv.Itoa(id.Subtopology) + "_" + strconv.Itoa(int(id.Partition))
}

// ParseTaskID parses "<subtopology>_<partition>".
func ParseTaskID(s string) (TaskID, error) {
	a, b, ok := strings.Cut(s, "_")
	sub, err1 := strconv.Atoi(a)
	part, err2 := strconv.ParseInt(b, 10, 32)
	if !ok || err1 != nil || err2 != nil || sub < 0 || part < 0 {
		return TaskID{}, fmt.Errorf("topology: %q is not a task id (want <subtopology>_<partition>, e.g. 0_3)", s)
	}
	return TaskID{Subtopology: sub, Partition: int32(part)}, nil
}

// Collector receives what a task emits: output, repartition, changelog and dead-letter records.
// The engine produces them to Kafka; streamtest appends them to in-memory topics. Send is called
// on the task's goroutine and must not block for long; delivery failures are the driver's to
// handle (asynchronously, through the production error handler).
type Collector interface {
	// Send takes rec, which is valid during the call only: the sender reuses it for its next
	// record, so a collector copies what it keeps (the slices rec points to stay valid) and
	// does not modify it (a sender may set some fields once, e.g. a store's changelog topic).
	// By pointer, not by value: a 128-byte record passed by value was stored field by field
	// and read back whole, a stall on every output record.
	Send(rec *OutRecord)
	// PartitionCount returns the number of partitions of topic, for sinks with a partitioner.
	PartitionCount(topic string) (int32, error)
}

// TaskConfig is what a driver gives a task.
type TaskConfig struct {
	Collector Collector
	Handlers  ErrorHandlers
	// Logger gets the task id as an attribute. Nil discards logs.
	Logger *slog.Logger
	// Clock returns wall-clock time. Nil means time.Now.
	Clock func() time.Time
	// Stores opens the task's state stores by name; nil when the sub-topology has none.
	Stores StoreOpener
}

// StoreOpener opens a task's state stores. Package state provides it.
type StoreOpener interface {
	OpenStore(ctx StoreContext) (StateStore, error)
}

// StoreContext is what a store gets from its task.
type StoreContext struct {
	Task TaskID
	Spec StoreSpec
	// Changelog is the store's changelog topic ("" without one); the task's partition is its
	// partition.
	Changelog string
	// Collector receives the store's changelog records (OutRecord.Changelog set).
	Collector Collector
	// Timestamp returns the timestamp (ms) of the record being processed, or stream time in a
	// punctuation: what a write is stamped with.
	Timestamp func() int64
	// Headers returns the headers of the record being processed (nil in a punctuation): a
	// caching store keeps them with a write and forwards them with the update at the flush.
	Headers func() Headers
	// RequestCommit asks for an early commit (when the store's write buffer is full).
	RequestCommit func()
	Logger        *slog.Logger
}

// StateStore is a state store as its task sees it. Package state implements the stores and the
// typed views processors use.
//
// Lifecycle: opened when the task is built; restored (Restorable) before processors start;
// Flush before each commit, then, once everything flushed is acknowledged by Kafka, Commit with
// the changelog offset reached; Close once. A store never writes to disk what its changelog does
// not hold: Commit applies the flushed writes and the checkpoint together.
type StateStore interface {
	Name() string
	// Flush emits what the store buffers: changelog records to the collector and, for caching
	// stores, table updates downstream.
	Flush() error
	// Dirty reports whether writes wait for a Flush.
	Dirty() bool
	// Commit makes the flushed writes durable locally with the checkpoint next (the offset after
	// the store's last changelog record, or -1 if the store has no changelog or wrote none).
	Commit(next int64) error
	// Close releases the store, dropping writes not committed.
	Close() error
}

// Restorable is a store with a changelog that can be rebuilt from it.
type Restorable interface {
	StateStore
	// RestoreFrom returns the changelog offset to restore from (ok is false without a checkpoint:
	// restore from the start).
	RestoreFrom() (offset int64, ok bool, err error)
	// Restore applies changelog records (a nil Value is a delete), then records next as the
	// checkpoint, atomically.
	Restore(records []ChangelogEntry, next int64) error
	// Wipe drops the store's local state (when the changelog no longer matches it).
	Wipe() error
}

// ChangelogID identifies a changelog topic: its Kafka topic ID (KIP-516). The zero ID is unknown.
type ChangelogID [16]byte

// ChangelogTracking is a Restorable that keeps, with its checkpoint, the ID of the changelog
// topic the checkpoint's offset is in. A changelog deleted and created again (an application
// reset, or a topic lost and recreated) restarts at offset 0 under a new ID; a checkpoint of the
// old topic is then no position in the new one, even when it is below the new topic's end, and
// the driver wipes the store instead of restoring the new topic's tail onto the old state.
type ChangelogTracking interface {
	Restorable
	// CheckpointChangelog returns the ID kept with the checkpoint (zero: no checkpoint, or one
	// written without an ID).
	CheckpointChangelog() (ChangelogID, error)
	// UseChangelog sets the ID of the store's changelog topic, kept with every checkpoint the
	// store writes from then on.
	UseChangelog(id ChangelogID)
}

// ChangelogEntry is one changelog record being restored.
type ChangelogEntry struct {
	Key, Value []byte
	Timestamp  int64 // ms
}

// Task runs one sub-topology for one partition. It is I/O free: a driver feeds it raw records with
// Process, drives wall-clock punctuation with PunctuateWallClock, flushes it with Flush before a
// commit, and receives every emitted record through its Collector. A Task is used by one
// goroutine at a time.
type Task struct {
	id      TaskID
	plan    *Plan
	sources map[string]rawReceiver // real topic name -> source node
	// lastTopic and lastSource cache the source of the last record's topic: a task reads one
	// topic, or runs of records of one, and the comparison is cheaper than the map lookup.
	lastTopic  string
	lastSource rawReceiver
	procs      []lifecycle // processors, in declaration order
	stores     map[string]StateStore
	storeList  []StateStore
	collector  Collector
	handlers   ErrorHandlers
	log        *slog.Logger
	clock      func() time.Time

	streamTime int64 // ms; math.MinInt64 while unknown
	streamQ    punctuationQueue
	wallQ      punctuationQueue
	// raw is the input record being processed while inRecord (see current): kept past the record,
	// not cleared, so that a driver passing the same RawRecord each time (the engine's runner does)
	// costs no pointer store per record, each a write barrier while the collector marks.
	raw       *RawRecord
	inRecord  bool
	currentTS int64 // the current record's extracted timestamp (ms), once the source has extracted it

	commitRequested bool
	initialized     bool
	closed          bool
	// failed is the first fatal error: sticky, so a processor that drops the error Forward
	// returned cannot hide a failure.
	failed *RecordError

	metrics TaskMetrics

	// nodes are the task's runtime nodes, by the index each got when it was made (addNode), and
	// running is the index of the node whose code runs: a guard makes a panic the failure of
	// that node (see guarded in runtime.go). An index, not a pointer: a store per node and
	// record, without a write barrier.
	nodes   []nodeRef
	running int32

	// outBuf is where sinks append the keys and values that serde.Appender serdes encode: the
	// unused tail of a chunk, see appendTo.
	outBuf []byte
}

// nodeRef names a runtime node for its errors: its name and the stage of its panics.
type nodeRef struct {
	name  string
	stage Stage
}

// addNode registers a runtime node and returns its index in t.nodes.
func (t *Task) addNode(name string, stage Stage) int32 {
	t.nodes = append(t.nodes, nodeRef{name: name, stage: stage})
	return int32(len(t.nodes) - 1)
}

// recovered turns a panic a guard recovered into the failure of the node that was running (see
// guarded in runtime.go), for its stage's handler; the stack is the panic's, not yet unwound.
func (t *Task) recovered(r any) error {
	n := t.nodes[t.running]
	return t.fail(n.stage, n.name, fmt.Errorf("%v", r), true, string(debug.Stack()))
}

// outChunkBytes is the size of the chunks sinks cut encoded keys and values from. A chunk is
// garbage once every record cut from it has been produced; a small one keeps little alive per task.
const outChunkBytes = 64 << 10

// outChunkMinFree is the free space below which a new chunk is started rather than appending to
// the rest of the current one (an encoding that does not fit is moved by append: correct, but a
// wasted copy).
const outChunkMinFree = 512

// appendTo encodes v with app into the task's output buffer and returns the encoding, which the
// caller may keep: its bytes are never reused. An encoding that outgrew the free space was moved
// by append to memory of its own and is returned as it is.
func appendTo[T any](t *Task, app serde.Appender[T], topic string, v *T) ([]byte, error) {
	if cap(t.outBuf)-len(t.outBuf) < outChunkMinFree {
		t.outBuf = make([]byte, 0, outChunkBytes)
	}
	free := t.outBuf[len(t.outBuf):]
	out, err := app.AppendSerialize(free, topic, *v)
	if err != nil {
		return nil, err
	}
	if out == nil {
		// An appender returning nil for an empty dst would mean Kafka null, which an encoding
		// cannot be: it is an empty value.
		return []byte{}, nil
	}
	if len(out) <= cap(free) && (len(out) == 0 || &out[0] == &free[:1][0]) {
		t.outBuf = t.outBuf[:len(t.outBuf)+len(out)]
		return out[:len(out):len(out)], nil
	}
	return out, nil
}

// TaskMetrics count what a task did. Fields are safe to read from other goroutines.
//
// Input records processed are counted by the driver, per batch (the engine's RecordsProcessed):
// an atomic add per record here (a locked instruction among the record's stores) was 4% of the
// CPU samples of a q2 benchmark drain (bench/PROFILE.md, eighth round).
type TaskMetrics struct {
	Punctuations atomic.Int64
	Skipped      [stageCount]atomic.Int64 // by stage, see SkippedAt
	DeadLettered atomic.Int64
}

const stageCount = 7

func stageIndex(s Stage) int {
	switch s {
	case StageDeserialize:
		return 0
	case StageProcess:
		return 1
	case StagePunctuate:
		return 2
	case StageSerialize:
		return 3
	case StageProduce:
		return 4
	case StageLate:
		return 5
	}
	return 6
}

// SkippedAt returns how many records were skipped (dead-lettered ones included) at stage.
func (m *TaskMetrics) SkippedAt(s Stage) int64 { return m.Skipped[stageIndex(s)].Load() }

// SkippedTotal returns the number of records skipped at any stage.
func (m *TaskMetrics) SkippedTotal() int64 {
	var n int64
	for i := range m.Skipped {
		n += m.Skipped[i].Load()
	}
	return n
}

// NewTask builds the task id of the plan: a fresh instance of every node of its sub-topology and
// its state stores. Call Init before the first record.
func (p *Plan) NewTask(id TaskID, cfg TaskConfig) (*Task, error) {
	if id.Subtopology < 0 || id.Subtopology >= len(p.c.subs) {
		return nil, fmt.Errorf("topology: task %s: there is no sub-topology %d", id, id.Subtopology)
	}
	if id.Partition < 0 {
		return nil, fmt.Errorf("topology: task %s: negative partition", id)
	}
	if cfg.Collector == nil {
		return nil, fmt.Errorf("topology: task %s: no collector", id)
	}
	sub := p.c.subs[id.Subtopology]
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	clock := cfg.Clock
	if clock == nil {
		clock = time.Now
	}
	t := &Task{
		id:         id,
		plan:       p,
		sources:    map[string]rawReceiver{},
		stores:     map[string]StateStore{},
		collector:  cfg.Collector,
		handlers:   cfg.Handlers,
		log:        log.With("task", id.String()),
		clock:      clock,
		streamTime: math.MinInt64,
		currentTS:  math.MinInt64,
	}
	for _, name := range sub.stores {
		if cfg.Stores == nil {
			return nil, fmt.Errorf("topology: task %s needs store %q but the driver opens no stores", id, name)
		}
		spec := p.topo.stores[name].spec
		changelog := ""
		if on, _ := spec.Changelog(); on {
			changelog = p.ChangelogTopic(name)
		}
		st, err := cfg.Stores.OpenStore(StoreContext{Task: id, Spec: spec, Changelog: changelog, Collector: cfg.Collector,
			Timestamp: t.recordTimestamp, Headers: t.recordHeaders, RequestCommit: func() { t.commitRequested = true }, Logger: t.log.With("store", name)})
		if err != nil {
			t.closeStores()
			return nil, fmt.Errorf("topology: task %s: opening store %q: %w", id, name, err)
		}
		t.stores[name] = st
		t.storeList = append(t.storeList, st)
	}
	// Declaration order is a topological order (parents exist before children), so building in
	// reverse builds every child before its parents.
	built := make(map[string]any, len(sub.nodes))
	for i := len(sub.nodes) - 1; i >= 0; i-- {
		n := sub.nodes[i]
		r, err := n.instantiate(t, built)
		if err != nil {
			t.closeStores()
			return nil, fmt.Errorf("topology: task %s: %w", id, err)
		}
		built[n.name] = r
		switch n.kind {
		case sourceKind:
			for _, topic := range n.topics {
				t.sources[p.RealTopic(topic)] = r.(rawReceiver)
			}
		case processorKind:
			if l, ok := r.(lifecycle); ok { // stateless nodes (AddFilter, ...) have none
				t.procs = append(t.procs, l)
			}
		}
	}
	for i, j := 0, len(t.procs)-1; i < j; i, j = i+1, j-1 {
		t.procs[i], t.procs[j] = t.procs[j], t.procs[i]
	}
	return t, nil
}

// ID returns the task's id.
func (t *Task) ID() TaskID { return t.id }

// Metrics returns the task's counters.
func (t *Task) Metrics() *TaskMetrics { return &t.metrics }

// Store returns one of the task's stores by name (for drivers and tests).
func (t *Task) Store(name string) (StateStore, bool) {
	s, ok := t.stores[name]
	return s, ok
}

// Init initializes the processors, in declaration order. The driver calls it once the task's
// stores are restored, before the first record.
func (t *Task) Init() error {
	if t.initialized {
		return nil
	}
	for _, p := range t.procs {
		if err := p.init(); err != nil {
			return fmt.Errorf("topology: task %s: %w", t.id, err)
		}
	}
	t.initialized = true
	return nil
}

// Process runs one input record through the sub-topology, then any stream-time punctuation it
// made due. It returns an error only when the task must stop: a handler decided to fail (the
// error is then a *RecordError), or the record's topic is not one of the task's.
func (t *Task) Process(raw *RawRecord) error {
	src := t.lastSource
	if src == nil || !strs.Same(raw.Topic, t.lastTopic) { // == would compare the bytes in a call
		var ok bool
		if src, ok = t.sources[raw.Topic]; !ok {
			return fmt.Errorf("topology: task %s does not read topic %q", t.id, raw.Topic)
		}
		t.lastTopic, t.lastSource = raw.Topic, src
	}
	if raw.Partition != t.id.Partition {
		return fmt.Errorf("topology: task %s got a record of partition %d", t.id, raw.Partition)
	}
	if t.failed != nil {
		return t.failed
	}
	if t.raw != raw {
		t.raw = raw
	}
	t.inRecord, t.currentTS = true, math.MinInt64
	err := src.processRaw(raw)
	t.inRecord, t.currentTS = false, math.MinInt64
	if err == nil && t.failed != nil {
		err = t.failed
	}
	if err != nil {
		return unwrapFatal(err)
	}
	if len(t.streamQ) > 0 && t.streamQ.due(t.streamTime) { // a call per record saved when none is scheduled
		return unwrapFatal(t.runDue(&t.streamQ, t.streamTime))
	}
	return nil
}

// PunctuateWallClock fires the wall-clock punctuations due at now (usually the task's clock).
func (t *Task) PunctuateWallClock(now time.Time) error {
	if !t.wallQ.due(now.UnixMilli()) {
		return nil
	}
	return unwrapFatal(t.runDue(&t.wallQ, now.UnixMilli()))
}

// NextWallClockPunctuation returns when the next wall-clock punctuation is due, if any is
// scheduled; drivers use it to sleep no longer than needed.
func (t *Task) NextWallClockPunctuation() (time.Time, bool) {
	if !t.wallQ.due(math.MaxInt64) {
		return time.Time{}, false
	}
	return time.UnixMilli(t.wallQ[0].next), true
}

// AdvanceStreamTime moves stream time forward to ts (never back) and fires the stream-time
// punctuations that makes due. Drivers use it to flush windows at the end of input.
func (t *Task) AdvanceStreamTime(ts time.Time) error {
	ms := ts.UnixMilli()
	if ms > t.streamTime {
		t.streamTime = ms
	}
	if len(t.streamQ) > 0 && t.streamQ.due(t.streamTime) {
		return unwrapFatal(t.runDue(&t.streamQ, t.streamTime))
	}
	return nil
}

// StreamTime returns the task's stream time, and false before the first record.
func (t *Task) StreamTime() (time.Time, bool) {
	if t.streamTime == math.MinInt64 {
		return time.Time{}, false
	}
	return time.UnixMilli(t.streamTime), true
}

// Flush flushes every store (emitting cached updates and changelog records). A driver calls it
// before committing; after it returns, everything the task's processed records caused has been
// handed to the collector.
//
// Flushing a store may forward table updates that write to stores downstream, so stores are
// flushed until none is dirty.
func (t *Task) Flush() error {
	for round := 0; ; round++ {
		flushed := false
		for _, s := range t.storeList {
			if !s.Dirty() {
				continue
			}
			if round >= 64 {
				return fmt.Errorf("topology: task %s: store %q is still written after 64 flush rounds (stores feeding each other in a cycle?)", t.id, s.Name())
			}
			flushed = true
			if err := s.Flush(); err != nil {
				return unwrapFatal(fmt.Errorf("topology: task %s: flushing store %q: %w", t.id, s.Name(), err))
			}
		}
		if !flushed {
			return nil
		}
	}
}

// Stores returns the task's stores, in the order the topology declares them.
func (t *Task) Stores() []StateStore { return t.storeList }

// CommitStores tells every store that its flushed writes are acknowledged: next maps a changelog
// topic to the offset after the task's last record in it.
func (t *Task) CommitStores(next map[string]int64) error {
	for _, s := range t.storeList {
		off := int64(-1)
		if n, ok := next[t.plan.ChangelogTopic(s.Name())]; ok {
			off = n
		}
		if err := s.Commit(off); err != nil {
			return fmt.Errorf("topology: task %s: committing store %q: %w", t.id, s.Name(), err)
		}
	}
	return nil
}

// recordHeaders are the headers of the input record being processed (none in a punctuation).
func (t *Task) recordHeaders() Headers {
	if cur := t.current(); cur != nil {
		return cur.Headers
	}
	return nil
}

// current returns the input record being processed; nil in punctuations and store flushes.
func (t *Task) current() *RawRecord {
	if !t.inRecord {
		return nil
	}
	return t.raw
}

// recordTimestamp is the timestamp of the record being processed (or forwarded from a punctuation
// or a flush), or stream time.
func (t *Task) recordTimestamp() int64 {
	if t.currentTS != math.MinInt64 {
		return t.currentTS
	}
	if t.streamTime == math.MinInt64 {
		return 0
	}
	return t.streamTime
}

// CommitRequested reports whether a processor asked for a commit since the last call.
func (t *Task) CommitRequested() bool {
	r := t.commitRequested
	t.commitRequested = false
	return r
}

// Close closes the processors (in declaration order) and then the stores. It does not flush:
// a driver that wants the task's state committed flushes and commits first.
func (t *Task) Close() error {
	if t.closed {
		return nil
	}
	t.closed = true
	var errs []error
	if t.initialized {
		for _, p := range t.procs {
			if err := p.close(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := t.closeStores(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("topology: closing task %s: %w", t.id, err)
	}
	return nil
}

func (t *Task) closeStores() error {
	var errs []error
	for _, s := range t.storeList {
		if err := s.Close(); err != nil {
			errs = append(errs, fmt.Errorf("store %q: %w", s.Name(), err))
		}
	}
	t.storeList = nil
	return errors.Join(errs...)
}

func (t *Task) advanceStreamTime(ms int64) {
	if ms > t.streamTime {
		t.streamTime = ms
	}
}

func (t *Task) origin() Origin {
	cur := t.current()
	if cur == nil {
		return Origin{}
	}
	return Origin{Topic: cur.Topic, Partition: cur.Partition, Offset: cur.Offset}
}

func (t *Task) punctuate(s *schedule, now int64) (err error) {
	t.metrics.Punctuations.Add(1)
	defer func() {
		if r := recover(); r != nil {
			err = t.fail(StagePunctuate, s.node, fmt.Errorf("%v", r), true, string(debug.Stack()))
		}
	}()
	if err := s.fn(time.UnixMilli(now)); err != nil {
		if isFatal(err) {
			return err
		}
		return t.fail(StagePunctuate, s.node, err, false, "")
	}
	return nil
}

// fail sends an error to its stage's handler and carries out the decision. It returns nil when
// the record was skipped or dead-lettered, and a fatal error when the task must stop.
func (t *Task) fail(stage Stage, node string, err error, panicked bool, stack string) error {
	re := &RecordError{Stage: stage, Node: node, Task: t.id, Origin: t.origin(), Err: err, Panic: panicked, PanicStack: stack}
	return t.Handle(re)
}

// Handle applies the handler of re.Stage to re: it returns nil when the record was skipped or
// dead-lettered (counted and logged), and a fatal error when the task must stop. Drivers use it
// for errors they see themselves (production failures).
func (t *Task) Handle(re *RecordError) error {
	var h ErrorHandler
	switch re.Stage {
	case StageDeserialize:
		h = t.handlers.Deserialization
	case StageSerialize, StageProduce:
		h = t.handlers.Production
	case StageLate:
		h = t.handlers.Late
		if h == nil {
			h = Skip
		}
	default:
		h = t.handlers.Processing
	}
	action := ActionFail
	if h != nil {
		action = h(re)
	}
	if action == ActionDeadLetter && t.handlers.DeadLetterTopic == "" {
		t.log.Error("dead-letter handler but no dead-letter topic configured; failing", "error", re)
		action = ActionFail
	}
	switch action {
	case ActionSkip, ActionDeadLetter:
		t.metrics.Skipped[stageIndex(re.Stage)].Add(1)
		if action == ActionDeadLetter {
			t.sendDeadLetter(re)
			t.metrics.DeadLettered.Add(1)
		}
		t.log.Warn("skipped record", "action", action.String(), "stage", string(re.Stage), "node", re.Node,
			"topic", re.Origin.Topic, "partition", re.Origin.Partition, "offset", re.Origin.Offset, "error", re.Err)
		return nil
	default:
		if t.failed == nil {
			t.failed = re
		}
		return &fatal{err: re}
	}
}

func (t *Task) sendDeadLetter(re *RecordError) {
	out := OutRecord{Topic: t.handlers.DeadLetterTopic, Partition: -1, Timestamp: t.clock()}
	if cur := t.current(); cur != nil {
		out.Key, out.Value, out.Timestamp = cur.Key, cur.Value, cur.Timestamp
		out.Headers = DeadLetterHeaders(cur.Headers, re)
	} else {
		out.Headers = DeadLetterHeaders(nil, re)
	}
	t.collector.Send(&out)
}

// unwrapFatal turns the internal fatal marker into the *RecordError it carries.
func unwrapFatal(err error) error {
	if err == nil {
		return nil
	}
	var f *fatal
	if errors.As(err, &f) {
		return f.err
	}
	return err
}
