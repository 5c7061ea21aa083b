package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRWSecondMountRefused: a second read-write mount of a source with the
// same cache dir, which would share the first one's pending changes and
// lose some of them, is refused by `mount` itself, naming the first. A
// read-only mount, or one with another cache dir, is not refused; once the
// first is unmounted the second mounts and finds its changes pending.
func TestRWSecondMountRefused(t *testing.T) {
	mntRequireFUSE(t)
	t.Parallel()
	base := rwRichLayout(t)
	cache := t.TempDir()
	first := mntEmptyDir(t)
	mntRunOK(t, "mount", "--rw", "--cache-dir", cache, base, first)
	mntCleanupUmount(t, first)
	if err := os.WriteFile(filepath.Join(first, "tags/t/linux_amd64/rootfs/made-by-first"), []byte("first\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	second := mntEmptyDir(t)
	r := mntRun(t, "mount", "--rw", "--cache-dir", cache, base, second)
	if r.code == 0 {
		mntCleanupUmount(t, second)
		t.Fatalf("a second read-write mount with the same cache dir succeeded: %s", r)
	}
	if !strings.Contains(r.stderr, "in use by another read-write mount") || !strings.Contains(r.stderr, first) {
		t.Errorf("second read-write mount: the message does not say which mount holds the changes: %q", r.stderr)
	}
	if mntIsMounted(t, second) {
		t.Errorf("%s mounted although the mount failed", second)
	}

	// Read-only, or read-write with its own cache dir: no conflict.
	mntRunOK(t, "mount", "--cache-dir", cache, base, second)
	mntRunOK(t, "umount", second)
	mntRunOK(t, "mount", "--rw", "--cache-dir", t.TempDir(), base, second)
	mntRunOK(t, "umount", second)

	mntRunOK(t, "umount", first)
	mntRunOK(t, "mount", "--rw", "--cache-dir", cache, base, second)
	mntCleanupUmount(t, second)
	b, err := os.ReadFile(filepath.Join(second, "tags/t/linux_amd64/rootfs/made-by-first"))
	if err != nil || string(b) != "first\n" {
		t.Errorf("the first mount's change, after it was unmounted: %q, %v", b, err)
	}
	if s := mntRunOK(t, "status", "--cache-dir", cache, second).stdout; !strings.Contains(s, "A made-by-first") {
		t.Errorf("status: %q, want the first mount's change pending", s)
	}
}

// TestRWGCKeepsPending: an image with pending changes survives being
// untagged and a gc (run with the mount's cache dir): status says where
// its changes are and how to reach them, and tagging it again brings
// them back, ready to commit. The same gc without the pending changes
// would have collected it.
func TestRWGCKeepsPending(t *testing.T) {
	mntRequireFUSE(t)
	t.Parallel()
	base := rwRichLayout(t)
	dig := wrManifestDigest(t, base)
	cache := t.TempDir()
	mnt := mntEmptyDir(t)
	mntRunOK(t, "mount", "--rw", "--cache-dir", cache, base, mnt)
	mntCleanupUmount(t, mnt)
	tag := filepath.Join(mnt, "tags/t")
	if err := os.WriteFile(filepath.Join(tag, "linux_amd64/rootfs/kept"), []byte("kept\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mntExec(t, "rm", "-r", tag)

	blob := filepath.Join(base, "blobs", "sha256", strings.TrimPrefix(dig, "sha256:"))
	if g := mntRunOK(t, "gc", "--dry-run", "--cache-dir", t.TempDir(), base).stdout; !strings.Contains(g, strings.TrimPrefix(dig, "sha256:")) {
		t.Fatalf("gc without the pending changes would keep the untagged manifest: %q", g)
	}
	mntRunOK(t, "gc", "--cache-dir", cache, base)
	if _, err := os.Stat(blob); err != nil {
		t.Fatalf("gc collected the manifest of an image with pending changes: %v", err)
	}
	s := mntRunOK(t, "status", "--cache-dir", cache, mnt).stdout
	if !strings.Contains(s, "manifests/"+dig) || !strings.Contains(s, "no reference") || !strings.Contains(s, "ln -s ../manifests/"+dig) {
		t.Errorf("status of the untagged image: %q, want its manifest and how to reach it", s)
	}

	rwSymlink(t, "../manifests/"+dig, tag)
	kept := filepath.Join(tag, "linux_amd64/rootfs/kept")
	rwEventually(t, "the change to show again", func() bool {
		b, err := os.ReadFile(kept)
		return err == nil && string(b) == "kept\n"
	})
	mntRunOK(t, "commit", "--cache-dir", cache, mnt, "tags/t/linux_amd64")
	rwEventually(t, "the commit to show", func() bool {
		b, err := os.ReadFile(kept)
		return err == nil && string(b) == "kept\n" && mntRunOK(t, "status", "--cache-dir", cache, mnt).stdout == ""
	})
}
