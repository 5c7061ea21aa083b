package tests

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// mntEmptyDir makes a fresh empty directory to mount on.
func mntEmptyDir(t testing.TB) string {
	t.Helper()
	d := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// mntDaemonPids returns the processes of our binary serving mnt: a
// "mount" command line whose last argument is mnt.
func mntDaemonPids(t testing.TB, mnt string) []int {
	t.Helper()
	procs, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || len(b) == 0 {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if len(args) < 3 || args[len(args)-1] != mnt {
			continue
		}
		hasMount := false
		for _, a := range args[1:] {
			hasMount = hasMount || a == "mount"
		}
		if !hasMount || !strings.Contains(args[0], "layoutfs") {
			continue
		}
		if mntProcGone(mntPidOf(p)) {
			continue
		}
		out = append(out, mntPidOf(p))
	}
	return out
}

func mntPidOf(procFile string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(procFile)))
	return n
}

// mntProcGone reports whether pid has exited, all its threads included
// (gone, or a zombie nobody reaped yet: the daemon's parent exited, and
// PID 1 may not reap).
func mntProcGone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return false
	}
	switch s[i+2] {
	case 'X':
		return true
	case 'Z':
		// A killed process's leader turns zombie while its other threads
		// are still exiting, and they hold its files (the /dev/fuse fd
		// among them) until the last one is gone: a request caught by one
		// of them fails with EIO rather than ENOTCONN.
		tasks, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
		return err != nil || len(tasks) <= 1
	}
	return false
}

