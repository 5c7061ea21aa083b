package tarindex_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/layoutfs/layoutfs/tarindex"
)

type failAfter struct {
	r   io.Reader
	n   int
	err error
}

func (f *failAfter) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, f.err
	}
	p = p[:min(len(p), f.n)]
	n, err := f.r.Read(p)
	f.n -= n
	return n, err
}

// TestBuildWrapsReadError: an I/O error met while reading headers stays
// matchable (errors.Is) beside ErrHeader, so callers can tell a failing
// disk or a cancelled stream from a corrupt archive. Build once formatted it
// with %v.
func TestBuildWrapsReadError(t *testing.T) {
	b := writeTar(t, tar.FormatUnknown, true, reg("a", "a"), reg("b", "b"))
	eio := errors.New("input/output error")
	_, err := tarindex.Build(context.Background(), &failAfter{r: bytes.NewReader(b), n: 1100, err: eio})
	if !errors.Is(err, eio) {
		t.Errorf("error %v does not wrap the read error", err)
	}
}
