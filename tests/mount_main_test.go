package tests

// End-to-end tests that drive the layoutfs binary as a user would: real
// FUSE mounts of real archives, peers (skopeo, umoci) reading the mounts,
// and the mount's life (daemon, signals, stale mounts). Helpers here are
// prefixed "mnt" so they do not clash with the oracle tests of this
// package.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mntBinPath is the layoutfs binary built once by TestMain.
var mntBinPath string

// mntFixtures is where the real archives are (see PROVENANCE.md there).
const mntFixtures = "../../shared/fixtures/real"

func TestMain(m *testing.M) {
	os.Exit(mntMain(m))
}

func mntMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "layoutfs-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "tests: temp dir:", err)
		return 2
	}
	defer os.RemoveAll(dir)
	mntBinPath = filepath.Join(dir, "layoutfs")
	cmd := exec.Command("go", "build", "-o", mntBinPath, "./cmd/layoutfs")
	cmd.Dir = ".."
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "tests: building layoutfs:", err)
		return 2
	}
	return m.Run()
}

// mntFixture returns the absolute path of a real fixture; the test fails
// if it is missing (never skipped silently).
func mntFixture(t testing.TB, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join(mntFixtures, name))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("fixture %s: %v (../shared must sit beside the repository)", name, err)
	}
	return p
}

// mntResult is what a run of the binary gave.
type mntResult struct {
	stdout, stderr string
	code           int // exit code; -1 when killed by a signal
}

func (r mntResult) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// mntRun runs the layoutfs binary with args and a 2-minute limit.
func mntRun(t testing.TB, args ...string) mntResult {
	t.Helper()
	return mntRunIn(t, "", args...)
}

func mntRunIn(t testing.TB, dir string, args ...string) mntResult {
	t.Helper()
	return mntRunLimit(t, dir, 2*time.Minute, args...)
}

// mntRunLimit runs the binary in dir (or ours) and fails the test if it
// runs longer than limit (it is then killed).
func mntRunLimit(t testing.TB, dir string, limit time.Duration, args ...string) mntResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, mntBinPath, args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	// The daemon inherits nothing of ours but the pipe it reports on; a
	// daemon holding our stdout would make Run wait for it.
	err := cmd.Run()
	res := mntResult{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	default:
		t.Fatalf("layoutfs %s: %v", strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		t.Fatalf("layoutfs %s: timed out\n%s", strings.Join(args, " "), res)
	}
	return res
}

// mntRunOK runs the binary and fails the test unless it exits 0.
func mntRunOK(t testing.TB, args ...string) mntResult {
	t.Helper()
	r := mntRun(t, args...)
	if r.code != 0 {
		t.Fatalf("layoutfs %s: %s", strings.Join(args, " "), r)
	}
	return r
}

// mntRequireFUSE skips, loudly, when the kernel offers no FUSE.
func mntRequireFUSE(t testing.TB) {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skipf("FUSE ABSENT: /dev/fuse does not exist (%v): this end-to-end mount test is NOT RUN", err)
	}
}

// mntMount mounts source on a fresh directory with a private cache and
// returns the mountpoint; the mount is undone (and checked gone) at the
// end of the test.
func mntMount(t testing.TB, source string, args ...string) string {
	t.Helper()
	mntRequireFUSE(t)
	mnt := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	all := append([]string{"mount", "--cache-dir", cache}, args...)
	all = append(all, source, mnt)
	r := mntRun(t, all...)
	if r.code != 0 {
		t.Fatalf("mount %s: %s", source, r)
	}
	mntCleanupUmount(t, mnt)
	return mnt
}

// mntCleanupUmount unmounts mnt at the end of the test and checks it is
// gone.
func mntCleanupUmount(t testing.TB, mnt string) {
	t.Helper()
	t.Cleanup(func() {
		if !mntIsMounted(t, mnt) {
			return
		}
		if r := mntRun(t, "umount", mnt); r.code != 0 {
			t.Errorf("umount %s: %s", mnt, r)
		}
		if mntWaitUnmounted(mnt, 10*time.Second) != nil {
			t.Errorf("%s still mounted after layoutfs umount", mnt)
			syscall.Unmount(mnt, syscall.MNT_DETACH)
		}
	})
}

// mntMountinfo is one line of /proc/self/mountinfo we care about.
type mntMountinfo struct {
	point, fstype, source string
}

// mntFindMount returns the topmost mount on dir (absolute, canonical).
func mntFindMount(t testing.TB, dir string) (mntMountinfo, bool) {
	t.Helper()
	m, ok, err := mntFindMountErr(dir)
	if err != nil {
		t.Fatal(err)
	}
	return m, ok
}

func mntFindMountErr(dir string) (mntMountinfo, bool, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return mntMountinfo{}, false, err
	}
	defer f.Close()
	var m mntMountinfo
	ok := false
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		sep := -1
		for i := 6; i < len(fields); i++ {
			if fields[i] == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || sep+2 >= len(fields) {
			continue
		}
		if mntUnescape(fields[4]) == dir {
			m = mntMountinfo{point: dir, fstype: fields[sep+1], source: mntUnescape(fields[sep+2])}
			ok = true
		}
	}
	return m, ok, sc.Err()
}

func mntUnescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func mntIsMounted(t testing.TB, dir string) bool {
	_, ok := mntFindMount(t, dir)
	return ok
}

// mntWaitUnmounted polls mountinfo until dir is no mount point.
func mntWaitUnmounted(dir string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		_, ok, err := mntFindMountErr(dir)
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s still mounted after %v", dir, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// mntNeed fails the test when a peer tool the tests rely on is missing:
// README says .ci/run installs them, so absence is a broken setup.
func mntNeed(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed (.ci/run installs it): %v", tool, err)
		}
	}
}

// mntExec runs a peer tool and fails the test on a non-zero exit.
func mntExec(t testing.TB, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}
