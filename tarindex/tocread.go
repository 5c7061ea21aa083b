package tarindex

import (
	"bufio"
	"container/list"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// tocReader serves the virtual space of an archive built from a table of
// contents (see toc.go): a range maps to chunks, and a chunk is read by
// decompressing its frame from the frame's start. Frames small enough are
// decompressed whole and kept in a cache shared by every such archive;
// larger ones are streamed through a few positioned cursors. ReadAt is safe
// for concurrent use.
type tocReader struct {
	t   *tocTable
	src io.ReaderAt
	// checked is, per chunk, whether its digest was checked: 0 not yet,
	// 1 it matched, 2 it did not (every later read fails too).
	checked []atomic.Uint32

	mu      sync.Mutex
	cursors []*tocCursor // streams of large frames, most recently used last
}

const (
	// tocWholeFrame is the largest frame decompressed in one piece and
	// cached: eStargz chunks are 4 MiB by default, zstd:chunked ones far
	// smaller.
	tocWholeFrame = 16 << 20
	tocMaxCursors = 4
	tocMaxWindow  = 128 << 20
)

// tocFrames bounds the decompressed frames kept for reads, across every
// archive the process has open.
var tocFrames = newFrameCache(64 << 20)

func newTOCReader(t *tocTable, src io.ReaderAt) *tocReader {
	return &tocReader{t: t, src: src, checked: make([]atomic.Uint32, len(t.Chunks))}
}

// Size is the size of the virtual space.
func (r *tocReader) Size() int64 { return r.t.Size }

// ReadAt reads the virtual space, following the io.ReaderAt contract.
func (r *tocReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("tarindex: read at negative offset %d", off)
	}
	chunks := r.t.Chunks
	i := sort.Search(len(chunks), func(i int) bool { return chunks[i].VOff+chunks[i].Size > off })
	n := 0
	for n < len(p) && i < len(chunks) {
		c := &chunks[i]
		rel := off - c.VOff
		want := min(int64(len(p)-n), c.Size-rel)
		m, err := r.readChunk(i, p[n:n+int(want)], rel)
		n += m
		off += int64(m)
		if err != nil {
			return n, err
		}
		i++
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// readChunk fills p from chunk i at rel bytes into it.
func (r *tocReader) readChunk(i int, p []byte, rel int64) (int, error) {
	c := &r.t.Chunks[i]
	f := &r.t.Frames[c.Frame]
	if f.Need <= tocWholeFrame {
		data, err := tocFrames.get(r, c.Frame)
		if err != nil {
			return 0, err
		}
		chunk := data[c.Inner : c.Inner+c.Size]
		if err := r.check(i, func(h hash.Hash) error { h.Write(chunk); return nil }); err != nil {
			return 0, err
		}
		return copy(p, chunk[rel:]), nil
	}
	// A large frame: its chunk is checked by a pass of its own before
	// any of it is served.
	err := r.check(i, func(h hash.Hash) error {
		rd, release, err := r.open(c.Frame)
		if err != nil {
			return err
		}
		defer release()
		if err := r.skip(rd, c.Frame, c.Inner); err != nil {
			return err
		}
		if k, err := io.CopyN(h, rd, c.Size); err != nil {
			return r.short(c.Frame, c.Inner+k, err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return r.cursor(c.Frame).readAt(r, p, c.Inner+rel)
}

// check verifies chunk i against its digest once, feeding the hash with
// fill.
func (r *tocReader) check(i int, fill func(hash.Hash) error) error {
	c := &r.t.Chunks[i]
	if !c.HasDigest {
		return nil
	}
	switch r.checked[i].Load() {
	case 1:
		return nil
	case 2:
		return r.mismatch(c)
	}
	h := sha256.New()
	if err := fill(h); err != nil {
		return err
	}
	if [sha256.Size]byte(h.Sum(nil)) != c.Digest {
		r.checked[i].Store(2)
		return r.mismatch(c)
	}
	r.checked[i].Store(1)
	return nil
}

func (r *tocReader) mismatch(c *tocChunk) error {
	return fmt.Errorf("%w: %d bytes at %d of the frame at %d", ErrTOCMismatch, c.Size, c.Inner, r.t.Frames[c.Frame].Off)
}

// short reports a frame that ended, or failed, before the bytes its chunks
// need.
func (r *tocReader) short(fi int32, at int64, err error) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("%w: frame at %d, at %d of its %d bytes: %w", ErrTOCMismatch, r.t.Frames[fi].Off, at, r.t.Frames[fi].Need, err)
}

func (r *tocReader) skip(rd io.Reader, fi int32, n int64) error {
	if k, err := io.CopyN(io.Discard, rd, n); err != nil {
		return r.short(fi, k, err)
	}
	return nil
}

var (
	gzipReaders sync.Pool // *gzip.Reader
	zstdReaders sync.Pool // *zstd.Decoder, synchronous
)

// open returns a reader of frame fi's uncompressed bytes from its start,
// and a release to call when done with it.
func (r *tocReader) open(fi int32) (io.Reader, func(), error) {
	f := &r.t.Frames[fi]
	in := io.NewSectionReader(r.src, f.Off, f.End-f.Off)
	if r.t.Comp == EStargz {
		in := bufio.NewReaderSize(in, int(min(f.End-f.Off, 32<<10)))
		zr, _ := gzipReaders.Get().(*gzip.Reader)
		var err error
		if zr == nil {
			zr, err = gzip.NewReader(in)
		} else {
			err = zr.Reset(in)
		}
		if err != nil {
			return nil, nil, r.short(fi, 0, err)
		}
		zr.Multistream(false) // a chunk never runs into the next member
		return zr, func() { gzipReaders.Put(zr) }, nil
	}
	zr, _ := zstdReaders.Get().(*zstd.Decoder)
	var err error
	if zr == nil {
		// One goroutine-free decoder per stream; the window bound keeps a
		// hostile frame header from reserving gigabytes.
		zr, err = zstd.NewReader(in, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(tocMaxWindow))
	} else {
		err = zr.Reset(in)
	}
	if err != nil {
		return nil, nil, r.short(fi, 0, err)
	}
	return zr, func() { zstdReaders.Put(zr) }, nil
}

// decodeWhole decompresses the bytes frame fi's chunks need.
func (r *tocReader) decodeWhole(fi int32) ([]byte, error) {
	rd, release, err := r.open(fi)
	if err != nil {
		return nil, err
	}
	defer release()
	data := make([]byte, r.t.Frames[fi].Need)
	if n, err := io.ReadFull(rd, data); err != nil {
		return nil, r.short(fi, int64(n), err)
	}
	return data, nil
}

// cursor returns the stream cursor of frame fi, making one (and dropping
// the least recently used) if needed.
func (r *tocReader) cursor(fi int32) *tocCursor {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, c := range r.cursors {
		if c.frame == fi {
			copy(r.cursors[k:], r.cursors[k+1:])
			r.cursors[len(r.cursors)-1] = c
			return c
		}
	}
	if len(r.cursors) >= tocMaxCursors {
		r.cursors = append(r.cursors[:0], r.cursors[1:]...)
	}
	c := &tocCursor{frame: fi}
	r.cursors = append(r.cursors, c)
	return c
}

// tocCursor is a decompressor of one large frame, positioned pos bytes in,
// so that reading a large chunk front to back is one pass.
type tocCursor struct {
	mu      sync.Mutex
	frame   int32
	rd      io.Reader
	release func()
	pos     int64
}

func (c *tocCursor) readAt(r *tocReader, p []byte, at int64) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rd == nil || at < c.pos {
		c.close()
		rd, release, err := r.open(c.frame)
		if err != nil {
			return 0, err
		}
		c.rd, c.release, c.pos = rd, release, 0
	}
	if at > c.pos {
		if err := r.skip(c.rd, c.frame, at-c.pos); err != nil {
			c.close()
			return 0, err
		}
		c.pos = at
	}
	n, err := io.ReadFull(c.rd, p)
	c.pos += int64(n)
	if err != nil {
		c.close()
		return n, r.short(c.frame, at+int64(n), err)
	}
	return n, nil
}

func (c *tocCursor) close() {
	if c.release != nil {
		c.release()
	}
	c.rd, c.release = nil, nil
}

// frameCache keeps decompressed frames, least recently used out first,
// within a budget of bytes. A frame being decompressed has its entry
// already, so concurrent readers of it wait for one decompression.
type frameCache struct {
	mu     sync.Mutex
	budget int64
	used   int64
	lru    list.List // of *frameEntry, most recently used at the front
	byKey  map[frameKey]*list.Element
}

type frameKey struct {
	r *tocReader
	f int32
}

type frameEntry struct {
	key  frameKey
	cost int64
	once sync.Once
	data []byte
	err  error
}

func newFrameCache(budget int64) *frameCache {
	return &frameCache{budget: budget, byKey: map[frameKey]*list.Element{}}
}

func (c *frameCache) get(r *tocReader, fi int32) ([]byte, error) {
	key := frameKey{r, fi}
	c.mu.Lock()
	var e *frameEntry
	if el, ok := c.byKey[key]; ok {
		c.lru.MoveToFront(el)
		e = el.Value.(*frameEntry)
	} else {
		e = &frameEntry{key: key, cost: r.t.Frames[fi].Need}
		c.byKey[key] = c.lru.PushFront(e)
		c.used += e.cost
		for c.used > c.budget && c.lru.Len() > 1 {
			c.remove(c.lru.Back())
		}
	}
	c.mu.Unlock()
	e.once.Do(func() { e.data, e.err = r.decodeWhole(fi) })
	if e.err != nil {
		// Not kept: the next read tries again.
		c.mu.Lock()
		if el, ok := c.byKey[key]; ok && el.Value == e {
			c.remove(el)
		}
		c.mu.Unlock()
		return nil, e.err
	}
	return e.data, nil
}

// remove drops an entry; a read still holding its bytes finishes with them.
func (c *frameCache) remove(el *list.Element) {
	e := c.lru.Remove(el).(*frameEntry)
	delete(c.byKey, e.key)
	c.used -= e.cost
}