func mntWaitProcGone(t testing.TB, pid int, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !mntProcGone(pid) {
		if time.Now().After(deadline) {
			t.Errorf("daemon %d still running %v after its mount went away", pid, limit)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestMountReturnsOnceServed: when `layoutfs mount` returns, the tree is
// there: the very first stat and read succeed, with no retry, and the
// mount is a fuse.layoutfs mount of the source. Unmounting ends the
// daemon.
func TestMountReturnsOnceServed(t *testing.T) {
	mntRequireFUSE(t)
	t.Parallel()
	src := mntFixture(t, "A-scalibr-symlinks-docker-save.tar")
	for i := range 3 {
		mnt := mntEmptyDir(t)
		r := mntRun(t, "mount", "--cache-dir", t.TempDir(), src, mnt)
		// No sleep, no poll: the first look must succeed.
		fi, statErr := os.Stat(filepath.Join(mnt, "index.json"))
		b, readErr := os.ReadFile(filepath.Join(mnt, "tags/symlinks:latest/linux_amd64/manifest.json"))
		if r.code != 0 {
			t.Fatalf("mount #%d: %s", i, r)
		}
		mntCleanupUmount(t, mnt)
		if statErr != nil || fi.Size() == 0 {
			t.Errorf("mount #%d: first stat after mount returned: %v", i, statErr)
		}
		if readErr != nil || len(b) == 0 {
			t.Errorf("mount #%d: first read after mount returned: %v", i, readErr)
		}
		m, ok := mntFindMount(t, mnt)
		if !ok {
			t.Fatalf("mount #%d: %s not in /proc/self/mountinfo", i, mnt)
		}
		if m.fstype != "fuse.layoutfs" || m.source != src {
			t.Errorf("mountinfo: type %q source %q, want fuse.layoutfs %q", m.fstype, m.source, src)
		}
		pids := mntDaemonPids(t, mnt)
		if len(pids) != 1 {
			t.Errorf("daemons serving %s: %v, want one", mnt, pids)
		}
		mntRunOK(t, "umount", mnt)
		if err := mntWaitUnmounted(mnt, 5*time.Second); err != nil {
			t.Error(err)
		}
		for _, pid := range pids {
			mntWaitProcGone(t, pid, 10*time.Second)
		}
		// The mountpoint is an empty directory again.
		if ents, err := os.ReadDir(mnt); err != nil || len(ents) != 0 {
			t.Errorf("after umount: %v, %d entries", err, len(ents))
		}
	}
}

// TestMountBadSource: sources that are no image fail the mount command
// itself, naming the file, and leave nothing mounted and no daemon.
func TestMountBadSource(t *testing.T) {
	mntRequireFUSE(t)
	t.Parallel()
	dir := t.TempDir()
	random := filepath.Join(dir, "random.bin")
	noise := make([]byte, 64<<10)
	rand.Read(noise)
	if err := os.WriteFile(random, noise, 0o644); err != nil {
		t.Fatal(err)
	}
	emptyDir := filepath.Join(dir, "empty-dir")
	os.Mkdir(emptyDir, 0o755)
	emptyFile := filepath.Join(dir, "empty-file.tar")
	os.WriteFile(emptyFile, nil, 0o644)
	textFile := filepath.Join(dir, "notes.txt")
	os.WriteFile(textFile, []byte("not an image\n"), 0o644)
	missing := filepath.Join(dir, "no-such-archive.tar")
	for _, c := range []struct{ name, src string }{
		{"random", random},
		{"missing", missing},
		{"empty-dir", emptyDir},
		{"empty-file", emptyFile},
		{"text", textFile},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			mnt := mntEmptyDir(t)
			start := time.Now()
			r := mntRun(t, "mount", "--cache-dir", t.TempDir(), c.src, mnt)
			if r.code == 0 {
				mntCleanupUmount(t, mnt)
				t.Fatalf("mount of %s succeeded: %s", c.name, r)
			}
			if !strings.Contains(r.stderr, c.src) && !strings.Contains(r.stderr, filepath.Base(c.src)) {
				t.Errorf("error does not name the source %s: %q", c.src, r.stderr)
			}
			if strings.TrimSpace(r.stderr) == "" || strings.Count(strings.TrimSpace(r.stderr), "\n") > 3 {
				t.Errorf("want a short clear message, got %q", r.stderr)
			}
			if c.name == "missing" && !strings.Contains(strings.ToLower(r.stderr), "no such file") && !strings.Contains(r.stderr, "does not exist") {
				t.Errorf("missing source: message does not say it does not exist: %q", r.stderr)
			}
			if mntIsMounted(t, mnt) {
				syscall.Unmount(mnt, syscall.MNT_DETACH)
				t.Errorf("%s mounted after a failed mount", mnt)
			}
			if pids := mntDaemonPids(t, mnt); len(pids) != 0 {
				t.Errorf("daemons left after a failed mount: %v", pids)
				for _, p := range pids {
					syscall.Kill(p, syscall.SIGKILL)
				}
			}
			if d := time.Since(start); d > 30*time.Second {
				t.Errorf("failing took %v", d)
			}
		})
	}
}

// TestMountBadMountpoint: a missing mountpoint, a file as mountpoint and
// a busy one (mounted already) are refused with a message saying so.
func TestMountBadMountpoint(t *testing.T) {
	mntRequireFUSE(t)
	t.Parallel()
	src := mntFixture(t, "A-containers-image-almostempty.tar")
	missing := filepath.Join(t.TempDir(), "no-such-dir")
	r := mntRun(t, "mount", "--cache-dir", t.TempDir(), src, missing)
	if r.code == 0 {
		mntCleanupUmount(t, missing)
		t.Fatalf("mount on a missing dir succeeded: %s", r)
	}
	if !strings.Contains(r.stderr, missing) || !strings.Contains(r.stderr, "does not exist") {
		t.Errorf("missing mountpoint: unclear message %q", r.stderr)
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("mount created the missing mountpoint: %v", err)
	}

	file := filepath.Join(t.TempDir(), "a-file")
	os.WriteFile(file, []byte("x"), 0o644)
	r = mntRun(t, "mount", "--cache-dir", t.TempDir(), src, file)
	if r.code == 0 {
		mntCleanupUmount(t, file)
		t.Fatalf("mount on a file succeeded: %s", r)
	}
	if !strings.Contains(r.stderr, file) || !strings.Contains(r.stderr, "not a directory") {
		t.Errorf("file as mountpoint: unclear message %q", r.stderr)
	}

	// Busy: a second mount on the same directory.
	mnt := mntMount(t, src)
	other := mntFixture(t, "A-scalibr-symlinks-docker-save.tar")
	r = mntRun(t, "mount", "--cache-dir", t.TempDir(), other, mnt)
	if r.code == 0 {
		t.Errorf("second mount on %s succeeded: %s", mnt, r)
		mntRun(t, "umount", mnt) // the one on top
	} else if !strings.Contains(r.stderr, mnt) || !strings.Contains(r.stderr, "busy") {
		t.Errorf("busy mountpoint: unclear message %q", r.stderr)
	}
	// The first mount is untouched and still the only one there.
	mntWantNames(t, mnt, "tags", "emptyimage:latest")
	if m, _ := mntFindMount(t, mnt); m.source != src {
		t.Errorf("mount on %s now shows %q, want %q", mnt, m.source, src)
	}
	if n := mntMountCount(t, mnt); n != 1 {
		t.Errorf("%d mounts stacked on %s, want 1", n, mnt)
	}
}

// mntMountCount counts the mounts on dir.
func mntMountCount(t testing.TB, dir string) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && mntUnescape(f[4]) == dir {
			n++
		}
	}
	return n
}

