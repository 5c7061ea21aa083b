package tarindex

import (
	"archive/tar"
	"cmp"
	"fmt"
	"io"
	"math"
	"sync"
)

// sparseReader serves a sparse entry by parsing its header again and
// expanding the holes as archive/tar does. Sparse files are rare in image
// layers, so this favours being right over being fast; but a reader is kept
// where the last read of the entry ended, so reading a sparse file front to
// back is one pass over it, not one pass per read.
type sparseReader struct {
	archive io.ReaderAt
	e       *Entry
}

// sparseCursor is a tar reader of one sparse entry, positioned at pos.
type sparseCursor struct {
	mu      sync.Mutex
	archive io.ReaderAt
	tr      *tar.Reader
	pos     int64
}

// same reports whether a and b are the same reader; readers of types that
// cannot be compared are taken as different.
func same(a, b io.ReaderAt) (eq bool) {
	defer func() {
		if recover() != nil {
			eq = false
		}
	}()
	return a == b
}

// sparseCursors keeps the cursors of the sparse entries read last, a few.
var sparseCursors = struct {
	sync.Mutex
	m     map[*Entry]*sparseCursor
	order []*Entry
}{m: map[*Entry]*sparseCursor{}}

const maxSparseCursors = 16

func cursorOf(e *Entry) *sparseCursor {
	sparseCursors.Lock()
	defer sparseCursors.Unlock()
	if c, ok := sparseCursors.m[e]; ok {
		return c
	}
	if len(sparseCursors.order) >= maxSparseCursors {
		delete(sparseCursors.m, sparseCursors.order[0])
		sparseCursors.order = sparseCursors.order[1:]
	}
	c := &sparseCursor{}
	sparseCursors.m[e] = c
	sparseCursors.order = append(sparseCursors.order, e)
	return c
}

func (s *sparseReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("sparse entry %q: negative offset", s.e.Name)
	}
	if off >= s.e.Size {
		return 0, io.EOF
	}
	c := cursorOf(s.e)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tr == nil || off < c.pos || !same(c.archive, s.archive) {
		tr, err := s.open()
		if err != nil {
			c.tr = nil
			return 0, err
		}
		c.tr, c.pos, c.archive = tr, 0, s.archive
	}
	if skipped, err := discard(io.LimitReader(c.tr, off-c.pos)); err != nil || skipped < off-c.pos {
		c.tr = nil
		return 0, fmt.Errorf("sparse entry %q: %w", s.e.Name, cmp.Or(err, io.ErrUnexpectedEOF))
	}
	n, err := io.ReadFull(c.tr, p)
	c.pos = off + int64(n)
	if err != nil {
		c.tr = nil
	}
	if err == io.ErrUnexpectedEOF {
		err = io.EOF
	}
	return n, err
}

// open parses the entry's header again and returns a reader of its data.
func (s *sparseReader) open() (*tar.Reader, error) {
	// Never read past the archive's end when its size is known: a
	// hostile sparse map may point anywhere.
	end := int64(math.MaxInt64)
	if sz, ok := s.archive.(interface{ Size() int64 }); ok {
		end = sz.Size()
	}
	if s.e.Header < 0 || s.e.Header > end {
		return nil, fmt.Errorf("sparse entry %q: header at %d is outside the archive", s.e.Name, s.e.Header)
	}
	tr := tar.NewReader(io.NewSectionReader(s.archive, s.e.Header, end-s.e.Header))
	if _, err := tr.Next(); err != nil {
		return nil, fmt.Errorf("sparse entry %q: %w", s.e.Name, err)
	}
	return tr, nil
}
