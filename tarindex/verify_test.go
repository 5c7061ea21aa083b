package tarindex_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"errors"
	"hash"
	"testing"

	"github.com/layoutfs/layoutfs/tarindex"
)

// sumVerifier checks a stream against a sha256 sum, like go-digest's.
type sumVerifier struct {
	h    hash.Hash
	want [32]byte
}

func (v *sumVerifier) Write(p []byte) (int, error) { return v.h.Write(p) }
func (v *sumVerifier) Verified() bool              { return bytes.Equal(v.h.Sum(nil), v.want[:]) }

// TestOpenVerifiesCompressedPass: a gzip layer is checked against its
// digest during the pass that indexes it; a wrong digest fails the open.
func TestOpenVerifiesCompressedPass(t *testing.T) {
	var plain bytes.Buffer
	tw := tar.NewWriter(&plain)
	tw.WriteHeader(&tar.Header{Name: "f", Mode: 0o644, Size: 5, Typeflag: tar.TypeReg})
	tw.Write([]byte("hello"))
	tw.Close()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(plain.Bytes())
	zw.Close()
	gz.Write(make([]byte, 64)) // padding after the member is hashed too
	blob := gz.Bytes()

	good := &sumVerifier{h: sha256.New(), want: sha256.Sum256(blob)}
	a, err := tarindex.Open(context.Background(), bytes.NewReader(blob), int64(len(blob)), "k1", tarindex.Options{Verify: good})
	if err != nil || len(a.Entries) != 1 {
		t.Fatalf("open with the right digest: %v", err)
	}
	bad := &sumVerifier{h: sha256.New(), want: sha256.Sum256([]byte("something else"))}
	if _, err := tarindex.Open(context.Background(), bytes.NewReader(blob), int64(len(blob)), "k2", tarindex.Options{Verify: bad}); !errors.Is(err, tarindex.ErrMismatch) {
		t.Fatalf("open with a wrong digest: %v, want ErrMismatch", err)
	}
}
