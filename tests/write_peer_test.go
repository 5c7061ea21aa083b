package tests

// Tests of the write path (layoutfs tag, untag, gc) on every shape of
// source, with the peers (skopeo, umoci) reading each result. Helpers are
// prefixed "wr".

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/layoutfs/layoutfs/layout"
)

// wrShape is one kind of source and how the peers address it.
type wrShape struct {
	name      string
	transport string // skopeo transport: oci, oci-archive, docker-archive
	gz        bool   // the archive is compressed (zstd when zst, else gzip)
	zst       bool   // zstd-compressed
	legacy    bool   // names must be repo:tag
}

// wrBaseLayout builds, with umoci, a layout holding one small image tagged
// "t" (its own file, so umoci unpack has something to check).
func wrBaseLayout(t *testing.T) string {
	t.Helper()
	mntNeed(t, "umoci", "skopeo", "gzip", "zstd", "tar")
	return umociImage(t, func(rootfs string) {
		if err := os.WriteFile(filepath.Join(rootfs, "hello"), []byte("hello from the write tests\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	})
}

// umociImage builds, with umoci, a layout holding one image tagged "t",
// whose rootfs fill writes: one layer on top of umoci's empty image.
func umociImage(t *testing.T, fill func(rootfs string)) string {
	t.Helper()
	dir := t.TempDir()
	l := filepath.Join(dir, "layout")
	mntExec(t, "umoci", "init", "--layout", l)
	mntExec(t, "umoci", "new", "--image", l+":t")
	bundle := filepath.Join(dir, "bundle")
	mntExec(t, "umoci", "unpack", "--image", l+":t", bundle)
	fill(filepath.Join(bundle, "rootfs"))
	mntExec(t, "umoci", "repack", "--image", l+":t", bundle)
	return l
}

// wrOrphan makes an unreferenced blob (random bytes) in dir under name
// blobs/sha256/<hex> (or <hex>.tar when legacy) and returns that name.
func wrOrphan(t *testing.T, dir string, legacy bool) string {
	t.Helper()
	b := make([]byte, 3000)
	rand.Read(b)
	sum := sha256.Sum256(b)
	name := "blobs/sha256/" + hex.EncodeToString(sum[:])
	if legacy {
		name = hex.EncodeToString(sum[:]) + ".tar"
	}
	p := filepath.Join(dir, name)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return name
}

// wrAppend appends dir/name to the tar archive (GNU tar -r).
func wrAppend(t *testing.T, archive, dir, name string) {
	t.Helper()
	mntExec(t, "tar", "-rf", archive, "-C", dir, name)
}

// wrSource builds the source of a shape from the base layout, with an
// orphan blob in it. It returns the source, its first tag ("" when
// untagged) and the orphan's path in it.
func wrSource(t *testing.T, sh wrShape, base string) (src, tag, orphan string) {
	t.Helper()
	dir := t.TempDir()
	stage := t.TempDir()
	switch sh.name {
	case "dir-umoci":
		src = filepath.Join(dir, "layout")
		mntExec(t, "cp", "-a", base, src)
		return src, "t", wrOrphan(t, src, false)
	case "dir-skopeo":
		src = filepath.Join(dir, "layout")
		mntExec(t, "skopeo", "copy", "-q", "oci:"+base+":t", "oci:"+src+":t")
		return src, "t", wrOrphan(t, src, false)
	case "oci-archive", "oci-archive-zst":
		src = filepath.Join(dir, "image.tar")
		mntExec(t, "skopeo", "copy", "-q", "oci:"+base+":t", "oci-archive:"+src+":t")
		orphan = wrOrphan(t, stage, false)
		wrAppend(t, src, stage, orphan)
		if sh.zst {
			mntExec(t, "zstd", "-q", "--rm", src)
			src += ".zst"
		}
		return src, "t", orphan
	case "docker-legacy", "docker-legacy-gz":
		src = filepath.Join(dir, "save.tar")
		mntExec(t, "skopeo", "copy", "-q", "oci:"+base+":t", "docker-archive:"+src+":example.com/base:1")
		orphan = wrOrphan(t, stage, true)
		wrAppend(t, src, stage, orphan)
		if sh.gz {
			mntExec(t, "gzip", src)
			src += ".gz"
		}
		return src, "example.com/base:1", orphan
	case "docker25":
		src = filepath.Join(dir, "v25.tar")
		mntExec(t, "cp", mntFixture(t, "B-ggcr-hello-world-docker-v25.tar"), src)
		os.Chmod(src, 0o644)
		orphan = wrOrphan(t, stage, false)
		wrAppend(t, src, stage, orphan)
		return src, "", orphan
	}
	t.Fatalf("unknown shape %s", sh.name)
	return
}

var wrShapes = []wrShape{
	{name: "dir-umoci", transport: "oci"},
	{name: "dir-skopeo", transport: "oci"},
	{name: "oci-archive", transport: "oci-archive"},
	{name: "oci-archive-zst", transport: "oci-archive", gz: true, zst: true},
	{name: "docker-legacy", transport: "docker-archive", legacy: true},
	{name: "docker-legacy-gz", transport: "docker-archive", legacy: true, gz: true},
	{name: "docker25", transport: "docker-archive"},
}

// wrPeerPath is what the peers read: the source, or a decompressed copy
// (skopeo's docker-archive does not read a gzip-wrapped save).
func wrPeerPath(t *testing.T, sh wrShape, src string) string {
	t.Helper()
	if !sh.gz {
		return src
	}
	out := filepath.Join(t.TempDir(), "plain.tar")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tool := "gzip"
	if sh.zst {
		tool = "zstd"
	}
	cmd := exec.Command(tool, "-dc", src)
	cmd.Stdout = f
	var errb strings.Builder
	cmd.Stderr = &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s -dc %s: %v %s", tool, src, err, errb.String())
	}
	return out
}

// wrPeerRef is the skopeo image name of tag in the source.
func wrPeerRef(sh wrShape, p, tag string) string {
	return sh.transport + ":" + p + ":" + tag
}

// wrCheck has the peers read the source: skopeo inspect and copy of each
// tag (umoci unpack of the copy), umoci ls/unpack of the layout itself
// when it is one (extracted, for OCI-shaped tarballs), no tag in gone
// visible, and every blob matching its digest.
func wrCheck(t *testing.T, sh wrShape, src string, tags, gone []string) {
	t.Helper()
	p := wrPeerPath(t, sh, src)
	for _, tag := range tags {
		mntExec(t, "skopeo", "inspect", wrPeerRef(sh, p, tag))
		fresh := filepath.Join(t.TempDir(), "copy")
		mntExec(t, "skopeo", "copy", "-q", wrPeerRef(sh, p, tag), "oci:"+fresh+":x")
		mntExec(t, "umoci", "unpack", "--image", fresh+":x", filepath.Join(t.TempDir(), "bundle"))
	}
	for _, tag := range gone {
		if out, err := exec.Command("skopeo", "inspect", wrPeerRef(sh, p, tag)).CombinedOutput(); err == nil {
			t.Errorf("skopeo still sees %s after it was removed:\n%s", tag, out)
		}
	}
	// umoci on the layout itself: the directory, or an OCI-shaped
	// tarball extracted.
	layoutDir := ""
	switch {
	case sh.transport == "oci":
		layoutDir = src
	case sh.transport == "oci-archive" || sh.name == "docker25":
		layoutDir = filepath.Join(t.TempDir(), "x")
		os.Mkdir(layoutDir, 0o755)
		mntExec(t, "tar", "-xf", p, "-C", layoutDir)
	}
	if layoutDir != "" {
		ls := strings.Fields(mntExec(t, "umoci", "ls", "--layout", layoutDir))
		for _, tag := range tags {
			if !slices.Contains(ls, tag) {
				t.Errorf("umoci ls %s = %q, without %s", layoutDir, ls, tag)
			}
			if slices.Contains(ls, tag) {
				mntExec(t, "umoci", "unpack", "--image", layoutDir+":"+tag, filepath.Join(t.TempDir(), "bundle"))
			}
		}
		for _, tag := range gone {
			if slices.Contains(ls, tag) {
				t.Errorf("umoci ls %s = %q, still with %s", layoutDir, ls, tag)
			}
		}
	}
	// The archive keeps its shape: the same compression, and a legacy
	// save gets no index.json.
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	magic := make([]byte, 4)
	io.ReadFull(f, magic)
	f.Close()
	switch {
	case sh.zst && string(magic) != "\x28\xb5\x2f\xfd":
		t.Errorf("%s is no longer zstd: % x", src, magic)
	case sh.gz && !sh.zst && string(magic[:2]) != "\x1f\x8b":
		t.Errorf("%s is no longer gzip: % x", src, magic)
	}
	if sh.legacy {
		members := mntExec(t, "tar", "-tf", p)
		if slices.Contains(strings.Fields(members), "index.json") {
			t.Errorf("a legacy save got an index.json:\n%s", members)
		}
	}
	wrCheckBlobs(t, src, tags)
}

// wrCheckBlobs opens the source with layoutfs's own reader: each blob must
// hash to its digest, and the tags must be its references.
func wrCheckBlobs(t *testing.T, src string, tags []string) {
	t.Helper()
	s, err := layout.Open(t.Context(), src, layout.Options{})
	if err != nil {
		t.Fatalf("open %s after the write: %v", src, err)
	}
	for _, d := range s.Blobs() {
		r, size, err := s.Blob(d)
		if err != nil {
			t.Errorf("blob %s: %v", d, err)
			continue
		}
		got, err := d.Algorithm().FromReader(io.NewSectionReader(r, 0, size))
		if err != nil || got != d {
			t.Errorf("blob %s hashes to %s (%v)", d, got, err)
		}
	}
	for _, tag := range tags {
		if _, ok := s.Ref(tag); !ok {
			t.Errorf("%s: no reference %s after the write", src, tag)
		}
	}
}

// wrManifestDigest is the digest of the manifest the source's only image
// has, as layoutfs inspect reports it.
func wrManifestDigest(t *testing.T, src string) string {
	t.Helper()
	s, err := layout.Open(t.Context(), src, layout.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ms := s.Manifests()
	if len(ms) != 1 {
		t.Fatalf("%s: %d manifests, want 1", src, len(ms))
	}
	return ms[0].Digest.String()
}

// TestWritePeers runs every kind of write on every shape of source and has
// skopeo and umoci read the result after each: tag by name, tag by digest,
// moving a tag, untag, gc --dry-run, gc.
func TestWritePeers(t *testing.T) {
	base := wrBaseLayout(t)
	for _, sh := range wrShapes {
		t.Run(sh.name, func(t *testing.T) {
			t.Parallel()
			src, first, orphan := wrSource(t, sh, base)
			cache := t.TempDir()
			lfs := func(args ...string) mntResult {
				t.Helper()
				return mntRunOK(t, append([]string{args[0], "--cache-dir", cache}, args[1:]...)...)
			}
			dig := wrManifestDigest(t, src)
			// What is garbage before any write: the orphan, plus what the
			// writer of the source left (umoci keeps the blobs of the
			// image it replaced; the Docker 25 save holds a v1 layer json
			// nothing references). The writes below add none.
			garbage := lfs("gc", "--dry-run", src).stdout
			t.Logf("garbage before the writes:\n%s", garbage)
			if !strings.HasPrefix(garbage, orphan+"\t") && !strings.Contains(garbage, "\n"+orphan+"\t") {
				t.Fatalf("gc --dry-run does not list the orphan %s:\n%s", orphan, garbage)
			}
			var tags []string
			if first != "" {
				tags = append(tags, first)
				wrCheck(t, sh, src, tags, nil)
			}

			// Tag by digest, then by name.
			lfs("tag", src, dig, "example.com/dig:2")
			tags = append(tags, "example.com/dig:2")
			wrCheck(t, sh, src, tags, nil)
			lfs("tag", src, "example.com/dig:2", "example.com/new:1")
			tags = append(tags, "example.com/new:1")
			wrCheck(t, sh, src, tags, nil)
			if !sh.legacy {
				lfs("tag", src, "example.com/new:1", "v2") // a bare OCI ref name
				tags = append(tags, "v2")
				if sh.transport != "docker-archive" {
					wrCheck(t, sh, src, tags, nil)
				} else {
					wrCheckBlobs(t, src, tags)
				}
				tags = tags[:len(tags)-1]
				lfs("untag", src, "v2")
			}
			// Moving a tag onto the same image is a no-op for peers; a
			// tag that does not exist cannot be removed.
			lfs("tag", src, dig, "example.com/new:1")
			if r := mntRun(t, "untag", "--cache-dir", cache, src, "example.com/absent:1"); r.code == 0 {
				t.Errorf("untag of an absent tag succeeded")
			}
			if sh.legacy {
				if r := mntRun(t, "tag", "--cache-dir", cache, src, first, "bare"); r.code == 0 || !strings.Contains(r.stderr, "repo:tag") {
					t.Errorf("tag with a bare name on a legacy save: %s", r)
				}
			}

			// Untag the first name: the others still work, it is gone.
			gone := []string{}
			if first != "" {
				lfs("untag", src, first)
				tags = tags[1:]
				gone = append(gone, first)
				wrCheck(t, sh, src, tags, gone)
			}

			// gc removes what it listed before the writes, no more.
			if r := lfs("gc", "--dry-run", src); r.stdout != garbage {
				t.Fatalf("gc --dry-run after the writes listed\n%s\nbefore them\n%s", r.stdout, garbage)
			}
			if r := lfs("gc", src); r.stdout != garbage {
				t.Fatalf("gc removed\n%s\nnot what --dry-run listed\n%s", r.stdout, garbage)
			}
			if r := lfs("gc", "--dry-run", src); r.stdout != "" {
				t.Errorf("garbage left after gc: %s", r.stdout)
			}
			wrCheck(t, sh, src, tags, gone)
			wrNoTemps(t, src)

			// Untag everything: an image whose last name goes leaves
			// index.json and manifest.json (as an entry that was there for
			// its name), so gc then removes its manifest, config and layer.
			for _, tag := range tags {
				lfs("untag", src, tag)
			}
			r := lfs("gc", src)
			if n := len(strings.Split(strings.TrimSpace(r.stdout), "\n")); r.stdout == "" || n < 3 {
				t.Errorf("gc after untagging everything removed only %q", r.stdout)
			}
			if s, err := layout.Open(t.Context(), src, layout.Options{}); err != nil {
				t.Errorf("open after everything went: %v", err)
			} else if len(s.Refs()) != 0 || len(s.Blobs()) != 0 {
				t.Errorf("left: refs %v, blobs %v", s.Refs(), s.Blobs())
			}
			wrNoTemps(t, src)
		})
	}
}

// wrNoTemps fails if a write left a temporary file beside the source.
func wrNoTemps(t *testing.T, src string) {
	t.Helper()
	dir := filepath.Dir(src)
	if st, err := os.Stat(src); err == nil && st.IsDir() {
		dir = src
	}
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && strings.Contains(filepath.Base(p), ".layoutfs-tmp-") {
			t.Errorf("temporary file left behind: %s", p)
		}
		return nil
	})
}

var _ = fmt.Sprint
