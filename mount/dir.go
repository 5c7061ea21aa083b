package mount

import (
	"context"
	"sync"
	"syscall"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	lfs "github.com/layoutfs/layoutfs/fs"
)

// dirHandle is an open directory: "." and "..", the listing read at open,
// and a cursor. Offsets are 1-based positions in that sequence (0 is the
// start), which stay valid because the listing never changes.
type dirHandle struct {
	dir  *node
	dots [2]fuse.DirEntry
	ents []lfs.Dirent

	mu  sync.Mutex // guards pos; go-fuse serialises calls per handle, but do not depend on it
	pos int        // index of the next entry to return
}

// newDirHandle opens dir with its listing. Readdir on a real filesystem
// returns "." and ".." too, and ls -a shows them; the kernel leaves that
// to us.
func newDirHandle(dir *node, ents []lfs.Dirent) *dirHandle {
	self := dir.StableAttr().Ino
	parent := self // the root's ".." is itself, as far as this mount knows
	if _, p := dir.Parent(); p != nil {
		parent = p.StableAttr().Ino
	}
	return &dirHandle{
		dir: dir,
		dots: [2]fuse.DirEntry{
			{Name: ".", Mode: syscall.S_IFDIR, Ino: self},
			{Name: "..", Mode: syscall.S_IFDIR, Ino: parent},
		},
		ents: ents,
	}
}

var _ = (fusefs.FileReaddirenter)((*dirHandle)(nil))

// Readdirent returns the next entry, or nil at the end.
func (h *dirHandle) Readdirent(ctx context.Context) (_ *fuse.DirEntry, errno syscall.Errno) {
	defer h.dir.recoverPanic("readdir", &errno)
	h.mu.Lock()
	defer h.mu.Unlock()
	var de fuse.DirEntry
	switch {
	case h.pos < len(h.dots):
		de = h.dots[h.pos]
	case h.pos < len(h.dots)+len(h.ents):
		de = dirEntry(h.ents[h.pos-len(h.dots)])
	default:
		return nil, 0
	}
	h.pos++
	de.Off = uint64(h.pos)
	return &de, 0
}

var _ = (fusefs.FileSeekdirer)((*dirHandle)(nil))

// Seekdir moves the cursor to an offset handed out by Readdirent.
func (h *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	h.mu.Lock()
	defer h.mu.Unlock()
	if off > uint64(len(h.dots)+len(h.ents)) {
		return syscall.EINVAL
	}
	h.pos = int(off)
	return 0
}

var _ = (fusefs.FileLookuper)((*dirHandle)(nil))

// Lookup serves READDIRPLUS: go-fuse asks for the entry just returned by
// Readdirent (never for "." or ".."), whose node we already hold, so the
// tree is not asked twice.
func (h *dirHandle) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (_ *fusefs.Inode, errno syscall.Errno) {
	defer h.dir.recoverPanic("lookup", &errno)
	h.mu.Lock()
	var child lfs.Node
	if i := h.pos - 1 - len(h.dots); i >= 0 && i < len(h.ents) && h.ents[i].Name == name {
		child = h.ents[i].Node
	}
	h.mu.Unlock()
	if child == nil {
		return h.dir.Lookup(ctx, name, out)
	}
	return h.dir.newChild(ctx, child, out), 0
}

var _ = (fusefs.FileReleasedirer)((*dirHandle)(nil))

// Releasedir drops the listing.
func (h *dirHandle) Releasedir(ctx context.Context, releaseFlags uint32) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ents = nil
}
