package layout

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/layoutfs/layoutfs/internal/flock"
	"golang.org/x/sys/unix"
)

// LockFile is the file a directory layout is locked through. Other writers
// can cooperate by taking an exclusive flock(2) on it, e.g.
// `flock DIR/.layoutfs.lock skopeo copy ... oci:DIR:tag`.
const LockFile = ".layoutfs.lock"

// tempMark is in the name of every temporary file layoutfs writes beside
// the files it replaces. Temporaries are only made under the lock, so any
// found by a writer that holds the lock were left by a crash.
const tempMark = ".layoutfs-tmp-"

// pathLocks serialises writers of one path inside this process, so that
// goroutines do not each hold an OS thread blocked in flock.
var pathLocks sync.Map // absolute path -> *sync.Mutex

// writeLock is a held lock on a source: an in-process mutex plus an
// exclusive flock. For a tarball, f is the archive itself, opened after the
// lock was taken, so its bytes are the current ones.
type writeLock struct {
	mu *sync.Mutex
	f  *os.File
}

func (l *writeLock) unlock() {
	flock.Unlock(l.f)
	l.f.Close()
	l.mu.Unlock()
}

// lockSource takes the write lock of the source at path: for a layout
// directory, a flock on DIR/.layoutfs.lock; for a tarball, a flock on the
// archive file. A tarball is replaced by rename while locked, so after
// taking the lock the holder checks that path still names the file it
// locked, and starts again if a writer replaced it meanwhile.
func lockSource(ctx context.Context, path string) (*writeLock, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	m, _ := pathLocks.LoadOrStore(abs, new(sync.Mutex))
	mu := m.(*sync.Mutex)
	mu.Lock()
	ok := false
	defer func() {
		if !ok {
			mu.Unlock()
		}
	}()
	st, err := os.Stat(abs)
	if err != nil {
		return nil, err
	}
	if st.IsDir() && !isLayoutDir(abs) {
		return nil, fmt.Errorf("%w: %s holds no oci-layout, index.json or manifest.json", ErrUnknownShape, path)
	}
	for {
		var f *os.File
		if st.IsDir() {
			f, err = os.OpenFile(filepath.Join(abs, LockFile), os.O_RDWR|os.O_CREATE, 0o644)
		} else {
			f, err = os.Open(abs)
		}
		if err != nil {
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if err := flock.Wait(ctx, f); err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if st.IsDir() {
			ok = true
			return &writeLock{mu: mu, f: f}, nil
		}
		var held, now unix.Stat_t
		errHeld := unix.Fstat(int(f.Fd()), &held)
		errNow := unix.Stat(abs, &now)
		if errHeld == nil && errNow == nil && held.Dev == now.Dev && held.Ino == now.Ino {
			ok = true
			return &writeLock{mu: mu, f: f}, nil
		}
		flock.Unlock(f)
		f.Close()
		if errNow != nil {
			return nil, fmt.Errorf("lock %s: %w", path, errNow)
		}
	}
}

// removeStaleTemps removes temporaries a crashed writer left in dir: names
// starting with prefix and holding tempMark. The
// caller holds the lock, so none of them is being written.
func removeStaleTemps(dir, prefix string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if n := e.Name(); strings.HasPrefix(n, prefix) && strings.Contains(n, tempMark) && e.Type().IsRegular() {
			os.Remove(filepath.Join(dir, n))
		}
	}
}

// syncDir makes a rename or removal in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// isLayoutDir tells whether dir looks like a source, before a lock file is
// made in it.
func isLayoutDir(dir string) bool {
	for _, n := range []string{"oci-layout", "index.json", "manifest.json"} {
		if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
			return true
		}
	}
	return false
}

// Version names the current state of the source at path, cheaply (a few
// stats, nothing read): it changes whenever a writer that replaces files
// (layoutfs, or any writer using rename) changes the source, so a mount
// can tell when to open the source again. For a directory it covers
// index.json, manifest.json and repositories; for a tarball, the archive.
func Version(path string) (string, error) {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", err
	}
	st, err := os.Stat(real)
	if err != nil {
		return "", err
	}
	stamp := func(fi os.FileInfo) string {
		var ino uint64
		if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
			ino = sys.Ino
		}
		return fmt.Sprintf("%d:%d:%d", ino, fi.Size(), fi.ModTime().UnixNano())
	}
	if !st.IsDir() {
		return stamp(st), nil
	}
	v := ""
	for _, n := range []string{"index.json", "manifest.json", "repositories"} {
		if fi, err := os.Stat(filepath.Join(real, n)); err == nil {
			v += n + "=" + stamp(fi) + ";"
		}
	}
	return v, nil
}
