package fs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// inos hands out inode numbers; ranges are reserved for trees built later.
type inos struct{ next atomic.Uint64 }

func (a *inos) reserve(n uint64) uint64 { return a.next.Add(n) - n + 1 }
func (a *inos) one() uint64             { return a.reserve(1) }

// lazyDir is a directory whose entries are computed on first use and then
// kept. A failure is kept too: the tree under a broken blob stays broken
// for the life of the mount, consistently.
type lazyDir struct {
	attr Attr
	fill func() ([]Dirent, error)

	once sync.Once
	ents []Dirent
	err  error
}

func newLazyDir(ino uint64, mtime time.Time, fill func() ([]Dirent, error)) *lazyDir {
	// Nlink 1: "subdirectories not counted" (as btrfs says, and find
	// understands), since counting would mean listing before asked to.
	return &lazyDir{attr: Attr{Ino: ino, Mode: iofs.ModeDir | 0o555, Nlink: 1, Mtime: mtime}, fill: fill}
}

func (d *lazyDir) Attr() Attr { return d.attr }

func (d *lazyDir) load() ([]Dirent, error) {
	d.once.Do(func() {
		ents, err := d.fill()
		sort.Slice(ents, func(i, j int) bool { return ents[i].Name < ents[j].Name })
		d.ents, d.err = ents, err
		d.fill = nil
	})
	return d.ents, d.err
}

func (d *lazyDir) ReadDir() ([]Dirent, error) { return d.load() }

func (d *lazyDir) Lookup(name string) (Node, error) {
	ents, err := d.load()
	if err != nil {
		return nil, err
	}
	i := sort.Search(len(ents), func(i int) bool { return ents[i].Name >= name })
	if i < len(ents) && ents[i].Name == name {
		return ents[i].Node, nil
	}
	return nil, iofs.ErrNotExist
}

var _ ListerAt = (*lazyDir)(nil)

func (d *lazyDir) NumEntries() (int, error) {
	ents, err := d.load()
	return len(ents), err
}

// EntryAt is valid after NumEntries has loaded the entries.
func (d *lazyDir) EntryAt(i int) Dirent { return d.ents[i] }

// bytesFile is a small file held in memory (synthesised JSON, raw
// top-level files).
type bytesFile struct {
	attr Attr
	b    []byte
}

func newBytesFile(ino uint64, mtime time.Time, b []byte) *bytesFile {
	return &bytesFile{attr: Attr{Ino: ino, Mode: 0o444, Nlink: 1, Size: int64(len(b)), Mtime: mtime}, b: b}
}

func (f *bytesFile) Attr() Attr { return f.attr }
func (f *bytesFile) ReadAt(p []byte, off int64) (int, error) {
	return bytes.NewReader(f.b).ReadAt(p, off)
}

// lazyFile is a small file whose bytes are read on first use; its size is
// known beforehand (from a descriptor).
type lazyFile struct {
	attr Attr
	load func() ([]byte, error)

	once sync.Once
	b    []byte
	err  error
}

func (f *lazyFile) Attr() Attr { return f.attr }
func (f *lazyFile) ReadAt(p []byte, off int64) (int, error) {
	f.once.Do(func() { f.b, f.err = f.load() })
	if f.err != nil {
		return 0, f.err
	}
	return bytes.NewReader(f.b).ReadAt(p, off)
}

// ErrCorrupt marks data that failed a digest check. Reads of it fail
// rather than return bytes that are not what the digest promises.
var ErrCorrupt = errors.New("fs: content does not match its digest")

// Verifier checks a blob's bytes; NewVerifier is digest.Digest.Verifier.
type Verifier interface {
	io.Writer
	Verified() bool
}

// blobFile serves a blob in place and checks it against its digest: the
// whole blob is hashed on its first read, once, so no byte of a blob that
// does not match its digest is ever served. (Hashing while a reader streams
// from the start would be cheaper, but the kernel reads ahead out of order
// and a random read would escape the check.)
type blobFile struct {
	attr   Attr
	r      io.ReaderAt
	name   string
	newVer func() Verifier

	once   sync.Once
	badErr error
}

func (f *blobFile) Attr() Attr { return f.attr }

func (f *blobFile) ReadAt(p []byte, off int64) (int, error) {
	f.once.Do(func() {
		v := f.newVer()
		if _, err := io.Copy(v, io.NewSectionReader(f.r, 0, f.attr.Size)); err != nil {
			f.badErr = fmt.Errorf("%s: %w", f.name, err)
		} else if !v.Verified() {
			f.badErr = fmt.Errorf("%s: %w", f.name, ErrCorrupt)
		}
	})
	if f.badErr != nil {
		return 0, f.badErr
	}
	return f.r.ReadAt(p, off)
}
