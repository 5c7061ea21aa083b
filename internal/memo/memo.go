// Package memo computes a value once per key, for the lazily built parts
// of a tree that many goroutines (go-fuse serves requests in parallel) may
// ask for at the same moment.
package memo

import (
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
)

// Map holds one value per key. Concurrent first callers of a key wait for
// the same computation; later callers get its result, an error included,
// so a broken piece stays consistently broken. A computation that panics
// gives ErrPanic (with the panic's value and stack) rather than taking its
// caller's goroutine down: some callers run it on goroutines of their own,
// where nothing else would recover it. The zero Map is ready.
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
		defer func() {
			if r := recover(); r != nil {
				var zero V
				c.v, c.err = zero, fmt.Errorf("%w: %v\n%s", ErrPanic, r, debug.Stack())
			}
			c.done.Store(true)
		}()
		c.v, c.err = compute()
	})
	return c.v, c.err
}

// ErrPanic is the error of a computation that panicked.
var ErrPanic = errors.New("memo: the computation panicked")

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
