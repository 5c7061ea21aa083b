package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
)

// TestPendingLosesNoChange: changes made through a mount while another
// process commits and discards over and over all end up either in what a
// commit read or in what is pending at the end; none lands between a
// commit's read and its discard, where it would be lost.
func TestPendingLosesNoChange(t *testing.T) {
	uppers := t.TempDir()
	m := digest.FromString("image")
	var ino inos
	lower := newLazyDir(ino.one(), time.Unix(0, 0), func() ([]Dirent, error) { return nil, nil })
	r := newRWRoot(lower, filepath.Join(uppers, m.Encoded()), &ino, func(string) {})
	root := r.Dir()

	const files = 300
	var made []string
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range files {
			name := fmt.Sprintf("f%03d", i)
			n, err := root.(Creator).Create(name, 0o644, 0, 0)
			if err != nil {
				// The file's parent was the upper a discard dropped:
				// the failure is the user's to see, nothing is lost.
				continue
			}
			if _, err := n.(Writer).WriteAt([]byte(name), 0); err != nil {
				continue
			}
			made = append(made, name)
		}
	}()

	seen := map[string]string{} // path -> content, as a commit read it
	collect := func(discard bool) {
		p, err := OpenPending(context.Background(), uppers, m, lower)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		changes, err := p.Changes()
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range changes {
			if c.Open == nil {
				continue
			}
			rc, err := c.Open()
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			if seen[c.Path] != c.Path {
				seen[c.Path] = string(b)
			}
		}
		if discard {
			if err := p.Discard(); err != nil {
				t.Fatal(err)
			}
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
			collect(true)
			time.Sleep(time.Millisecond)
		}
	}
	collect(false)
	var lost []string
	for _, name := range made {
		if seen[name] != name {
			lost = append(lost, name)
		}
	}
	if len(lost) > 0 {
		t.Errorf("%d of %d files written were neither committed nor pending with their content: %v", len(lost), len(made), lost)
	}
	if len(made) == 0 {
		t.Errorf("no file could be written")
	}
}

// TestLockUppers: a second read-write mount of one source and cache dir
// is refused, naming the first; it may mount once the first is gone.
func TestLockUppers(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "upper", "abc")
	first, err := LockUppers(dir, "the mount on /mnt/one")
	if err != nil {
		t.Fatal(err)
	}
	_, err = LockUppers(dir, "the mount on /mnt/two")
	if !errors.Is(err, ErrUppersBusy) || !strings.Contains(err.Error(), "/mnt/one") {
		t.Fatalf("second lock: %v, want ErrUppersBusy naming /mnt/one", err)
	}
	first.Close()
	second, err := LockUppers(dir, "the mount on /mnt/two")
	if err != nil {
		t.Fatalf("lock after the first let go: %v", err)
	}
	second.Close()
}
