package freelist

import (
	"testing"
	"time"
)

// A Cache hands back what was put (up to Max), and empties itself once unused for Idle.
func TestCacheKeepsValuesWhileUsed(t *testing.T) {
	c := Cache[int]{Max: 2, Idle: 50 * time.Millisecond}
	a, b, d := c.Get(), c.Get(), c.Get()
	c.Put(a)
	c.Put(b)
	c.Put(d) // over max: dropped
	if got := c.Get(); got != b {
		t.Fatalf("get returned %p, want the last put %p", got, b)
	}
	if got := c.Get(); got != a {
		t.Fatalf("get returned %p, want %p", got, a)
	}
	if got := c.Get(); got == a || got == b || got == d {
		t.Fatal("get returned a value beyond max instead of a new one")
	}
	c.Put(a)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if c.Len() == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the cache still holds its value 5 s after its last use (idle 50 ms)")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := c.Get(); got == a {
		t.Fatal("get returned a value put before the cache expired")
	}
	c.Put(b)
	c.Release()
	if got := c.Get(); got == b {
		t.Fatal("get returned a value put before release")
	}
}
