package tarindex

import (
	"errors"
	"fmt"
	"github.com/layoutfs/layoutfs/internal/binfmt"
	"github.com/layoutfs/layoutfs/tarindex/zran"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Cache keeps indexes (and, for compressed archives, their uncompressed
// bytes) under a directory, keyed by blob digest, so a second mount of the
// same archive does no pass over it. Entries are written to a temporary file
// and renamed into place, and are checked on load: a corrupt or stale entry
// is rebuilt, never trusted.
type Cache struct {
	Dir string
	// Warn, if set, hears of cache entries that could not be written.
	Warn func(msg string)
}

// cacheVersion changes whenever the stored form of Index changes, or what
// may be stored. 1 was gob; 2 is codec.go's encoding; 3 drops the entries
// of versions that stored a layer's index before checking the layer's
// digest (an index of a forged blob, kept under the genuine blob's digest).
const cacheVersion = 3

var cacheMagic = []byte("layoutfs-tarindex\n")

func (c *Cache) path(kind, key string) string {
	safe := strings.NewReplacer(":", "-", "/", "_").Replace(key)
	return filepath.Join(c.Dir, kind, safe)
}

// LoadIndex returns the stored index for key, or false when there is none
// or it does not check out.
func (c *Cache) LoadIndex(key string) (*Index, bool) {
	if c == nil {
		return nil, false
	}
	b, err := os.ReadFile(c.path("index", key))
	if err != nil {
		return nil, false
	}
	ix, err := decodeIndex(b)
	if err != nil {
		os.Remove(c.path("index", key))
		return nil, false
	}
	return ix, true
}

// StoreIndex saves ix under key.
func (c *Cache) StoreIndex(key string, ix *Index) error {
	if c == nil {
		return nil
	}
	b, err := encodeIndex(ix)
	if err != nil {
		return err
	}
	return writeAtomic(c.path("index", key), b)
}

// encodeIndex seals the body (codec.go) in the cache frame.
func encodeIndex(ix *Index) ([]byte, error) {
	return binfmt.Seal(cacheMagic, cacheVersion, encodeBody(ix)), nil
}

var errBadCache = errors.New("tarindex: bad cache entry")

func decodeIndex(b []byte) (*Index, error) {
	body, ok := binfmt.Unseal(cacheMagic, cacheVersion, b)
	if !ok {
		return nil, errBadCache
	}
	ix, err := decodeBody(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errBadCache, err)
	}
	return ix, nil
}

// writeAtomic writes b to name through a temporary file and a rename, so a
// reader sees the old content or the new, never a part.
func writeAtomic(name string, b []byte) error {
	return writeAtomicTo(name, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
}

// writeAtomicTo is writeAtomic of what write writes.
func writeAtomicTo(name string, write func(io.Writer) error) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(name), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), name)
}

// binaryIndex is a side index (gzip checkpoints, zstd frames) that
// serialises itself with its own version and checksum.
type binaryIndex interface {
	MarshalBinary() ([]byte, error)
	UnmarshalBinary([]byte) error
}

// loadBinary fills v from the cache entry kind/key; a missing or corrupt
// entry gives false (and a corrupt one is removed, to be rebuilt).
func (c *Cache) loadBinary(kind, key string, v binaryIndex) bool {
	if c == nil {
		return false
	}
	b, err := os.ReadFile(c.path(kind, key))
	if err != nil {
		return false
	}
	if err := v.UnmarshalBinary(b); err != nil {
		os.Remove(c.path(kind, key))
		return false
	}
	return true
}

// storeZran stores the gzip checkpoint index ix under key, written a
// window at a time.
func (c *Cache) storeZran(key string, ix *zran.Index) error {
	if c == nil {
		return nil
	}
	return writeAtomicTo(c.path("zran", key), ix.Encode)
}

// loadZran loads the gzip checkpoint index cached under key, leaving its
// windows in the file (zran.Load), which stays open while the index is
// in use; a missing or corrupt entry gives nil (a corrupt one is removed,
// to be rebuilt).
func (c *Cache) loadZran(key string) *zran.Index {
	if c == nil {
		return nil
	}
	f, err := os.Open(c.path("zran", key))
	if err != nil {
		return nil
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil
	}
	ix, err := zran.Load(f, st.Size())
	if err != nil {
		f.Close()
		if errors.Is(err, zran.ErrIndex) {
			os.Remove(f.Name())
		}
		return nil
	}
	return ix
}

func (c *Cache) storeBinary(kind, key string, v binaryIndex) error {
	if c == nil {
		return nil
	}
	b, err := v.MarshalBinary()
	if err != nil {
		return err
	}
	return writeAtomic(c.path(kind, key), b)
}

// A decompressed data file is too large to checksum on every mount, so a
// stamp beside it records its size, modification time and inode as they
// were when it was written: any later write, truncation or replacement
// changes one of them, and the file is then rebuilt, not trusted.
func dataStamp(st os.FileInfo) string {
	var ino uint64
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		ino = sys.Ino
	}
	return fmt.Sprintf("%d %d %d\n", st.Size(), st.ModTime().UnixNano(), ino)
}

// loadData opens the decompressed data of key, if its stamp still holds.
func (c *Cache) loadData(key string) (*os.File, bool) {
	if c == nil {
		return nil, false
	}
	f, err := os.Open(c.path("data", key))
	if err != nil {
		return nil, false
	}
	st, err1 := f.Stat()
	stamp, err2 := os.ReadFile(c.path("data-stamp", key))
	if err1 != nil || err2 != nil || string(stamp) != dataStamp(st) {
		f.Close()
		os.Remove(c.path("data", key))
		return nil, false
	}
	return f, true
}

// createData opens a temporary file in the cache for decompressed data.
func (c *Cache) createData() (*os.File, error) {
	if c == nil {
		return nil, errors.New("no cache")
	}
	dir := filepath.Join(c.Dir, "data")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return os.CreateTemp(dir, ".tmp-*")
}

// storeData moves a written temporary data file into place, stamp first.
func (c *Cache) storeData(key string, f *os.File) error {
	if err := f.Sync(); err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if err := writeAtomic(c.path("data-stamp", key), []byte(dataStamp(st))); err != nil {
		return err
	}
	return os.Rename(f.Name(), c.path("data", key))
}

// warn is for cache failures that have no index to be noted on.
func (c *Cache) warn(err error) {
	if c != nil && c.Warn != nil {
		c.Warn(fmt.Sprintf("index cache: %v (going on without it)", err))
	}
}

// Stamped reports whether key was stamped: a fact recorded once, such as
// "this blob of this unchanged file matched its digest".
func (c *Cache) Stamped(key string) bool {
	if c == nil {
		return false
	}
	_, err := os.Stat(c.path("stamp", key))
	return err == nil
}

// Stamp records key; a failure only means the fact is checked again.
func (c *Cache) Stamp(key string) {
	if c != nil {
		if err := writeAtomic(c.path("stamp", key), nil); err != nil {
			c.warn(err)
		}
	}
}
