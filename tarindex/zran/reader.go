package zran

import (
	"fmt"
	"io"
	"math"
	"sync"
	"sync/atomic"
)

// ReaderOptions tunes NewReader.
type ReaderOptions struct {
	// Cache, if set, holds the decoded spans of this reader together with
	// those of the other readers sharing it.
	Cache *Cache
	// CacheSpans sizes the reader's own cache when Cache is nil: it keeps
	// this many spans of the index; zero means 4.
	CacheSpans int
}

// Reader serves uncompressed bytes of an indexed gzip stream. ReadAt is
// safe for concurrent use; reads of different spans decode in parallel.
type Reader struct {
	ix    *Index
	src   io.ReaderAt
	err   error // set when the index is unusable
	cache *Cache
}

// NewReader returns a Reader over the compressed stream src described by ix.
// The reader does not modify ix, which must not change while in use.
func NewReader(ix *Index, src io.ReaderAt, o ReaderOptions) *Reader {
	r := &Reader{ix: ix, src: src, err: ix.validate(), cache: o.Cache}
	if r.cache == nil {
		n := o.CacheSpans
		if n <= 0 {
			n = 4
		}
		var largest int64
		if r.err == nil {
			for i := range ix.Checkpoints {
				largest = max(largest, r.spanCost(i))
			}
		}
		r.cache = NewCache(int64(n) * largest)
	}
	return r
}

// Close drops the reader's spans from its cache. The reader stays usable.
func (r *Reader) Close() error {
	r.cache.forget(r)
	return nil
}

// spanCost is the memory a cursor over span i uses.
func (r *Reader) spanCost(i int) int64 {
	return int64(bufCap(r.spanBufSize(i))) + readerIn
}

// spanBufSize is the length of the buffer of a cursor over span i.
func (r *Reader) spanBufSize(i int) int {
	c := &r.ix.Checkpoints[i]
	return int(min(int64(c.windowLen())+r.ix.spanEnd(i)-c.Out, maxSpanBuf) + outSlack)
}

// ReaderAt returns a Reader with default options over the compressed stream
// src described by ix.
func (ix *Index) ReaderAt(src io.ReaderAt) *Reader {
	return NewReader(ix, src, ReaderOptions{})
}

// Size returns the uncompressed size of the stream.
func (r *Reader) Size() int64 { return r.ix.Size }

