// Package tarindex is a seekable index of a tar archive: one pass over the
// headers records where each entry's bytes live, and reads are then preads
// into the archive at those offsets. A tar inside a tar is just a section of
// the outer archive; compressed archives are served through an uncompressed
// view (see Open).
package tarindex

import (
	"archive/tar"
	"errors"
	"io"
	iofs "io/fs"
	"time"
)

// Errors returned by this package, wrapped with the entry or offset they
// concern.
var (
	ErrHeader      = errors.New("tarindex: invalid tar header")
	ErrUnsafePath  = errors.New("tarindex: unsafe path")
	ErrUnsupported = errors.New("tarindex: unsupported entry")
	ErrTooLarge    = errors.New("tarindex: archive expands past the limit")
)

// Entry is one logical tar entry: PAX and GNU long-name records are folded
// into it, as archive/tar does.
type Entry struct {
	Name     string // cleaned, relative, no leading "./" or "/", no trailing "/"
	Linkname string // hard link targets are cleaned like Name; symlink targets verbatim
	Type     byte   // tar typeflag
	Mode     int64  // permission, setuid, setgid and sticky bits as in the header
	Uid      int
	Gid      int
	Size     int64 // logical size
	ModTime  int64 // unix nanoseconds
	Devmajor int64
	Devminor int64
	Xattrs   map[string]string // from PAX SCHILY.xattr.* records

	// Offset is where the entry's data starts in the archive. For sparse
	// entries the data is not contiguous; Header is then where the entry's
	// first header block starts, so it can be parsed again on read.
	Offset int64
	Header int64
	Sparse bool
}

// Index is the list of entries of one archive, in archive order.
type Index struct {
	Entries []Entry
	// Size is the number of archive bytes the index covers.
	Size int64
	// Warnings are entries skipped or oddities met while indexing, for the
	// caller to log. They never stop indexing.
	Warnings []string
}

// Time returns the entry's modification time.
func (e *Entry) Time() time.Time { return time.Unix(0, e.ModTime) }

// FileMode returns the io/fs mode of the entry: type bits plus permissions.
func (e *Entry) FileMode() iofs.FileMode {
	m := iofs.FileMode(e.Mode & 0o777)
	if e.Mode&0o4000 != 0 {
		m |= iofs.ModeSetuid
	}
	if e.Mode&0o2000 != 0 {
		m |= iofs.ModeSetgid
	}
	if e.Mode&0o1000 != 0 {
		m |= iofs.ModeSticky
	}
	switch e.Type {
	case tar.TypeDir:
		m |= iofs.ModeDir
	case tar.TypeSymlink:
		m |= iofs.ModeSymlink
	case tar.TypeChar:
		m |= iofs.ModeDevice | iofs.ModeCharDevice
	case tar.TypeBlock:
		m |= iofs.ModeDevice
	case tar.TypeFifo:
		m |= iofs.ModeNamedPipe
	}
	return m
}

// IsRegular reports whether the entry carries file data of its own.
func (e *Entry) IsRegular() bool {
	return e.Type == tar.TypeReg || e.Type == tar.TypeRegA || e.Type == tar.TypeGNUSparse
}

// Reader returns a reader of the entry's bytes inside archive.
func (e *Entry) Reader(archive io.ReaderAt) io.ReaderAt {
	if e.Sparse {
		return &sparseReader{archive: archive, e: e}
	}
	return io.NewSectionReader(archive, e.Offset, e.Size)
}
