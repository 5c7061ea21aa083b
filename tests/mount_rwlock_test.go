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
