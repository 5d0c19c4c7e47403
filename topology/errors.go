package topology

import (
	"errors"
	"fmt"
	"strconv"
)

// Stage is where in a record's life an error happened.
type Stage string

const (
	// StageDeserialize: the key or value bytes could not be decoded, or the timestamp extractor
	// failed or gave a negative timestamp.
	StageDeserialize Stage = "deserialize"
	// StageProcess: a processor returned an error or panicked.
	StageProcess Stage = "process"
	// StagePunctuate: a punctuation returned an error or panicked.
	StagePunctuate Stage = "punctuate"
	// StageSerialize: a sink could not encode a key or value, or choose a topic or partition.
	StageSerialize Stage = "serialize"
	// StageProduce: Kafka rejected a produced record (reported by the engine).
	StageProduce Stage = "produce"
	// StageLate: a windowed operation dropped a record that arrived after its window closed.
	StageLate Stage = "late"
)

// RecordError is an error tied to one record: what failed, where in the topology, and where the
// input record lives in Kafka. Handlers receive it; a fatal one is what the app returns.
type RecordError struct {
	Stage  Stage
	Node   string // the node that failed ("" for engine-level errors)
	Task   TaskID
	Origin Origin // the input record's coordinates; zero in a punctuation
	// Panic is true when the error is a recovered panic; Err then carries the panic value and
	// PanicStack the goroutine's stack.
	Panic      bool
	PanicStack string
	Err        error
}

func (e *RecordError) Error() string {
	var where string
	if e.Origin.Topic != "" {
		where = fmt.Sprintf("topic %q partition %d offset %d", e.Origin.Topic, e.Origin.Partition, e.Origin.Offset)
	} else {
		where = "no input record"
	}
	node := ""
	if e.Node != "" {
		node = fmt.Sprintf(" at node %q", e.Node)
	}
	what := "error"
	if e.Panic {
		what = "panic"
	}
	return fmt.Sprintf("riffle: %s %s%s (task %s, %s): %v", e.Stage, what, node, e.Task, where, e.Err)
}

func (e *RecordError) Unwrap() error { return e.Err }

// Action is what an ErrorHandler decides for a failed record.
type Action int

const (
	// ActionFail stops the app: it closes cleanly (committing what was fully processed) and Run
	// returns the error.
	ActionFail Action = iota
	// ActionSkip drops the record (for the failing node only: other branches still get it), counts
	// it and logs it with its coordinates.
	ActionSkip
	// ActionDeadLetter is ActionSkip plus a copy of the input record, with headers naming the
	// error, stage, node and source coordinates, to the dead-letter topic.
	ActionDeadLetter
)

func (a Action) String() string {
	switch a {
	case ActionFail:
		return "fail"
	case ActionSkip:
		return "skip"
	case ActionDeadLetter:
		return "dead-letter"
	}
	return "unknown"
}

// ErrorHandler decides what happens to a record that failed. It runs on the task's goroutine and
// must not block.
type ErrorHandler func(err *RecordError) Action

// Fail is the default handler: it stops the app with the error.
func Fail(*RecordError) Action { return ActionFail }

// Skip drops the failed record, counting and logging it.
func Skip(*RecordError) Action { return ActionSkip }

// DeadLetter drops the failed record after writing it to the dead-letter topic.
func DeadLetter(*RecordError) Action { return ActionDeadLetter }

// Headers written on dead-lettered records.
const (
	HeaderErrorStage   = "riffle.error.stage"
	HeaderErrorMessage = "riffle.error.message"
	HeaderErrorNode    = "riffle.error.node"
	HeaderErrorTask    = "riffle.error.task"
	HeaderSourceTopic  = "riffle.source.topic"
	HeaderSourcePart   = "riffle.source.partition"
	HeaderSourceOffset = "riffle.source.offset"
)

// DeadLetterHeaders returns the headers that describe err on a dead-lettered record, after the
// record's own headers.
func DeadLetterHeaders(own Headers, err *RecordError) Headers {
	h := make(Headers, 0, len(own)+7)
	h = append(h, own...)
	h = append(h,
		Header{Key: HeaderErrorStage, Value: []byte(err.Stage)},
		Header{Key: HeaderErrorMessage, Value: []byte(err.Err.Error())},
		Header{Key: HeaderErrorNode, Value: []byte(err.Node)},
		Header{Key: HeaderErrorTask, Value: []byte(err.Task.String())},
	)
	if err.Origin.Topic != "" {
		h = append(h,
			Header{Key: HeaderSourceTopic, Value: []byte(err.Origin.Topic)},
			Header{Key: HeaderSourcePart, Value: []byte(strconv.Itoa(int(err.Origin.Partition)))},
			Header{Key: HeaderSourceOffset, Value: []byte(strconv.FormatInt(err.Origin.Offset, 10))},
		)
	}
	return h
}

// ErrorHandlers are a task's handlers per stage. A nil handler means Fail.
type ErrorHandlers struct {
	Deserialization ErrorHandler
	Processing      ErrorHandler
	Production      ErrorHandler // serialization in sinks, and produce errors in the engine
	// Late handles records a windowed operation drops because their window closed. Nil means
	// Skip (counted and logged, as Kafka Streams does); DeadLetter also writes them to the
	// dead-letter topic.
	Late ErrorHandler
	// DeadLetterTopic receives records whose handler says ActionDeadLetter. Empty means no topic:
	// ActionDeadLetter is then a declaration error caught by the driver, and treated as fail.
	DeadLetterTopic string
}

// fatal marks a RecordError that a handler turned into a failure, so parents pass it up as is.
type fatal struct{ err *RecordError }

func (f *fatal) Error() string { return f.err.Error() }
func (f *fatal) Unwrap() error { return f.err }

// AsRecordError returns the RecordError in err's chain, if any.
func AsRecordError(err error) (*RecordError, bool) {
	var re *RecordError
	ok := errors.As(err, &re)
	return re, ok
}

func isFatal(err error) bool {
	var f *fatal
	return errors.As(err, &f)
}
