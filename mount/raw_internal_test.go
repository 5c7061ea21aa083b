package mount

import (
	"bytes"
	"fmt"
	"io"
	iofs "io/fs"
	"log"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
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

type memTestFile struct {
	ino  uint64
	data []byte
}

func (f memTestFile) Attr() lfs.Attr {
	return lfs.Attr{Ino: f.ino, Mode: 0o644, Size: int64(len(f.data)), Nlink: 1}
}

func (f memTestFile) ReadAt(p []byte, off int64) (int, error) {
	return bytes.NewReader(f.data).ReadAt(p, off)
}

type memTestDir struct {
	ino  uint64
	ents []lfs.Dirent
}

func (d memTestDir) Attr() lfs.Attr                 { return lfs.Attr{Ino: d.ino, Mode: iofs.ModeDir | 0o755} }
func (d memTestDir) ReadDir() ([]lfs.Dirent, error) { return d.ents, nil }
func (d memTestDir) Lookup(name string) (lfs.Node, error) {
	for _, e := range d.ents {
		if e.Name == name {
			return e.Node, nil
		}
	}
	return nil, iofs.ErrNotExist
}

// TestPrefetcher: a process reading two files of a directory in a row
// gets the rest of its small files pushed, a chunk at a time, in order,
// with their bytes; large files and files the kernel does not hold are
// left alone, and reads in different directories push nothing.
func TestPrefetcher(t *testing.T) {
	var ents []lfs.Dirent
	for i := range 100 {
		size := 10 + i
		if i == 5 {
			size = prefetchMaxFile + 1
		}
		ents = append(ents, lfs.Dirent{Name: fmt.Sprintf("f%03d", i), Node: memTestFile{uint64(1000 + i), bytes.Repeat([]byte{byte(i)}, size)}})
	}
	dir := memTestDir{10, ents}
	other := memTestDir{11, []lfs.Dirent{{Name: "g", Node: memTestFile{2000, []byte("g")}}}}
	root := memTestDir{9, []lfs.Dirent{{Name: "d", Node: dir}, {Name: "e", Node: other}}}
	s := newRawFS(root, log.New(io.Discard, "", 0))
	pushed := make(chan uint64, 200)
	s.pre = newPrefetcher(s, func(id uint64, off int64, data []byte) fuse.Status {
		if off != 0 || len(data) != 10+int(id-1000) || data[0] != byte(id-1000) {
			t.Errorf("push of %d: %d bytes at %d", id, len(data), off)
		}
		pushed <- id
		return fuse.OK
	})
	defer s.pre.stop()
	// The kernel holds the directories and every file but f099.
	dirID := s.remember(dir, 10, rootID)
	otherID := s.remember(other, 11, rootID)
	for _, e := range ents[:99] {
		s.remember(e.Node, e.Node.Attr().Ino, dirID)
	}
	s.remember(other.ents[0].Node, 2000, otherID)
	read := func(pid uint32, id uint64) {
		t.Helper()
		in := &fuse.ReadIn{InHeader: fuse.InHeader{NodeId: id, Caller: fuse.Caller{Pid: pid}}, Size: 4096}
		if _, st := s.Read(nil, in, make([]byte, 4096)); st != fuse.OK {
			t.Fatalf("read %d: %v", id, st)
		}
	}
	expect := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			if i == 5 {
				continue
			}
			select {
			case id := <-pushed:
				if id != uint64(1000+i) {
					t.Fatalf("pushed %d, want %d", id, 1000+i)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("%d not pushed", 1000+i)
			}
		}
	}
	read(1, 1000)
	read(2, 2000) // another process, another directory: no effect on 1
	read(1, 1001)
	expect(0, 65) // 64 files: f000-f064 less the large f005
	read(1, 1070)
	expect(65, 99) // the rest the kernel holds
	read(1, 2000)
	read(1, 1098)
	select {
	case id := <-pushed:
		t.Errorf("pushed %d after a read elsewhere", id)
	case <-time.After(100 * time.Millisecond):
	}
}

// TestPrefetcherAgain: a directory pushed whole and read again (the
// kernel dropped the pages) is pushed again.
func TestPrefetcherAgain(t *testing.T) {
	var ents []lfs.Dirent
	for i := range 4 {
		ents = append(ents, lfs.Dirent{Name: fmt.Sprint(i), Node: memTestFile{uint64(100 + i), []byte{byte(i)}}})
	}
	dir := memTestDir{10, ents}
	s := newRawFS(memTestDir{9, []lfs.Dirent{{Name: "d", Node: dir}}}, log.New(io.Discard, "", 0))
	pushed := make(chan uint64, 20)
	s.pre = newPrefetcher(s, func(id uint64, off int64, data []byte) fuse.Status { pushed <- id; return fuse.OK })
	defer s.pre.stop()
	dirID := s.remember(dir, 10, rootID)
	for _, e := range ents {
		s.remember(e.Node, e.Node.Attr().Ino, dirID)
	}
	for round := range 2 {
		for _, id := range []uint64{100, 101} {
			in := &fuse.ReadIn{InHeader: fuse.InHeader{NodeId: id}, Size: 4096}
			s.Read(nil, in, make([]byte, 4096))
		}
		for i := range 4 {
			select {
			case id := <-pushed:
				if id != uint64(100+i) {
					t.Fatalf("round %d: pushed %d, want %d", round, id, 100+i)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("round %d: %d not pushed", round, 100+i)
			}
		}
	}
}

// benchDir is a directory of 40 files, as in the bench image.
func benchDir() (*rawFS, uint64) {
	var ents []lfs.Dirent
	for i := range 40 {
		ents = append(ents, lfs.Dirent{Name: fmt.Sprintf("f%05d.txt", i), Node: memTestFile{uint64(1000 + i), []byte("x")}})
	}
	dir := memTestDir{10, ents}
	s := newRawFS(memTestDir{9, []lfs.Dirent{{Name: "d", Node: dir}}}, log.New(io.Discard, "", 0))
	return s, s.remember(dir, 10, rootID)
}

// BenchmarkReadDirPlus: one READDIRPLUS of a 40-file directory, every
// entry with its node, as find and cp -a see it; then the kernel forgets
// them.
func BenchmarkReadDirPlus(b *testing.B) {
	s, dirID := benchDir()
	buf := make([]byte, 32<<10)
	b.ReportAllocs()
	for b.Loop() {
		out := fuse.NewDirEntryList(buf, 0)
		if st := s.ReadDirPlus(nil, &fuse.ReadIn{InHeader: fuse.InHeader{NodeId: dirID}}, out); st != fuse.OK {
			b.Fatal(st)
		}
		for i := range 40 {
			s.Forget(uint64(1000+i), 1)
		}
	}
}

// BenchmarkLookup: one LOOKUP of a file and its FORGET.
func BenchmarkLookup(b *testing.B) {
	s, dirID := benchDir()
	var out fuse.EntryOut
	b.ReportAllocs()
	for b.Loop() {
		if st := s.Lookup(nil, &fuse.InHeader{NodeId: dirID}, "f00020.txt", &out); st != fuse.OK {
			b.Fatal(st)
		}
		s.Forget(out.NodeId, 1)
	}
}
