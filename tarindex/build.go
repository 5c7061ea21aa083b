package tarindex

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// counter counts the bytes taken from r, so that after archive/tar has
// parsed a header the position is where the entry's data begins. It passes
// Seek through so tar skips data by seeking when the source allows it.
type counter struct {
	r     io.Reader
	pos   int64
	limit int64 // refuse to go past this many bytes; 0: no limit
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.pos += int64(n)
	if c.limit > 0 && c.pos > c.limit {
		return n, c.tooLarge()
	}
	return n, err
}

func (c *counter) tooLarge() error {
	return fmt.Errorf("%w: more than %d bytes", ErrTooLarge, c.limit)
}

type seekCounter struct{ *counter }

func (c seekCounter) Seek(off int64, whence int) (int64, error) {
	s := c.r.(io.Seeker)
	n, err := s.Seek(off, whence)
	if err == nil {
		c.pos = n
		if c.limit > 0 && n > c.limit {
			return n, c.tooLarge()
		}
	}
	return n, err
}

type limitKey struct{}

// WithLimit returns a context under which Build (and so Open) refuses an
// archive whose uncompressed stream runs past n bytes, with ErrTooLarge: a
// small compressed layer may expand to terabytes, and its descriptor only
// bounds the compressed size. n <= 0 means no limit.
func WithLimit(ctx context.Context, n int64) context.Context {
	return context.WithValue(ctx, limitKey{}, n)
}

func limitOf(ctx context.Context) int64 {
	n, _ := ctx.Value(limitKey{}).(int64)
	return max(n, 0)
}

// Build reads the tar archive from r once, from its start, and indexes it.
// Data is skipped by seeking when r is an io.Seeker, so an uncompressed
// archive costs one read per header. A stream that ends without the
// end-of-archive blocks (umoci 0.4.7 writes such layers) is accepted.
func Build(ctx context.Context, r io.Reader) (*Index, error) {
	c := &counter{r: r, limit: limitOf(ctx)}
	var src io.Reader = c
	if _, ok := r.(io.Seeker); ok {
		src = seekCounter{c}
	}
	ix := &Index{}
	var ents entryChunks
	var blk [blockSize]byte
	var tr *tar.Reader // archive/tar's reader of the last header plainHeader could not parse
	var next int64     // where the next logical header starts
	var expanded int64 // logical bytes of sparse entries so far
	for n := 0; ; n++ {
		if n%1024 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if next < 0 {
			// The last entry was sparse: its physical size is not in its
			// header, so read through its fragments to find where the
			// next header starts. Sparse entries are rare in layers.
			if _, err := discard(tr); err != nil {
				if errors.Is(err, ErrTooLarge) {
					return nil, err
				}
				return nil, fmt.Errorf("%w: sparse entry ending at offset %d: %w", ErrHeader, c.pos, err)
			}
			next = blockAlign(c.pos)
		}
		// The padding after the last entry's data: a stream that ends in
		// it ends the archive, as archive/tar has it.
		if err := skip(src, c, next); err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		} else if err != nil {
			return nil, readErr(err, c, next)
		}
		if _, err := io.ReadFull(src, blk[:]); err == io.EOF {
			break
		} else if err != nil {
			return nil, readErr(err, c, next)
		}
		var hdr *tar.Header
		if h, ok := plainHeader(&blk); ok {
			hdr = &h
		} else {
			// Anything else (extended headers, long names, sparse
			// files, the end-of-archive blocks) is archive/tar's, from
			// this block on; it reads no further than the entry's data.
			tr = tar.NewReader(io.MultiReader(bytes.NewReader(blk[:]), c))
			var err error
			hdr, err = tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, readErr(err, c, next)
			}
		}
		if hdr.Typeflag == tar.TypeGNUSparse || hasSparsePAX(hdr) {
			// The holes are expanded to find the next header: count them
			// against the limit, or a tiny entry with a 2^60-byte hole
			// would hold Build for ever.
			expanded += max(hdr.Size, 0)
			if expanded > sparseLimit(c.limit) {
				return nil, fmt.Errorf("%w: sparse entry %q of %d bytes: sparse files expand past %d bytes", ErrTooLarge, hdr.Name, hdr.Size, sparseLimit(c.limit))
			}
		}
		e, err := entryOf(hdr)
		e.Offset = c.pos
		e.Header = next
		if !e.Sparse {
			end := e.Offset + dataSize(hdr)
			if err := skip(src, c, end); err == io.EOF {
				return nil, readErr(io.ErrUnexpectedEOF, c, next)
			} else if err != nil {
				return nil, readErr(err, c, next)
			}
			next = blockAlign(end)
		} else {
			next = -1 // found before the next header is read
		}
		if err != nil {
			ix.Warnings = append(ix.Warnings, err.Error())
			continue
		}
		ents.add(e)
	}
	ix.Entries = ents.all()
	ix.Size = c.pos
	return ix, nil
}

