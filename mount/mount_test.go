package mount_test

import (
	"bytes"
	"errors"
	"fmt"
	iofs "io/fs"
	"log"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	lfs "github.com/layoutfs/layoutfs/fs"
	"github.com/layoutfs/layoutfs/mount"
	"golang.org/x/sys/unix"
)

// requireFUSE skips, loudly, where the kernel has no FUSE device; the
// rest of the suite (ls, cat, cp) does not need it.
func requireFUSE(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skipf("!!! SKIPPING FUSE TEST %s: /dev/fuse is missing (%v); these tests need FUSE (run with --device /dev/fuse) !!!", t.Name(), err)
	}
}

// testMount mounts root on a fresh directory and unmounts it when the test
// ends.
func testMount(t *testing.T, root lfs.Dir) string {
	mnt, _ := testMountLog(t, root)
	return mnt
}

// testMountLog is testMount that also returns what the mount logged.
func testMountLog(t *testing.T, root lfs.Dir) (string, *syncBuffer) {
	t.Helper()
	requireFUSE(t)
	mnt := t.TempDir()
	logs := new(syncBuffer)
	srv, err := mount.Mount(root, mnt, mount.Options{
		FsName: "test:" + t.Name(),
		Logger: log.New(logs, "", 0),
	})
	if err != nil {
		t.Fatalf("Mount: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Unmount(); err != nil {
			t.Errorf("Unmount: %v", err)
		}
		srv.Wait()
		if logs.Len() > 0 {
			t.Logf("mount log:\n%s", logs)
		}
	})
	return mnt, logs
}

// syncBuffer is a bytes.Buffer safe for the mount's many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Len()
}

func TestReaddir(t *testing.T) {
	mnt := testMount(t, testTree())
	ents, err := os.ReadDir(mnt)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	types := map[string]iofs.FileMode{}
	for _, e := range ents {
		got = append(got, e.Name())
		types[e.Name()] = e.Type()
	}
	want := []string{"abs", "big", "bin", "boom", "broken", "dev", "hello.txt", "link", "odd", "panicdir", "tmp", "usr", "zero"}
	if !slices.Equal(got, want) {
		t.Errorf("ReadDir = %q, want %q", got, want)
	}
	for name, typ := range map[string]iofs.FileMode{"bin": iofs.ModeDir, "link": iofs.ModeSymlink, "hello.txt": 0} {
		if types[name] != typ {
			t.Errorf("%s: type %v, want %v", name, types[name], typ)
		}
	}
	devs, err := os.ReadDir(filepath.Join(mnt, "dev"))
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) != 3 || devs[0].Type() != iofs.ModeNamedPipe || devs[1].Type() != iofs.ModeDevice|iofs.ModeCharDevice || devs[2].Type() != iofs.ModeDevice {
		t.Errorf("dev entries: %v", devs)
	}
	// Twice, through the kernel's cached listing.
	again, err := os.ReadDir(mnt)
	if err != nil || len(again) != len(want) {
		t.Errorf("second ReadDir: %d entries, %v", len(again), err)
	}
}

// TestReaddirDots reads a directory the way ls -a does, with getdents.
func TestReaddirDots(t *testing.T) {
	mnt := testMount(t, testTree())
	dir := filepath.Join(mnt, "dev")
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	inos := map[string]uint64{}
	var names []string
	// A small buffer forces several calls, each resuming at an offset.
	buf := make([]byte, 64)
	for {
		n, err := unix.Getdents(fd, buf)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		for b := buf[:n]; len(b) > 0; {
			reclen := int(uint16(b[16]) | uint16(b[17])<<8)
			ino := uint64(0)
			for i := 7; i >= 0; i-- {
				ino = ino<<8 | uint64(b[i])
			}
			name := string(b[19:reclen])
			name = name[:strings.IndexByte(name, 0)]
			names = append(names, name)
			inos[name] = ino
			b = b[reclen:]
		}
	}
	if want := []string{".", "..", "fifo", "null", "sda"}; !slices.Equal(names, want) {
		t.Errorf("getdents = %q, want %q", names, want)
	}
	_, self := lstat(t, dir)
	_, parent := lstat(t, mnt)
	if inos["."] != self.Ino || inos[".."] != parent.Ino {
		t.Errorf(". is %d, .. is %d; want %d and %d", inos["."], inos[".."], self.Ino, parent.Ino)
	}
}

func lstat(t *testing.T, path string) (os.FileInfo, *syscall.Stat_t) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi, fi.Sys().(*syscall.Stat_t)
}

