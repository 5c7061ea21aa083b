package mount

import (
	"context"
	"errors"
	"log"
	"maps"
	"slices"
	"strings"
	"syscall"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	lfs "github.com/layoutfs/layoutfs/fs"
)

// The tree is immutable for the life of a mount (a read-only view of an
// archive), so the kernel may cache names and attributes for long. Misses
// are cached too, which absorbs bursts of probes (a shell searching PATH,
// a loader searching library dirs), but for less: every cached miss holds
// a dentry, and nobody benefits from keeping one for an hour.
const (
	entryTimeout    = time.Hour
	attrTimeout     = time.Hour
	negativeTimeout = 30 * time.Second
)

// changingTimeout is how long the kernel may keep names and attributes
// in directories that change under the mount (fs.Changing): a tag another
// writer adds shows up within it.
const changingTimeout = time.Second

// shared is the per-mount state every node points at.
type shared struct {
	log      *log.Logger
	writable bool
}

// node adapts one lfs.Node to go-fuse's node bridge, which serves
// read-write mounts (read-only ones are served by rawFS, raw.go). go-fuse
// calls its methods from many goroutines at once; node itself holds no
// mutable state (the embedded Inode guards its own), and the lfs nodes are
// safe for concurrent use.
type node struct {
	fusefs.Inode
	n lfs.Node
	m *shared
	// changing: n lies in a directory that changes (fs.Changing), so the
	// kernel keeps its attributes and contents only briefly.
	changing bool
}

// newChild returns the inode for child, filling out with its attributes.
// The StableAttr carries the tree's inode number, so go-fuse merges every
// path to the same Ino (hard links) into one inode.
func (n *node) newChild(ctx context.Context, child lfs.Node, out *fuse.EntryOut) *fusefs.Inode {
	fillAttr(&out.Attr, child)
	id := fusefs.StableAttr{Mode: out.Attr.Mode & syscall.S_IFMT, Ino: out.Attr.Ino}
	if id.Reserved() {
		// go-fuse uses ^0 internally; let it pick a number instead.
		id.Ino = 0
	}
	_, changing := n.n.(lfs.Changing)
	if changing {
		out.SetEntryTimeout(changingTimeout)
		out.SetAttrTimeout(changingTimeout)
	}
	return n.NewInode(ctx, &node{n: child, m: n.m, changing: changing}, id)
}

// isChanging reports whether the node or its listing may change.
func (n *node) isChanging() bool {
	_, dirChanges := n.n.(lfs.Changing)
	return n.changing || dirChanges
}

var _ = (fusefs.NodeLookuper)((*node)(nil))

// Lookup finds a child by name.
func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (_ *fusefs.Inode, errno syscall.Errno) {
	defer n.recoverPanic("lookup", &errno)
	d, ok := n.n.(lfs.Dir)
	if !ok {
		return nil, syscall.ENOTDIR
	}
	child, err := d.Lookup(name)
	if err != nil {
		return nil, n.fail("lookup "+name+" in", err)
	}
	return n.newChild(ctx, child, out), 0
}

// entries lists the directory, sorted by name. lfs promises sorted
// entries; a cheap check keeps a tree that forgets from confusing the
// kernel's offsets, without mutating a slice the tree may have cached.
func (n *node) entries() ([]lfs.Dirent, syscall.Errno) {
	d, ok := n.n.(lfs.Dir)
	if !ok {
		return nil, syscall.ENOTDIR
	}
	ents, err := d.ReadDir()
	if err != nil {
		return nil, n.fail("readdir", err)
	}
	byName := func(a, b lfs.Dirent) int { return strings.Compare(a.Name, b.Name) }
	if !slices.IsSortedFunc(ents, byName) {
		ents = slices.SortedFunc(slices.Values(ents), byName)
	}
	return ents, 0
}

// dirEntry is the readdir record for e: name, type and inode number, so
// that ls -i and find -type need no further lookups.
func dirEntry(e lfs.Dirent) fuse.DirEntry {
	a := e.Node.Attr()
	return fuse.DirEntry{Name: e.Name, Mode: typeBits(a.Mode), Ino: a.Ino}
}

var _ = (fusefs.NodeReaddirer)((*node)(nil))

// Readdir lists the directory as a go-fuse DirStream. Mounted, go-fuse
// prefers OpendirHandle, which also answers READDIRPLUS lookups and lets
// the kernel cache the listing; Readdir is the plain form of the same
// listing, without "." and "..", as go-fuse's own streams are.
func (n *node) Readdir(ctx context.Context) (_ fusefs.DirStream, errno syscall.Errno) {
	defer n.recoverPanic("readdir", &errno)
	ents, errno := n.entries()
	if errno != 0 {
		return nil, errno
	}
	list := make([]fuse.DirEntry, len(ents))
	for i, e := range ents {
		list[i] = dirEntry(e)
	}
	return fusefs.NewListDirStream(list), 0
}

var _ = (fusefs.NodeOpendirHandler)((*node)(nil))

// OpendirHandle reads the listing once per open. The handle answers
// READDIRPLUS lookups from the listing itself, and FOPEN_CACHE_DIR lets
// the kernel keep the listing, since it never changes.
func (n *node) OpendirHandle(ctx context.Context, flags uint32) (_ fusefs.FileHandle, _ uint32, errno syscall.Errno) {
	defer n.recoverPanic("opendir", &errno)
	ents, errno := n.entries()
	if errno != 0 {
		return nil, 0, errno
	}
	if _, ok := n.n.(lfs.Changing); ok {
		return newDirHandle(n, ents), 0, 0
	}
	return newDirHandle(n, ents), fuse.FOPEN_CACHE_DIR | fuse.FOPEN_KEEP_CACHE, 0
}

