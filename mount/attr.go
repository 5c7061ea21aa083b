package mount

import (
	iofs "io/fs"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"
	lfs "github.com/layoutfs/layoutfs/fs"
)

// typeBits returns the S_IF* file type for an io/fs mode.
func typeBits(m iofs.FileMode) uint32 {
	switch {
	case m&iofs.ModeDir != 0:
		return syscall.S_IFDIR
	case m&iofs.ModeSymlink != 0:
		return syscall.S_IFLNK
	case m&iofs.ModeDevice != 0 && m&iofs.ModeCharDevice != 0:
		return syscall.S_IFCHR
	case m&iofs.ModeDevice != 0:
		return syscall.S_IFBLK
	case m&iofs.ModeCharDevice != 0:
		// io/fs sets ModeCharDevice only together with ModeDevice, but a
		// tree that forgets the latter still means a character device.
		return syscall.S_IFCHR
	case m&iofs.ModeNamedPipe != 0:
		return syscall.S_IFIFO
	case m&iofs.ModeSocket != 0:
		return syscall.S_IFSOCK
	default:
		return syscall.S_IFREG
	}
}

// unixMode returns the full st_mode: type, permissions and the
// setuid/setgid/sticky bits, which io/fs keeps apart from the permissions.
func unixMode(m iofs.FileMode) uint32 {
	mode := typeBits(m) | uint32(m.Perm())
	if m&iofs.ModeSetuid != 0 {
		mode |= syscall.S_ISUID
	}
	if m&iofs.ModeSetgid != 0 {
		mode |= syscall.S_ISGID
	}
	if m&iofs.ModeSticky != 0 {
		mode |= syscall.S_ISVTX
	}
	return mode
}

// kernelDev re-encodes a device number built like unix.Mkdev (glibc's
// 64-bit layout) into the 32-bit layout FUSE carries (the kernel's
// new_encode_dev): 12 bits of major, 20 of minor. Larger numbers cannot be
// represented in FUSE at all.
func kernelDev(rdev uint64) uint32 {
	major := (rdev>>8)&0xfff | (rdev>>32)&^0xfff
	minor := rdev&0xff | (rdev>>12)&^0xff
	return uint32(minor&0xff | major<<8 | (minor&^0xff)<<12)
}

// fillAttr converts a node's attributes to what the kernel expects.
func fillAttr(out *fuse.Attr, node lfs.Node) {
	fillAttrFrom(out, node, node.Attr())
}

// fillAttrFrom is fillAttr with the node's attributes already at hand.
func fillAttrFrom(out *fuse.Attr, node lfs.Node, a lfs.Attr) {
	out.Ino = a.Ino
	out.Mode = unixMode(a.Mode)

	size := a.Size
	if size == 0 {
		// POSIX: a symlink's size is the length of its target. Trees built
		// from tar headers leave it at zero.
		if l, ok := node.(lfs.Symlink); ok {
			size = int64(len(l.Target()))
		}
	}
	out.Size = uint64(max(size, 0))
	out.Blocks = (out.Size + 511) / 512
	// A non-zero Blksize also stops go-fuse from overwriting Blocks with
	// its own page-rounded count.
	out.Blksize = 4096

	out.Nlink = a.Nlink
	if out.Nlink == 0 {
		// 1 is "unknown" for find(1) and friends; 0 would mean deleted.
		out.Nlink = 1
	}
	out.Uid = a.Uid
	out.Gid = a.Gid
	out.Rdev = kernelDev(a.Rdev)

	// The archive has one time per entry; use it for all three so tools
	// comparing ctime or atime see something sensible rather than 1970.
	var sec int64
	var nsec uint32
	if !a.Mtime.IsZero() {
		sec, nsec = a.Mtime.Unix(), uint32(a.Mtime.Nanosecond())
	}
	// Times before 1970 travel as the two's complement of a negative
	// number; the kernel reads them back as signed.
	out.Mtime, out.Mtimensec = uint64(sec), nsec
	out.Atime, out.Atimensec = uint64(sec), nsec
	out.Ctime, out.Ctimensec = uint64(sec), nsec
}
