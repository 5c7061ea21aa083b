package mount_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

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

// TestPrefetch: after two files of a directory are read in a row, the
// rest of its small files are in the page cache before anyone reads them,
// with the right bytes; a large one is left to readahead.
func TestPrefetch(t *testing.T) {
	kids := map[string]lfs.Node{}
	for i := range 20 {
		data := []byte(fmt.Sprintf("file %d\n%s", i, strings.Repeat("x", i*300)))
		kids[fmt.Sprintf("f%02d", i)] = &memFile{memNode: memNode{lfs.Attr{Ino: uint64(500 + i), Mode: 0o644, Size: int64(len(data)), Nlink: 1}}, data: data}
	}
	big := &genFile{memNode{lfs.Attr{Ino: 600, Mode: 0o644, Size: 1 << 20, Nlink: 1}}}
	kids["zbig"] = big
	dir := &memDir{memNode{lfs.Attr{Ino: 3, Mode: iofs.ModeDir | 0o755}}, kids}
	mnt := testMount(t, &memDir{memNode{lfs.Attr{Ino: 2, Mode: iofs.ModeDir | 0o755}}, map[string]lfs.Node{"d": dir}})
	if _, err := os.ReadDir(filepath.Join(mnt, "d")); err != nil {
		t.Fatal(err)
	}
	resident := func(name string) bool {
		f, err := os.Open(filepath.Join(mnt, "d", name))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		fi, _ := f.Stat()
		m, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_SHARED)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Munmap(m)
		vec := make([]byte, (len(m)+os.Getpagesize()-1)/os.Getpagesize())
		if _, _, errno := syscall.Syscall(syscall.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
			t.Fatal(errno)
		}
		return vec[0]&1 != 0
	}
	// drop_caches elsewhere on the machine (TestForgottenNodes in a
	// concurrent run) can take the pushed pages: try a few times.
	var missing []string
	for attempt := 0; attempt < 3; attempt++ {
		for _, name := range []string{"f00", "f01"} {
			f, err := os.Open(filepath.Join(mnt, "d", name))
			if err != nil {
				t.Fatal(err)
			}
			unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED) // a real READ each time
			if _, err := io.ReadAll(f); err != nil {
				t.Fatal(err)
			}
			f.Close()
		}
		deadline := time.Now().Add(2 * time.Second)
		for !resident("f19") && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		missing = nil
		for i := 2; i < 20; i++ {
			if name := fmt.Sprintf("f%02d", i); !resident(name) {
				missing = append(missing, name)
			}
		}
		if len(missing) == 0 {
			break
		}
	}
	if len(missing) > 0 {
		t.Errorf("not prefetched: %s", missing)
	}
	if resident("zbig") {
		t.Error("a large file was pushed")
	}
	for i := range 20 {
		name := fmt.Sprintf("f%02d", i)
		b, err := os.ReadFile(filepath.Join(mnt, "d", name))
		if want := kids[name].(*memFile).data; err != nil || !bytes.Equal(b, want) {
			t.Errorf("%s: %d bytes, %v; want %d", name, len(b), err, len(want))
		}
	}
}
