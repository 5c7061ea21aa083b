package tests

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestMountBrokenDigests mounts the fixture whose blobs do not all match
// their digests: it mounts, the bad blobs fail with EIO, the good ones
// read, and the mount survives the errors.
func TestMountBrokenDigests(t *testing.T) {
	t.Parallel()
	src := mntFixture(t, "X-ocitools-aufs-whiteouts-BADDIGESTS")
	mnt := mntMount(t, src)

	// Which blobs are good, from the fixture itself.
	ents, err := os.ReadDir(filepath.Join(src, "blobs/sha256"))
	if err != nil {
		t.Fatal(err)
	}
	var good, bad []string
	content := map[string][]byte{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, "blobs/sha256", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		content[e.Name()] = b
		if s := sha256.Sum256(b); hex.EncodeToString(s[:]) == e.Name() {
			good = append(good, e.Name())
		} else {
			bad = append(bad, e.Name())
		}
	}
	if len(good) != 1 || len(bad) != 2 {
		t.Fatalf("fixture: %d good and %d bad blobs, PROVENANCE.md says 1 and 2", len(good), len(bad))
	}
	manifest := good[0]

	mntWantNames(t, mnt, "blobs/sha256", append([]string{manifest}, bad...)...)
	wantEIO := func(rel string) {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(mnt, rel))
		if err == nil {
			t.Errorf("%s: read %d bytes of a blob that does not match its digest, want EIO", rel, len(b))
			return
		}
		if !errors.Is(err, syscall.EIO) {
			t.Errorf("%s: %v, want EIO", rel, err)
		}
	}
	wantBytes := func(rel string, want []byte) {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(mnt, rel))
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			return
		}
		if !bytes.Equal(b, want) {
			t.Errorf("%s: %d bytes that differ from the source's %d", rel, len(b), len(want))
		}
	}
	for _, b := range bad {
		wantEIO("blobs/sha256/" + b)
		// A stat still works: the size is the blob's.
		fi, err := os.Stat(filepath.Join(mnt, "blobs/sha256", b))
		if err != nil {
			t.Errorf("stat of bad blob %s: %v", b, err)
		} else if fi.Size() != int64(len(content[b])) {
			t.Errorf("bad blob %s: size %d, the file has %d", b, fi.Size(), len(content[b]))
		}
	}
	wantBytes("blobs/sha256/"+manifest, content[manifest])

	img := filepath.Join("manifests", "sha256:"+manifest, "linux_arm64_v8")
	mntWantNames(t, mnt, img, "config.json", "layers", "manifest.json", "rootfs")
	wantBytes(filepath.Join(img, "manifest.json"), content[manifest])
	wantEIO(filepath.Join(img, "config.json"))
	// The one layer is a bad blob: its tree and the rootfs cannot be
	// listed, with EIO, not an empty directory.
	for _, d := range []string{filepath.Join(img, "layers/00"), filepath.Join(img, "rootfs")} {
		ents, err := os.ReadDir(filepath.Join(mnt, d))
		if err == nil {
			t.Errorf("%s: listed %d entries of a layer that does not match its digest, want EIO", d, len(ents))
		} else if !errors.Is(err, syscall.EIO) {
			t.Errorf("%s: %v, want EIO", d, err)
		}
	}

	// Errors again on a second try (no stale success), and the rest of
	// the tree still works: the mount is up.
	wantEIO("blobs/sha256/" + bad[0])
	wantEIO(filepath.Join(img, "config.json"))
	idx, _ := os.ReadFile(filepath.Join(src, "index.json"))
	wantBytes("index.json", idx)
	layoutFile, _ := os.ReadFile(filepath.Join(src, "oci-layout"))
	wantBytes("oci-layout", layoutFile)
	wantBytes("blobs/sha256/"+manifest, content[manifest])
	mntWantNames(t, mnt, "", "blobs", "index.json", "manifests", "oci-layout", "tags")
	if _, err := os.Stat(filepath.Join(mnt, "blobs")); err != nil {
		t.Errorf("mount broken after the errors: %v", err)
	}
	if !mntIsMounted(t, mnt) {
		t.Errorf("mount gone after read errors")
	}
}
