// Package memo computes a value once per key, for the lazily built parts
// of a tree that many goroutines (go-fuse serves requests in parallel) may
// ask for at the same moment.
package memo

import (
	"sync"
	"sync/atomic"
)

// Map holds one value per key. Concurrent first callers of a key wait for
// the same computation; later callers get its result, an error included,
// so a broken piece stays consistently broken. The zero Map is ready.
type Map[K comparable, V any] struct {
	mu sync.Mutex
	m  map[K]*cell[V]
}

type cell[V any] struct {
	once sync.Once
	done atomic.Bool // v and err are set
	v    V
	err  error
}

// Get returns the value of k, computing it with compute the first time.
func (m *Map[K, V]) Get(k K, compute func() (V, error)) (V, error) {
	m.mu.Lock()
	if m.m == nil {
		m.m = map[K]*cell[V]{}
	}
	c, ok := m.m[k]
	if !ok {
		c = &cell[V]{}
		m.m[k] = c
	}
	m.mu.Unlock()
	c.once.Do(func() {
		c.v, c.err = compute()
		c.done.Store(true)
	})
	return c.v, c.err
}

// Peek returns the value of k if it has been computed, without computing
// it or waiting for a computation under way; ok is false then.
func (m *Map[K, V]) Peek(k K) (v V, err error, ok bool) {
	m.mu.Lock()
	c := m.m[k]
	m.mu.Unlock()
	if c == nil || !c.done.Load() {
		return v, nil, false
	}
	return c.v, c.err, true
}
