package tarindex

import (
	"archive/tar"
	"cmp"
	"fmt"
	"io"
	"math"
)

// sparseReader serves a sparse entry by parsing its header again and
// expanding the holes as archive/tar does. Sparse files are rare in image
// layers, so this favours being right over being fast.
type sparseReader struct {
	archive io.ReaderAt
	e       *Entry
}

func (s *sparseReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("sparse entry %q: negative offset", s.e.Name)
	}
	if off >= s.e.Size {
		return 0, io.EOF
	}
	// Never read past the archive's end when its size is known: a
	// hostile sparse map may point anywhere.
	end := int64(math.MaxInt64)
	if sz, ok := s.archive.(interface{ Size() int64 }); ok {
		end = sz.Size()
	}
	if s.e.Header < 0 || s.e.Header > end {
		return 0, fmt.Errorf("sparse entry %q: header at %d is outside the archive", s.e.Name, s.e.Header)
	}
	tr := tar.NewReader(io.NewSectionReader(s.archive, s.e.Header, end-s.e.Header))
	if _, err := tr.Next(); err != nil {
		return 0, fmt.Errorf("sparse entry %q: %w", s.e.Name, err)
	}
	if skipped, err := discard(io.LimitReader(tr, off)); err != nil || skipped < off {
		return 0, fmt.Errorf("sparse entry %q: %w", s.e.Name, cmp.Or(err, io.ErrUnexpectedEOF))
	}
	n, err := io.ReadFull(tr, p)
	if err == io.ErrUnexpectedEOF {
		err = io.EOF
	}
	return n, err
}
