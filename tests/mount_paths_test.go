package tests

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	lfs "github.com/layoutfs/layoutfs/fs"
)

// TestMountRelativePaths: SOURCE and MOUNTPOINT relative to the working
// directory work (the daemon gets them absolute), and so does umount.
func TestMountRelativePaths(t *testing.T) {
	mntRequireFUSE(t)
	t.Parallel()
	work := t.TempDir()
	src := mntFixture(t, "A-scalibr-symlinks-docker-save.tar")
	if err := os.Symlink(filepath.Dir(src), filepath.Join(work, "fixtures")); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(work, "mnt"), 0o755)
	cache := filepath.Join(work, "cache")
	r := mntRunIn(t, work, "mount", "--cache-dir", "cache", "fixtures/"+filepath.Base(src), "mnt")
	if r.code != 0 {
		t.Fatalf("mount with relative paths: %s", r)
	}
	mnt := filepath.Join(work, "mnt")
	mntCleanupUmount(t, mnt)
	mntWantNames(t, mnt, "tags", "symlinks:latest")
	if ents, err := os.ReadDir(cache); err != nil || len(ents) == 0 {
		t.Errorf("relative --cache-dir: %v, %d entries in %s", err, len(ents), cache)
	}
	m, ok := mntFindMount(t, mnt)
	if !ok || !filepath.IsAbs(m.source) {
		t.Errorf("mountinfo source %q: want the absolute source path", m.source)
	}
	r = mntRunIn(t, work, "umount", "mnt")
	if r.code != 0 {
		t.Fatalf("umount mnt: %s", r)
	}
	if mntIsMounted(t, mnt) {
		t.Errorf("still mounted")
	}
}

// TestMountOddMountpoints: mountpoints whose names mountinfo escapes
// (space, tab, backslash, newline) or that are reached through a symlink
// mount and unmount.
func TestMountOddMountpoints(t *testing.T) {
	mntRequireFUSE(t)
	t.Parallel()
	src := mntFixture(t, "B-buildkit-docker-exporter.tar")
	for _, name := range []string{"with space", "tab\there", `back\slash`, "new\nline", "ünï ☃"} {
		t.Run(strings.NewReplacer("\t", "TAB", "\n", "NL").Replace(name), func(t *testing.T) {
			t.Parallel()
			mnt := filepath.Join(t.TempDir(), name)
			os.Mkdir(mnt, 0o755)
			r := mntRun(t, "mount", "--cache-dir", t.TempDir(), src, mnt)
			if r.code != 0 {
				t.Fatalf("mount on %q: %s", name, r)
			}
			if !mntIsMounted(t, mnt) {
				syscall.Unmount(mnt, syscall.MNT_DETACH)
				t.Fatalf("%q not found in mountinfo after mount", mnt)
			}
			mntWantNames(t, mnt, "tags", "docker", "github.com")
			// Busy detection must see it too.
			if r := mntRun(t, "mount", "--cache-dir", t.TempDir(), src, mnt); r.code == 0 {
				t.Errorf("second mount on %q succeeded", name)
				syscall.Unmount(mnt, syscall.MNT_DETACH)
			}
			r = mntRun(t, "umount", mnt)
			if r.code != 0 {
				syscall.Unmount(mnt, syscall.MNT_DETACH)
				t.Fatalf("umount %q: %s", name, r)
			}
			if err := mntWaitUnmounted(mnt, 5*time.Second); err != nil {
				syscall.Unmount(mnt, syscall.MNT_DETACH)
				t.Error(err)
			}
		})
	}
	t.Run("through-symlink", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		real := filepath.Join(dir, "real")
		os.Mkdir(real, 0o755)
		link := filepath.Join(dir, "link")
		os.Symlink("real", link)
		r := mntRun(t, "mount", "--cache-dir", t.TempDir(), src, link)
		if r.code != 0 {
			t.Fatalf("mount via a symlink: %s", r)
		}
		mntCleanupUmount(t, real)
		if !mntIsMounted(t, real) {
			t.Fatalf("not mounted on the symlink's target")
		}
		mntWantNames(t, link, "tags", "docker", "github.com")
		if r := mntRun(t, "umount", link); r.code != 0 {
			t.Fatalf("umount via the symlink: %s", r)
		}
		if mntIsMounted(t, real) {
			t.Errorf("still mounted after umount via the symlink")
		}
	})
}