// TestMountForegroundSignals: `mount -f` serves until SIGTERM or SIGINT (or
// SIGHUP, as with libfuse: the terminal went away),
// then unmounts and exits 0.
func TestMountForegroundSignals(t *testing.T) {
	mntRequireFUSE(t)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			src := mntFixture(t, "C-stereoscope-multiplatform-nested")
			mnt := mntEmptyDir(t)
			cmd := exec.Command(mntBinPath, "mount", "-f", "--cache-dir", t.TempDir(), src, mnt)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			cmd.Stdout = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			t.Cleanup(func() {
				if cmd.ProcessState == nil {
					cmd.Process.Kill()
				}
				if mntIsMounted(t, mnt) {
					syscall.Unmount(mnt, syscall.MNT_DETACH)
				}
			})
			deadline := time.Now().Add(20 * time.Second)
			for !mntIsMounted(t, mnt) {
				select {
				case err := <-exited:
					t.Fatalf("mount -f exited before mounting: %v\n%s", err, stderr.String())
				default:
				}
				if time.Now().After(deadline) {
					t.Fatalf("mount -f: not mounted after 20s\n%s", stderr.String())
				}
				time.Sleep(20 * time.Millisecond)
			}
			mntWantNames(t, mnt, "tags/latest", "index.json", "linux_amd64", "linux_arm64")
			// A file held open while the signal arrives: the mount leaves
			// the namespace at once (lazily), the open file is still
			// served, and the process exits once it is closed.
			f, err := os.Open(filepath.Join(mnt, "tags/latest/index.json"))
			if err != nil {
				t.Fatal(err)
			}
			want, _ := os.ReadFile(filepath.Join(mnt, "tags/latest/index.json"))
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			if err := mntWaitUnmounted(mnt, 10*time.Second); err != nil {
				t.Errorf("busy mount after %v: %v", sig, err)
			}
			b := make([]byte, 64<<10)
			n, _ := f.ReadAt(b, 0)
			if n == 0 || !bytes.Equal(b[:n], want) {
				t.Errorf("file held open across %v: read %d bytes, want the %d of the index", sig, n, len(want))
			}
			f.Close()
			select {
			case err := <-exited:
				if err != nil {
					t.Errorf("after %v: %v, want exit 0\n%s", sig, err, stderr.String())
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("mount -f still running 20s after %v", sig)
			}
			if mntIsMounted(t, mnt) {
				t.Errorf("%s still mounted after %v", mnt, sig)
			}
			if ents, err := os.ReadDir(mnt); err != nil || len(ents) != 0 {
				t.Errorf("mountpoint after %v: %v, %d entries", sig, err, len(ents))
			}
		})
	}
}