func TestStat(t *testing.T) {
	tree := testTree()
	mnt := testMount(t, tree)

	fi, st := lstat(t, filepath.Join(mnt, "hello.txt"))
	if fi.Mode() != 0o644 || fi.Size() != int64(len(helloTxt)) || st.Uid != 1000 || st.Gid != 1001 {
		t.Errorf("hello.txt: mode %v size %d uid %d gid %d", fi.Mode(), fi.Size(), st.Uid, st.Gid)
	}
	if !fi.ModTime().Equal(testMtime) {
		t.Errorf("hello.txt: mtime %v, want %v", fi.ModTime(), testMtime)
	}
	if want := tree.kids["hello.txt"].Attr().Ino; st.Ino != want {
		t.Errorf("hello.txt: ino %d, want %d", st.Ino, want)
	}
	if st.Blocks != 1 {
		t.Errorf("hello.txt: %d blocks, want 1", st.Blocks)
	}

	_, rst := lstat(t, mnt)
	if rst.Ino != rootIno {
		t.Errorf("root ino %d, want %d", rst.Ino, rootIno)
	}

	// Hard links: one inode, two names, link count 2.
	fi1, st1 := lstat(t, filepath.Join(mnt, "bin/sh"))
	_, st2 := lstat(t, filepath.Join(mnt, "usr/bin/sh"))
	if st1.Ino != shIno || st2.Ino != shIno || st1.Nlink != 2 || st2.Nlink != 2 {
		t.Errorf("hard links: ino %d/%d nlink %d/%d, want %d and 2", st1.Ino, st2.Ino, st1.Nlink, st2.Nlink, shIno)
	}
	if fi1.Mode() != iofs.ModeSetuid|0o755 {
		t.Errorf("bin/sh: mode %v", fi1.Mode())
	}

	for _, c := range []struct {
		path string
		mode iofs.FileMode
		rdev uint64
	}{
		{"dev/null", iofs.ModeDevice | iofs.ModeCharDevice | 0o666, unix.Mkdev(1, 3)},
		{"dev/sda", iofs.ModeDevice | 0o660, unix.Mkdev(259, 70000)},
		{"dev/fifo", iofs.ModeNamedPipe | 0o600, 0},
		{"tmp", iofs.ModeDir | iofs.ModeSticky | 0o777, 0},
		{"zero", 0, 0},
		{"link", iofs.ModeSymlink | 0o777, 0},
	} {
		fi, st := lstat(t, filepath.Join(mnt, c.path))
		if fi.Mode() != c.mode || st.Rdev != c.rdev {
			t.Errorf("%s: mode %v rdev %#x, want %v %#x", c.path, fi.Mode(), st.Rdev, c.mode, c.rdev)
		}
	}
	if fi, _ := lstat(t, filepath.Join(mnt, "link")); fi.Size() != int64(len("hello.txt")) {
		t.Errorf("link: size %d, want the target's length", fi.Size())
	}

	var sfs syscall.Statfs_t
	if err := syscall.Statfs(mnt, &sfs); err != nil || sfs.Bsize != 4096 {
		t.Errorf("statfs: %v bsize %d", err, sfs.Bsize)
	}
}

