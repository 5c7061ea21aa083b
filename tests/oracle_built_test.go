package tests

import (
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// buildOracleImage makes a three-layer OCI layout with umoci: every kind of
// entry in the first layer, deletions, a replaced hard-link target and a
// chmod in the second (repack writes whiteouts), and an opaque directory in
// the third (umoci 0.4.7's insert writes that layer without end-of-archive
// blocks, as real archives have).
func buildOracleImage(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: building the oracle image needs root (device nodes, owners); CI runs as root")
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "layout")
	bundle := filepath.Join(dir, "bundle")
	run(t, "umoci", "init", "--layout", img)
	run(t, "umoci", "new", "--image", img+":t")
	run(t, "umoci", "unpack", "--image", img+":t", bundle)
	rootfs := filepath.Join(bundle, "rootfs")

	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	write := func(p string, data []byte, mode os.FileMode) {
		t.Helper()
		full := filepath.Join(rootfs, p)
		must(os.MkdirAll(filepath.Dir(full), 0o755))
		must(os.WriteFile(full, data, mode))
		must(os.Chmod(full, mode))
	}
	big := make([]byte, 3<<20+123)
	rand.New(rand.NewSource(1)).Read(big)

	// Layer 1: every kind of entry.
	write("etc/hello", []byte("hello\n"), 0o644)
	write("bin/tool", []byte("#!/bin/sh\necho tool\n"), os.ModeSetuid|0o755)
	write("data/big.bin", big, 0o600)
	write("data/a", []byte("linked content\n"), 0o640)
	must(os.Link(filepath.Join(rootfs, "data/a"), filepath.Join(rootfs, "data/b")))
	write("keep/x", []byte("old x\n"), 0o644)
	must(os.Link(filepath.Join(rootfs, "keep/x"), filepath.Join(rootfs, "keep/y")))
	long := strings.Repeat("long-name-", 24) + "end"
	write("deep/"+strings.Repeat("nested-directory/", 8)+long, []byte("deep\n"), 0o644)
	write("ünïcödé/名前 with spaces.txt", []byte("non-ascii\n"), 0o644)
	must(os.Symlink("../etc/hello", filepath.Join(rootfs, "bin/rel-link")))
	must(os.Symlink("/etc/hello", filepath.Join(rootfs, "bin/abs-link")))
	must(os.Symlink("/does/not/exist", filepath.Join(rootfs, "bin/dangling")))
	must(unix.Mkfifo(filepath.Join(rootfs, "etc/fifo"), 0o600))
	must(os.MkdirAll(filepath.Join(rootfs, "dev"), 0o755))
	must(unix.Mknod(filepath.Join(rootfs, "dev/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	write("xattr/file", []byte("with xattr\n"), 0o644)
	must(unix.Setxattr(filepath.Join(rootfs, "xattr/file"), "user.layoutfs", []byte("value"), 0))
	write("owned/by-1000", []byte("owned\n"), 0o644)
	must(os.Lchown(filepath.Join(rootfs, "owned/by-1000"), 1000, 1001))
	must(os.MkdirAll(filepath.Join(rootfs, "private"), 0o700))
	must(os.MkdirAll(filepath.Join(rootfs, "tmp"), 0o755))
	must(os.Chmod(filepath.Join(rootfs, "tmp"), 0o1777|os.ModeSticky))
	write("olddir/inner/file", []byte("gone soon\n"), 0o644)
	write("opt/old1", []byte("old opt 1\n"), 0o644)
	write("opt/sub/old2", []byte("old opt 2\n"), 0o644)
	run(t, "umoci", "repack", "--image", img+":t", bundle)

	// Layer 2: deletions (whiteouts), a replaced hard-link target, a chmod.
	must(os.Remove(filepath.Join(rootfs, "etc/hello")))
	must(os.RemoveAll(filepath.Join(rootfs, "olddir")))
	must(os.Remove(filepath.Join(rootfs, "keep/x")))
	write("keep/x", []byte("new x, longer than before\n"), 0o600)
	must(os.Chmod(filepath.Join(rootfs, "data/big.bin"), 0o644))
	write("etc/added", []byte("added in layer 2\n"), 0o644)
	run(t, "umoci", "repack", "--image", img+":t", bundle)

	// Layer 3: /opt replaced whole.
	newOpt := filepath.Join(dir, "newopt")
	must(os.MkdirAll(filepath.Join(newOpt, "fresh"), 0o755))
	must(os.WriteFile(filepath.Join(newOpt, "fresh/file"), []byte("new opt\n"), 0o644))
	run(t, "umoci", "insert", "--image", img+":t", "--opaque", newOpt, "/opt")
	return img
}

// TestOracleBuiltImage compares layoutfs's rootfs of an image made by
// umoci with umoci's own unpack, in each source shape layoutfs reads: the
// layout directory, an oci-archive, a legacy docker save, and that save
// compressed with gzip and with zstd.
func TestOracleBuiltImage(t *testing.T) {
	needTools(t, "skopeo", "umoci", "gzip", "zstd")
	img := buildOracleImage(t)
	want := dirTree(t, umociRootfs(t, img, "t"))
	for _, p := range []string{"keep/y", "opt/fresh/file", "dev/null", "etc/fifo", "xattr/file"} {
		if _, ok := want.recs[p]; !ok {
			t.Fatalf("the oracle image lacks %s: the comparison would not test it", p)
		}
	}
	for _, p := range []string{"etc/hello", "olddir", "opt/old1"} {
		if _, ok := want.recs[p]; ok {
			t.Fatalf("umoci still shows %s: the image did not delete it", p)
		}
	}

	dir := t.TempDir()
	ociArchive := filepath.Join(dir, "oci-archive.tar")
	run(t, "skopeo", "copy", "-q", "oci:"+img+":t", "oci-archive:"+ociArchive+":t")
	dockerSave := filepath.Join(dir, "docker-save.tar")
	run(t, "skopeo", "copy", "-q", "oci:"+img+":t", "docker-archive:"+dockerSave+":example.com/oracle:v1")
	gz := compress(t, "gzip", dockerSave)
	zst := compress(t, "zstd", dockerSave)

	for _, c := range []struct{ name, source, rootfs string }{
		{"layout-dir", img, "tags/t/linux_amd64/rootfs"},
		{"oci-archive", ociArchive, "tags/t/linux_amd64/rootfs"},
		{"docker-save", dockerSave, "tags/example.com/oracle:v1/linux_amd64/rootfs"},
		{"docker-save-gzip", gz, "tags/example.com/oracle:v1/linux_amd64/rootfs"},
		{"docker-save-zstd", zst, "tags/example.com/oracle:v1/linux_amd64/rootfs"},
	} {
		t.Run(c.name, func(t *testing.T) {
			compareTrees(t, nodeTree(t, openDir(t, c.source, c.rootfs)), want)
		})
	}
}

// compress writes src compressed with tool ("gzip" or "zstd") beside it.
func compress(t *testing.T, tool, src string) string {
	t.Helper()
	out := src + map[string]string{"gzip": ".gz", "zstd": ".zst"}[tool]
	run(t, tool, "-q", "-k", "-f", src) // both write src plus their suffix
	return out
}
