package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"

	lfs "github.com/layoutfs/layoutfs/fs"
	"github.com/layoutfs/layoutfs/layout"
	"github.com/layoutfs/layoutfs/mount"
	"github.com/urfave/cli/v2"
)

var mountCommand = &cli.Command{
	Name:      "mount",
	Usage:     "mount SOURCE as a browsable tree on MOUNTPOINT",
	ArgsUsage: "SOURCE MOUNTPOINT",
	Description: `Returns once the tree is served, leaving a daemon behind (as sshfs does);
with -f it stays in the foreground and unmounts on SIGINT or SIGTERM.
Unmount with 'layoutfs umount MOUNTPOINT'.`,
	Flags: sourceFlags(
		&cli.BoolFlag{Name: "foreground", Aliases: []string{"f"}, Usage: "serve in the foreground"},
		&cli.BoolFlag{Name: "rw", Usage: "read-write mount (tags and rootfs editable)"},
		&cli.StringSliceFlag{Name: "o", Usage: "mount options, comma-separated (ro, allow_other, ...)"},
		&cli.StringFlag{Name: "log", Usage: "the daemon's log file (default: <cache-dir>/log/<mountpoint>.log)"},
		&cli.BoolFlag{Name: "debug", Usage: "log every FUSE request"},
	),
	Action: func(c *cli.Context) error {
		if c.NArg() != 2 {
			return cli.Exit("usage: layoutfs mount [flags] SOURCE MOUNTPOINT", 2)
		}
		return runMount(c, c.Args().Get(0), c.Args().Get(1))
	},
}

func runMount(c *cli.Context, source, mnt string) error {
	if err := checkNotHidden(source, mnt); err != nil {
		return err
	}
	var opts []string
	for _, o := range c.StringSlice("o") {
		opts = append(opts, strings.Split(o, ",")...)
	}
	if !c.Bool("foreground") && !mount.IsDaemonChild() {
		// Open the source here first: a bad source fails before any fork,
		// warnings and progress reach the user's terminal, and the long
		// work (indexing the archive) lands in the cache the daemon reads.
		if _, err := openSource(c, source, newReporter(c)); err != nil {
			return err
		}
		return mount.Daemonize(daemonArgs(c, source, mnt), daemonLog(c, mnt))
	}
	root, closer, err := mountTree(c, source, mnt)
	if err != nil {
		mount.NotifyReady(err)
		return err
	}
	defer closer.Close()
	o := mount.Options{FsName: absPath(source), Debug: c.Bool("debug"), Options: opts, Writable: c.Bool("rw")}
	for _, opt := range opts {
		if opt == "allow_other" {
			o.AllowOther = true
		}
	}
	ready := mount.NotifyReady
	if !mount.IsDaemonChild() {
		ready = nil
	} else {
		// One line per mount in a log that many mounts append to.
		log.Printf("layoutfs: serving %s on %s", absPath(source), absPath(mnt))
	}
	return mount.MountAndServe(root, mnt, o, ready)
}

// mountTree opens SOURCE and returns the tree to mount, and what to close
// once it is unmounted: with --rw, a live tree that takes edits and follows
// the source as it changes, and the lock of its pending changes.
func mountTree(c *cli.Context, source, mnt string) (lfs.Dir, io.Closer, error) {
	if !c.Bool("rw") {
		root, _, err := openTree(c, source)
		return root, io.NopCloser(nil), err
	}
	upper := lfs.UpperDir(cacheDir(c), source)
	lock, err := lfs.LockUppers(upper, fmt.Sprintf("the read-write mount on %s, pid %d", absPath(mnt), os.Getpid()))
	if errors.Is(err, lfs.ErrUppersBusy) {
		return nil, nil, fmt.Errorf("mount --rw %s: %w; unmount that one first, or give this one another --cache-dir", source, err)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("mount --rw %s: %w", source, err)
	}
	rep := newReporter(c)
	src, err := openSource(c, source, rep)
	if err != nil {
		lock.Close()
		return nil, nil, err
	}
	o, err := sourceOptions(c, rep)
	if err != nil {
		lock.Close()
		return nil, nil, err
	}
	// A reopen that meets a file another tool is rewriting in place must
	// fail, so the tree keeps its last good view, rather than serve one
	// made around the damage (layout.Options.Strict).
	o.Strict = true
	reopen := func(ctx context.Context) (*layout.Source, error) {
		return layout.Open(ctx, source, o)
	}
	return lfs.NewLive(src, reopen, lfs.Options{Warn: rep.warn, UpperDir: upper}).Root(), lock, nil
}

