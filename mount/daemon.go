package mount

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"

	lfs "github.com/layoutfs/layoutfs/fs"
)

// daemonEnv names the pipe's descriptor in the daemon child; see Daemonize.
const daemonEnv = "LAYOUTFS_DAEMON"

const readyMsg = "ready\n"
const errorPrefix = "error: "

// Daemonize runs the mount in a daemon and returns once the daemon serves
// the tree, or with the daemon's own error when it will not: `layoutfs
// mount` returns only then, as sshfs does. The protocol:
//
//  1. The parent calls Daemonize(args, logPath). It starts its own
//     executable again with args, in a new session (no terminal, so no
//     SIGHUP or ^C), stdin on /dev/null and stdout/stderr on logPath (or
//     /dev/null), and with the write end of a pipe as file descriptor 3,
//     announced in the environment as LAYOUTFS_DAEMON=3.
//  2. The child sees IsDaemonChild() true, sets everything up (open the
//     source, Mount) and calls NotifyReady exactly once: NotifyReady(nil)
//     once Mount has returned, or NotifyReady(err) and exits non-zero.
//     NotifyReady writes "ready\n" or "error: <message>" and closes the
//     pipe. Then the child serves until unmounted. MountAndServe with
//     NotifyReady as its ready callback does all of this step.
//  3. The parent reads the pipe to its end. "ready\n" makes Daemonize
//     return nil, leaving the child running; an error message is returned
//     as the error; nothing at all means the child died first, and its
//     exit status is returned.
//
// args are the daemon's arguments (without the program name), normally
// the mount command line itself. Paths in them are resolved in the child's
// working directory, which is the parent's; pass absolute paths all the
// same. logPath, if not empty, receives the daemon's stdout and stderr,
// appended.
func Daemonize(args []string, logPath string) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("start daemon: %w", err)
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return fmt.Errorf("start daemon: %w", err)
	}
	defer devnull.Close()
	outPath, flags := os.DevNull, os.O_WRONLY
	if logPath != "" {
		outPath, flags = logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND
	}
	out, err := os.OpenFile(outPath, flags, 0o644)
	if err != nil {
		return fmt.Errorf("start daemon: log: %w", err)
	}
	defer out.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("start daemon: %w", err)
	}
	defer r.Close()

	closeInherited()
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), daemonEnv+"=3")
	cmd.ExtraFiles = []*os.File{w} // fd 3 in the child
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	// A daemon must not pin the directory it was started from (the user
	// may want to unmount or delete it): it runs from /, so args must
	// hold absolute paths.
	cmd.Dir = "/"
	err = cmd.Start()
	// Our copy of the write end must go, or we would never see EOF when
	// the child dies without a word.
	w.Close()
	if err != nil {
		return fmt.Errorf("start daemon: %w", err)
	}

	msg, err := io.ReadAll(io.LimitReader(r, 64<<10))
	if err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	switch s := string(msg); {
	case s == readyMsg:
		// The child lives on without us; nothing to wait for.
		return cmd.Process.Release()
	case strings.HasPrefix(s, errorPrefix):
		cmd.Wait() // it exits after reporting; reap it
		return errors.New(strings.TrimPrefix(s, errorPrefix))
	case s == "":
		werr := cmd.Wait()
		if werr == nil {
			werr = errors.New("exit status 0")
		}
		if logPath != "" {
			return fmt.Errorf("daemon exited before serving: %v (see %s)", werr, logPath)
		}
		return fmt.Errorf("daemon exited before serving: %v", werr)
	default:
		cmd.Process.Kill()
		cmd.Wait()
		return fmt.Errorf("daemon: unexpected message %q", s)
	}
}

// closeInherited marks every descriptor past stderr close-on-exec, so
// the daemon does not keep open what we inherited from our caller (a
// pipe of $(layoutfs mount ...) or of a test harness would then never
// see its end). Go opens its own descriptors close-on-exec already.
func closeInherited() {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_SETFD, syscall.FD_CLOEXEC)
		}
	}
}

// daemon is the child's end of the protocol, set up on first use.
var daemon struct {
	once     sync.Once
	mu       sync.Mutex // guards pipe
	pipe     *os.File   // nil when not a daemon child, or after NotifyReady
	isDaemon bool
}

func daemonSetup() {
	daemon.once.Do(func() {
		v, ok := os.LookupEnv(daemonEnv)
		if !ok {
			return
		}
		// Programs we start (fusermount3) are not daemon children.
		os.Unsetenv(daemonEnv)
		fd, err := strconv.Atoi(v)
		if err != nil || fd < 3 {
			return
		}
		// Not inherited by programs we start, which would keep the
		// parent waiting for EOF after we die.
		syscall.CloseOnExec(fd)
		daemon.pipe = os.NewFile(uintptr(fd), "layoutfs-daemon")
		daemon.isDaemon = true
	})
}

// IsDaemonChild reports whether this process was started by Daemonize and
// must call NotifyReady.
func IsDaemonChild() bool {
	daemonSetup()
	return daemon.isDaemon
}

// NotifyReady tells the parent waiting in Daemonize that the tree is
// served (err nil) or why it will not be. Only the first call counts;
// outside a daemon child it does nothing.
func NotifyReady(err error) {
	daemonSetup()
	daemon.mu.Lock()
	defer daemon.mu.Unlock()
	if daemon.pipe == nil {
		return
	}
	msg := readyMsg
	if err != nil {
		msg = errorPrefix + err.Error()
	}
	// A failed write means the parent is gone; there is nobody to tell.
	io.WriteString(daemon.pipe, msg)
	daemon.pipe.Close()
	daemon.pipe = nil
}

// MountAndServe mounts root on mountpoint and serves it until it is
// unmounted, by `layoutfs umount` or umount(8), or until SIGINT, SIGTERM
// or SIGHUP (the terminal of `mount -f` closing), any of which unmounts it
// (lazily if busy) and then waits until the kernel lets go, so the process
// exits with nothing left mounted. ready, if not nil,
// is called once with the result of Mount, before serving: NotifyReady in
// a daemon child, or a message in the foreground.
//
// It is the whole life of `layoutfs mount`, foreground or daemon. Signals
// are caught from before the mount starts, so a ^C that lands while
// mounting still unmounts rather than leaving a dead mount behind.
func MountAndServe(root lfs.Dir, mountpoint string, o Options, ready func(error)) error {
	sigs := catchSignals()
	defer signal.Stop(sigs)
	srv, err := Mount(root, mountpoint, o)
	if ready != nil {
		ready(err)
	}
	if err != nil {
		return err
	}
	return serve(srv, sigs)
}

// ServeUntilSignal is the serving half of MountAndServe, for a Server
// mounted by the caller. A signal arriving between Mount and this call
// kills the process and leaves the mount dead; prefer MountAndServe.
func ServeUntilSignal(srv *Server) error {
	sigs := catchSignals()
	defer signal.Stop(sigs)
	return serve(srv, sigs)
}

func catchSignals() chan os.Signal {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	return sigs
}

// serve waits for the mount to go away, unmounting it on a signal.
func serve(srv *Server, sigs <-chan os.Signal) error {
	done := make(chan struct{})
	go func() {
		srv.Wait()
		close(done)
	}()
	for {
		select {
		case <-done:
			return nil
		case <-sigs:
			if err := srv.Unmount(); err != nil {
				return err
			}
		}
	}
}