func TestRead(t *testing.T) {
	mnt := testMount(t, testTree())
	b, err := os.ReadFile(filepath.Join(mnt, "hello.txt"))
	if err != nil || string(b) != helloTxt {
		t.Errorf("hello.txt = %q, %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(mnt, "zero")); err != nil || len(b) != 0 {
		t.Errorf("empty file = %q, %v", b, err)
	}

	f, err := os.Open(filepath.Join(mnt, "big"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, off := range []int64{0, 1<<32 - 5, 5<<30 + 17, bigSize - 1000} {
		buf := make([]byte, 300<<10)
		n, err := f.ReadAt(buf, off)
		want := int(min(int64(len(buf)), bigSize-off))
		if n != want || (err != nil && n == len(buf)) {
			t.Errorf("ReadAt(%d): %d bytes, %v; want %d", off, n, err, want)
		}
		for i := range n {
			if buf[i] != byte((off+int64(i))%251) {
				t.Fatalf("ReadAt(%d): byte %d is %d, want %d", off, i, buf[i], byte((off+int64(i))%251))
			}
		}
	}
}

func TestReadlink(t *testing.T) {
	mnt := testMount(t, testTree())
	for name, want := range map[string]string{"link": "hello.txt", "abs": "/etc/passwd"} {
		if got, err := os.Readlink(filepath.Join(mnt, name)); err != nil || got != want {
			t.Errorf("Readlink(%s) = %q, %v; want %q", name, got, err, want)
		}
	}
	// Relative links work through the mount like any other.
	if b, err := os.ReadFile(filepath.Join(mnt, "link")); err != nil || string(b) != helloTxt {
		t.Errorf("read through link: %q, %v", b, err)
	}
}

func TestXattr(t *testing.T) {
	mnt := testMount(t, testTree())
	p := filepath.Join(mnt, "hello.txt")

	buf := make([]byte, 64)
	n, err := unix.Getxattr(p, "user.origin", buf)
	if err != nil || string(buf[:n]) != "layer-0" {
		t.Errorf("getxattr user.origin = %q, %v", buf[:n], err)
	}
	if n, err := unix.Getxattr(p, "user.origin", nil); err != nil || n != len("layer-0") {
		t.Errorf("getxattr size = %d, %v", n, err)
	}
	if _, err := unix.Getxattr(p, "user.origin", make([]byte, 2)); err != unix.ERANGE {
		t.Errorf("getxattr small buffer: %v, want ERANGE", err)
	}
	if n, err := unix.Getxattr(p, "user.empty", buf); err != nil || n != 0 {
		t.Errorf("getxattr empty value = %d, %v", n, err)
	}
	if _, err := unix.Getxattr(p, "user.missing", buf); err != unix.ENODATA {
		t.Errorf("getxattr missing: %v, want ENODATA", err)
	}
	if _, err := unix.Getxattr(filepath.Join(mnt, "bin"), "user.origin", buf); err != unix.ENODATA {
		t.Errorf("getxattr on a node without xattrs: %v, want ENODATA", err)
	}

	n, err = unix.Listxattr(p, buf)
	if got := string(buf[:n]); err != nil || got != "user.empty\x00user.origin\x00" {
		t.Errorf("listxattr = %q, %v", got, err)
	}
	if n, err := unix.Listxattr(filepath.Join(mnt, "bin"), buf); err != nil || n != 0 {
		t.Errorf("listxattr without xattrs = %d, %v", n, err)
	}
}

func TestNotExist(t *testing.T) {
	mnt := testMount(t, testTree())
	for _, p := range []string{"nope", "bin/nope", "hello.txt/x"} {
		_, err := os.Stat(filepath.Join(mnt, p))
		if !errors.Is(err, iofs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
			t.Errorf("stat %s: %v, want ENOENT", p, err)
		}
	}
	// And again, now from the kernel's negative cache.
	if _, err := os.Stat(filepath.Join(mnt, "nope")); !errors.Is(err, iofs.ErrNotExist) {
		t.Errorf("second stat: %v", err)
	}
}

func TestReadOnly(t *testing.T) {
	mnt := testMount(t, testTree())
	if opts := mountOptions(t, mnt); !strings.HasPrefix(opts, "ro,nosuid,nodev") {
		t.Errorf("mount options %q, want ro,nosuid,nodev: images are not trusted", opts)
	}
	for name, op := range map[string]func() error{
		"open for write": func() error {
			f, err := os.OpenFile(filepath.Join(mnt, "hello.txt"), os.O_WRONLY, 0)
			f.Close()
			return err
		},
		"truncate": func() error { return os.Truncate(filepath.Join(mnt, "hello.txt"), 0) },
		"create":   func() error { return os.WriteFile(filepath.Join(mnt, "new"), nil, 0o644) },
		"mkdir":    func() error { return os.Mkdir(filepath.Join(mnt, "newdir"), 0o755) },
		"remove":   func() error { return os.Remove(filepath.Join(mnt, "hello.txt")) },
		"chmod":    func() error { return os.Chmod(filepath.Join(mnt, "hello.txt"), 0o600) },
		"setxattr": func() error { return unix.Setxattr(filepath.Join(mnt, "hello.txt"), "user.x", []byte("y"), 0) },
	} {
		if err := op(); !errors.Is(err, syscall.EROFS) {
			t.Errorf("%s: %v, want EROFS", name, err)
		}
	}
}

func TestErrorsAndPanics(t *testing.T) {
	mnt, logs := testMountLog(t, testTree())
	expect := func(what string, err, want error) {
		t.Helper()
		if !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", what, err, want)
		}
	}
	_, err := os.ReadFile(filepath.Join(mnt, "boom"))
	expect("read of a panicking file", err, syscall.EIO)
	_, err = os.ReadFile(filepath.Join(mnt, "broken"))
	expect("read of a corrupt file", err, syscall.EIO)
	_, err = os.Stat(filepath.Join(mnt, "odd/x"))
	expect("lookup returning ErrUnsupported", err, syscall.ENOTSUP)
	_, err = os.ReadDir(filepath.Join(mnt, "odd"))
	expect("readdir of a corrupt dir", err, syscall.EIO)
	_, err = os.Stat(filepath.Join(mnt, "panicdir/x"))
	expect("lookup that panics", err, syscall.EIO)
	_, err = os.ReadDir(filepath.Join(mnt, "panicdir"))
	expect("readdir that panics", err, syscall.EIO)

	// The mount survived all of it.
	if b, err := os.ReadFile(filepath.Join(mnt, "hello.txt")); err != nil || string(b) != helloTxt {
		t.Errorf("after panics: %q, %v", b, err)
	}
	_, err = os.ReadFile(filepath.Join(mnt, "boom"))
	expect("second read of a panicking file", err, syscall.EIO)

	// EIO hides the cause from the caller, so the log must have it.
	for _, want := range []string{"panic in read /boom: corrupt tar entry", "read /broken: layer sha256:abc: tarindex: corrupt header", "panic in lookup /panicdir"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q", want)
		}
	}
}

func TestMountpointErrors(t *testing.T) {
	requireFUSE(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	busy := testMount(t, testTree())

	for _, c := range []struct{ mnt, want string }{
		{filepath.Join(dir, "missing"), "does not exist"},
		{file, "not a directory"},
		{busy, "already a mount point"},
	} {
		srv, err := mount.Mount(testTree(), c.mnt, mount.Options{})
		if err == nil {
			srv.Unmount()
			t.Errorf("Mount(%s) succeeded, want %q", c.mnt, c.want)
			continue
		}
		if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.mnt) {
			t.Errorf("Mount(%s): %v, want %q and the path", c.mnt, err, c.want)
		}
	}
	if _, err := mount.Mount(testTree(), dir, mount.Options{Options: []string{"rw"}}); err == nil || !strings.Contains(err.Error(), "--rw") {
		t.Errorf("Mount -o rw: %v", err)
	}
}

func TestUnmountRefuses(t *testing.T) {
	dir := t.TempDir()
	if err := mount.Unmount(dir); err == nil || !strings.Contains(err.Error(), "not mounted") {
		t.Errorf("Unmount(plain dir): %v", err)
	}
	if err := mount.Unmount(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("Unmount(missing): %v", err)
	}
	if mi, err := os.ReadFile("/proc/self/mountinfo"); err == nil && bytes.Contains(mi, []byte(" /proc ")) {
		if err := mount.Unmount("/proc"); err == nil || !strings.Contains(err.Error(), "not a layoutfs mount") {
			t.Errorf("Unmount(/proc): %v", err)
		}
	}
}

func TestServerUnmountThenUmount(t *testing.T) {
	requireFUSE(t)
	mnt := t.TempDir()
	srv, err := mount.Mount(testTree(), mnt, mount.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// A busy mount (an open file) is detached lazily rather than kept.
	f, err := os.Open(filepath.Join(mnt, "hello.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Unmount(); err != nil {
		t.Fatalf("Unmount of a busy mount: %v", err)
	}
	if mounted(t, mnt) {
		t.Errorf("%s still mounted after Unmount", mnt)
	}
	// The open file is still served until closed.
	buf := make([]byte, 5)
	if _, err := f.ReadAt(buf, 0); err != nil || string(buf) != "hello" {
		t.Errorf("read after lazy unmount: %q %v", buf, err)
	}
	f.Close()
	srv.Wait()
	if err := srv.Unmount(); err != nil {
		t.Errorf("second Unmount: %v", err)
	}
}

// mounted reports whether mnt is a mount point, from mountinfo.
func mounted(t *testing.T, mnt string) bool {
	t.Helper()
	return mountOptions(t, mnt) != ""
}

// mountOptions returns the per-mount options of mnt ("ro,nosuid,...") or
// "" if it is not mounted.
func mountOptions(t *testing.T, mnt string) string {
	t.Helper()
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	opts := ""
	for line := range strings.Lines(string(mi)) {
		if f := strings.Fields(line); len(f) > 5 && f[4] == mnt {
			opts = f[5]
		}
	}
	return opts
}

func TestMountpointWithSpace(t *testing.T) {
	requireFUSE(t)
	// mountinfo escapes the space; busy detection and Unmount must undo it.
	mnt := filepath.Join(t.TempDir(), "my image")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	srv, err := mount.Mount(testTree(), mnt, mount.Options{FsName: "/src/my image.tar"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mount.Mount(testTree(), mnt, mount.Options{}); err == nil || !strings.Contains(err.Error(), "already a mount point (fuse.layoutfs)") {
		t.Errorf("second Mount: %v", err)
	}
	if err := mount.Unmount(mnt + "/"); err != nil {
		t.Fatalf("Unmount: %v", err)
	}
	srv.Wait()
	if _, err := os.Stat(filepath.Join(mnt, "hello.txt")); !errors.Is(err, iofs.ErrNotExist) {
		t.Errorf("after Unmount: %v", err)
	}
}

// TestBigDirectory lists a directory that takes many READDIRPLUS replies,
// so listing resumes at offsets and lookups come from the handle.
func TestBigDirectory(t *testing.T) {
	const n = 5000
	kids := map[string]lfs.Node{}
	for i := range n {
		f := &memFile{memNode: memNode{lfs.Attr{Ino: uint64(50_000 + i), Mode: 0o644, Size: 1, Nlink: 1}}, data: []byte{byte(i)}}
		kids[fmt.Sprintf("file-%05d", i)] = f
	}
	root := &memDir{memNode{lfs.Attr{Ino: 2, Mode: iofs.ModeDir | 0o755}}, kids}
	mnt := testMount(t, root)

	ents, err := os.ReadDir(mnt)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != n {
		t.Fatalf("%d entries, want %d", len(ents), n)
	}
	for i, e := range ents {
		if want := fmt.Sprintf("file-%05d", i); e.Name() != want {
			t.Fatalf("entry %d is %q, want %q", i, e.Name(), want)
		}
		fi, err := e.Info()
		if err != nil || fi.Sys().(*syscall.Stat_t).Ino != uint64(50_000+i) {
			t.Fatalf("%s: %v %v", e.Name(), fi, err)
		}
	}
}

// TestConcurrent hammers one mount from many goroutines; run with -race.
// (t.Errorf is safe from any goroutine; t.Fatal is not, so no lstat here.)
func TestConcurrent(t *testing.T) {
	mnt := testMount(t, testTree())
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 50 {
				switch (g + i) % 4 {
				case 0:
					if ents, err := os.ReadDir(filepath.Join(mnt, "dev")); err != nil || len(ents) != 3 {
						t.Errorf("readdir: %d entries, %v", len(ents), err)
					}
				case 1:
					if b, err := os.ReadFile(filepath.Join(mnt, "hello.txt")); err != nil || string(b) != helloTxt {
						t.Errorf("read %q: %v", b, err)
					}
				case 2:
					p := filepath.Join(mnt, "bin/sh")
					if i%2 == 0 {
						p = filepath.Join(mnt, "usr/bin/sh")
					}
					fi, err := os.Lstat(p)
					if err != nil || fi.Sys().(*syscall.Stat_t).Ino != shIno {
						t.Errorf("%s: %v %v", p, fi, err)
					}
				case 3:
					f, err := os.Open(filepath.Join(mnt, "big"))
					if err != nil {
						t.Error(err)
						continue
					}
					buf := make([]byte, 4096)
					off := int64(g%6)<<30 + int64(i)*4096
					if _, err := f.ReadAt(buf, off); err != nil || buf[0] != byte(off%251) {
						t.Errorf("big at %d: %v", off, err)
					}
					f.Close()
				}
			}
		})
	}
	wg.Wait()
}

// hangDir is a root whose attributes hang once hang is set, like a
// daemon stuck on a dead network share.
type hangDir struct {
	*memDir
	hang    atomic.Bool
	release chan struct{}
}

func (h *hangDir) Attr() lfs.Attr {
	if h.hang.Load() {
		<-h.release
	}
	return h.memDir.Attr()
}

// TestHungDaemon checks that Mount and Unmount decide from mountinfo and
// never wait on the daemon of the mount they look at.
func TestHungDaemon(t *testing.T) {
	requireFUSE(t)
	root := &hangDir{memDir: testTree(), release: make(chan struct{})}
	mnt := t.TempDir()
	srv, err := mount.Mount(root, mnt, mount.Options{})
	if err != nil {
		t.Fatal(err)
	}
	root.hang.Store(true)
	defer func() {
		close(root.release)
		srv.Wait()
	}()

	done := make(chan error)
	go func() {
		_, err := mount.Mount(testTree(), mnt, mount.Options{})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "already a mount point") {
			t.Errorf("Mount on a hung mount: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Mount on a hung mount hangs")
	}

	go func() { done <- mount.Unmount(mnt) }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Unmount of a hung mount: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Unmount of a hung mount hangs")
	}
}
