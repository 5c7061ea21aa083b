// Package fs is the layoutfs tree of SPEC.md as plain nodes, independent of
// FUSE: the mount adapter, the CLI (ls, cat, cp) and the tests all walk the
// same nodes. A node knows its attributes; a directory can look up and list
// its children; a file is an io.ReaderAt; a symlink has a target.
package fs

import (
	iofs "io/fs"
	"os"
	"time"
)

// Attr is the metadata of a node. Mode carries the io/fs type bits
// (ModeDir, ModeSymlink, ModeDevice|ModeCharDevice, ModeNamedPipe, ...) and
// the permission bits, plus ModeSetuid/ModeSetgid/ModeSticky.
type Attr struct {
	Ino   uint64 // stable for the life of the tree; hard links share it
	Mode  iofs.FileMode
	Size  int64
	Uid   uint32
	Gid   uint32
	Mtime time.Time
	Nlink uint32
	Rdev  uint64 // device number for device nodes, as unix.Mkdev builds it
}

// Node is anything in the tree.
type Node interface {
	Attr() Attr
}

// Dirent is one entry of a directory listing.
type Dirent struct {
	Name string
	Node Node
}

// Dir is a directory node. Lookup returns an error wrapping
// io/fs.ErrNotExist for a name that is not there. ReadDir returns the
// entries sorted by name.
type Dir interface {
	Node
	Lookup(name string) (Node, error)
	ReadDir() ([]Dirent, error)
}

// File is a regular file node; its size is Attr().Size. ReadAt may be called
// concurrently.
type File interface {
	Node
	ReadAt(p []byte, off int64) (int, error)
}

// Symlink is a symbolic link node. The target is returned verbatim and never
// followed by layoutfs itself.
type Symlink interface {
	Node
	Target() string
}

// Xattrer is implemented by nodes that carry extended attributes.
type Xattrer interface {
	Xattrs() map[string]string
}

// FileSpan is implemented by files whose bytes lie contiguous in an open
// file (an uncompressed layer member, read in place): Span returns that file
// and the offset of the first byte, so a server can hand the kernel the
// descriptor (splice) instead of copying. ok is false when the bytes are not
// so laid out (compressed or sparse data); ReadAt still works then.
type FileSpan interface {
	Span() (f *os.File, off int64, ok bool)
}

// Changing is implemented by directories whose entries can change while
// the tree is served (the root and tags/ of a read-write mount, whose
// source other writers may change too): a server must not let the kernel
// cache their listings, or their children's names and attributes, for
// long.
type Changing interface {
	Changing()
}

// The interfaces below are implemented by directories that take edits.
// Their errors wrap a syscall.Errno that says what a file system would
// (EEXIST, ENOTEMPTY, EXDEV, EPERM, ...), or io/fs.ErrNotExist.

// Renamer moves the entry oldName to newName in newDir, replacing what is
// there unless noReplace.
type Renamer interface {
	Rename(oldName string, newDir Dir, newName string, noReplace bool) error
}

// Remover removes the entry name: a directory (rmdir) when dir is set,
// anything else (unlink) otherwise.
type Remover interface {
	Remove(name string, dir bool) error
}

// Symlinker makes a symbolic link name pointing at target, owned by uid
// and gid.
type Symlinker interface {
	Symlink(name, target string, uid, gid uint32) (Node, error)
}

// Creator makes the empty regular file name.
type Creator interface {
	Create(name string, perm iofs.FileMode, uid, gid uint32) (Node, error)
}

// Mknoder makes a device node or fifo; mode carries its type bits.
type Mknoder interface {
	Mknod(name string, mode iofs.FileMode, rdev uint64, uid, gid uint32) (Node, error)
}

// Linker makes name a hard link to target, a node of the same tree.
type Linker interface {
	Link(name string, target Node) (Node, error)
}

// Writer is a file that takes writes.
type Writer interface {
	WriteAt(p []byte, off int64) (int, error)
}

// SetAttr is a change of metadata; nil fields stay as they are.
type SetAttr struct {
	Mode     *iofs.FileMode // permissions and setuid/setgid/sticky
	Uid, Gid *uint32
	Mtime    *time.Time
	Size     *int64
}

// Setattrer is a node whose metadata can change.
type Setattrer interface {
	Setattr(SetAttr) error
}

// XattrSetter is a node whose extended attributes can change.
type XattrSetter interface {
	SetXattr(name string, value []byte) error
	RemoveXattr(name string) error
}

// Mkdirer makes the directory name, owned by uid and gid.
type Mkdirer interface {
	Mkdir(name string, perm iofs.FileMode, uid, gid uint32) (Node, error)
}
