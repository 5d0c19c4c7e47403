// Package freelist keeps large reusable buffers between uses, and lets them go once unused.
package freelist

import (
	"sync"
	"time"
)

// Cache is a free list of values that empties itself once none was taken for Idle. A sync.Pool
// drops its contents at every garbage collection, which suits small short-lived objects, not
// buffers of tens of MiB reused by a bulk restore across many collections: each reuse after a
// collection allocated them again (first-touch page faults and zeroing). A Cache keeps at most
// Max values while they are used, and releases them soon after the last use. The zero Cache
// keeps nothing (Max 0); it is safe for concurrent use.
type Cache[T any] struct {
	Max  int
	Idle time.Duration

	mu   sync.Mutex
	free []*T
	used time.Time
	tick *time.Timer
}

// Get returns a cached value, or a new one.
func (c *Cache[T]) Get() *T {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.used = time.Now()
	if n := len(c.free); n > 0 {
		v := c.free[n-1]
		c.free[n-1] = nil
		c.free = c.free[:n-1]
		return v
	}
	return new(T)
}

// Put gives v back: cached unless Max are, and dropped with the others after Idle without a Get
// or Put.
func (c *Cache[T]) Put(v *T) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.free) < c.Max {
		c.free = append(c.free, v)
	}
	c.used = time.Now()
	if c.tick == nil {
		c.tick = time.AfterFunc(c.Idle, c.expire)
	}
}

// Release empties the cache.
func (c *Cache[T]) Release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.free)
	c.free = c.free[:0]
}

// Len is the number of values cached.
func (c *Cache[T]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.free)
}

// expire empties the cache if it was not used for Idle, and checks again later otherwise.
func (c *Cache[T]) expire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if wait := c.Idle - time.Since(c.used); wait > 0 {
		c.tick.Reset(wait)
		return
	}
	clear(c.free)
	c.free = c.free[:0]
	c.tick = nil
}
