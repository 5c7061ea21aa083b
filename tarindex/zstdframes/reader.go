package zstdframes

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/zstd"
)

// ReaderOptions tunes NewReader.
type ReaderOptions struct {
	// CacheFrames is how many frames the reader keeps decoded (or, for
	// streamed frames, positioned) for later reads; zero means 4.
	CacheFrames int
	// MaxWholeFrame is the largest frame decoded in one piece and kept in
	// memory; larger frames are decoded as streams. Zero means 8 MiB.
	MaxWholeFrame int64
}

// Reader serves uncompressed bytes of an indexed zstd stream. ReadAt is
// safe for concurrent use. Close releases its decoders.
type Reader struct {
	ix    *Index
	src   io.ReaderAt
	err   error
	whole int64
	dec   *zstd.Decoder // for whole frames; DecodeAll is concurrency-safe

	mu     sync.Mutex
	lru    []*frameCursor // most recently used last
	max    int
	closed bool
}

// NewReader returns a Reader over the zstd stream src described by ix.
func NewReader(ix *Index, src io.ReaderAt, o ReaderOptions) *Reader {
	r := &Reader{ix: ix, src: src, max: o.CacheFrames, whole: o.MaxWholeFrame}
	if r.max <= 0 {
		r.max = 4
	}
	if r.whole <= 0 {
		r.whole = 8 << 20
	}
	r.err = ix.validate()
	if r.err == nil {
		// The memory bound is also the largest window the decoder
		// accepts, and writers declare windows far larger than their
		// frames (skopeo's zstd:chunked headers: 32 MiB); what a whole
		// frame decodes to is bounded by the index's frame size, checked
		// before a frame is decoded whole.
		r.dec, r.err = zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(2),
			zstd.WithDecoderMaxWindow(maxWindow),
			zstd.WithDecoderMaxMemory(uint64(max(r.whole, maxWindow))))
	}
	return r
}

// ReaderAt returns a Reader with default options.
func (ix *Index) ReaderAt(src io.ReaderAt) *Reader {
	return NewReader(ix, src, ReaderOptions{})
}

// Size returns the decompressed size of the stream.
func (r *Reader) Size() int64 { return r.ix.Size }

// ReadAt reads len(p) decompressed bytes at offset off, following the
// io.ReaderAt contract.
func (r *Reader) ReadAt(p []byte, off int64) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if off < 0 {
		return 0, fmt.Errorf("%w: %d", ErrOffset, off)
	}
	n := 0
	for n < len(p) && off < r.ix.Size {
		c, err := r.cursor(r.ix.frameAt(off))
		if err != nil {
			return n, err
		}
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

var errClosed = errors.New("zstdframes: reader closed")

// Close releases the decoders. Reads after Close fail.
func (r *Reader) Close() error {
	r.mu.Lock()
	lru := r.lru
	r.lru, r.closed = nil, true
	r.mu.Unlock()
	for _, c := range lru {
		c.evict()
	}
	if r.dec != nil {
		r.dec.Close()
	}
	return nil
}

// cursor returns the cached cursor of frame i, creating it and evicting the
// least recently used one if needed.
func (r *Reader) cursor(i int) (*frameCursor, error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, errClosed
	}
	for k, c := range r.lru {
		if c.frame == i {
			copy(r.lru[k:], r.lru[k+1:])
			r.lru[len(r.lru)-1] = c
			r.mu.Unlock()
			return c, nil
		}
	}
	var old *frameCursor
	if len(r.lru) >= r.max {
		old = r.lru[0]
		r.lru = append(r.lru[:0], r.lru[1:]...)
	}
	c := &frameCursor{frame: i}
	r.lru = append(r.lru, c)
	r.mu.Unlock()
	if old != nil {
		old.evict()
	}
	return c, nil
}

// frameCursor holds one frame decoded whole (data), or a stream decoder
// positioned pos bytes into the frame with the bytes just before pos.
type frameCursor struct {
	mu      sync.Mutex
	frame   int
	data    []byte
	dec     *zstd.Decoder
	pos     int64  // bytes of the frame decoded from dec
	tail    []byte // the last decoded bytes, ending at pos
	evicted atomic.Bool
}

// evict is called when the cache drops the cursor. If no read is using it,
// its memory and decoder are released now, else when that read ends.
func (c *frameCursor) evict() {
	c.evicted.Store(true)
	if c.mu.TryLock() {
		c.release()
		c.mu.Unlock()
	}
}

func (c *frameCursor) release() {
	c.data, c.tail = nil, nil
	c.closeStream()
}

