package fs

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/layoutfs/layoutfs/internal/flock"
)

// ErrUppersBusy is returned by LockUppers when another read-write mount
// holds the pending changes.
var ErrUppersBusy = errors.New("its pending changes are in use by another read-write mount")

// LockUppers takes the lock of the pending changes under upperDir (see
// UpperDir) for a read-write mount, which holds it until Close. Two mounts
// of one source with one cache dir would each replay, compact and append
// to the same journals, and lose each other's changes; the second is
// refused instead, with ErrUppersBusy naming who holds the lock (owner,
// as the holder gave it).
func LockUppers(upperDir, owner string) (io.Closer, error) {
	f, err := flock.Open(upperDir + ".lock")
	if err != nil {
		return nil, err
	}
	ok, err := flock.Try(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	if !ok {
		b, _ := io.ReadAll(io.LimitReader(f, 4096))
		f.Close()
		if holder := strings.TrimSpace(string(b)); holder != "" {
			return nil, fmt.Errorf("%w (%s)", ErrUppersBusy, holder)
		}
		return nil, ErrUppersBusy
	}
	// Who holds it, for the message of the next one to try.
	if f.Truncate(0) == nil {
		f.WriteAt([]byte(owner+"\n"), 0)
	}
	return f, nil
}
