// Package mount serves an fs tree over FUSE (go-fuse v2) and manages the
// mount's life: checks before mounting, unmounting (also of mounts whose
// daemon died), and the sshfs-style fork that makes `layoutfs mount`
// return only once the tree is served.
//
// `layoutfs mount [-f] SOURCE MOUNTPOINT` is, in outline:
//
//	if !foreground && !mount.IsDaemonChild() {
//		// Parent: start the daemon, return once it serves or with its error.
//		return mount.Daemonize(os.Args[1:], logPath)
//	}
//	// Foreground, or the daemon child.
//	root, err := openTree(source)
//	if err != nil {
//		mount.NotifyReady(err) // no-op in the foreground
//		return err
//	}
//	return mount.MountAndServe(root, mnt, mount.Options{FsName: source}, mount.NotifyReady)
//
// and `layoutfs umount MOUNTPOINT` is mount.Unmount(mnt).
package mount

import (
	"errors"
	"fmt"
	iofs "io/fs"
	"log"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/hanwen/go-fuse/v2/splice"
	lfs "github.com/layoutfs/layoutfs/fs"
)

// fsType is the FUSE subtype: mounts show up as type "fuse.layoutfs", which
// is also how Unmount recognises ours.
const fsType = "layoutfs"

// ErrNoFUSE is returned when the kernel's FUSE device is missing.
var ErrNoFUSE = errors.New("no FUSE: /dev/fuse not found; install fuse3 or run with --device /dev/fuse")

// Options configure a mount.
type Options struct {
	// FsName is shown as the source in /proc/mounts and df; use the
	// SOURCE path.
	FsName string
	// Debug logs every FUSE request and reply.
	Debug bool
	// AllowOther lets users other than the mounting one see the tree
	// (as non-root it needs user_allow_other in /etc/fuse.conf).
	AllowOther bool
	// Options are extra mount options, as given to -o and split at commas.
	// "ro" is accepted and implied unless Writable; "rw" is refused.
	Options []string
	// Writable mounts read-write: the tree's directories that take edits
	// (fs.Renamer, fs.Remover, ...) get them; the rest answers EROFS.
	Writable bool
	// Logger receives errors the kernel only sees as EIO, and handler
	// panics. Nil means log.Default().
	Logger *log.Logger
}

// Server is a served mount.
type Server struct {
	srv  *fuse.Server
	mnt  string
	mu   sync.Mutex // serialises Unmount: go-fuse's is not safe to call concurrently
	done bool       // unmounted by us
	// stopProfile writes the profiles LAYOUTFS_PROFILE asked for.
	stopProfile func()
	waitOnce    sync.Once
}

// Mountpoint returns the absolute path the tree is mounted on.
func (s *Server) Mountpoint() string { return s.mnt }

// Wait blocks until the mount is gone: unmounted by Unmount, by
// `layoutfs umount`, or by umount(8).
func (s *Server) Wait() {
	s.srv.Wait()
	if s.stopProfile != nil {
		s.waitOnce.Do(s.stopProfile)
	}
}

// Unmount unmounts the tree. If it is busy (a shell sitting in it, an open
// file), it is detached lazily instead: it disappears from the namespace
// now and the daemon serves the open files until they are closed, when
// Wait returns.
func (s *Server) Unmount() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return nil
	}
	if err := s.srv.Unmount(); err != nil {
		derr := detach(s.mnt)
		if _, mounted, _ := findMount(s.mnt); derr != nil && mounted {
			return fmt.Errorf("unmount %s: %w (lazy unmount: %v)", s.mnt, err, derr)
		}
		// Detached, or someone else unmounted it first.
	}
	s.done = true
	return nil
}

// Mount serves root on mountpoint and returns once the kernel has
// completed the FUSE handshake, so the tree can be used right away. The
// mount is read-only, nosuid and nodev: image contents are not trusted.
//
// As root it calls mount(2) directly; otherwise (or if that is refused,
// as in a container without CAP_SYS_ADMIN) it goes through fusermount3.
func Mount(root lfs.Dir, mountpoint string, o Options) (*Server, error) {
	runtimeOnce.Do(tuneRuntime)
	mnt, err := checkMountpoint(mountpoint)
	if err != nil {
		return nil, err
	}
	unlock, err := lockMountpoint(mountpoint, mnt)
	if err != nil {
		return nil, err
	}
	defer unlock()
	direct := os.Geteuid() == 0
	srv, err := mountWith(root, mnt, o, direct)
	if direct && errors.Is(err, syscall.EPERM) && haveFusermount() {
		// Root without CAP_SYS_ADMIN, as in most containers: fusermount3
		// may still be allowed. (go-fuse can fall back by itself, but
		// would then mount without "ro", which mount(2) takes as a flag.)
		srv, err = mountWith(root, mnt, o, false)
	}
	if err != nil {
		return nil, fmt.Errorf("mount %s: %w", mountpoint, err)
	}
	raiseReadahead(mnt)
	return srv, nil
}

