package zran

import (
	"container/list"
	"sync"
)

// Cache bounds the memory of decoded spans that Readers keep for later
// reads. One Cache may be shared by many Readers, so that a filesystem with
// many layers open holds one budget instead of one per layer.
type Cache struct {
	mu     sync.Mutex
	budget int64
	used   int64
	lru    list.List // of *cacheEntry, most recently used at the front
	byKey  map[cacheKey]*list.Element
}

type cacheKey struct {
	r  *Reader
	cp int
}

type cacheEntry struct {
	key    cacheKey
	cursor *spanCursor
	cost   int64
}

// NewCache returns a cache that keeps about budget bytes of decoded spans.
// It always keeps the most recently used span, even if that alone is over
// budget.
func NewCache(budget int64) *Cache {
	return &Cache{budget: budget, byKey: make(map[cacheKey]*list.Element)}
}

// cursor returns the cached cursor for span cp of r, creating it and
// evicting the least recently used spans beyond the budget.
func (c *Cache) cursor(r *Reader, cp int) *spanCursor {
	key := cacheKey{r, cp}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[key]; ok {
		c.lru.MoveToFront(el)
		return el.Value.(*cacheEntry).cursor
	}
	e := &cacheEntry{key: key, cursor: &spanCursor{cp: cp}, cost: r.spanCost(cp)}
	c.byKey[key] = c.lru.PushFront(e)
	c.used += e.cost
	for c.used > c.budget && c.lru.Len() > 1 {
		c.remove(c.lru.Back())
	}
	return e.cursor
}

// remove drops an entry. A reader still using its cursor finishes with it;
// the memory goes when that read returns.
func (c *Cache) remove(el *list.Element) {
	e := c.lru.Remove(el).(*cacheEntry)
	delete(c.byKey, e.key)
	c.used -= e.cost
	e.cursor.evict()
}

// forget drops every entry of r.
func (c *Cache) forget(r *Reader) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for el := c.lru.Front(); el != nil; {
		next := el.Next()
		if el.Value.(*cacheEntry).key.r == r {
			c.remove(el)
		}
		el = next
	}
}