// ReadAt reads len(p) uncompressed bytes at offset off, following the
// io.ReaderAt contract: it returns io.EOF when the stream ends before p is
// full.
func (r *Reader) ReadAt(p []byte, off int64) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if off < 0 {
		return 0, fmt.Errorf("%w: %d", ErrOffset, off)
	}
	n := 0
	for n < len(p) && off < r.ix.Size {
		c := r.cache.cursor(r, r.ix.checkpointAt(off))
		m, err := c.readAt(r, p[n:], off)
		n += m
		off += int64(m)
		if err != nil {
			return n, err
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Cursor buffer geometry: reads decode a little past what they need so that
// sequential reads do not resume the inflater for every small request, and
// spans longer than maxSpanBuf are decoded through a sliding buffer.
const (
	readAhead = 64 << 10
	readerIn  = 64 << 10
)

// maxSpanBuf is a variable so tests can exercise the sliding buffer.
var maxSpanBuf int64 = 16 << 20

var inflaterPool = sync.Pool{New: func() any { return newInflater(readerIn) }}

// Span buffers are recycled because a fresh multi-megabyte buffer costs a
// page fault per 4 KiB on first touch, which dominates short reads. Sizes
// are rounded up so that buffers of similar spans are interchangeable.
var bufPool sync.Pool // of *[]byte

const bufRound = 256 << 10

func getBuf(size int) []byte {
	if p, ok := bufPool.Get().(*[]byte); ok && cap(*p) >= size {
		return (*p)[:size]
	}
	return make([]byte, size, bufCap(size))
}

func bufCap(size int) int { return (size + bufRound - 1) / bufRound * bufRound }

func putBuf(b []byte) {
	if cap(b) > 0 {
		bufPool.Put(&b)
	}
}

// spanCursor is an inflater positioned inside the span of one checkpoint,
// with the output decoded so far: buf[:d.o] holds the uncompressed bytes
// starting at offset bufOut.
type spanCursor struct {
	mu     sync.Mutex
	cp     int
	end    int64 // uncompressed offset where the span ends
	buf    []byte
	bufOut int64
	o      int       // valid bytes in buf
	d      *inflater // nil before the first read and once the span is done
	done   bool

	evicted atomic.Bool // dropped from the cache: recycle buffers when idle
}

func (c *spanCursor) readAt(r *Reader, p []byte, off int64) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	defer func() {
		if c.evicted.Load() {
			c.recycle()
		}
	}()
	if c.buf == nil || off < c.bufOut {
		if err := c.restart(r); err != nil {
			c.abandon()
			return 0, err
		}
	}
	n := 0
	for n < len(p) && off < c.end {
		if avail := c.bufOut + int64(c.o); off < avail {
			m := copy(p[n:], c.buf[off-c.bufOut:c.o])
			n += m
			off += int64(m)
			continue
		}
		want := min(off+int64(len(p)-n)+readAhead, c.end)
		if err := c.decode(want); err != nil {
			// Start over on the next read: the error may be transient.
			c.abandon()
			return n, err
		}
	}
	return n, nil
}

// restart positions the cursor at its checkpoint.
func (c *spanCursor) restart(r *Reader) error {
	ix := r.ix
	cp := &ix.Checkpoints[c.cp]
	c.end = ix.spanEnd(c.cp)
	size := r.spanBufSize(c.cp)
	if cap(c.buf) < size {
		putBuf(c.buf)
		c.buf = getBuf(size)
	}
	c.buf = c.buf[:size]
	o, err := ix.window(c.cp, c.buf)
	if err != nil {
		return err
	}
	c.o = o
	c.bufOut = cp.Out - int64(c.o)
	c.done = false

	if c.d == nil {
		c.d = inflaterPool.Get().(*inflater)
	}
	d := c.d
	start := cp.In
	if cp.Bits > 0 {
		start--
	}
	end := ix.CompressedSize
	if end == 0 {
		end = math.MaxInt64
	}
	d.reset(io.NewSectionReader(r.src, start, end-start), start)
	d.out, d.o, d.histLo = c.buf, c.o, 0
	if cp.Bits > 0 {
		b, err := d.readByte()
		if err != nil {
			return err
		}
		d.bits, d.nbits = uint64(b>>(8-cp.Bits)), uint(cp.Bits)
	}
	return nil
}

// decode inflates until the cursor holds the bytes before offset want.
func (c *spanCursor) decode(want int64) error {
	if c.done {
		return fmt.Errorf("%w: stream ends before uncompressed offset %d", ErrIndex, want)
	}
	d := c.d
	room := len(c.buf) - outSlack
	if want-c.bufOut > int64(room) && d.o > windowSize {
		c.slide()
	}
	limit := int(min(want-c.bufOut, int64(room)))
	for d.o < limit {
		ev, err := d.run(limit)
		if err != nil {
			return err
		}
		if ev != evStreamEnd {
			continue
		}
		if _, _, _, err := d.memberEnd(); err != nil {
			return err
		}
		more, err := d.nextMember()
		if err != nil {
			return err
		}
		if !more {
			c.finish() // d belongs to the pool from here on
			return nil
		}
	}
	c.o = d.o
	if c.bufOut+int64(c.o) >= c.end {
		c.finish()
	}
	return nil
}

// slide drops decoded bytes, keeping the last window as history.
func (c *spanCursor) slide() {
	d := c.d
	drop := d.o - windowSize
	copy(c.buf, c.buf[drop:d.o])
	d.o -= drop
	d.histLo = max(d.histLo-drop, 0)
	c.o = d.o
	c.bufOut += int64(drop)
}

// evict is called when the cache drops the cursor. If no read is using it,
// its memory is recycled now, else when that read ends.
func (c *spanCursor) evict() {
	c.evicted.Store(true)
	if c.mu.TryLock() {
		c.recycle()
		c.mu.Unlock()
	}
}

// recycle returns the cursor's buffers to their pools.
func (c *spanCursor) recycle() {
	c.finish()
	putBuf(c.buf)
	c.buf, c.o, c.done = nil, 0, false
}

// abandon drops the cursor's state after an error.
func (c *spanCursor) abandon() {
	c.finish()
	c.buf, c.o, c.done = nil, 0, false
}

// finish returns the inflater to the pool once the span is fully decoded.
func (c *spanCursor) finish() {
	if c.d == nil {
		return
	}
	c.o = c.d.o
	c.d.out, c.d.src = nil, nil
	inflaterPool.Put(c.d)
	c.d = nil
	c.done = true
}
