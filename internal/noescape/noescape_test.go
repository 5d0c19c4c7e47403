package noescape

import (
	"testing"
)

type rec struct {
	key, value []byte
	n          int
}

type sink interface{ take(*rec) }

type summer struct{ sum int }

// take grows the goroutine's stack (a deep recursion) before reading r, so the caller's stack
// is copied while r points into it.
func (s *summer) take(r *rec) {
	s.sum += deep(1000) + len(r.key) + len(r.value) + r.n
}

//go:noinline
func deep(n int) int {
	var buf [128]byte
	buf[n%len(buf)] = 1
	if n == 0 {
		return 0
	}
	return deep(n-1) + int(buf[n%len(buf)]) - 1
}

//go:noinline
func send(s sink, key, value []byte, n int) {
	s.take(Ptr(&rec{key: key, value: value, n: n}))
}

func TestPtrSurvivesStackGrowth(t *testing.T) {
	for i := range 50 {
		s := &summer{}
		done := make(chan struct{})
		go func() { // a fresh goroutine starts with a small stack
			defer close(done)
			send(s, make([]byte, 3), make([]byte, 5), i)
		}()
		<-done
		if want := 3 + 5 + i; s.sum != want {
			t.Fatalf("sum %d, want %d: the record was not read intact after the stack moved", s.sum, want)
		}
	}
}

func TestPtrDoesNotAllocate(t *testing.T) {
	s := &summer{}
	key, value := []byte("k"), []byte("value")
	allocs := testing.AllocsPerRun(100, func() { send(s, key, value, 1) })
	if allocs != 0 {
		t.Fatalf("%v allocations per send, want 0: the record escaped to the heap", allocs)
	}
}

// keeper keeps the keys of the records it takes, as a driver producing them asynchronously does.
type keeper struct{ kept [][]byte }

func (k *keeper) take(r *rec) { k.kept = append(k.kept, r.key) }

//go:noinline
func sendFresh(s sink, n int) {
	key := make([]byte, 8)
	for i := range key {
		key[i] = byte(n)
	}
	s.take(Ptr(&rec{key: key}))
}

// The record stays on the stack, but what it points to must not: a key made by the sender and
// kept by the receiver after the sender returned has to be on the heap.
func TestPtrKeepsContentsOnTheHeap(t *testing.T) {
	k := &keeper{}
	allocs := testing.AllocsPerRun(100, func() { sendFresh(k, 1) })
	if allocs != 1 {
		t.Fatalf("%v allocations per send, want 1 (the key): the key was put on the sender's stack", allocs)
	}
	k.kept = nil
	for i := range 20 {
		sendFresh(k, i)
		deep(100) // reuses the stack the sender's frame was on
	}
	for i, key := range k.kept {
		for _, b := range key {
			if b != byte(i) {
				t.Fatalf("key %d is %v, want every byte %d: it was overwritten after its sender returned", i, key, i)
			}
		}
	}
}
