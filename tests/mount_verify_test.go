package tests

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// mntWriteBlob stores b in an OCI layout under its digest and returns the
// hex digest.
func mntWriteBlob(t testing.TB, layoutDir string, b []byte) string {
	t.Helper()
	s := sha256.Sum256(b)
	h := hex.EncodeToString(s[:])
	dir := filepath.Join(layoutDir, "blobs/sha256")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, h), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return h
}

// mntMinimalLayout writes an OCI layout holding one zero-layer image
// tagged "v1" and returns its path.
func mntMinimalLayout(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	cfgBytes := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	cfg := mntWriteBlob(t, dir, cfgBytes)
	man, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + cfg, "size": len(cfgBytes)},
		"layers":        []any{},
	})
	m := mntWriteBlob(t, dir, man)
	idx, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"manifests": []any{map[string]any{
			"mediaType":   "application/vnd.oci.image.manifest.v1+json",
			"digest":      "sha256:" + m,
			"size":        len(man),
			"annotations": map[string]string{"org.opencontainers.image.ref.name": "v1"},
		}},
	})
	os.WriteFile(filepath.Join(dir, "index.json"), idx, 0o644)
	os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
	return dir
}

// TestMountBlobVerification: blobs/ is "checked against its digest when
// read" (README). For blobs small and large, good and corrupt, whatever
// part is read: a good blob reads back exactly, a corrupt one never
// returns its bytes without an error at some point of a read of the
// part asked for.
func TestMountBlobVerification(t *testing.T) {
	mntRequireFUSE(t)
	t.Parallel()
	dir := mntMinimalLayout(t)
	small := make([]byte, 100<<10)
	large := make([]byte, 17<<20+12345) // above the 16 MiB whole-check limit
	rand.Read(small)
	rand.Read(large)
	good := map[string][]byte{}
	for _, b := range [][]byte{small, large} {
		good[mntWriteBlob(t, dir, b)] = b
	}
	// Corrupt copies: one byte flipped in the middle, under the good
	// content's name.
	bad := map[string][]byte{}
	for _, b := range [][]byte{small, large} {
		c := bytes.Clone(b)
		c[len(c)/2] ^= 0xff
		h := mntWriteBlob(t, dir, c)
		s := sha256.Sum256(b)
		name := hex.EncodeToString(s[:])
		// A second layout dir would be cleaner; here the corrupt blob is
		// renamed to a digest that is not its own (the good one's, with
		// the last digit changed so both exist).
		wrong := name[:63] + string("0123456789abcdef"[(int(name[63])+1)%16])
		if err := os.Rename(filepath.Join(dir, "blobs/sha256", h), filepath.Join(dir, "blobs/sha256", wrong)); err != nil {
			t.Fatal(err)
		}
		bad[wrong] = c
	}

	readAt := func(mnt, h string, off, n int64) ([]byte, error) {
		f, err := os.Open(filepath.Join(mnt, "blobs/sha256", h))
		if err != nil {
			return nil, err
		}
		defer f.Close()
		b := make([]byte, n)
		k, err := f.ReadAt(b, off)
		if err == io.EOF && int64(k) == n {
			err = nil
		}
		return b[:k], err
	}
	wantEIO := func(t *testing.T, what string, b []byte, err error) {
		t.Helper()
		if err == nil {
			t.Errorf("%s: %d bytes of a blob that does not match its digest, no error", what, len(b))
		} else if !errors.Is(err, syscall.EIO) {
			t.Errorf("%s: %v, want EIO", what, err)
		}
	}

	// Each read pattern on a fresh mount: the page cache and the blob's
	// own state must not let a pattern ride on an earlier one.
	patterns := []struct {
		name string
		off  func(size int64) (int64, int64)
	}{
		{"whole", func(size int64) (int64, int64) { return 0, size }},
		{"tail", func(size int64) (int64, int64) { return size - 100, 100 }},
		{"middle", func(size int64) (int64, int64) { return size/2 - 4096, 8192 }},
		{"from-1MiB-to-end", func(size int64) (int64, int64) { off := min(1<<20, size/2); return off, size - off }},
	}
	for _, p := range patterns {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			mnt := mntMount(t, dir)
			for h, b := range good {
				off, n := p.off(int64(len(b)))
				got, err := readAt(mnt, h, off, n)
				if err != nil || !bytes.Equal(got, b[off:off+n]) {
					t.Errorf("good blob of %d bytes, read %d at %d: %v, equal %v", len(b), n, off, err, bytes.Equal(got, b[off:off+n]))
				}
			}
			for h, b := range bad {
				off, n := p.off(int64(len(b)))
				got, err := readAt(mnt, h, off, n)
				wantEIO(t, "corrupt blob of "+strconv.Itoa(len(b))+" bytes, read "+strconv.Itoa(int(n))+" at "+strconv.Itoa(int(off)), got, err)
			}
			// And the mount still serves the good blobs afterwards.
			for h, b := range good {
				got, err := os.ReadFile(filepath.Join(mnt, "blobs/sha256", h))
				if err != nil || !bytes.Equal(got, b) {
					t.Errorf("good blob after the errors: %v", err)
				}
			}
		})
	}
}
