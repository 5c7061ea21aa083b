package mount

import (
	"context"
	"errors"
	iofs "io/fs"
	"runtime/debug"
	"syscall"
)

// toErrno maps an error from the fs tree to the errno the kernel passes on
// to the caller. It matches with errors.Is so wrapped errors keep their
// meaning; we do not use fuse.ToStatus, which compares by equality and
// turns wrapped errors into ENOSYS.
func toErrno(err error) syscall.Errno {
	var errno syscall.Errno
	switch {
	case err == nil:
		return 0
	case errors.As(err, &errno) && editErrnos[errno]:
		// The tree said which, for an edit.
		return errno
	case errors.Is(err, iofs.ErrNotExist):
		return syscall.ENOENT
	case errors.Is(err, iofs.ErrPermission):
		return syscall.EACCES
	case errors.Is(err, errors.ErrUnsupported):
		return syscall.ENOTSUP
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return syscall.EINTR
	default:
		// Corrupt archives, short reads, I/O errors on the source: the
		// caller can do nothing but retry or give up, which is what EIO
		// says.
		return syscall.EIO
	}
}

// editErrnos are the errnos an edit of the tree may fail with, passed on
// as they are. Others (EBADF from a closed archive, say) are the source's
// trouble and become EIO like any other.
var editErrnos = map[syscall.Errno]bool{
	syscall.EEXIST: true, syscall.ENOTEMPTY: true, syscall.EXDEV: true, syscall.EPERM: true,
	syscall.EINVAL: true, syscall.ENOTDIR: true, syscall.EISDIR: true, syscall.ENODATA: true,
	syscall.EROFS: true, syscall.ENOSPC: true, syscall.EDQUOT: true, syscall.ENAMETOOLONG: true,
	syscall.ENOENT: true, syscall.EACCES: true, syscall.ENOTSUP: true,
}

// fail converts err for the kernel and logs the cases where the errno
// alone would hide the cause (EIO), so the daemon's log says what broke.
func (n *node) fail(op string, err error) syscall.Errno {
	errno := toErrno(err)
	if errno == syscall.EIO {
		n.m.log.Printf("layoutfs: %s %s: %v", op, n.where(), err)
	}
	return errno
}

// recoverPanic is deferred by every handler: a panic in one node (a bug,
// or a corrupt archive tripping one) must cost one EIO, not the mount.
// go-fuse would also recover, but here we know the operation and the path.
func (n *node) recoverPanic(op string, errno *syscall.Errno) {
	if r := recover(); r != nil {
		n.m.log.Printf("layoutfs: panic in %s %s: %v\n%s", op, n.where(), r, debug.Stack())
		*errno = syscall.EIO
	}
}

// where names the node for log messages.
func (n *node) where() string {
	return "/" + n.Path(nil)
}
