package layout

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/layoutfs/layoutfs/tarindex"
	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// useCopyFileRange lets the measurement test compare copy_file_range with
// a plain copy through a buffer.
var useCopyFileRange = true

// newMember is a file added to an archive.
type newMember struct {
	name string
	r    io.ReaderAt
	size int64
}

// rewriteArchive writes a new archive beside the one src was opened from
// and renames it over the original. Members keep their order and bytes;
// those named in replace get the new contents (added at the end when
// absent), those in drop are left out, add are appended. Unchanged members
// of an uncompressed archive are copied with copy_file_range from orig (the
// locked archive file) at their indexed offsets, header blocks included; a
// compressed archive is recompressed the same way (gzip or zstd).
func rewriteArchive(ctx context.Context, orig *os.File, src *Source, replace map[string][]byte, drop map[string]bool, add []newMember) (err error) {
	a := src.st.archive
	st, err := orig.Stat()
	if err != nil {
		return err
	}
	dir, base := filepath.Split(src.Path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+tempMark+"*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()

	var w archiveWriter
	var zc io.WriteCloser
	var bw *bufio.Writer
	switch a.Compression {
	case tarindex.None:
		w = &plainWriter{f: f, src: orig}
	case tarindex.Gzip:
		bw = bufio.NewWriterSize(f, 1<<20)
		zc = gzip.NewWriter(bw)
		w = &streamWriter{w: zc, src: a.Data}
	case tarindex.Zstd:
		bw = bufio.NewWriterSize(f, 1<<20)
		zw, err := zstd.NewWriter(bw)
		if err != nil {
			return err
		}
		zc = zw
		w = &streamWriter{w: zc, src: a.Data}
	default:
		return fmt.Errorf("%w: %s archives", ErrUnsupported, a.Compression)
	}

	// The last of duplicate names is the one read: it takes the new bytes,
	// earlier ones go.
	last := map[string]int{}
	for i := range a.Entries {
		last[a.Entries[i].Name] = i
	}
	ents := a.Entries
	var pos int64 // the next byte of the old archive not yet accounted for
	if len(ents) > 0 {
		pos = ents[0].Header
		if err := w.copyRange(0, pos); err != nil { // records indexing skipped
			return err
		}
	}
	tail := trailingData(a, ents)
	for i := range ents {
		if i%256 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		e := &ents[i]
		next := tail
		if i+1 < len(ents) {
			next = ents[i+1].Header
		}
		own := next
		if !e.Sparse {
			own = min(e.Offset+blockAlign(e.Size), next)
		}
		b, replaced := replace[e.Name]
		switch {
		case replaced && last[e.Name] == i:
			if err := w.member(e.Name, e, bytes.NewReader(b), int64(len(b))); err != nil {
				return err
			}
			delete(replace, e.Name)
		case replaced || drop[e.Name]:
		default:
			if err := w.copyRange(e.Header, own-e.Header); err != nil {
				return err
			}
		}
		// What lies between this member and the next: members indexing
		// skipped, kept as they are.
		if err := w.copyRange(own, next-own); err != nil {
			return err
		}
		if i == len(ents)/2 {
			crashPoint("tar:half-written")
		}
	}
	for _, name := range []string{"oci-layout", "manifest.json", "repositories", "index.json"} {
		if b, ok := replace[name]; ok {
			if err := w.member(name, nil, bytes.NewReader(b), int64(len(b))); err != nil {
				return err
			}
		}
	}
	for _, m := range add {
		if err := w.member(m.name, nil, io.NewSectionReader(m.r, 0, m.size), m.size); err != nil {
			return err
		}
	}
	if err := w.write(make([]byte, 2*blockSize)); err != nil { // end of archive
		return err
	}
	if zc != nil {
		if err := zc.Close(); err != nil {
			return err
		}
		if err := bw.Flush(); err != nil {
			return err
		}
	}
	crashPoint("tar:temp-written")
	if err := f.Chmod(st.Mode().Perm()); err != nil {
		return err
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		f.Chown(int(sys.Uid), int(sys.Gid)) // best effort, as cp -p
	}
	if err := f.Sync(); err != nil {
		return err
	}
	crashPoint("tar:temp-synced")
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, src.Path); err != nil {
		return err
	}
	crashPoint("tar:renamed")
	if err := syncDir(dir); err != nil {
		return err
	}
	crashPoint("tar:dir-synced")
	return nil
}

const blockSize = 512

func blockAlign(n int64) int64 { return (n + blockSize - 1) &^ (blockSize - 1) }

