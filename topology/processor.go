package topology

import (
	"log/slog"
	"time"
)

// Processor is one step of a topology: it receives records of type Record[KIn, VIn] and forwards
// records of type Record[KOut, VOut] to its children through the Context it got in Init.
//
// Lifecycle: each task creates its own instance (through the node's Supplier), calls Init once
// before the first record, then Process for each record, in order per input partition, from one
// goroutine at a time, and Close when the task closes (after a rebalance takes it away, or on
// shutdown). An error from Init or Close fails the task; an error from Process goes to the
// processing error handler (fail by default, or skip, or dead-letter), as does a panic, which is
// recovered and reported with the node and the record's coordinates.
type Processor[KIn, VIn, KOut, VOut any] interface {
	Init(ctx Context[KOut, VOut]) error
	Process(rec Record[KIn, VIn]) error
	Close() error
}

// Supplier makes a new Processor for each task. It must return a new instance on each call:
// tasks run concurrently and must not share processor state.
type Supplier[KIn, VIn, KOut, VOut any] func() Processor[KIn, VIn, KOut, VOut]

// ProcessorContext is what a processor may ask of the task it runs in, whatever its types.
type ProcessorContext interface {
	// AppID is the application id (the consumer group id).
	AppID() string
	// TaskID is the task this processor instance belongs to.
	TaskID() TaskID
	// NodeName is the name of this processor's node in the topology.
	NodeName() string
	// StreamTime is the task's stream time: the largest record timestamp it has processed. It is
	// the zero time before the first record.
	StreamTime() time.Time
	// WallClock is the task's current wall-clock time (a controllable clock under streamtest).
	WallClock() time.Time
	// Schedule calls fn every interval, on stream time (driven by record timestamps: first once
	// stream time is known, then each time it passes the next multiple of interval) or on wall-clock
	// time (first after interval has elapsed). Missed intervals are skipped, not replayed, like
	// Kafka Streams. fn runs on the task's goroutine and may forward records; its error fails the
	// task. The returned cancel func stops the schedule. interval must be at least a millisecond.
	Schedule(interval time.Duration, kind PunctuationType, fn Punctuator) (cancel func(), err error)
	// RequestCommit asks the runtime to commit the task soon, rather than at the next interval.
	RequestCommit()
	// Logger returns the task's logger, with the task and node as attributes.
	Logger() *slog.Logger
	// StateStore returns the store named name, connected to this processor in the topology.
	StateStore(name string) (StateStore, error)
	// SkipRecord reports that this processor drops the record being processed for reason, at
	// stage (StageLate for records of closed windows): the stage's handler decides (skip and
	// count, dead-letter, or fail), as for an error. It returns nil unless the handler fails the
	// task, in which case Process should return the error.
	SkipRecord(stage Stage, reason error) error
}

// Context is a processor's handle on its task: ProcessorContext plus forwarding to children.
type Context[K, V any] interface {
	ProcessorContext
	// Forward sends rec to every child of this node, depth first, in the order they were added.
	// It returns the first fatal error of a child; errors a handler skipped do not come back.
	Forward(rec Record[K, V]) error
	// ForwardTo sends rec to the child node named child only.
	ForwardTo(child string, rec Record[K, V]) error
}

// PunctuationType says which clock drives a punctuation.
type PunctuationType int

const (
	// StreamTime punctuations follow the task's stream time: they fire as records with later
	// timestamps arrive, and not at all while no records arrive.
	StreamTime PunctuationType = iota
	// WallClockTime punctuations follow the system clock.
	WallClockTime
)

func (p PunctuationType) String() string {
	switch p {
	case StreamTime:
		return "stream-time"
	case WallClockTime:
		return "wall-clock"
	}
	return "unknown"
}

// Punctuator is called by a punctuation schedule with the time that triggered it (stream time or
// wall-clock time).
type Punctuator func(ts time.Time) error

// ProcessorFunc makes a Supplier from a function for processors that need no state of their own
// and no Init or Close.
func ProcessorFunc[KIn, VIn, KOut, VOut any](f func(ctx Context[KOut, VOut], rec Record[KIn, VIn]) error) Supplier[KIn, VIn, KOut, VOut] {
	return func() Processor[KIn, VIn, KOut, VOut] { return &funcProcessor[KIn, VIn, KOut, VOut]{f: f} }
}

type funcProcessor[KIn, VIn, KOut, VOut any] struct {
	ctx Context[KOut, VOut]
	f   func(ctx Context[KOut, VOut], rec Record[KIn, VIn]) error
}

func (p *funcProcessor[KIn, VIn, KOut, VOut]) Init(ctx Context[KOut, VOut]) error {
	p.ctx = ctx
	return nil
}

func (p *funcProcessor[KIn, VIn, KOut, VOut]) Process(rec Record[KIn, VIn]) error {
	return p.f(p.ctx, rec)
}

func (p *funcProcessor[KIn, VIn, KOut, VOut]) Close() error { return nil }
