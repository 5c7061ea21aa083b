package tarindex

import (
	"archive/tar"
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
	if off >= s.e.Size {
		return 0, io.EOF
	}
	tr := tar.NewReader(io.NewSectionReader(s.archive, s.e.Header, math.MaxInt64-s.e.Header))
	if _, err := tr.Next(); err != nil {
		return 0, fmt.Errorf("sparse entry %q: %w", s.e.Name, err)
	}
	if _, err := io.CopyN(io.Discard, tr, off); err != nil {
		return 0, fmt.Errorf("sparse entry %q: %w", s.e.Name, err)
	}
	n, err := io.ReadFull(tr, p)
	if err == io.ErrUnexpectedEOF {
		err = io.EOF
	}
	return n, err
}
