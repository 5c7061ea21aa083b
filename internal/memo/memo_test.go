package memo

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

func TestGetComputesOncePerKey(t *testing.T) {
	var m Map[string, int]
	var calls atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := m.Get("k", func() (int, error) { calls.Add(1); return 42, nil })
			if v != 42 || err != nil {
				t.Errorf("Get = %d, %v", v, err)
			}
		}()
	}
	wg.Wait()
	if calls.Load() != 1 {
		t.Fatalf("computed %d times, want once", calls.Load())
	}
	boom := errors.New("boom")
	m.Get("bad", func() (int, error) { return 0, boom })
	if _, err := m.Get("bad", func() (int, error) { return 1, nil }); err != boom {
		t.Fatalf("a failed key was computed again: %v", err)
	}
}

func TestPeek(t *testing.T) {
	var m Map[string, int]
	if _, _, ok := m.Peek("k"); ok {
		t.Fatal("Peek of an empty map found something")
	}
	started, release := make(chan struct{}), make(chan struct{})
	go m.Get("k", func() (int, error) { close(started); <-release; return 7, nil })
	<-started
	if _, _, ok := m.Peek("k"); ok {
		t.Error("Peek found a value still being computed")
	}
	close(release)
	if v, err := m.Get("k", nil); v != 7 || err != nil {
		t.Fatalf("Get = %d, %v", v, err)
	}
	if v, err, ok := m.Peek("k"); !ok || v != 7 || err != nil {
		t.Errorf("Peek = %d, %v, %v", v, err, ok)
	}
}

// TestGetPanic: a computation that panics gives every caller ErrPanic, on
// whatever goroutine it ran, and the process lives on.
func TestGetPanic(t *testing.T) {
	var m Map[string, *int]
	done := make(chan error)
	go func() {
		_, err := m.Get("k", func() (*int, error) { var p *int; return p, errors.New(string(rune(*p))) })
		done <- err
	}()
	if err := <-done; !errors.Is(err, ErrPanic) {
		t.Fatalf("first caller: %v, want ErrPanic", err)
	}
	if v, err := m.Get("k", func() (*int, error) { t.Fatal("computed twice"); return nil, nil }); v != nil || !errors.Is(err, ErrPanic) {
		t.Fatalf("later caller: %v, %v", v, err)
	}
}
