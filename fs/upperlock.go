package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/layoutfs/layoutfs/internal/flock"
)

// uppersWait is how long LockUppers waits for the lock: a daemon just
// killed lets it go only once its last thread has exited.
const uppersWait = 2 * time.Second

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
	ctx, cancel := context.WithTimeout(context.Background(), uppersWait)
	defer cancel()
	if err := flock.Wait(ctx, f); errors.Is(err, context.DeadlineExceeded) {
		b, _ := io.ReadAll(io.LimitReader(f, 4096))
		f.Close()
		if holder := strings.TrimSpace(string(b)); holder != "" {
			return nil, fmt.Errorf("%w (%s)", ErrUppersBusy, holder)
		}
		return nil, ErrUppersBusy
	} else if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	// Who holds it, for the message of the next one to try.
	if f.Truncate(0) == nil {
		f.WriteAt([]byte(owner+"\n"), 0)
	}
	return f, nil
}