// gcPercent is the daemon's GOGC. Nearly all of a daemon's heap is the
// tree, which lives as long as the mount, and the default (100) lets the
// heap grow to twice that before collecting. The garbage is mostly
// go-fuse's per-request structures and buffers, short-lived; collecting at
// a quarter over the live heap keeps the peak near it at little CPU, but
// costs a cold mount (which allocates the tree from nothing) about 7%.
const gcPercent = 25

var runtimeOnce sync.Once

// spareProcs is how many Ps the daemon has beyond its CPUs.
//
// go-fuse's readers block in read(2) on /dev/fuse, each holding a P while
// it waits; a single client keeps two of them waiting, a burst of
// readahead more. When every P is held so, Go's sysmon takes them back
// 20 µs later and wakes another thread to look for work that is not
// there, on every request: sysmon alone was 27% of the daemon's CPU
// samples during find on two cores, where waking a thread on the other
// core is also most of a round trip's cost. With Ps to spare it leaves
// blocked readers alone. (go-fuse allows as many readers as Ps, so more
// Ps also allow more readers, each with a 1 MiB request buffer.)
const spareProcs = 4

// tuneRuntime applies gcPercent and spareProcs, unless the user set GOGC
// or GOMAXPROCS.
func tuneRuntime() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(runtime.GOMAXPROCS(0) + spareProcs)
	}
}

// readaheadKB is the kernel readahead for our mounts. FUSE caps it at the
// backing device's read_ahead_kb, 128 KiB by default, whatever INIT asks
// for; a sequential read is then a round trip per 128 KiB. With 1 MiB the
// kernel asks for 1 MiB requests (MaxWrite), and a large file reads about
// twice as fast.
const readaheadKB = 1024

// raiseReadahead sets the mount's read_ahead_kb, when allowed (root).
// Failing to is harmless: reads are only slower.
func raiseReadahead(mnt string) {
	m, ok, err := findMount(mnt)
	if err != nil || !ok || m.fstype != "fuse."+fsType || m.dev == "" || strings.Contains(m.dev, "/") {
		return
	}
	os.WriteFile("/sys/class/bdi/"+m.dev+"/read_ahead_kb", []byte(strconv.Itoa(readaheadKB)), 0)
}

// mountWith mounts through mount(2) (direct) or fusermount3.
func mountWith(root lfs.Dir, mnt string, o Options, direct bool) (*Server, error) {
	opts, err := fuseOptions(o, direct)
	if err != nil {
		return nil, err
	}
	if !o.Writable {
		// A read-only tree never changes: serve it on the protocol API,
		// with far less kept per inode and fewer round trips (raw.go).
		srv, err := fuse.NewServer(newRawFS(root, opts.Logger), mnt, &opts.MountOptions)
		if err != nil {
			return nil, explainMountErr(err, direct)
		}
		go srv.Serve()
		if err := srv.WaitMount(); err != nil {
			// The serve loop ends by itself once the kernel is gone.
			return nil, explainMountErr(err, direct)
		}
		return &Server{srv: srv, mnt: mnt, stopProfile: startProfile(opts.Logger)}, nil
	}
	if ino := root.Attr().Ino; ino != 0 {
		// Keep the tree's numbering for the root too, so stat agrees
		// with the tree and no child can alias the root's default Ino 1.
		opts.RootStableAttr = &fusefs.StableAttr{Ino: ino}
	}
	srv, err := fusefs.Mount(mnt, &node{n: root, m: &shared{log: opts.Logger, writable: o.Writable}}, opts)
	if err != nil {
		return nil, explainMountErr(err, direct)
	}
	return &Server{srv: srv, mnt: mnt}, nil
}