// trailingData is where the old archive's members end: past the last
// member, less the zero blocks that end the archive.
func trailingData(a *tarindex.Archive, ents []tarindex.Entry) int64 {
	if len(ents) == 0 {
		return 0
	}
	lastE := ents[len(ents)-1]
	start := lastE.Offset + blockAlign(lastE.Size)
	if lastE.Sparse {
		start = lastE.Offset
	}
	end := max(a.Size, start)
	var blk [blockSize]byte
	for end-blockSize >= start {
		n, err := a.Data.ReadAt(blk[:], end-blockSize)
		if n < blockSize || (err != nil && err != io.EOF) || !allZero(blk[:]) {
			break
		}
		end -= blockSize
	}
	return end
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// archiveWriter writes the new archive: raw ranges of the old one, and new
// members.
type archiveWriter interface {
	copyRange(off, n int64) error
	write(b []byte) error
	member(name string, old *tarindex.Entry, r io.Reader, size int64) error
}

// memberHeader is the tar header of a new or replaced member; a replaced
// one keeps its mode and owner.
func memberHeader(name string, old *tarindex.Entry, size int64) ([]byte, error) {
	h := &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644, ModTime: time.Now().Truncate(time.Second)}
	if old != nil {
		h.Mode, h.Uid, h.Gid = old.Mode&0o7777, old.Uid, old.Gid
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	// WriteHeader writes the header blocks at once; the data follows
	// outside the tar.Writer.
	if err := tw.WriteHeader(h); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func writeMember(w archiveWriter, copyData func(io.Reader, int64) error, name string, old *tarindex.Entry, r io.Reader, size int64) error {
	hdr, err := memberHeader(name, old, size)
	if err != nil {
		return err
	}
	if err := w.write(hdr); err != nil {
		return err
	}
	if err := copyData(r, size); err != nil {
		return err
	}
	return w.write(make([]byte, blockAlign(size)-size))
}

// plainWriter writes an uncompressed archive; raw ranges go by
// copy_file_range from src. Adjacent ranges are joined into one call: the
// unchanged members before the first change sit at the same offsets in
// both files, so a filesystem with reflinks (XFS, btrfs) can share their
// blocks instead of copying them, which it only does for block-aligned
// ranges.
type plainWriter struct {
	f, src     *os.File
	buf        []byte
	pendOff    int64 // a raw range not yet copied
	pendLen    int64
	hasPending bool
}

func (p *plainWriter) write(b []byte) error {
	if err := p.flush(); err != nil {
		return err
	}
	_, err := p.f.Write(b)
	return err
}

func (p *plainWriter) member(name string, old *tarindex.Entry, r io.Reader, size int64) error {
	return writeMember(p, func(r io.Reader, n int64) error {
		got, err := io.Copy(p.f, io.LimitReader(r, n))
		if err == nil && got != n {
			err = io.ErrUnexpectedEOF
		}
		return err
	}, name, old, r, size)
}

func (p *plainWriter) copyRange(off, n int64) error {
	if n <= 0 {
		return nil
	}
	if p.hasPending && p.pendOff+p.pendLen == off {
		p.pendLen += n
		return nil
	}
	if err := p.flush(); err != nil {
		return err
	}
	p.pendOff, p.pendLen, p.hasPending = off, n, true
	return nil
}

func (p *plainWriter) flush() error {
	if !p.hasPending {
		return nil
	}
	p.hasPending = false
	return p.copyNow(p.pendOff, p.pendLen)
}

func (p *plainWriter) copyNow(off, n int64) error {
	for n > 0 && useCopyFileRange {
		c, err := unix.CopyFileRange(int(p.src.Fd()), &off, int(p.f.Fd()), nil, int(min(n, 1<<30)), 0)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if errors.Is(err, unix.EXDEV) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EPERM) {
				break // not here: copy through a buffer
			}
			return fmt.Errorf("copy_file_range: %w", err)
		}
		if c == 0 {
			return fmt.Errorf("copy archive bytes at %d: %w", off, io.ErrUnexpectedEOF)
		}
		n -= int64(c)
	}
	if n <= 0 {
		return nil
	}
	if p.buf == nil {
		p.buf = make([]byte, 1<<20)
	}
	got, err := io.CopyBuffer(onlyWriter{p.f}, io.NewSectionReader(p.src, off, n), p.buf)
	if err == nil && got != n {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// onlyWriter hides *os.File's ReadFrom, so a plain copy really is one.
type onlyWriter struct{ w io.Writer }

func (o onlyWriter) Write(b []byte) (int, error) { return o.w.Write(b) }

// streamWriter writes a compressed archive: everything goes through the
// compressor, raw ranges read from the uncompressed view of the old one.
type streamWriter struct {
	w   io.Writer
	src io.ReaderAt
	buf []byte
}

func (s *streamWriter) write(b []byte) error { _, err := s.w.Write(b); return err }

func (s *streamWriter) copyRange(off, n int64) error {
	if n <= 0 {
		return nil
	}
	if s.buf == nil {
		s.buf = make([]byte, 1<<20)
	}
	got, err := io.CopyBuffer(onlyWriter{s.w}, io.NewSectionReader(s.src, off, n), s.buf)
	if err == nil && got != n {
		err = io.ErrUnexpectedEOF
	}
	return err
}

func (s *streamWriter) member(name string, old *tarindex.Entry, r io.Reader, size int64) error {
	return writeMember(s, func(r io.Reader, n int64) error {
		got, err := io.Copy(s.w, io.LimitReader(r, n))
		if err == nil && got != n {
			err = io.ErrUnexpectedEOF
		}
		return err
	}, name, old, r, size)
}

// putBlobArchive appends a blob to a tarball: its bytes go to a temporary
// file first, so the digest is checked before the archive is touched.
func putBlobArchive(ctx context.Context, l *writeLock, src *Source, d digest.Digest, r io.Reader) (err error) {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("%w: digest %q: %v", ErrInvalid, d, err)
	}
	dir, base := filepath.Split(src.Path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+tempMark+"blob-*")
	if err != nil {
		return err
	}
	defer func() {
		f.Close()
		os.Remove(f.Name())
	}()
	v := d.Verifier()
	n, err := io.Copy(io.MultiWriter(f, v), r)
	if err != nil {
		return err
	}
	crashPoint("blob:temp-written")
	if !v.Verified() {
		return fmt.Errorf("%w: the bytes given for %s hash to something else", ErrDigest, d)
	}
	return rewriteArchive(ctx, l.f, src, nil, nil, []newMember{{name: blobPath(d), r: f, size: n}})
}
