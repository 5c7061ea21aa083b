package mount

import (
	"context"
	iofs "io/fs"
	"os"
	"syscall"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	lfs "github.com/layoutfs/layoutfs/fs"
	"golang.org/x/sys/unix"
)

// The edits of a read-write mount. Each goes to the tree's directory if
// it takes that edit (fs.Renamer, fs.Remover, fs.Symlinker); the rest of
// the tree is content named by digest, which no edit can change: EROFS.
// In a directory that changes but does not take the edit (tags/: no
// mkdir, no files), EPERM says it is the operation, not the mount, that
// is refused.

// refuse is the errno for an edit the node does not take.
func (n *node) refuse() syscall.Errno {
	if _, ok := n.n.(lfs.Changing); ok {
		return syscall.EPERM
	}
	return syscall.EROFS
}

var _ = (fusefs.NodeRenamer)((*node)(nil))

// Rename moves an entry; RENAME_EXCHANGE is not supported.
func (n *node) Rename(ctx context.Context, name string, newParent fusefs.InodeEmbedder, newName string, flags uint32) (errno syscall.Errno) {
	defer n.recoverPanic("rename", &errno)
	r, ok := n.n.(lfs.Renamer)
	np, okp := newParent.(*node)
	switch {
	case !ok:
		return n.refuse()
	case !okp:
		return syscall.EXDEV
	case flags&^renameNoReplace != 0:
		return syscall.EINVAL
	}
	dir, ok := np.n.(lfs.Dir)
	if !ok {
		return syscall.ENOTDIR
	}
	return n.fail("rename "+name+" in", r.Rename(name, dir, newName, flags&renameNoReplace != 0))
}

// remove serves unlink and rmdir.
func (n *node) remove(name string, dir bool) syscall.Errno {
	r, ok := n.n.(lfs.Remover)
	if !ok {
		return n.refuse()
	}
	return n.fail("remove "+name+" in", r.Remove(name, dir))
}

var _ = (fusefs.NodeUnlinker)((*node)(nil))

// Unlink removes a non-directory.
func (n *node) Unlink(ctx context.Context, name string) (errno syscall.Errno) {
	defer n.recoverPanic("unlink", &errno)
	return n.remove(name, false)
}

var _ = (fusefs.NodeRmdirer)((*node)(nil))

// Rmdir removes a directory.
func (n *node) Rmdir(ctx context.Context, name string) (errno syscall.Errno) {
	defer n.recoverPanic("rmdir", &errno)
	return n.remove(name, true)
}

var _ = (fusefs.NodeSymlinker)((*node)(nil))