// fuseOptions builds go-fuse's options from ours, for mount(2) (direct,
// as root) or for fusermount3.
func fuseOptions(o Options, direct bool) (*fusefs.Options, error) {
	logger := o.Logger
	if logger == nil {
		logger = log.Default()
	}
	entry, attr, negative := entryTimeout, attrTimeout, negativeTimeout
	if o.Writable {
		// go-fuse gives every miss the same timeout, and in a writable
		// mount a miss in tags/ may be filled by another writer at any
		// time.
		negative = changingTimeout
	}
	opts := &fusefs.Options{
		EntryTimeout:    &entry,
		AttrTimeout:     &attr,
		NegativeTimeout: &negative,
		// Modes come from the archive; a 0000 file stays 0000.
		NullPermissions: true,
		Logger:          logger,
	}
	mo := &opts.MountOptions
	// Large requests: a sequential read is a round trip per request, so
	// requests near 1 MiB (the kernel's limit) cut them eightfold from
	// the 128 KiB default. The kernel caps readahead at the device's
	// read_ahead_kb (128 KiB) regardless; see raiseReadahead.
	mo.MaxWrite = maxRequest()
	mo.MaxReadAhead = 1 << 20
	mo.FsName = o.FsName
	mo.Name = fsType
	mo.Debug = o.Debug
	mo.Logger = logger
	mo.AllowOther = o.AllowOther
	// With mount(2), read-only is a flag (the kernel's FUSE option parser
	// rejects "ro"); fusermount3 takes it as an option.
	if direct {
		mo.DirectMountStrict = true
		mo.DirectMountFlags = syscall.MS_NOSUID | syscall.MS_NODEV
		if !o.Writable {
			mo.DirectMountFlags |= syscall.MS_RDONLY
		}
	} else {
		if !haveFusermount() {
			return nil, errors.New("no fusermount3: install fuse3 to mount as a non-root user")
		}
		mo.Options = append(mo.Options, "nosuid", "nodev")
		if !o.Writable {
			mo.Options = append(mo.Options, "ro")
		}
	}
	if !o.Writable {
		// Targets never change: the kernel may keep them, and a path
		// through a symlink (/lib -> usr/lib) costs no READLINK each time.
		mo.EnableSymlinkCaching = true
	}
	for _, opt := range o.Options {
		switch opt {
		case "":
		case "ro":
			if o.Writable {
				return nil, errors.New("option ro: contradicts a read-write mount")
			}
		case "rw":
			return nil, errors.New("option rw: use --rw for a read-write mount")
		case "allow_other":
			mo.AllowOther = true
		default:
			mo.Options = append(mo.Options, opt)
		}
	}
	if mo.AllowOther && !slices.Contains(mo.Options, "default_permissions") {
		// go-fuse checks no permissions itself: without this, other users
		// could read what the image keeps from them (/etc/shadow, 0600
		// keys). The kernel then checks the archive's modes and owners.
		mo.Options = append(mo.Options, "default_permissions")
	}
	return opts, nil
}

// maxRequest is the largest read request go-fuse can still splice:
// go-fuse splices a read's reply (header and data) through a pipe, which
// must also hold a page to spare, and falls back to copying the data
// twice through a buffer when that does not fit. Pipes grow to
// /proc/sys/fs/pipe-max-size at most, 1 MiB by default, so a full 1 MiB
// request is never spliced; 1 MiB less two pages is.
func maxRequest() int {
	const limit = 1 << 20
	page := os.Getpagesize()
	n := limit
	if p := splice.MaxPipeSize(); p > 0 {
		n = min(n, p-2*page)
	}
	return max(n/page*page, 128<<10)
}

// haveFusermount reports whether the helper for non-root mounts exists.
func haveFusermount() bool {
	_, err3 := exec.LookPath("fusermount3")
	_, err := exec.LookPath("fusermount")
	return err3 == nil || err == nil
}

