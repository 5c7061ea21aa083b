package tarindex

import "os"

// Load returns the bytes stored under kind/key by Store, or false.
// Callers check what they load: the cache only keeps bytes.
func (c *Cache) Load(kind, key string) ([]byte, bool) {
	if c == nil {
		return nil, false
	}
	b, err := os.ReadFile(c.path(kind, key))
	return b, err == nil
}

// Store keeps b under kind/key (kind is a directory name of the cache).
func (c *Cache) Store(kind, key string, b []byte) error {
	if c == nil {
		return nil
	}
	return writeAtomic(c.path(kind, key), b)
}

// Remove drops kind/key, as when Load found it corrupt.
func (c *Cache) Remove(kind, key string) {
	if c != nil {
		os.Remove(c.path(kind, key))
	}
}
