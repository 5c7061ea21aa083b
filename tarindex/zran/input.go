package zran

import (
	"errors"
	"fmt"
	"io"
)

// The inflater reads its input through its own buffer so that the hot loop
// can load eight bytes at a time and so that bytes already moved into the bit
// buffer can be given back when the deflate stream ends mid-word.

// keepBehind is how many consumed bytes fill keeps in front of inPos: the bit
// buffer holds at most eight bytes that toBytes may need to give back.
const keepBehind = 8

// fill moves the unread input to the front of the buffer and reads more. It
// returns false when no byte could be added, with d.srcErr set.
func (d *inflater) fill() bool {
	if d.srcErr != nil {
		return false
	}
	if drop := d.inPos - keepBehind; drop > 0 {
		copy(d.in, d.in[drop:d.inEnd])
		d.inBase += int64(drop)
		d.inPos -= drop
		d.inEnd -= drop
	}
	for tries := 0; tries < 100; tries++ {
		n, err := d.src.Read(d.in[d.inEnd:])
		d.inEnd += n
		if err != nil {
			d.srcErr = err
		}
		if n > 0 {
			return true
		}
		if err != nil {
			return false
		}
	}
	d.srcErr = io.ErrNoProgress
	return false
}

// inputErr turns the sticky source error into the error to report when
// more input was needed.
func (d *inflater) inputErr() error {
	if d.srcErr == nil || errors.Is(d.srcErr, io.EOF) {
		return fmt.Errorf("%w at compressed offset %d", ErrTruncated, d.inBase+int64(d.inEnd))
	}
	return fmt.Errorf("zran: reading compressed input at %d: %w", d.inBase+int64(d.inEnd), d.srcErr)
}

// refillSlow tops the bit buffer up to at least 57 bits one byte at a time.
// Past the end of the input it appends zero bits and counts them in
// d.phantom: consuming any of them means the input was truncated, which
// checkPhantom detects.
func (d *inflater) refillSlow() error {
	if err := d.checkPhantom(); err != nil {
		return err
	}
	for d.nbits <= 56 {
		if d.inPos < d.inEnd {
			d.bits |= uint64(d.in[d.inPos]) << (d.nbits & 63)
			d.inPos++
			d.nbits += 8
			continue
		}
		if d.fill() {
			continue
		}
		if !errors.Is(d.srcErr, io.EOF) {
			return d.inputErr()
		}
		d.nbits += 8
		d.phantom += 8
	}
	return nil
}

// checkPhantom reports truncation if padding bits past the end of the input
// have been consumed.
func (d *inflater) checkPhantom() error {
	if d.phantom > d.nbits {
		return d.inputErr()
	}
	return nil
}

// take consumes and returns the next n (<= 32) bits.
func (d *inflater) take(n uint) (uint32, error) {
	if d.nbits < n {
		if err := d.refillSlow(); err != nil {
			return 0, err
		}
	}
	v := uint32(d.bits & (1<<(n&63) - 1))
	d.bits >>= n & 63
	d.nbits -= n
	return v, d.checkPhantom()
}

// bitPos is the number of input bits consumed so far.
func (d *inflater) bitPos() int64 {
	return (d.inBase+int64(d.inPos))*8 - int64(d.nbits) + int64(d.phantom)
}

// toBytes discards bits up to the next byte boundary and gives the whole
// bytes still in the bit buffer back to the input buffer, so the caller can
// read bytes (stored block data, gzip framing) directly.
func (d *inflater) toBytes() error {
	if err := d.checkPhantom(); err != nil {
		return err
	}
	unread := d.nbits - d.phantom
	d.inPos -= int(unread / 8)
	d.bits, d.nbits, d.phantom = 0, 0, 0
	return nil
}

// readByte reads one byte; the bit buffer must be empty (see toBytes).
func (d *inflater) readByte() (byte, error) {
	if d.inPos >= d.inEnd && !d.fill() {
		return 0, d.inputErr()
	}
	b := d.in[d.inPos]
	d.inPos++
	return b, nil
}

// atEOF reports whether the input has no more bytes; the bit buffer must be
// empty.
func (d *inflater) atEOF() (bool, error) {
	if d.inPos < d.inEnd || d.fill() {
		return false, nil
	}
	if errors.Is(d.srcErr, io.EOF) {
		return true, nil
	}
	return false, d.inputErr()
}