// Symlink makes a symbolic link.
func (n *node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (_ *fusefs.Inode, errno syscall.Errno) {
	defer n.recoverPanic("symlink", &errno)
	s, ok := n.n.(lfs.Symlinker)
	if !ok {
		return nil, n.refuse()
	}
	uid, gid := caller(ctx)
	child, err := s.Symlink(name, target, uid, gid)
	if err != nil {
		return nil, n.fail("symlink "+name+" in", err)
	}
	return n.newChild(ctx, child, out), 0
}

var _ = (fusefs.NodeMkdirer)((*node)(nil))

// Mkdir makes a directory.
func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (_ *fusefs.Inode, errno syscall.Errno) {
	defer n.recoverPanic("mkdir", &errno)
	m, ok := n.n.(lfs.Mkdirer)
	if !ok {
		return nil, n.refuse()
	}
	uid, gid := caller(ctx)
	child, err := m.Mkdir(name, iofs.FileMode(mode&0o777)|modeBits(mode), uid, gid)
	if err != nil {
		return nil, n.fail("mkdir "+name+" in", err)
	}
	return n.newChild(ctx, child, out), 0
}

// caller returns the uid and gid of the process making the request.
func caller(ctx context.Context) (uid, gid uint32) {
	if c, ok := fuse.FromContext(ctx); ok {
		return c.Uid, c.Gid
	}
	return uint32(os.Getuid()), uint32(os.Getgid())
}

// modeBits returns the setuid, setgid and sticky bits of a unix mode as
// io/fs bits.
func modeBits(mode uint32) iofs.FileMode {
	var m iofs.FileMode
	if mode&syscall.S_ISUID != 0 {
		m |= iofs.ModeSetuid
	}
	if mode&syscall.S_ISGID != 0 {
		m |= iofs.ModeSetgid
	}
	if mode&syscall.S_ISVTX != 0 {
		m |= iofs.ModeSticky
	}
	return m
}

var _ = (fusefs.NodeCreater)((*node)(nil))

// Create makes and opens a regular file.
func (n *node) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (_ *fusefs.Inode, _ fusefs.FileHandle, _ uint32, errno syscall.Errno) {
	defer n.recoverPanic("create", &errno)
	c, ok := n.n.(lfs.Creator)
	if !ok {
		return nil, nil, 0, n.refuse()
	}
	uid, gid := caller(ctx)
	child, err := c.Create(name, iofs.FileMode(mode&0o777)|modeBits(mode), uid, gid)
	if err != nil {
		return nil, nil, 0, n.fail("create "+name+" in", err)
	}
	return n.newChild(ctx, child, out), nil, 0, 0
}

var _ = (fusefs.NodeMknoder)((*node)(nil))

// Mknod makes a device node or fifo.
func (n *node) Mknod(ctx context.Context, name string, mode uint32, dev uint32, out *fuse.EntryOut) (_ *fusefs.Inode, errno syscall.Errno) {
	defer n.recoverPanic("mknod", &errno)
	m, ok := n.n.(lfs.Mknoder)
	if !ok {
		return nil, n.refuse()
	}
	var typ iofs.FileMode
	switch mode & syscall.S_IFMT {
	case syscall.S_IFIFO:
		typ = iofs.ModeNamedPipe
	case syscall.S_IFCHR:
		typ = iofs.ModeDevice | iofs.ModeCharDevice
	case syscall.S_IFBLK:
		typ = iofs.ModeDevice
	case syscall.S_IFREG, 0:
	default:
		return nil, syscall.EINVAL
	}
	uid, gid := caller(ctx)
	// FUSE carries the kernel's 32-bit encoding; the tree uses glibc's.
	rdev := unix.Mkdev((dev>>8)&0xfff, dev&0xff|(dev>>12)&0xfff00)
	child, err := m.Mknod(name, typ|iofs.FileMode(mode&0o777)|modeBits(mode), rdev, uid, gid)
	if err != nil {
		return nil, n.fail("mknod "+name+" in", err)
	}
	return n.newChild(ctx, child, out), 0
}

var _ = (fusefs.NodeLinker)((*node)(nil))

// Link makes a hard link.
func (n *node) Link(ctx context.Context, target fusefs.InodeEmbedder, name string, out *fuse.EntryOut) (_ *fusefs.Inode, errno syscall.Errno) {
	defer n.recoverPanic("link", &errno)
	l, ok := n.n.(lfs.Linker)
	t, okt := target.(*node)
	switch {
	case !ok:
		return nil, n.refuse()
	case !okt:
		return nil, syscall.EXDEV
	}
	child, err := l.Link(name, t.n)
	if err != nil {
		return nil, n.fail("link "+name+" in", err)
	}
	return n.newChild(ctx, child, out), 0
}

var _ = (fusefs.NodeSetattrer)((*node)(nil))

// Setattr changes modes, owners, times or sizes.
func (n *node) Setattr(ctx context.Context, f fusefs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) (errno syscall.Errno) {
	defer n.recoverPanic("setattr", &errno)
	s, ok := n.n.(lfs.Setattrer)
	if !ok {
		return syscall.EROFS
	}
	var a lfs.SetAttr
	if mode, ok := in.GetMode(); ok {
		m := iofs.FileMode(mode&0o777) | modeBits(mode)
		a.Mode = &m
	}
	if uid, ok := in.GetUID(); ok {
		a.Uid = &uid
	}
	if gid, ok := in.GetGID(); ok {
		a.Gid = &gid
	}
	if mtime, ok := in.GetMTime(); ok {
		a.Mtime = &mtime
	}
	if size, ok := in.GetSize(); ok {
		sz := int64(size)
		a.Size = &sz
	}
	if err := s.Setattr(a); err != nil {
		return n.fail("setattr", err)
	}
	fillAttr(&out.Attr, n.n)
	out.SetTimeout(changingTimeout)
	return 0
}

var _ = (fusefs.NodeWriter)((*node)(nil))

// Write writes into a file that takes writes.
func (n *node) Write(ctx context.Context, f fusefs.FileHandle, data []byte, off int64) (_ uint32, errno syscall.Errno) {
	defer n.recoverPanic("write", &errno)
	w, ok := n.n.(lfs.Writer)
	if !ok {
		return 0, syscall.EROFS
	}
	nw, err := w.WriteAt(data, off)
	if err != nil {
		return uint32(nw), n.fail("write", err)
	}
	return uint32(nw), 0
}

var _ = (fusefs.NodeFsyncer)((*node)(nil))

// Fsync has nothing to add: each change reached the upper (the kernel's
// page cache of our files) before it was answered.
func (n *node) Fsync(ctx context.Context, f fusefs.FileHandle, flags uint32) syscall.Errno {
	return 0
}

var _ = (fusefs.NodeSetxattrer)((*node)(nil))

// Setxattr sets an extended attribute.
func (n *node) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) (errno syscall.Errno) {
	defer n.recoverPanic("setxattr", &errno)
	x, ok := n.n.(lfs.XattrSetter)
	if !ok {
		return syscall.EROFS
	}
	_, exists := xattrsOf(n.n)[attr]
	switch {
	case flags&xattrCreate != 0 && exists:
		return syscall.EEXIST
	case flags&xattrReplace != 0 && !exists:
		return syscall.ENODATA
	}
	return n.fail("setxattr", x.SetXattr(attr, data))
}

var _ = (fusefs.NodeRemovexattrer)((*node)(nil))

// Removexattr removes an extended attribute.
func (n *node) Removexattr(ctx context.Context, attr string) (errno syscall.Errno) {
	defer n.recoverPanic("removexattr", &errno)
	x, ok := n.n.(lfs.XattrSetter)
	if !ok {
		return syscall.EROFS
	}
	return n.fail("removexattr", x.RemoveXattr(attr))
}

// xattrsOf returns a node's extended attributes.
func xattrsOf(n lfs.Node) map[string]string {
	if x, ok := n.(lfs.Xattrer); ok {
		return x.Xattrs()
	}
	return nil
}

// setxattr(2)'s flags.
const (
	xattrCreate  = 1
	xattrReplace = 2
)

// renameNoReplace is renameat2's RENAME_NOREPLACE, as FUSE passes it on.
const renameNoReplace = 1