// skip moves the stream from c.pos to off, by a seek when src can (then
// reading the last byte, since a seek past the end does not fail: io.EOF
// says the stream ends before off), by reading through otherwise.
func skip(src io.Reader, c *counter, off int64) error {
	n := off - c.pos
	if n <= 0 {
		return nil
	}
	if s, ok := src.(io.Seeker); ok {
		if n > 1 {
			if _, err := s.Seek(n-1, io.SeekCurrent); err != nil {
				return err
			}
		}
		var last [1]byte
		_, err := io.ReadFull(src, last[:])
		return err
	}
	m, err := io.CopyN(io.Discard, src, n)
	if err == io.EOF && m > 0 {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// readErr wraps a failure to read the archive, whose header at offset hdr
// was being read or skipped: a stream that ends early is a truncated
// archive, a header archive/tar refuses a bad one, anything else an I/O
// error (kept matchable) or the limit.
func readErr(err error, c *counter, hdr int64) error {
	switch {
	case errors.Is(err, ErrTooLarge):
		return err
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: truncated archive at offset %d", ErrHeader, c.pos)
	case errors.Is(err, tar.ErrHeader), errors.Is(err, tar.ErrFieldTooLong):
		return fmt.Errorf("%w at offset %d: %w", ErrHeader, hdr, err)
	}
	return fmt.Errorf("read archive at offset %d: %w", c.pos, err)
}

// entryChunks collects entries in fixed chunks and copies them once into a
// slice of the exact size at the end: appending to one slice would copy a
// 100k-entry index about five times over as it grows, and the garbage
// collector's work (which a cold mount pays on the same two cores as its
// hashing) grows with what is allocated.
type entryChunks struct {
	full [][]Entry
	cur  []Entry
	n    int
}

const entryChunk = 1024

func (c *entryChunks) add(e Entry) {
	if len(c.cur) == cap(c.cur) {
		if c.cur != nil {
			c.full = append(c.full, c.cur)
		}
		c.cur = make([]Entry, 0, entryChunk)
	}
	c.cur = append(c.cur, e)
	c.n++
}

func (c *entryChunks) all() []Entry {
	if c.n == 0 {
		return nil
	}
	out := make([]Entry, 0, c.n)
	for _, ch := range c.full {
		out = append(out, ch...)
	}
	return append(out, c.cur...)
}

// DefaultSparseLimit bounds the logical size of the sparse entries of an
// archive indexed without a limit (see WithLimit).
const DefaultSparseLimit = 64 << 30

func sparseLimit(limit int64) int64 {
	if limit > 0 {
		return limit
	}
	return DefaultSparseLimit
}

// discard reads r to its end; a sparse entry's holes come out as zeros,
// so a large buffer (and no io.Discard.ReadFrom with its small one) makes
// that memclr-fast.
func discard(r io.Reader) (int64, error) {
	buf := make([]byte, 1<<20)
	return io.CopyBuffer(struct{ io.Writer }{io.Discard}, r, buf)
}

func blockAlign(n int64) int64 { return (n + 511) &^ 511 }

// dataSize is the number of data bytes following a non-sparse header.
func dataSize(h *tar.Header) int64 {
	switch h.Typeflag {
	case tar.TypeLink, tar.TypeSymlink, tar.TypeChar, tar.TypeBlock, tar.TypeDir, tar.TypeFifo:
		return 0
	}
	return h.Size
}

func entryOf(h *tar.Header) (Entry, error) {
	e := Entry{
		Type:     h.Typeflag,
		Mode:     h.Mode,
		Uid:      h.Uid,
		Gid:      h.Gid,
		Size:     h.Size,
		ModTime:  h.ModTime.UnixNano(),
		Devmajor: h.Devmajor,
		Devminor: h.Devminor,
		Linkname: h.Linkname,
	}
	if e.Type == tar.TypeRegA {
		e.Type = tar.TypeReg
	}
	if h.Typeflag == tar.TypeGNUSparse || hasSparsePAX(h) {
		e.Sparse = true
		e.Type = tar.TypeReg
	}
	if dataSize(h) == 0 {
		e.Size = 0
	}
	for k, v := range h.PAXRecords {
		if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
			if e.Xattrs == nil {
				e.Xattrs = map[string]string{}
			}
			e.Xattrs[name] = v
		}
	}
	name, err := CleanName(h.Name)
	if err != nil {
		return e, err
	}
	e.Name = name
	if h.Typeflag == tar.TypeLink {
		target, err := CleanName(h.Linkname)
		if err != nil || target == "" {
			return e, fmt.Errorf("%w: hard link %q -> %q", ErrUnsafePath, h.Name, h.Linkname)
		}
		e.Linkname = target
	}
	switch e.Type {
	case tar.TypeReg, tar.TypeLink, tar.TypeSymlink, tar.TypeChar, tar.TypeBlock, tar.TypeDir, tar.TypeFifo:
	default:
		return e, fmt.Errorf("%w: %q has type %q", ErrUnsupported, h.Name, h.Typeflag)
	}
	return e, nil
}

func hasSparsePAX(h *tar.Header) bool {
	for k := range h.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// CleanName turns a tar entry name into a clean relative path ("" for the
// root itself). Names that climb out of the root, or hold NUL, are refused:
// extraction tools differ on them and layoutfs never serves outside its tree.
func CleanName(name string) (string, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return "", fmt.Errorf("%w: %q holds NUL", ErrUnsafePath, name)
	}
	p := path.Clean("/" + name)
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", fmt.Errorf("%w: %q", ErrUnsafePath, name)
		}
	}
	return strings.TrimPrefix(p, "/"), nil
}