// TestMountReadOnly: the mount refuses every change with EROFS, and
// --rw / -o rw are refused by the mount command itself.
func TestMountReadOnly(t *testing.T) {
	mntRequireFUSE(t)
	t.Parallel()
	src := mntFixture(t, "A-scalibr-symlinks-docker-save.tar")
	mnt := mntMount(t, src)
	rootfs := filepath.Join(mnt, "tags/symlinks:latest/linux_amd64/rootfs")
	sample := filepath.Join(rootfs, "dir1/sample.txt")
	before, err := os.ReadFile(sample)
	if err != nil {
		t.Fatal(err)
	}
	for what, op := range map[string]func() error{
		"create":   func() error { return os.WriteFile(filepath.Join(rootfs, "new"), []byte("x"), 0o644) },
		"write":    func() error { f, err := os.OpenFile(sample, os.O_WRONLY, 0); f.Close(); return err },
		"truncate": func() error { return os.Truncate(sample, 0) },
		"mkdir":    func() error { return os.Mkdir(filepath.Join(mnt, "tags/new"), 0o755) },
		"remove":   func() error { return os.Remove(sample) },
		"rename": func() error {
			return os.Rename(filepath.Join(mnt, "tags/symlinks:latest"), filepath.Join(mnt, "tags/x"))
		},
		"symlink":  func() error { return os.Symlink("x", filepath.Join(mnt, "tags/y")) },
		"chmod":    func() error { return os.Chmod(sample, 0o777) },
		"setxattr": func() error { return syscall.Setxattr(sample, "user.x", []byte("1"), 0) },
	} {
		err := op()
		if err == nil {
			t.Errorf("%s in a read-only mount succeeded", what)
		} else if !errors.Is(err, syscall.EROFS) {
			t.Errorf("%s: %v, want EROFS", what, err)
		}
	}
	after, _ := os.ReadFile(sample)
	if !bytes.Equal(before, after) {
		t.Errorf("content changed")
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(mnt, &st); err != nil {
		t.Errorf("statfs: %v", err)
	} else if st.Flags&0x1 == 0 { // ST_RDONLY
		t.Errorf("statfs flags %#x lack ST_RDONLY", st.Flags)
	}
	for _, args := range [][]string{{"-o", "rw"}} {
		dir := mntEmptyDir(t)
		r := mntRun(t, append(append([]string{"mount", "--cache-dir", t.TempDir()}, args...), src, dir)...)
		if r.code == 0 {
			mntCleanupUmount(t, dir)
			t.Errorf("mount %v succeeded", args)
		} else if !strings.Contains(r.stderr, "rw") && !strings.Contains(r.stderr, "read-") {
			t.Errorf("mount %v: unclear message %q", args, r.stderr)
		}
		if mntIsMounted(t, dir) {
			t.Errorf("mount %v left a mount", args)
		}
	}
}

// TestMountSharedCache: two mounts of one compressed archive, started at
// once with one cold cache directory, both serve correct trees; a third
// mount then reuses the cache.
func TestMountSharedCache(t *testing.T) {
	mntRequireFUSE(t)
	t.Parallel()
	mntNeed(t, "gzip")
	dir := t.TempDir()
	tarball := filepath.Join(dir, "kaniko.tar")
	b, err := os.ReadFile(mntFixture(t, "A-dive-kaniko-ggcr-tarball.tar"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(tarball, b, 0o644)
	mntExec(t, "gzip", tarball)
	src := tarball + ".gz"
	cache := filepath.Join(dir, "cache")
	root, _ := mntOpenTree(t, mntFixture(t, "A-dive-kaniko-ggcr-tarball.tar"))
	img := "tags/dive-test:kaniko-latest/linux_amd64"
	var wg sync.WaitGroup
	mnts := make([]string, 3)
	res := make([]mntResult, 3)
	for i := range mnts {
		mnts[i] = mntEmptyDir(t)
	}
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i] = mntRun(t, "mount", "--cache-dir", cache, src, mnts[i])
		}()
	}
	wg.Wait()
	res[2] = mntRun(t, "mount", "--cache-dir", cache, src, mnts[2])
	for i, r := range res {
		if r.code != 0 {
			t.Errorf("mount %d: %s", i, r)
			continue
		}
		mntCleanupUmount(t, mnts[i])
	}
	if t.Failed() {
		return
	}
	want := map[string]mntEntry{}
	for p, e := range mntTreeEntries(t, mntWalkTo(t, root, img+"/rootfs")) {
		want[p] = e
	}
	var wg2 sync.WaitGroup
	gots := make([]map[string]mntEntry, 3)
	for i := range mnts {
		wg2.Add(1)
		go func() {
			defer wg2.Done()
			gots[i] = mntMountEntries(t, filepath.Join(mnts[i], img, "rootfs"))
		}()
	}
	wg2.Wait()
	for i, got := range gots {
		// The rootfs directory's own time is the source's: compare below it.
		delete(got, ".")
		w := map[string]mntEntry{}
		for p, e := range want {
			if p != "." {
				w[p] = e
			}
		}
		t.Logf("mount %d: %d paths", i, len(got))
		mntCompareTrees(t, w, got)
	}
	if ents, err := os.ReadDir(cache); err != nil || len(ents) == 0 {
		t.Errorf("cache dir: %v, %d entries", err, len(ents))
	}
}

