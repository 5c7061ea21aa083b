package mount

import (
	"io"
	iofs "io/fs"
	"log"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/hanwen/go-fuse/v2/splice"
	lfs "github.com/layoutfs/layoutfs/fs"
)

type numbered struct{ ino uint64 }

func (n numbered) Attr() lfs.Attr { return lfs.Attr{Ino: n.ino, Mode: 0o644} }

// TestRawTable: node IDs are inode numbers where they can be, the kernel's
// lookup count keeps a node, and FORGET drops it only at zero.
func TestRawTable(t *testing.T) {
	s := newRawFS(memRoot{}, log.New(io.Discard, "", 0))
	a := numbered{42}
	if id := s.remember(a, 42, rootID); id != 42 {
		t.Fatalf("node ID %d for inode 42", id)
	}
	s.remember(a, 42, rootID)
	s.Forget(42, 1)
	if _, ok := s.node(42); !ok {
		t.Fatal("forgotten with a lookup left")
	}
	s.Forget(42, 1)
	if _, ok := s.node(42); ok {
		t.Fatal("kept after its last FORGET")
	}
	// Numbers that cannot be node IDs get aliases, stable while held.
	for _, ino := range []uint64{0, 1, 1 << 63, ^uint64(0)} {
		id := s.remember(numbered{ino}, ino, rootID)
		if id < aliasBase || id == ^uint64(0) {
			t.Errorf("inode %d: node ID %d", ino, id)
		}
		if ino != 0 {
			if again := s.remember(numbered{ino}, ino, rootID); again != id {
				t.Errorf("inode %d: node IDs %d and %d", ino, id, again)
			}
			s.Forget(id, 1)
		}
		s.Forget(id, 1)
		if _, ok := s.node(id); ok {
			t.Errorf("inode %d: kept after FORGET", ino)
		}
	}
	if len(s.alias) != 0 || len(s.nodes.pages) != 1 {
		t.Errorf("left behind: %d aliases, %d pages", len(s.alias), len(s.nodes.pages))
	}
	s.Forget(rootID, 1<<62)
	if _, ok := s.node(rootID); !ok {
		t.Error("the root was forgotten")
	}
	_ = iofs.ModeDir
}

// TestMaxRequest: a full request's reply, header and a spare page fit in
// the largest pipe, so go-fuse splices it instead of copying it twice.
func TestMaxRequest(t *testing.T) {
	n := maxRequest()
	page := os.Getpagesize()
	if n%page != 0 || n < 128<<10 || n > 1<<20 {
		t.Errorf("maxRequest() = %d", n)
	}
	if p := splice.MaxPipeSize(); p >= 256<<10 && n+16+page > p {
		t.Errorf("maxRequest() = %d: its reply does not fit a %d-byte pipe", n, p)
	}
}

// TestNodeTable checks the paged table against a map.
func TestNodeTable(t *testing.T) {
	var tab nodeTable
	model := map[uint64]uint64{}
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		id := uint64(r.IntN(5000))
		if r.IntN(3) == 0 {
			id += 1 << 40 // a second, sparse region
		}
		if r.IntN(2) == 0 {
			e := tab.add(id)
			if e.n == nil {
				*e = rawNode{n: numbered{id}}
			}
			e.lookups++
			model[id]++
		} else if e := tab.get(id); e != nil {
			if model[id] != e.lookups {
				t.Fatalf("%d: %d lookups, want %d", id, e.lookups, model[id])
			}
			tab.remove(id)
			delete(model, id)
		} else if model[id] != 0 {
			t.Fatalf("%d missing", id)
		}
	}
	for id := range model {
		tab.remove(id)
	}
	if len(tab.pages) != 0 {
		t.Errorf("%d pages left", len(tab.pages))
	}
}
