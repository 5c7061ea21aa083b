package tarindex

import (
	"fmt"
	"io"
	"sync"
)

// onePassChunk is how much of the archive onePass reads at a time: large
// enough that the syscalls vanish beside the hashing, small enough to stay
// in the CPU's caches between the read and the hash. A variable so the
// fuzzer can put chunk boundaries inside small inputs.
var onePassChunk = 1 << 20

// onePassRing is how many chunks may be read ahead of the hash.
const onePassRing = 4

// chunkPool recycles full-size chunk buffers (*[]byte) across passes: a
// cold mount indexes every layer at once.
var chunkPool sync.Pool

// onePass serves Build from a stream that must be consumed whole and in
// order to check its digest (an uncompressed layer). It reads the stream in
// large chunks and hands each to a hashing goroutine, and a Seek over entry
// data moves within the chunks rather than copying the skipped bytes out:
// so one pass indexes the archive while a second core hashes it, in place
// of a header pass (a pread per entry) and a hashing pass after it.
type onePass struct {
	src  io.Reader // the stream, front to back
	size int64     // its length: a shorter stream is an error, not an end

	ring    [onePassRing][]byte
	chunks  int           // chunks read so far
	toHash  chan []byte   // to the hasher, in stream order
	hashed  chan struct{} // from the hasher: one more chunk hashed
	done    chan struct{} // closed when the hasher has stopped
	stopped bool

	cur   []byte // the current chunk
	start int64  // stream offset of cur[0]
	pos   int64  // where Build reads next
	err   error  // what ended the stream, once it has ended
}

// newOnePass starts hashing the size bytes of src into h as they are read.
// The caller must call stop once done with it.
func newOnePass(src io.Reader, size int64, h io.Writer) *onePass {
	c := &onePass{
		src:    src,
		size:   size,
		toHash: make(chan []byte, onePassRing),
		hashed: make(chan struct{}, onePassRing),
		done:   make(chan struct{}),
	}
	go func() {
		defer close(c.done)
		for b := range c.toHash {
			h.Write(b)
			c.hashed <- struct{}{}
		}
	}()
	return c
}

// next makes the stream's following chunk the current one.
func (c *onePass) next() error {
	if c.err != nil {
		return c.err
	}
	start := c.start + int64(len(c.cur))
	if start >= c.size {
		c.err = io.EOF
		return c.err
	}
	slot := c.chunks % onePassRing
	if c.chunks >= onePassRing {
		<-c.hashed // the chunk that last used this slot is hashed
	} else if c.size < int64(onePassChunk) {
		c.ring[slot] = make([]byte, c.size) // the whole of a small layer
	} else {
		c.ring[slot] = getChunk()
	}
	buf := c.ring[slot][:min(int64(len(c.ring[slot])), c.size-start)]
	if _, err := io.ReadFull(c.src, buf); err != nil {
		// The stream holds fewer bytes than its size says: a truncated
		// file, not the end of the archive.
		c.err = fmt.Errorf("read archive at offset %d: %w", start, noEOF(err))
		return c.err
	}
	c.start, c.cur = start, buf
	c.chunks++
	c.toHash <- buf
	return nil
}

// getChunk returns a buffer of onePassChunk bytes.
func getChunk() []byte {
	if b, ok := chunkPool.Get().(*[]byte); ok && len(*b) == onePassChunk {
		return *b
	}
	return make([]byte, onePassChunk)
}

// noEOF is err, with a clean end of stream made an unexpected one.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func (c *onePass) Read(p []byte) (int, error) {
	for c.pos >= c.start+int64(len(c.cur)) {
		if err := c.next(); err != nil {
			return 0, err
		}
	}
	k := copy(p, c.cur[c.pos-c.start:])
	c.pos += int64(k)
	return k, nil
}

// Seek moves forward anywhere, and back only within the current chunk:
// Build only ever skips ahead.
func (c *onePass) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += c.pos
	default:
		return c.pos, fmt.Errorf("tarindex: one-pass read: seek whence %d", whence)
	}
	if off < c.start {
		return c.pos, fmt.Errorf("tarindex: one-pass read: seek back to %d before %d", off, c.start)
	}
	c.pos = off
	return off, nil
}

// finish reads and hashes the rest of the stream (what follows the
// end-of-archive blocks, or all of it when Build was not needed) and waits
// for the hash to catch up.
func (c *onePass) finish() error {
	for c.next() == nil {
	}
	c.stop()
	if c.err == io.EOF {
		return nil
	}
	return c.err
}

// stop ends the hashing goroutine, whatever was read, and gives the
// buffers back. Calling it again does nothing.
func (c *onePass) stop() {
	if c.stopped {
		return
	}
	c.stopped = true
	close(c.toHash)
	<-c.done
	for i, b := range c.ring {
		if cap(b) == onePassChunk {
			b = b[:onePassChunk]
			chunkPool.Put(&b)
		}
		c.ring[i] = nil
	}
	c.cur = nil
}