// absPath is p made absolute, or p if that fails.
func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// checkNotHidden refuses a mountpoint at or above the source: the mount
// would hide the source from the daemon itself, whose reads of it would
// then come back into the mount and deadlock in the kernel.
func checkNotHidden(source, mnt string) error {
	src := absPath(source)
	if r, err := filepath.EvalSymlinks(src); err == nil {
		src = r
	}
	// The mountpoint itself is never stat'ed: a hung daemon's mount there
	// would hang us. Its parent is resolved instead.
	m := absPath(mnt)
	if parent, err := filepath.EvalSymlinks(filepath.Dir(m)); err == nil {
		m = filepath.Join(parent, filepath.Base(m))
	}
	if rel, err := filepath.Rel(m, src); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
		return fmt.Errorf("mount %s: the mountpoint would hide the source %s (the source must not be at or below the mountpoint)", mnt, source)
	}
	return nil
}

// daemonLog is where the daemon writes: --log, else a file per mountpoint
// in the cache directory. A daemon has no terminal, and what it says is
// what a user needs when a read fails: the EIO of a corrupt blob is
// explained only by its log line naming the blob. When the default cannot
// be written the mount goes on without a log, saying so.
func daemonLog(c *cli.Context, mnt string) string {
	if p := c.String("log"); p != "" {
		return p
	}
	dir := cacheDir(c)
	if dir == "" {
		return ""
	}
	p := filepath.Join(dir, "log", logName(absPath(mnt)))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		newReporter(c).warn(fmt.Sprintf("no daemon log: %v", err))
		return ""
	}
	// Appended to by every mount at that place: start over past a size
	// no warning log reaches, keeping one older file.
	if st, err := os.Stat(p); err == nil && st.Size() > maxLogSize {
		os.Rename(p, p+".1")
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		newReporter(c).warn(fmt.Sprintf("no daemon log: %v", err))
		return ""
	}
	f.Close()
	return p
}

// logName names the log of the mount at the absolute path mnt: readable,
// and unique (a hash of the path, as /a/b_c and /a_b/c read alike).
func logName(mnt string) string {
	name := strings.ReplaceAll(strings.Trim(mnt, "/"), "/", "_")
	if len(name) > 150 {
		name = name[len(name)-150:]
	}
	if name == "" {
		name = "root"
	}
	sum := sha256.Sum256([]byte(mnt))
	return fmt.Sprintf("%s-%x.log", name, sum[:4])
}

// maxLogSize is the size past which a mountpoint's log starts over.
const maxLogSize = 8 << 20

// daemonArgs is the mount command line for the daemon, with absolute paths
// and in the foreground (the daemon is the foreground of its own session).
func daemonArgs(c *cli.Context, source, mnt string) []string {
	args := []string{"mount", "--foreground"}
	if d := c.String("cache-dir"); d != "" {
		args = append(args, "--cache-dir", absPath(d))
	}
	for _, o := range c.StringSlice("o") {
		args = append(args, "-o", o)
	}
	if c.Bool("debug") {
		args = append(args, "--debug")
	}
	if c.Bool("rw") {
		args = append(args, "--rw")
	}
	args = append(args, limitArgs(c)...)
	return append(args, absPath(source), absPath(mnt))
}

var umountCommand = &cli.Command{
	Name:      "umount",
	Aliases:   []string{"unmount"},
	Usage:     "unmount a layoutfs mount, also one whose daemon died",
	ArgsUsage: "MOUNTPOINT",
	Action: func(c *cli.Context) error {
		if c.NArg() != 1 {
			return cli.Exit("usage: layoutfs umount MOUNTPOINT", 2)
		}
		if err := mount.Unmount(c.Args().First()); err != nil {
			return fmt.Errorf("%w", err)
		}
		return nil
	},
}