// TestMountStaleUmount: a mount whose daemon was killed fails with
// ENOTCONN; a new mount there is refused with a hint, and `layoutfs
// umount` clears it.
func TestMountStaleUmount(t *testing.T) {
	mntRequireFUSE(t)
	t.Parallel()
	src := mntFixture(t, "B-buildkit-docker-exporter.tar")
	mnt := mntMount(t, src)
	pids := mntDaemonPids(t, mnt)
	if len(pids) != 1 {
		t.Fatalf("daemons serving %s: %v, want one", mnt, pids)
	}
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	mntWaitProcGone(t, pids[0], 10*time.Second)
	_, err := os.Stat(filepath.Join(mnt, "index.json"))
	// The kernel says ENOTCONN, or ECONNABORTED when the connection was
	// aborted (as a killed daemon's is, on some kernels).
	if !errors.Is(err, syscall.ENOTCONN) && !errors.Is(err, syscall.ECONNABORTED) {
		t.Errorf("stat in a mount whose daemon died: %v, want ENOTCONN or ECONNABORTED", err)
	}
	if !mntIsMounted(t, mnt) {
		t.Fatalf("the dead mount is already gone: nothing to test")
	}
	r := mntRun(t, "mount", "--cache-dir", t.TempDir(), src, mnt)
	if r.code == 0 {
		t.Errorf("mount on a dead mount succeeded: %s", r)
	} else if !strings.Contains(r.stderr, "umount") {
		t.Errorf("mount on a dead mount: no hint to run umount: %q", r.stderr)
	}
	r = mntRun(t, "umount", mnt)
	if r.code != 0 {
		t.Fatalf("umount of a dead mount: %s", r)
	}
	if err := mntWaitUnmounted(mnt, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if ents, err := os.ReadDir(mnt); err != nil || len(ents) != 0 {
		t.Errorf("after umount: %v, %d entries", err, len(ents))
	}
	// And it can be mounted again.
	r = mntRun(t, "mount", "--cache-dir", t.TempDir(), src, mnt)
	if r.code != 0 {
		t.Fatalf("mount after clearing the dead mount: %s", r)
	}
	mntWantNames(t, mnt, "tags", "docker", "github.com")
}

// TestMountUmountErrors: umount refuses what is not a layoutfs mount.
func TestMountUmountErrors(t *testing.T) {
	mntRequireFUSE(t)
	t.Parallel()
	dir := mntEmptyDir(t)
	r := mntRun(t, "umount", dir)
	if r.code == 0 {
		t.Errorf("umount of a plain directory succeeded: %s", r)
	} else if !strings.Contains(r.stderr, dir) || !strings.Contains(r.stderr, "not mounted") {
		t.Errorf("umount of a plain directory: unclear message %q", r.stderr)
	}
	missing := filepath.Join(t.TempDir(), "nope")
	r = mntRun(t, "umount", missing)
	if r.code == 0 || !strings.Contains(r.stderr, missing) || !strings.Contains(r.stderr, "does not exist") {
		t.Errorf("umount of a missing path: %s", r)
	}
	// Another filesystem's mount is left alone.
	tmpfs := mntEmptyDir(t)
	if err := syscall.Mount("tmpfs", tmpfs, "tmpfs", 0, "size=1m"); err != nil {
		t.Logf("cannot mount a tmpfs here (%v): the not-a-layoutfs-mount case is not checked", err)
		return
	}
	t.Cleanup(func() { syscall.Unmount(tmpfs, 0) })
	r = mntRun(t, "umount", tmpfs)
	if r.code == 0 {
		t.Errorf("layoutfs umount unmounted a tmpfs: %s", r)
	} else if !strings.Contains(r.stderr, "not a layoutfs mount") {
		t.Errorf("umount of a tmpfs: unclear message %q", r.stderr)
	}
	if !mntIsMounted(t, tmpfs) {
		t.Errorf("the tmpfs was unmounted")
	}
}

// TestMountUmountBusy: umount while a file is held open detaches the
// mount; the open file stays readable and the daemon exits once it is
// closed.
func TestMountUmountBusy(t *testing.T) {
	mntRequireFUSE(t)
	t.Parallel()
	src := mntFixture(t, "A-scalibr-symlinks-docker-save.tar")
	mnt := mntMount(t, src)
	pids := mntDaemonPids(t, mnt)
	f, err := os.Open(filepath.Join(mnt, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := mntRun(t, "umount", mnt)
	if r.code != 0 {
		t.Fatalf("umount of a busy mount: %s", r)
	}
	if mntIsMounted(t, mnt) {
		t.Errorf("busy mount still in the namespace after umount")
	}
	want, _ := mntSourceFile(t, src, "manifest.json")
	b := make([]byte, len(want)+10)
	n, err := f.ReadAt(b, 0)
	if n != len(want) || !bytes.Equal(b[:n], want) {
		t.Errorf("open file after a lazy umount: %d bytes, %v", n, err)
	}
	f.Close()
	for _, pid := range pids {
		mntWaitProcGone(t, pid, 10*time.Second)
	}
}

// TestMountNoFUSE: in a mount namespace whose /dev has no fuse device (as
// in a container without --device /dev/fuse), mount fails at once with
// the reason and the remedy, foreground or not, and ls/cat still work.
func TestMountNoFUSE(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("unshare"); err != nil || os.Geteuid() != 0 {
		t.Skipf("needs root and unshare(1) to hide /dev/fuse (uid %d, %v): NOT RUN", os.Geteuid(), err)
	}
	src := mntFixture(t, "A-scalibr-symlinks-docker-save.tar")
	mnt := mntEmptyDir(t)
	cache := t.TempDir()
	script := `mount -t tmpfs tmpfs /dev && mknod -m 666 /dev/null c 1 3 || exit 99
"$0" mount --cache-dir "$2" "$1" "$3"; echo "daemon-mode exit $?"
"$0" mount -f --cache-dir "$2" "$1" "$3"; echo "foreground exit $?"
"$0" cat --cache-dir "$2" "$1" /dir1/sample.txt; echo "cat exit $?"
grep -c " $3 " /proc/self/mountinfo; true`
	cmd := exec.Command("unshare", "-m", "sh", "-c", script, mntBinPath, src, cache, mnt)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 99 || strings.Contains(string(out), "unshare failed") {
		t.Skipf("cannot make a /dev without fuse here: %s", out)
	}
	s := string(out)
	for _, want := range []string{"daemon-mode exit 1", "foreground exit 1", "cat exit 0", "/dev/fuse", "--device /dev/fuse"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	if strings.Count(s, "no FUSE") != 2 {
		t.Errorf("want the no-FUSE message from both mounts:\n%s", s)
	}
	root, _ := mntOpenTree(t, src)
	if want := string(mntTreeFile(t, root, "tags/symlinks:latest/linux_amd64/rootfs/dir1/sample.txt")); want == "" || !strings.Contains(s, want) {
		t.Errorf("cat without FUSE did not print %q:\n%s", want, s)
	}
	if mntIsMounted(t, mnt) {
		t.Errorf("%s mounted", mnt)
	}
}

// TestMountRace: several mounts started at once on one directory: one
// wins, the others fail as busy, and nothing is stacked.
func TestMountRace(t *testing.T) {
	mntRequireFUSE(t)
	t.Parallel()
	src := mntFixture(t, "B-buildkit-docker-exporter.tar")
	for round := range 3 {
		mnt := mntEmptyDir(t)
		cache := t.TempDir()
		const n = 8
		res := make([]mntResult, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res[i] = mntRun(t, "mount", "--cache-dir", cache, src, mnt)
			}()
		}
		wg.Wait()
		mntCleanupUmount(t, mnt)
		ok := 0
		for _, r := range res {
			if r.code == 0 {
				ok++
			} else if !strings.Contains(r.stderr, "busy") {
				t.Errorf("round %d: a losing mount says %q, want busy", round, r.stderr)
			}
		}
		if ok != 1 {
			t.Errorf("round %d: %d of %d concurrent mounts succeeded, want 1", round, ok, n)
		}
		if c := mntMountCount(t, mnt); c != 1 {
			t.Errorf("round %d: %d mounts stacked on %s", round, c, mnt)
		}
		if pids := mntDaemonPids(t, mnt); len(pids) != 1 {
			t.Errorf("round %d: %d daemons for %s, want 1", round, len(pids), mnt)
		}
		mntRunOK(t, "umount", mnt)
	}
}

// TestMountSignalEarly: SIGTERM at any moment of `mount -f`'s start,
// before or while mounting, leaves no mount behind and the process exits.
func TestMountSignalEarly(t *testing.T) {
	mntRequireFUSE(t)
	t.Parallel()
	src := mntFixture(t, "A-podman-docker-two-images.tar")
	for i := range 12 {
		mnt := mntEmptyDir(t)
		cmd := exec.Command(mntBinPath, "mount", "-f", "--cache-dir", t.TempDir(), src, mnt)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(i*4) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			t.Errorf("after %dms: mount -f did not exit within 15s of SIGTERM", i*4)
		}
		if err := mntWaitUnmounted(mnt, 5*time.Second); err != nil {
			t.Errorf("after %dms: %v", i*4, err)
			syscall.Unmount(mnt, syscall.MNT_DETACH)
		}
	}
}

// TestMountDaemonLetsGoOfCwd: the daemon must not pin the directory
// `layoutfs mount` was run from (libfuse's daemonize and sshfs chdir to
// "/"): run from a directory on a removable filesystem, that filesystem
// can still be unmounted while the layoutfs mount lives.
func TestMountDaemonLetsGoOfCwd(t *testing.T) {
	mntRequireFUSE(t)
	t.Parallel()
	usb := mntEmptyDir(t)
	if err := syscall.Mount("tmpfs", usb, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("cannot mount a tmpfs to stand for a removable disk (%v): NOT RUN", err)
	}
	usbMounted := true
	t.Cleanup(func() {
		if usbMounted {
			syscall.Unmount(usb, syscall.MNT_DETACH)
		}
	})
	src := mntFixture(t, "B-buildkit-docker-exporter.tar")
	mnt := mntEmptyDir(t)
	r := mntRunIn(t, usb, "mount", "--cache-dir", t.TempDir(), src, mnt)
	if r.code != 0 {
		t.Fatalf("mount: %s", r)
	}
	mntCleanupUmount(t, mnt)
	for _, pid := range mntDaemonPids(t, mnt) {
		if cwd, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/cwd"); err == nil && strings.HasPrefix(cwd, usb) {
			t.Errorf("daemon %d keeps its working directory in %s", pid, cwd)
		}
	}
	if err := syscall.Unmount(usb, 0); err != nil {
		t.Errorf("umount of the directory mount was run from: %v (the daemon pins it)", err)
	} else {
		usbMounted = false
	}
	mntWantNames(t, mnt, "tags", "docker", "github.com")
}

// TestMountOverOwnSource: a layout directory mounted on itself (or on a
// directory that holds it) would have the daemon read its blobs through
// its own mount: the first read deadlocks the daemon in the kernel,
// unkillable, and hangs every reader (found by hand: ls in D state until
// the connection is aborted through fusectl). The mount command must
// refuse. The test never reads the mount it may get, only unmounts it.
func TestMountOverOwnSource(t *testing.T) {
	mntRequireFUSE(t)
	t.Parallel()
	fixture := mntFixture(t, "C-stereoscope-multiplatform-nested")
	for _, c := range []string{"onto-itself", "onto-its-parent"} {
		t.Run(c, func(t *testing.T) {
			t.Parallel()
			parent := t.TempDir()
			src := filepath.Join(parent, "layout")
			if err := os.CopyFS(src, os.DirFS(fixture)); err != nil {
				t.Fatal(err)
			}
			mnt := src
			if c == "onto-its-parent" {
				mnt = parent
			}
			r := mntRun(t, "mount", "--cache-dir", t.TempDir(), src, mnt)
			if r.code == 0 {
				// Unmount at once, before anything can read through it.
				if u := mntRun(t, "umount", mnt); u.code != 0 {
					syscall.Unmount(mnt, syscall.MNT_DETACH)
				}
				t.Fatalf("mounting %s over its own source succeeded: reads would deadlock the daemon", c)
			}
			if !strings.Contains(r.stderr, mnt) {
				t.Errorf("refusal does not name the mountpoint: %q", r.stderr)
			}
			if mntIsMounted(t, mnt) {
				t.Errorf("%s mounted", mnt)
			}
		})
	}
}

// TestMountHungDaemon: with the daemon stopped (hung), a second mount on
// the same directory still says busy and umount still clears the mount,
// neither of them hanging on the dead-silent daemon; the daemon, let go
// again, exits.
func TestMountHungDaemon(t *testing.T) {
	mntRequireFUSE(t)
	t.Parallel()
	src := mntFixture(t, "B-buildkit-docker-exporter.tar")
	mnt := mntMount(t, src)
	pids := mntDaemonPids(t, mnt)
	if len(pids) != 1 {
		t.Fatalf("daemons: %v", pids)
	}
	if err := syscall.Kill(pids[0], syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(pids[0], syscall.SIGCONT)
	start := time.Now()
	// A hang fails the test after 20s (the command is then killed).
	r := mntRunLimit(t, "", 20*time.Second, "mount", "--cache-dir", t.TempDir(), src, mnt)
	if r.code == 0 || !strings.Contains(r.stderr, "busy") {
		t.Errorf("mount over a hung mount: %s", r)
	}
	r = mntRunLimit(t, "", 20*time.Second, "umount", mnt)
	if r.code != 0 {
		t.Errorf("umount of a hung mount: %s", r)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("mount and umount took %v with the daemon stopped", d)
	}
	if err := mntWaitUnmounted(mnt, 5*time.Second); err != nil {
		t.Error(err)
	}
	syscall.Kill(pids[0], syscall.SIGCONT)
	mntWaitProcGone(t, pids[0], 10*time.Second)
}

// TestMountDaemonDropsInheritedFds: the daemon keeps none of the
// descriptors `mount` inherited, so a pipe the caller handed down (as a
// shell's $(...) or a test harness does) sees its end when mount exits.
func TestMountDaemonDropsInheritedFds(t *testing.T) {
	mntRequireFUSE(t)
	t.Parallel()
	src := mntFixture(t, "A-scalibr-symlinks-docker-save.tar")
	mnt := mntEmptyDir(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command(mntBinPath, "mount", "--cache-dir", t.TempDir(), src, mnt)
	// fd 4 of mount, not marked close-on-exec (fd 3 of the daemon is its
	// readiness pipe, which would hide an inherited fd 3).
	cmd.ExtraFiles = []*os.File{w, w}
	out, err := cmd.CombinedOutput()
	w.Close()
	if err != nil {
		t.Fatalf("mount: %v\n%s", err, out)
	}
	mntCleanupUmount(t, mnt)
	done := make(chan struct{})
	go func() {
		io.Copy(io.Discard, r)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Errorf("the daemon still holds a descriptor mount inherited: the caller's pipe never ends")
	}
}
