package mount

import (
	"sync"

	"github.com/hanwen/go-fuse/v2/fuse"
	lfs "github.com/layoutfs/layoutfs/fs"
)

// Reading a directory's small files one after another (cp -a, tar, grep
// -r, rsync) costs a READ round trip per file, and a round trip costs
// more than copying a small file does. When a process's two reads in a
// row are of different files of one directory, the prefetcher hands the
// kernel the rest of that directory's small files with NOTIFY_STORE:
// written into the page cache without a request, so the reader finds them
// there. It pushes a chunk at a time; a read of a file not pushed yet (the
// reader overtook it, or went past the chunk) pushes the next one.
//
// Pages pushed are page cache like any other (the kernel may drop them;
// a read then asks as usual), and the content under a digest never
// changes, so there is nothing to invalidate. Random reads (cat of
// scattered files) rarely read twice in a row in one directory and push
// nothing.
const (
	prefetchMaxFile  = 128 << 10 // larger files are left to readahead
	prefetchFiles    = 64        // files per chunk
	prefetchBytes    = 1 << 20   // bytes per chunk
	prefetchMaxDirs  = 256       // directories remembered
	prefetchMaxPids  = 64        // readers remembered
	prefetchQueueLen = 4
)

type prefetcher struct {
	s *rawFS
	// store hands the kernel a file's bytes: the server's
	// InodeNotifyStoreCache.
	store func(id uint64, off int64, data []byte) fuse.Status
	jobs  chan uint64 // directories to push from
	done  chan struct{}

	mu   sync.Mutex
	last map[uint32]lastRead // per reading process
	next map[uint64]int32    // per directory, the listing position to push from
}

// lastRead is the file a process read last, and its directory.
type lastRead struct{ dir, file uint64 }

func newPrefetcher(s *rawFS, store func(id uint64, off int64, data []byte) fuse.Status) *prefetcher {
	p := &prefetcher{s: s, store: store, jobs: make(chan uint64, prefetchQueueLen), done: make(chan struct{}), last: map[uint32]lastRead{}, next: map[uint64]int32{}}
	go p.run()
	return p
}

// read notes a read by process pid of small file id, found in directory
// dir, and starts a push when the process read another small file there
// just before.
func (p *prefetcher) read(pid uint32, id, dir uint64) {
	p.mu.Lock()
	last, ok := p.last[pid]
	seq := ok && last.dir == dir && last.file != id
	if !ok && len(p.last) >= prefetchMaxPids {
		clear(p.last)
	}
	p.last[pid] = lastRead{dir, id}
	p.mu.Unlock()
	if !seq {
		return
	}
	select {
	case p.jobs <- dir:
	default: // busy: the reader goes on with plain reads
	}
}

// stop ends the pushing goroutine.
func (p *prefetcher) stop() { close(p.done) }

func (p *prefetcher) run() {
	var buf []byte
	for {
		select {
		case dir := <-p.jobs:
			buf = p.push(dir, buf)
		case <-p.done:
			return
		}
	}
}

// push hands the kernel the next chunk of dir's small files that it holds
// nodes for and returns the buffer for reuse.
func (p *prefetcher) push(dir uint64, buf []byte) []byte {
	defer func() { recover() }() // a broken node costs its push, nothing more
	e, ok := p.s.node(dir)
	if !ok {
		return buf
	}
	d, ok := e.n.(lfs.Dir)
	if !ok {
		return buf
	}
	count, at, err := p.s.listing(dir, d, false)
	if err != nil {
		return buf
	}
	p.mu.Lock()
	from, seen := p.next[dir]
	if !seen && len(p.next) >= prefetchMaxDirs {
		clear(p.next)
	}
	if int(from) >= count {
		// All pushed, and still read: the kernel let the pages go.
		from = 0
	}
	p.mu.Unlock()
	i, files, bytes := int(from), 0, 0
	for ; i < count && files < prefetchFiles && bytes < prefetchBytes; i++ {
		ent := at(i)
		f, ok := ent.Node.(lfs.File)
		if !ok {
			continue
		}
		a := f.Attr()
		if a.Size <= 0 || a.Size > prefetchMaxFile || !a.Mode.IsRegular() {
			continue
		}
		id := p.s.nodeID(a.Ino)
		if id == 0 {
			continue // not known to the kernel: nothing to fill
		}
		if cap(buf) < int(a.Size) {
			buf = make([]byte, prefetchMaxFile)
		}
		n, err := f.ReadAt(buf[:a.Size], 0)
		if int64(n) != a.Size && err != nil {
			continue
		}
		if p.store(id, 0, buf[:n]) != fuse.OK {
			continue
		}
		files++
		bytes += n
	}
	p.mu.Lock()
	p.next[dir] = int32(i)
	p.mu.Unlock()
	return buf
}
