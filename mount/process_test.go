package mount_test

import (
	"bufio"
	"bytes"
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

	"github.com/layoutfs/layoutfs/mount"
	"golang.org/x/sys/unix"
)

// Tests that need a second process (a daemon, a daemon that dies) run this
// test binary again as the helper below.

const (
	helperEnv    = "LAYOUTFS_TEST_HELPER" // the helper's mode
	helperMntEnv = "LAYOUTFS_TEST_MNT"
)

var helperArgs = []string{"-test.run=^TestHelperProcess$"}

// TestHelperProcess is not a test: it is the second process.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		return
	}
	os.Exit(runHelper(mode, os.Getenv(helperMntEnv)))
}

func runHelper(mode, mnt string) int {
	switch mode {
	case "serve": // mount -f: serve until a signal or umount
		err := mount.MountAndServe(testTree(), mnt, mount.Options{FsName: "helper"}, func(err error) {
			if err == nil {
				fmt.Println("ready")
			}
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	case "daemon": // the child side of Daemonize, as the CLI does it
		if !mount.IsDaemonChild() {
			fmt.Fprintln(os.Stderr, "not started by Daemonize")
			return 2
		}
		fmt.Printf("pid %d\n", os.Getpid())
		if err := mount.MountAndServe(testTree(), mnt, mount.Options{FsName: "helper"}, mount.NotifyReady); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	case "serve-late": // mounts itself, then ServeUntilSignal
		srv, err := mount.Mount(testTree(), mnt, mount.Options{FsName: "helper"})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		go func() {
			// Say ready only once the handler is in place: that gap is
			// what MountAndServe closes.
			time.Sleep(50 * time.Millisecond)
			fmt.Println("ready")
		}()
		if err := mount.ServeUntilSignal(srv); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	case "daemon-error":
		fmt.Fprintln(os.Stderr, "about to fail")
		mount.NotifyReady(fmt.Errorf("open %s: not an image archive", mnt))
		return 1
	case "daemon-die":
		return 3
	}
	fmt.Fprintln(os.Stderr, "unknown helper mode", mode)
	return 2
}

// startServer runs the "serve" helper on mnt and returns once it serves.
func startServer(t *testing.T, mnt string) *exec.Cmd {
	t.Helper()
	return startHelper(t, "serve", mnt)
}

// startHelper runs the helper in mode on mnt and returns once it said
// "ready".
func startHelper(t *testing.T, mode, mnt string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], helperArgs...)
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, helperMntEnv+"="+mnt)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if mounted(t, mnt) {
			mount.Unmount(mnt)
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if line != "ready\n" {
		t.Fatalf("helper: %q %v; stderr: %s", line, err, stderr.String())
	}
	return cmd
}

// waitFor polls cond for up to five seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestUnmountStale(t *testing.T) {
	requireFUSE(t)
	mnt := t.TempDir()
	cmd := startServer(t, mnt)
	cmd.Process.Kill()
	cmd.Wait()

	if _, err := os.Stat(mnt); !errors.Is(err, syscall.ENOTCONN) {
		t.Fatalf("stat of a mount whose daemon died: %v, want ENOTCONN", err)
	}
	if _, err := mount.Mount(testTree(), mnt, mount.Options{}); err == nil || !strings.Contains(err.Error(), "daemon died") {
		t.Errorf("Mount over a stale mount: %v", err)
	}
	if err := mount.Unmount(mnt); err != nil {
		t.Fatalf("Unmount of a stale mount: %v", err)
	}
	if _, err := os.Stat(mnt); err != nil || mounted(t, mnt) {
		t.Errorf("after Unmount: stat %v, mounted %v", err, mounted(t, mnt))
	}
	if err := mount.Unmount(mnt); err == nil || !strings.Contains(err.Error(), "not mounted") {
		t.Errorf("second Unmount: %v", err)
	}
}

func TestUnmountLive(t *testing.T) {
	requireFUSE(t)
	mnt := t.TempDir()
	cmd := startServer(t, mnt)
	if err := mount.Unmount(mnt); err != nil {
		t.Fatalf("Unmount: %v", err)
	}
	// The daemon notices and exits by itself.
	if err := cmd.Wait(); err != nil {
		t.Errorf("daemon after umount: %v", err)
	}
	if mounted(t, mnt) {
		t.Errorf("still mounted")
	}
}