// checkMountpoint turns the usual mistakes into clear errors before the
// kernel turns them into terse ones, and returns the canonical path. It
// looks in mountinfo before it stats the path: stat on a mount whose
// daemon hangs would hang too.
func checkMountpoint(mountpoint string) (string, error) {
	if _, err := os.Stat("/dev/fuse"); errors.Is(err, iofs.ErrNotExist) {
		return "", fmt.Errorf("mount %s: %w", mountpoint, ErrNoFUSE)
	}
	mnt, m, mounted, err := resolveMountpoint(mountpoint)
	switch {
	case errors.Is(err, iofs.ErrNotExist):
		return "", fmt.Errorf("mountpoint %s: does not exist", mountpoint)
	case err != nil && mnt == "":
		return "", fmt.Errorf("mountpoint %s: %w", mountpoint, err)
	case err != nil:
		// No /proc: compare devices with the parent below instead, which
		// misses bind mounts but catches the common case.
	case mounted && strings.HasPrefix(m.fstype, "fuse"):
		return "", fmt.Errorf("mountpoint %s: busy: already a mount point (%s); if its daemon died, run 'layoutfs umount %s'", mountpoint, m.fstype, mountpoint)
	case mounted:
		return "", fmt.Errorf("mountpoint %s: busy: already a mount point (%s)", mountpoint, m.fstype)
	}
	fi, serr := os.Stat(mnt)
	switch {
	case errors.Is(serr, syscall.ENOTCONN):
		return "", fmt.Errorf("mountpoint %s: busy: a FUSE mount whose daemon died is still there; run 'layoutfs umount %s'", mountpoint, mountpoint)
	case errors.Is(serr, iofs.ErrNotExist):
		return "", fmt.Errorf("mountpoint %s: does not exist", mountpoint)
	case serr != nil:
		return "", fmt.Errorf("mountpoint %s: %w", mountpoint, serr)
	case !fi.IsDir():
		return "", fmt.Errorf("mountpoint %s: not a directory", mountpoint)
	case err != nil && !sameDevAsParent(mnt):
		return "", fmt.Errorf("mountpoint %s: busy: already a mount point", mountpoint)
	}
	return mnt, nil
}

// lockMountpoint closes the window between checkMountpoint and mount(2),
// in which several mounts started at once would all find the directory
// free and stack on it. It takes an exclusive flock on the directory and
// then looks in mountinfo again: a mount that won the lock and finished
// first is seen there. A mount that opened the directory after the
// winner mounted locks the winner's root instead, and mountinfo turns it
// away the same way.
func lockMountpoint(mountpoint, mnt string) (unlock func(), err error) {
	fd, err := syscall.Open(mnt, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("mountpoint %s: %w", mountpoint, err)
	}
	unlock = func() { syscall.Close(fd) }
	for {
		err = syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB)
		if err != syscall.EINTR {
			break
		}
	}
	switch {
	case err == syscall.EWOULDBLOCK:
		unlock()
		return nil, fmt.Errorf("mountpoint %s: busy: another mount is being made on it", mountpoint)
	case err != nil:
		// A filesystem without flock: mount without the guard, as before.
		return unlock, nil
	}
	if m, mounted, err := findMount(mnt); err == nil && mounted {
		unlock()
		return nil, fmt.Errorf("mountpoint %s: busy: already a mount point (%s)", mountpoint, m.fstype)
	}
	return unlock, nil
}

// sameDevAsParent reports whether dir is on the same device as its
// parent, that is, not a mount point. "/" counts as one.
func sameDevAsParent(dir string) bool {
	var st, parent syscall.Stat_t
	if syscall.Stat(dir, &st) != nil || syscall.Stat(dir+"/..", &parent) != nil {
		return true
	}
	return st.Dev == parent.Dev && st.Ino != parent.Ino
}

// explainMountErr adds a hint to the errors mount(2) and fusermount3 give
// for causes the user can fix.
func explainMountErr(err error, direct bool) error {
	if !direct {
		// fusermount3 has said why on stderr; go-fuse only has its exit
		// code. The usual cause in containers is a /dev/fuse only root
		// may open. (Its message ends in a newline.)
		msg := strings.TrimSpace(err.Error())
		if syscall.Access("/dev/fuse", 6 /* R_OK|W_OK */) != nil {
			return fmt.Errorf("%s (/dev/fuse is not readable and writable for uid %d: it is normally mode 0666)", msg, os.Getuid())
		}
		return fmt.Errorf("%s (see fusermount3's message above)", msg)
	}
	switch {
	case errors.Is(err, syscall.EPERM):
		return fmt.Errorf("%w (not permitted: need root or fusermount3, and in a container CAP_SYS_ADMIN or --device /dev/fuse)", err)
	case errors.Is(err, syscall.EINVAL):
		return fmt.Errorf("%w (check the -o options)", err)
	}
	return err
}
