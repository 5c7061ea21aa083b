package tarindex

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"errors"
	"hash"
	"slices"
	"testing"
)

// sumCheck checks a stream against a sha256 sum, like go-digest's verifier.
type sumCheck struct {
	h    hash.Hash
	want [32]byte
}

func (v *sumCheck) Write(p []byte) (int, error) { return v.h.Write(p) }
func (v *sumCheck) Verified() bool              { return bytes.Equal(v.h.Sum(nil), v.want[:]) }

// TestCacheNotPoisoned: the cache is shared by every source and keyed by
// digest. A blob that claims digest D but does not match it (a forged or
// damaged copy in one archive) must leave nothing in the cache under D: the
// genuine blob of D, opened next from another archive, is indexed from its
// own bytes. For every way a layer is indexed: uncompressed, gzip, zstd of
// several frames, eStargz and zstd:chunked TOCs.
func TestCacheNotPoisoned(t *testing.T) {
	genuine := []tfile{treg("etc/os-release", []byte("ID=genuine\n")), treg("usr/bin/tool", bytes.Repeat([]byte("g"), 3000))}
	forged := []tfile{treg("etc/os-release", []byte("ID=forged\n")), treg("usr/bin/sudo", bytes.Repeat([]byte("f"), 3000))}
	forged[1].hdr.Mode = 0o4755
	shapes := []struct {
		name string
		blob func([]tfile) []byte
	}{
		{"plain", func(f []tfile) []byte { return plainTar(t, f) }},
		{"gzip", func(f []tfile) []byte { return gzipped(t, plainTar(t, f)) }},
		{"zstd frames", func(f []tfile) []byte { return zstdFramesOf(t, plainTar(t, f)) }},
		{"estargz", func(f []tfile) []byte { return makeEstargz(t, f, estargzOpts{}) }},
		{"zstd:chunked", func(f []tfile) []byte { return makeZstdChunked(t, f, zstdChunkedOpts{chunk: 1000}) }},
	}
	for _, s := range shapes {
		t.Run(s.name, func(t *testing.T) {
			good, bad := s.blob(genuine), s.blob(forged)
			digest := sha256.Sum256(good)
			c := &Cache{Dir: t.TempDir()}
			const key = "sha256:d"
			open := func(b []byte, verify bool) (*Archive, error) {
				o := Options{Cache: c}
				if verify {
					o.Verify = &sumCheck{h: sha256.New(), want: digest}
				}
				return Open(context.Background(), bytes.NewReader(b), int64(len(b)), key, o)
			}
			if _, err := open(bad, true); !errors.Is(err, ErrMismatch) {
				t.Fatalf("the forged blob: %v, want ErrMismatch", err)
			}
			for _, verify := range []bool{true, false} { // cold, then warm as a stamped source opens
				a, err := open(good, verify)
				if err != nil {
					t.Fatalf("the genuine blob (verify %v): %v", verify, err)
				}
				var names []string
				for _, e := range a.Entries {
					names = append(names, e.Name)
				}
				if !slices.Contains(names, "usr/bin/tool") || slices.Contains(names, "usr/bin/sudo") {
					t.Fatalf("the genuine blob (verify %v) is indexed as %q: the forged blob's index was cached under its digest", verify, names)
				}
				if verify && !a.Verified {
					t.Errorf("the genuine blob, checked: Verified false, so the caller hashes it again")
				}
			}
		})
	}
}

func gzipped(t testing.TB, b []byte) []byte {
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Write(b)
	zw.Close()
	return out.Bytes()
}

// zstdFramesOf compresses b as several zstd frames (a 512-byte block
// each), which are indexed frame by frame.
func zstdFramesOf(t testing.TB, b []byte) []byte {
	var out []byte
	for len(b) > 0 {
		n := min(len(b), 512)
		out = testZstd.EncodeAll(b[:n], out)
		b = b[n:]
	}
	return out
}