func TestServeUntilSignal(t *testing.T) {
	requireFUSE(t)
	for _, c := range []struct {
		mode string
		sig  syscall.Signal
	}{{"serve", syscall.SIGTERM}, {"serve", syscall.SIGINT}, {"serve", syscall.SIGHUP}, {"serve-late", syscall.SIGTERM}} {
		sig := c.sig
		mnt := t.TempDir()
		cmd := startHelper(t, c.mode, mnt)
		if b, err := os.ReadFile(filepath.Join(mnt, "hello.txt")); err != nil || string(b) != helloTxt {
			t.Fatalf("read: %q %v", b, err)
		}
		cmd.Process.Signal(sig)
		if err := cmd.Wait(); err != nil {
			t.Errorf("%v: exit %v, want a clean exit", sig, err)
		}
		if mounted(t, mnt) {
			t.Errorf("%v: still mounted", sig)
		}
	}
}

func TestServeUntilSignalBusy(t *testing.T) {
	requireFUSE(t)
	mnt := t.TempDir()
	cmd := startServer(t, mnt)
	f, err := os.Open(filepath.Join(mnt, "hello.txt"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	// Busy: detached from the namespace, still serving the open file.
	waitFor(t, "lazy unmount", func() bool { return !mounted(t, mnt) })
	buf := make([]byte, 5)
	if _, err := f.ReadAt(buf, 0); err != nil || string(buf) != "hello" {
		t.Errorf("read of an open file after SIGTERM: %q %v", buf, err)
	}
	f.Close()
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit: %v", err)
	}
}

// daemonize runs Daemonize with the helper in mode.
func daemonize(t *testing.T, mode, mnt string) (logs string, err error) {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "daemon.log")
	t.Setenv(helperEnv, mode)
	t.Setenv(helperMntEnv, mnt)
	err = mount.Daemonize(helperArgs, logPath)
	b, _ := os.ReadFile(logPath)
	return string(b), err
}

func TestDaemonize(t *testing.T) {
	requireFUSE(t)
	mnt := t.TempDir()
	logs, err := daemonize(t, "daemon", mnt)
	if err != nil {
		t.Fatalf("Daemonize: %v; log:\n%s", err, logs)
	}
	t.Cleanup(func() {
		if mounted(t, mnt) {
			mount.Unmount(mnt)
		}
	})
	// Served the moment Daemonize returns: no polling.
	if b, err := os.ReadFile(filepath.Join(mnt, "hello.txt")); err != nil || string(b) != helloTxt {
		t.Fatalf("read right after Daemonize: %q %v", b, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(logs, "pid ")))
	if err != nil {
		t.Fatalf("daemon log %q: %v", logs, err)
	}
	if sid, _ := unix.Getsid(pid); sid != pid {
		t.Errorf("daemon session %d, want its own (%d)", sid, pid)
	}
	if err := mount.Unmount(mnt); err != nil {
		t.Fatalf("Unmount: %v", err)
	}
	waitFor(t, "daemon exit", func() bool { return exited(pid) })
}

func TestDaemonizeBusy(t *testing.T) {
	mnt := testMount(t, testTree())
	_, err := daemonize(t, "daemon", mnt)
	if err == nil || !strings.Contains(err.Error(), "already a mount point") {
		t.Errorf("Daemonize on a busy mountpoint: %v, want the daemon's own error", err)
	}
}

func TestDaemonizeError(t *testing.T) {
	logs, err := daemonize(t, "daemon-error", "/src/x.tar")
	if err == nil || err.Error() != "open /src/x.tar: not an image archive" {
		t.Errorf("Daemonize: %v, want the child's message verbatim", err)
	}
	if !strings.Contains(logs, "about to fail") {
		t.Errorf("the child's stderr did not reach the log: %q", logs)
	}
}

func TestDaemonizeDeath(t *testing.T) {
	_, err := daemonize(t, "daemon-die", "")
	if err == nil || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "daemon.log") {
		t.Errorf("Daemonize: %v, want the exit status and the log's path", err)
	}
}

// exited reports whether pid is gone or a zombie: the daemon is our child
// until the test binary exits, so it is not reaped before.
func exited(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// pid (comm) state ...; comm may contain spaces, so split after ")".
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(fields) > 0 && fields[0] == "Z"
}
