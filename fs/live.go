package fs

import (
	"context"
	"fmt"
	iofs "io/fs"
	"path/filepath"
	"sync"
	"time"

	"github.com/layoutfs/layoutfs/internal/memo"
	"github.com/layoutfs/layoutfs/layout"
	digest "github.com/opencontainers/go-digest"
)

// recheckEvery bounds how often a live tree stats its source to see
// whether it changed: often enough that another writer's tag shows up at
// once to a person, rarely enough that a burst of lookups costs no stats.
const recheckEvery = 200 * time.Millisecond

// Live is the tree of a source that can change while it is served, as in
// a read-write mount. Its tags/ take edits (see tagsDir), and it opens the
// source again whenever layout.Version says it changed on disk, by our
// edits or by another writer's. Everything below manifests/ and blobs/ is
// named by digest and so never changes; only the root and tags/ do.
type Live struct {
	path string
	open func(context.Context) (*layout.Source, error)
	opts Options
	ino  inos
	root *liveRoot

	mu      sync.Mutex
	cur     *tree
	curRoot Dir
	version string
	checked time.Time
	// Inode numbers of tags/ directories and links, by name (and target),
	// so that they keep their numbers while the source is reopened.
	stable map[string]uint64
	// Directories made in tags/ that no reference lies in yet (mkdir -p
	// tags/example.com before ln -s ... tags/example.com/app:1), by
	// prefix. They live as long as the mount, as in memory only.
	made map[string]bool

	// The writable rootfs of each image, by manifest digest: one for the
	// life of the mount, whichever tree first showed it.
	rw memo.Map[digest.Digest, *rwRoot]
}

// rwRootfs returns the writable rootfs of the image with manifest m, over
// its read-only rootfs lower.
func (l *Live) rwRootfs(m digest.Digest, lower Dir) Dir {
	r, _ := l.rw.Get(m, func() (*rwRoot, error) {
		return newRWRoot(lower, filepath.Join(l.opts.UpperDir, m.Encoded()), &l.ino, l.opts.Warn), nil
	})
	return r.Dir()
}

// UpperDir is the directory under cacheDir where the pending rootfs
// changes of the source at path are kept, one directory per image named
// by its manifest digest's hex; commit, status and discard find them
// there.
func UpperDir(cacheDir, path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	return filepath.Join(cacheDir, "upper", digest.FromString(path).Encoded()[:32])
}

// NewLive returns the live tree of src, which open opens again (with the
// same options) when it changes.
func NewLive(src *layout.Source, open func(context.Context) (*layout.Source, error), o Options) *Live {
	if o.Warn == nil {
		o.Warn = func(string) {}
	}
	l := &Live{path: src.Path, open: open, opts: o, stable: map[string]uint64{}, made: map[string]bool{}}
	l.version, _ = layout.Version(src.Path)
	l.checked = time.Now()
	l.setTree(src)
	l.root = &liveRoot{l: l, attr: Attr{Ino: l.ino.one(), Mode: iofs.ModeDir | 0o755, Nlink: 1, Mtime: l.cur.mtime}}
	return l
}

// Root returns the root directory.
func (l *Live) Root() Dir { return l.root }

func (l *Live) setTree(src *layout.Source) {
	l.cur = newTree(src, l.opts, &l.ino)
	l.cur.live = l
	l.curRoot = l.cur.dir(l.cur.rootEntries)
}

// current returns the tree of the source as it is now, opening it again
// if it changed. A source that fails to open (a writer midway, without
// renames) keeps the last good tree and is tried again later.
func (l *Live) current() (*tree, Dir) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if time.Since(l.checked) < recheckEvery {
		return l.cur, l.curRoot
	}
	l.checked = time.Now()
	v, err := layout.Version(l.path)
	if err != nil || v == l.version {
		return l.cur, l.curRoot
	}
	src, err := l.open(context.Background())
	if err != nil {
		l.opts.Warn(fmt.Sprintf("reopen %s after it changed: %v (still serving the previous state)", l.path, err))
		return l.cur, l.curRoot
	}
	l.version = v
	l.setTree(src)
	return l.cur, l.curRoot
}

// changed makes the next access look at the source again, after an edit.
func (l *Live) changed() {
	l.mu.Lock()
	l.checked = time.Time{}
	l.mu.Unlock()
}

// stableIno returns the inode number kept for key.
func (l *Live) stableIno(key string) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	ino, ok := l.stable[key]
	if !ok {
		ino = l.ino.one()
		l.stable[key] = ino
	}
	return ino
}

// liveRoot is the root of a live tree: the current tree's root, with the
// editable tags/.
type liveRoot struct {
	l    *Live
	attr Attr
}

func (r *liveRoot) Attr() Attr { return r.attr }
func (r *liveRoot) Changing()  {}

func (r *liveRoot) Lookup(name string) (Node, error) {
	if name == "tags" {
		return r.l.tagsDir(""), nil
	}
	_, root := r.l.current()
	return root.Lookup(name)
}

func (r *liveRoot) ReadDir() ([]Dirent, error) {
	_, root := r.l.current()
	ents, err := root.ReadDir()
	if err != nil {
		return nil, err
	}
	out := make([]Dirent, len(ents))
	for i, e := range ents {
		if e.Name == "tags" {
			e.Node = r.l.tagsDir("")
		}
		out[i] = e
	}
	return out, nil
}
