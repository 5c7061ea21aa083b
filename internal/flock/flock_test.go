package flock

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// TestWait: a lock held through one open file keeps another waiting until
// it is released, or until the waiter's context ends.
func TestWait(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "x.lock")
	a, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if ok, err := Try(a); !ok || err != nil {
		t.Fatalf("first lock: %v %v", ok, err)
	}
	if ok, err := Try(b); ok || err != nil {
		t.Fatalf("second lock while the first is held: %v %v", ok, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := Wait(ctx, b); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait on a held lock: %v, want the context's deadline", err)
	}
	done := make(chan error)
	go func() { done <- Wait(context.Background(), b) }()
	Unlock(a)
	if err := <-done; err != nil {
		t.Fatalf("wait after the lock was let go: %v", err)
	}
	if ok, _ := Try(a); ok {
		t.Fatalf("the lock is taken twice")
	}
}
