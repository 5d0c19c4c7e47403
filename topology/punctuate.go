package topology

import (
	"container/heap"
	"time"
)

// schedule is one punctuation registered by a processor.
type schedule struct {
	node      string
	interval  int64 // ms
	next      int64 // ms: fires when the clock reaches it
	fn        Punctuator
	cancelled bool
	index     int
}

// punctuationQueue orders schedules by their next firing time.
type punctuationQueue []*schedule

func (q punctuationQueue) Len() int           { return len(q) }
func (q punctuationQueue) Less(i, j int) bool { return q[i].next < q[j].next }
func (q punctuationQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index = i
	q[j].index = j
}
func (q *punctuationQueue) Push(x any) {
	s := x.(*schedule)
	s.index = len(*q)
	*q = append(*q, s)
}
func (q *punctuationQueue) Pop() any {
	old := *q
	s := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return s
}

// due reports whether a live schedule is due at now, dropping cancelled ones from the top.
func (q *punctuationQueue) due(now int64) bool {
	for q.Len() > 0 {
		top := (*q)[0]
		if top.cancelled {
			heap.Pop(q)
			continue
		}
		return top.next <= now
	}
	return false
}

// advance computes a schedule's next firing after it fired at now: Kafka Streams' rule, which
// skips missed intervals instead of firing once per interval missed.
func (s *schedule) advance(now int64) {
	next := s.next + s.interval
	if now >= next {
		missed := (now - s.next) / s.interval
		next = s.next + (missed+1)*s.interval
	}
	s.next = next
}

// runDue fires every schedule due at now, in time order. A schedule cancelled from within its
// own punctuator is not rescheduled.
func (t *Task) runDue(q *punctuationQueue, now int64) error {
	for q.due(now) {
		s := heap.Pop(q).(*schedule)
		if err := t.punctuate(s, now); err != nil {
			return err
		}
		if !s.cancelled {
			s.advance(now)
			heap.Push(q, s)
		}
	}
	return nil
}

func (t *Task) addSchedule(node string, interval time.Duration, kind PunctuationType, fn Punctuator) (func(), error) {
	ms := interval.Milliseconds()
	if ms < 1 {
		return nil, &nodeError{node: node, msg: "punctuation interval " + interval.String() + " is shorter than a millisecond"}
	}
	if fn == nil {
		return nil, &nodeError{node: node, msg: "punctuation has no function"}
	}
	s := &schedule{node: node, interval: ms, fn: fn}
	switch kind {
	case StreamTime:
		s.next = 0 // aligned to 0: fires as soon as stream time is known
		heap.Push(&t.streamQ, s)
	case WallClockTime:
		s.next = t.clock().UnixMilli() + ms
		heap.Push(&t.wallQ, s)
	default:
		return nil, &nodeError{node: node, msg: "unknown punctuation type"}
	}
	return func() { s.cancelled = true }, nil
}

type nodeError struct {
	node string
	msg  string
}

func (e *nodeError) Error() string { return "topology: node " + e.node + ": " + e.msg }
