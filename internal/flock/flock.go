// Package flock takes exclusive flock(2) locks on files without holding an
// OS thread blocked in the kernel: a wait polls, and gives up when its
// context ends.
//
// A flock belongs to an open file description, so two goroutines locking
// the same *os.File do not exclude each other; callers serialise their own
// goroutines first.
package flock

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// Open opens the lock file at path, creating it and its directory.
func Open(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}

// Try takes the lock on f if it is free, and reports whether it did. Its
// errors, and Wait's, are the system's or the context's, for the caller to
// name the file.
func Try(f *os.File) (bool, error) {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		switch err {
		case nil:
			return true, nil
		case unix.EWOULDBLOCK:
			return false, nil
		case unix.EINTR:
			continue
		}
		return false, err
	}
}

// Wait takes the lock on f, waiting while another holds it.
func Wait(ctx context.Context, f *os.File) error {
	delay := time.Millisecond
	for {
		ok, err := Try(f)
		if ok || err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(delay*2, 50*time.Millisecond)
	}
}

// Unlock releases the lock on f.
func Unlock(f *os.File) {
	unix.Flock(int(f.Fd()), unix.LOCK_UN)
}
