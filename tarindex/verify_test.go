package tarindex_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/layoutfs/layoutfs/tarindex"
)

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

	good := tarindex.NewSumCheck(sha256.Sum256(blob))
	a, err := tarindex.Open(context.Background(), bytes.NewReader(blob), int64(len(blob)), "k1", tarindex.Options{Verify: good})
	if err != nil || len(a.Entries) != 1 {
		t.Fatalf("open with the right digest: %v", err)
	}
	bad := tarindex.NewSumCheck(sha256.Sum256([]byte("something else")))
	if _, err := tarindex.Open(context.Background(), bytes.NewReader(blob), int64(len(blob)), "k2", tarindex.Options{Verify: bad}); !errors.Is(err, tarindex.ErrMismatch) {
		t.Fatalf("open with a wrong digest: %v, want ErrMismatch", err)
	}
}

// TestOpenVerifiesPlainPass: an uncompressed layer is hashed in the pass
// that indexes it, whose chunks (1 MiB) the archive here spans several of;
// the index is the one a header-only pass builds, and the bytes after the
// end-of-archive blocks are hashed too.
func TestOpenVerifiesPlainPass(t *testing.T) {
	var files []file
	for i := range 40 {
		files = append(files, reg(fmt.Sprintf("d/f%02d", i), strings.Repeat(string(rune('a'+i%26)), i*20_000)))
	}
	files = append(files, dir("e"), symlink("e/l", "../d/f01"), hardlink("e/h", "d/f02"))
	blob := append(writeTar(t, tar.FormatPAX, true, files...), make([]byte, 3000)...)
	want := build(t, blob)

	good := tarindex.NewSumCheck(sha256.Sum256(blob))
	a, err := tarindex.Open(context.Background(), bytes.NewReader(blob), int64(len(blob)), "k1", tarindex.Options{Verify: good})
	if err != nil {
		t.Fatalf("open with the right digest: %v", err)
	}
	if !a.Verified {
		t.Error("not Verified: the caller would hash the layer a second time")
	}
	if !reflect.DeepEqual(a.Entries, want.Entries) || a.Size != want.Size {
		t.Errorf("one-pass index differs from the header pass's:\n%+v\n%+v", a.Entries, want.Entries)
	}
	for _, e := range a.Entries[:3] {
		if got, w := readEntry(t, &e, a.Data), readEntry(t, &e, bytes.NewReader(blob)); !bytes.Equal(got, w) {
			t.Errorf("%s: read differs", e.Name)
		}
	}

	// One byte changed in the trailing padding: past the tar, still the blob.
	bad := bytes.Clone(blob)
	bad[len(bad)-1] = 1
	before := runtime.NumGoroutine()
	for i := range 5 {
		v := tarindex.NewSumCheck(sha256.Sum256(blob))
		if _, err := tarindex.Open(context.Background(), bytes.NewReader(bad), int64(len(bad)), fmt.Sprint("bad", i), tarindex.Options{Verify: v}); !errors.Is(err, tarindex.ErrMismatch) {
			t.Fatalf("open with a changed byte: %v, want ErrMismatch", err)
		}
		// A broken header mid-archive: Build fails, and the hasher stops.
		broken := bytes.Clone(blob)
		copy(broken[3*512+148:], "garbage!")
		if _, err := tarindex.Open(context.Background(), bytes.NewReader(broken), int64(len(broken)), fmt.Sprint("broken", i), tarindex.Options{Verify: v}); err == nil {
			t.Fatal("open of a broken archive succeeded")
		}
	}
	// The stream is shorter than the size it was opened with (a file
	// truncated under it): a truncated archive, not a clean end and then a
	// digest mismatch.
	v := tarindex.NewSumCheck(sha256.Sum256(blob))
	if _, err := tarindex.Open(context.Background(), bytes.NewReader(blob), int64(len(blob))+4096, "short", tarindex.Options{Verify: v}); errors.Is(err, tarindex.ErrMismatch) || !(errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, tarindex.ErrHeader)) {
		t.Errorf("a stream 4096 bytes short of its size: %v, want a truncated archive", err)
	}
	time.Sleep(50 * time.Millisecond)
	if after := runtime.NumGoroutine(); after > before+2 {
		t.Errorf("goroutines %d -> %d: failed opens leave their hashers behind", before, after)
	}
}