var _ = (fusefs.NodeGetattrer)((*node)(nil))

// Getattr reports the node's attributes.
func (n *node) Getattr(ctx context.Context, f fusefs.FileHandle, out *fuse.AttrOut) (errno syscall.Errno) {
	defer n.recoverPanic("getattr", &errno)
	fillAttr(&out.Attr, n.n)
	if n.isChanging() {
		out.SetTimeout(changingTimeout)
	}
	return 0
}

var _ = (fusefs.NodeOpener)((*node)(nil))

// Open admits read-only opens of regular files. There is no per-open
// state, so no file handle. A read-only open answers ENOSYS: the kernel
// then stops sending OPEN and RELEASE for the life of the mount
// (zero-message open, as for CAP_NO_OPEN_SUPPORT) and keeps the page cache
// across opens (FOPEN_KEEP_CACHE is its default then), which is right
// because content under a digest never changes. Two round trips fewer per
// file: cp -a and cat of many small files feel it.
func (n *node) Open(ctx context.Context, flags uint32) (_ fusefs.FileHandle, _ uint32, errno syscall.Errno) {
	defer n.recoverPanic("open", &errno)
	if flags&syscall.O_ACCMODE != syscall.O_RDONLY || flags&syscall.O_TRUNC != 0 {
		// A read-only mount is MS_RDONLY, so the kernel refuses these
		// first; in a writable one only some files take writes.
		if _, ok := n.n.(lfs.Writer); !ok {
			return nil, 0, syscall.EROFS
		}
		if flags&syscall.O_TRUNC != 0 {
			zero := int64(0)
			if s, ok := n.n.(lfs.Setattrer); ok {
				if err := s.Setattr(lfs.SetAttr{Size: &zero}); err != nil {
					return nil, 0, n.fail("truncate", err)
				}
			}
		}
		return nil, 0, 0
	}
	if _, ok := n.n.(lfs.File); !ok {
		return nil, 0, n.fail("open", errors.New("regular file has no content"))
	}
	if n.m.writable {
		// Writable mounts need OPEN for the files that take writes, so
		// the kernel must not learn to skip it.
		if n.changing {
			return nil, 0, 0
		}
		return nil, fuse.FOPEN_KEEP_CACHE, 0
	}
	return nil, 0, syscall.ENOSYS
}

var _ = (fusefs.NodeFlusher)((*node)(nil))

// Flush has nothing to do on a read-only tree. ENOSYS tells the kernel so
// once, and it stops sending FLUSH on every close.
func (n *node) Flush(ctx context.Context, f fusefs.FileHandle) syscall.Errno {
	return syscall.ENOSYS
}

var _ = (fusefs.NodeReader)((*node)(nil))

// Read fills dest straight from the file (see readFile).
func (n *node) Read(ctx context.Context, f fusefs.FileHandle, dest []byte, off int64) (_ fuse.ReadResult, errno syscall.Errno) {
	defer n.recoverPanic("read", &errno)
	r, errno := readFile(n.n, dest, off)
	if errno == syscall.EIO {
		n.m.log.Printf("layoutfs: read %s: %v", n.where(), r.err)
	}
	return r.res, errno
}

var _ = (fusefs.NodeReadlinker)((*node)(nil))

// Readlink returns the target verbatim.
func (n *node) Readlink(ctx context.Context) (_ []byte, errno syscall.Errno) {
	defer n.recoverPanic("readlink", &errno)
	l, ok := n.n.(lfs.Symlink)
	if !ok {
		return nil, syscall.EINVAL
	}
	return []byte(l.Target()), 0
}

var _ = (fusefs.NodeGetxattrer)((*node)(nil))

// Getxattr returns one extended attribute. With an empty dest the caller
// asks for the size; a dest too small is ERANGE, as getxattr(2) says.
func (n *node) Getxattr(ctx context.Context, attr string, dest []byte) (_ uint32, errno syscall.Errno) {
	defer n.recoverPanic("getxattr", &errno)
	x, ok := n.n.(lfs.Xattrer)
	if !ok {
		return 0, syscall.ENODATA
	}
	v, ok := x.Xattrs()[attr]
	if !ok {
		return 0, syscall.ENODATA
	}
	if len(dest) == 0 {
		return uint32(len(v)), 0
	}
	if len(dest) < len(v) {
		return uint32(len(v)), syscall.ERANGE
	}
	return uint32(copy(dest, v)), 0
}

var _ = (fusefs.NodeListxattrer)((*node)(nil))

// Listxattr returns the attribute names, each NUL-terminated, sorted so
// repeated calls agree.
func (n *node) Listxattr(ctx context.Context, dest []byte) (_ uint32, errno syscall.Errno) {
	defer n.recoverPanic("listxattr", &errno)
	x, ok := n.n.(lfs.Xattrer)
	if !ok {
		return 0, 0
	}
	var b []byte
	for _, name := range slices.Sorted(maps.Keys(x.Xattrs())) {
		b = append(append(b, name...), 0)
	}
	if len(dest) == 0 {
		return uint32(len(b)), 0
	}
	if len(dest) < len(b) {
		return uint32(len(b)), syscall.ERANGE
	}
	return uint32(copy(dest, b)), 0
}

var _ = (fusefs.NodeStatfser)((*node)(nil))

// Statfs reports an empty, full filesystem: nothing can be written, and
// the archive's size says nothing useful to df.
func (n *node) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	statfs(out)
	return 0
}
