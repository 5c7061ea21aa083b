package mount_test

import (
	"errors"
	iofs "io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	lfs "github.com/layoutfs/layoutfs/fs"
	"golang.org/x/sys/unix"
)

// xattrFreeDir is a root that promises no extended attributes anywhere.
type xattrFreeDir struct{ *memDir }

func (xattrFreeDir) NoXattrs() bool { return true }

// TestNoXattrsMount: under a root that has none anywhere, the mount
// answers ENOSYS, which the kernel turns into ENOTSUP for good.
func TestNoXattrsMount(t *testing.T) {
	tree := testTree()
	delete(tree.kids, "hello.txt") // the one file with xattrs
	mnt := testMount(t, xattrFreeDir{tree})
	p := filepath.Join(mnt, "bin/sh")
	for i := range 2 {
		if _, err := unix.Listxattr(p, make([]byte, 64)); !errors.Is(err, syscall.ENOTSUP) {
			t.Errorf("listxattr %d: %v, want ENOTSUP", i, err)
		}
		if _, err := unix.Getxattr(p, "user.x", make([]byte, 64)); !errors.Is(err, syscall.ENOTSUP) {
			t.Errorf("getxattr %d: %v, want ENOTSUP", i, err)
		}
		// The kernel's ACL handler reports no ACL rather than no support.
		if _, err := unix.Getxattr(p, "system.posix_acl_access", make([]byte, 64)); !errors.Is(err, syscall.ENOTSUP) && !errors.Is(err, syscall.ENODATA) {
			t.Errorf("getxattr of an ACL %d: %v, want ENODATA", i, err)
		}
	}
}

// TestForgottenNodes: nodes the kernel drops (here: all of them, through
// drop_caches) come back on the next lookup with the same numbers.
func TestForgottenNodes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("drop_caches needs root")
	}
	mnt := testMount(t, testTree())
	walkAll := func() map[string]uint64 {
		inos := map[string]uint64{}
		filepath.WalkDir(mnt, func(p string, d iofs.DirEntry, err error) error {
			if err != nil {
				return nil // odd/ and panicdir/ fail on purpose
			}
			if fi, err := os.Lstat(p); err == nil {
				inos[p] = fi.Sys().(*syscall.Stat_t).Ino
			}
			return nil
		})
		return inos
	}
	before := walkAll()
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("2"), 0); err != nil {
		t.Skipf("drop_caches: %v", err)
	}
	after := walkAll()
	if len(after) != len(before) || len(before) < 15 {
		t.Fatalf("%d paths before, %d after", len(before), len(after))
	}
	for p, ino := range before {
		if after[p] != ino {
			t.Errorf("%s: ino %d, then %d", p, ino, after[p])
		}
	}
	if b, err := os.ReadFile(filepath.Join(mnt, "usr/bin/sh")); err != nil || string(b) != "\x7fELF" {
		t.Errorf("usr/bin/sh after forgetting: %q, %v", b, err)
	}
}

var _ lfs.XattrFree = xattrFreeDir{}