func (c *frameCursor) closeStream() {
	if c.dec != nil {
		c.dec.Close()
		c.dec = nil
	}
}

func (c *frameCursor) readAt(r *Reader, p []byte, off int64) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	defer func() {
		if c.evicted.Load() {
			c.release()
		}
	}()
	f := &r.ix.Frames[c.frame]
	rel := off - f.Out
	want := min(int64(len(p)), f.Size-rel)
	if rel < 0 || want <= 0 {
		return 0, fmt.Errorf("%w: offset %d not in frame %d", ErrIndex, off, c.frame)
	}
	p = p[:want]
	// The compressed size is checked too: it comes from the index, and a
	// frame that is much larger compressed than decompressed is not one a
	// compressor makes, so it is not trusted with a single allocation.
	if f.Size <= r.whole && f.CompressedSize <= r.whole+maxBlockSize {
		if c.data == nil {
			data, err := c.decodeWhole(r, f)
			if err != nil {
				return 0, err
			}
			c.data = data
		}
		return copy(p, c.data[rel:]), nil
	}
	n, err := c.readStream(r, f, p, rel)
	if err != nil {
		// The stream position is unknown after an error: start afresh.
		c.closeStream()
	}
	return n, err
}

func (c *frameCursor) decodeWhole(r *Reader, f *Frame) ([]byte, error) {
	comp := make([]byte, f.CompressedSize)
	if err := readFull(r.src, comp, f.Offset, r.ix.CompressedSize); err != nil {
		return nil, err
	}
	data, err := r.dec.DecodeAll(comp, make([]byte, 0, f.Size))
	if err != nil {
		return nil, fmt.Errorf("%w: frame at %d: %v", ErrFormat, f.Offset, err)
	}
	if int64(len(data)) != f.Size {
		return nil, fmt.Errorf("%w: frame at %d decodes to %d bytes, index says %d", ErrIndex, f.Offset, len(data), f.Size)
	}
	return data, nil
}

// Streamed frames keep the last decoded bytes, so that reads arriving
// slightly out of order (as kernel readahead issues them) are served
// without decoding the frame again from its start.
const (
	tailKeep  = 1 << 20
	readChunk = 128 << 10
)

// readStream reads p at offset rel of a frame too big to keep decoded.
// c.tail holds the decoded bytes just before c.pos.
func (c *frameCursor) readStream(r *Reader, f *Frame, p []byte, rel int64) (int, error) {
	n := 0
	for n < len(p) {
		at := rel + int64(n)
		tailStart := c.pos - int64(len(c.tail))
		if c.dec == nil || at < tailStart {
			if err := c.restartStream(r, f); err != nil {
				return n, err
			}
			continue
		}
		if at < c.pos {
			n += copy(p[n:], c.tail[at-tailStart:])
			continue
		}
		if err := c.decodeMore(f); err != nil {
			return n, err
		}
	}
	return n, nil
}

func (c *frameCursor) restartStream(r *Reader, f *Frame) error {
	c.closeStream()
	dec, err := newStreamDecoder()
	if err != nil {
		return err
	}
	if err := dec.Reset(io.NewSectionReader(r.src, f.Offset, f.CompressedSize)); err != nil {
		dec.Close()
		return fmt.Errorf("%w: frame at %d: %v", ErrFormat, f.Offset, err)
	}
	c.dec, c.pos = dec, 0
	if c.tail == nil {
		c.tail = make([]byte, 0, 2*tailKeep)
	}
	c.tail = c.tail[:0]
	return nil
}

// decodeMore appends the next chunk of the frame to the tail.
func (c *frameCursor) decodeMore(f *Frame) error {
	if len(c.tail)+readChunk > cap(c.tail) {
		keep := min(len(c.tail), tailKeep)
		c.tail = c.tail[:copy(c.tail, c.tail[len(c.tail)-keep:])]
	}
	k := int(min(int64(cap(c.tail)-len(c.tail)), readChunk, f.Size-c.pos))
	if k <= 0 {
		return fmt.Errorf("%w: read past the end of frame at %d", ErrIndex, f.Offset)
	}
	m, err := io.ReadFull(c.dec, c.tail[len(c.tail):len(c.tail)+k])
	c.tail = c.tail[:len(c.tail)+m]
	c.pos += int64(m)
	if err != nil {
		return c.streamErr(f, err)
	}
	return nil
}

func (c *frameCursor) streamErr(f *Frame, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: frame at %d ends after %d of %d bytes", ErrIndex, f.Offset, c.pos, f.Size)
	}
	return fmt.Errorf("%w: frame at %d: %v", ErrFormat, f.Offset, err)
}