// TestMountLog: --log receives the daemon's account of an EIO.
func TestMountLog(t *testing.T) {
	mntRequireFUSE(t)
	t.Parallel()
	src := mntFixture(t, "X-ocitools-aufs-whiteouts-BADDIGESTS")
	const bad = "da55812559dec81445c289c3832cee4a2f725b15aeb258791640185c3126b2bf"
	t.Run("--log", func(t *testing.T) {
		logFile := filepath.Join(t.TempDir(), "daemon.log")
		mnt := mntMount(t, src, "--log", logFile)
		mntWantLogged(t, mnt, logFile, bad)
	})
	t.Run("unwritable default", func(t *testing.T) {
		// The default log cannot be made (the cache's log/ is a file): the
		// mount goes on, and says it has no log.
		cache, mnt := t.TempDir(), filepath.Join(t.TempDir(), "mnt")
		if err := os.Mkdir(mnt, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(cache, "log"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		r := mntRun(t, "mount", "--cache-dir", cache, src, mnt)
		if r.code != 0 || !strings.Contains(r.stderr, "no daemon log") {
			t.Fatalf("mount with an unwritable default log: %s", r)
		}
		mntCleanupUmount(t, mnt)
	})
	t.Run("default", func(t *testing.T) {
		// No --log: the daemon writes to a file per mountpoint in the
		// cache directory, so the line explaining an EIO exists somewhere.
		cache, mnt := t.TempDir(), filepath.Join(t.TempDir(), "mnt")
		if err := os.Mkdir(mnt, 0o755); err != nil {
			t.Fatal(err)
		}
		if r := mntRun(t, "mount", "--cache-dir", cache, src, mnt); r.code != 0 {
			t.Fatalf("mount: %s", r)
		}
		mntCleanupUmount(t, mnt)
		logs, _ := filepath.Glob(filepath.Join(cache, "log", "*.log"))
		if len(logs) != 1 || !strings.HasPrefix(filepath.Base(logs[0]), strings.ReplaceAll(strings.Trim(mnt, "/"), "/", "_")+"-") {
			t.Fatalf("logs in the cache dir: %q, want one named after %s", logs, mnt)
		}
		mntWantLogged(t, mnt, logs[0], bad)
	})
}

// mntWantLogged reads the bad blob through the mount, wants EIO, and then
// a line naming the blob in the daemon's log.
func mntWantLogged(t *testing.T, mnt, logFile, bad string) {
	t.Helper()
	if _, err := os.ReadFile(filepath.Join(mnt, "blobs/sha256", bad)); !errors.Is(err, syscall.EIO) {
		t.Fatalf("bad blob: %v, want EIO", err)
	}
	mntWaitLogged(t, logFile, bad, "the blob that failed")
}

// mntWaitLogged waits up to 5 s for the daemon's log to hold want (what
// says it), and fails the test when it does not.
func mntWaitLogged(t *testing.T, logFile, want, what string) bool {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(logFile)
		if bytes.Contains(b, []byte(want)) {
			return true
		}
		if time.Now().After(deadline) {
			t.Errorf("log %s does not name %s (%q):\n%s", logFile, what, want, b)
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestMountLayerLimit: the limit on what a layer may expand to is the
// user's to set (--max-layer-size, or LAYOUTFS_MAX_LAYER_SIZE), reaches a
// mount's daemon, and a layer past it is refused with a message that says
// so while the rest of the tree is served.
func TestMountLayerLimit(t *testing.T) {
	mntRequireFUSE(t)
	t.Parallel()
	// Layer 00 of this image is 747 KiB of gzip that expands past 900 KiB;
	// the outer tarball itself is 804 KiB.
	src := mntFixture(t, "A-dive-kaniko-ggcr-tarball.tar")
	const image = "tags/dive-test:kaniko-latest/linux_amd64"
	logFile := filepath.Join(t.TempDir(), "daemon.log")
	mnt := mntMount(t, src, "--max-layer-size", "900K", "--log", logFile)
	if _, err := os.ReadDir(filepath.Join(mnt, image, "rootfs")); !errors.Is(err, syscall.EIO) {
		t.Errorf("rootfs past the limit: %v, want EIO", err)
	}
	if _, err := os.ReadDir(filepath.Join(mnt, image, "layers/01")); err != nil {
		t.Errorf("a small layer under the limit: %v", err)
	}
	if !mntWaitLogged(t, logFile, "expands past the limit", "the layer past the limit") {
		t.FailNow()
	}

	if r := mntRun(t, "ls", "--cache-dir", t.TempDir(), "--max-layer-size", "64M", src, "/"); r.code != 0 {
		t.Errorf("ls under a limit it fits: %s", r)
	}
	// The limit is on what a layer expands to: the 804 KiB tarball that
	// holds the layers is no layer, and nothing of it expands.
	if r := mntRun(t, "ls", "--cache-dir", t.TempDir(), "--max-layer-size", "64K", src, "tags"); r.code != 0 {
		t.Errorf("ls tags of an uncompressed tarball larger than the limit: %s", r)
	}
	r := mntRun(t, "ls", "--cache-dir", t.TempDir(), "--max-layer-size", "12Q", src, "/")
	if r.code != 2 || !strings.Contains(r.stderr, "--max-layer-size") {
		t.Errorf("ls with a size that is not one: %s", r)
	}
	cmd := exec.Command(mntBinPath, "ls", "--cache-dir", t.TempDir(), src, "/")
	cmd.Env = append(os.Environ(), "LAYOUTFS_MAX_LAYER_SIZE=900K")
	if out, err := cmd.CombinedOutput(); err == nil || !bytes.Contains(out, []byte("expands past the limit")) {
		t.Errorf("ls with LAYOUTFS_MAX_LAYER_SIZE=900K: %v\n%s", err, out)
	}
}

// mntWalkTo returns the directory at p of an in-process tree.
func mntWalkTo(t testing.TB, root lfs.Dir, p string) lfs.Dir {
	t.Helper()
	n, err := lfs.Walk(root, p)
	if err != nil {
		t.Fatalf("tree %s: %v", p, err)
	}
	d, ok := n.(lfs.Dir)
	if !ok {
		t.Fatalf("tree %s: not a directory", p)
	}
	return d
}

// TestMountCorruptCache: cache entries damaged between two mounts
// (flipped bytes, truncation, emptied) are rebuilt, never trusted: the
// second mount shows the same tree as a mount with no cache.
func TestMountCorruptCache(t *testing.T) {
	mntRequireFUSE(t)
	mntNeed(t, "gzip", "zstd")
	t.Parallel()
	dir := t.TempDir()
	kaniko := mntFixture(t, "A-dive-kaniko-ggcr-tarball.tar")
	b, _ := os.ReadFile(kaniko)
	gz := filepath.Join(dir, "kaniko.tar")
	os.WriteFile(gz, b, 0o644)
	mntExec(t, "gzip", gz)
	gz += ".gz"
	zst := filepath.Join(dir, "zstd-layer.tar")
	zb, _ := os.ReadFile(mntFixture(t, "C-dive-oci-zstd.tar"))
	os.WriteFile(zst, zb, 0o644)
	mntExec(t, "zstd", "-q", zst)
	zst += ".zst"
	for _, src := range []string{gz, zst, mntFixture(t, "C-dive-oci-estargz.tar"), kaniko} {
		t.Run(filepath.Base(src), func(t *testing.T) {
			t.Parallel()
			cache := t.TempDir()
			walk := func() map[string]mntEntry {
				mnt := mntEmptyDir(t)
				r := mntRun(t, "mount", "--cache-dir", cache, src, mnt)
				if r.code != 0 {
					t.Fatalf("mount: %s", r)
				}
				mntCleanupUmount(t, mnt)
				got := mntMountEntries(t, mnt)
				mntRunOK(t, "umount", mnt)
				return got
			}
			first := walk()
			var files []string
			filepath.WalkDir(cache, func(p string, d os.DirEntry, err error) error {
				if err == nil && d.Type().IsRegular() {
					files = append(files, p)
				}
				return nil
			})
			if len(files) == 0 {
				t.Fatalf("the first mount cached nothing in %s", cache)
			}
			for i, f := range files {
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				switch i % 3 {
				case 0:
					if len(b) > 0 {
						b[len(b)/2] ^= 0x55
					}
				case 1:
					b = b[:len(b)*2/3]
				case 2:
					b = nil
				}
				if err := os.WriteFile(f, b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			t.Logf("damaged %d cache files", len(files))
			second := walk()
			root, _ := mntOpenTree(t, src)
			want := mntTreeEntries(t, root)
			// Inode numbers depend on the order of first use: compare the
			// link structure, not the numbers, as everywhere else.
			mntCompareTrees(t, want, first)
			mntCompareTrees(t, want, second)
		})
	}
}
