package zran

import (
	"fmt"
	"io"
)

// blockState is where the inflater is within a deflate stream.
type blockState uint8

const (
	stHeader    blockState = iota // at a block boundary, next is a block header
	stStored                      // inside a stored block
	stHuffman                     // inside a fixed or dynamic Huffman block
	stStreamEnd                   // after the final block
)

// event is why run returned.
type event uint8

const (
	evLimit     event = iota // the output reached the requested limit
	evBoundary               // a non-final block ended; the next header is unread
	evStreamEnd              // the final block ended
)

// outSlack is how far past its limit the hot loop may write: one maximal
// match plus the overshoot of the eight-byte match copy.
const outSlack = maxMatch + 8

// inflater decodes raw deflate data (RFC 1951) into a flat output buffer,
// out, of which out[histLo:o] is the history that matches may refer to.
// Callers drain and slide out as needed; the inflater only appends.
type inflater struct {
	src    io.Reader
	srcErr error // sticky; io.EOF once the source is drained
	in     []byte
	inPos  int
	inEnd  int
	inBase int64 // input offset of in[0]

	bits    uint64 // unread bits, next bit lowest
	nbits   uint
	phantom uint // zero bits appended after the end of the input

	out    []byte
	o      int
	histLo int

	state      blockState
	final      bool
	storedLeft int

	lit  *[litTableSize]uint32
	dist *[distTableSize]uint32

	dynLit  [litTableSize]uint32
	dynDist [distTableSize]uint32
	clen    [clenTableSize]uint32
	lens    [maxLitCodes + maxDistCodes]uint8
}

func newInflater(inSize int) *inflater {
	return &inflater{in: make([]byte, inSize)}
}

// reset prepares d to read src, whose first byte is at offset base.
func (d *inflater) reset(src io.Reader, base int64) {
	d.src, d.srcErr = src, nil
	d.inPos, d.inEnd, d.inBase = 0, 0, base
	d.bits, d.nbits, d.phantom = 0, 0, 0
	d.state, d.final, d.storedLeft = stHeader, false, 0
}

// startStream begins a new deflate stream at the current input position;
// its matches may not reach output written before it.
func (d *inflater) startStream() {
	d.state, d.final = stHeader, false
	d.histLo = d.o
}

// run inflates until the output reaches limit (which must leave outSlack
// bytes of room in out), a non-final block ends, or the final block ends.
func (d *inflater) run(limit int) (event, error) {
	for {
		switch d.state {
		case stHeader:
			if err := d.blockHeader(); err != nil {
				return evLimit, err
			}
		case stStored:
			if d.o >= limit {
				return evLimit, nil
			}
			done, err := d.storedBlock(limit)
			if err != nil {
				return evLimit, err
			}
			if !done {
				return evLimit, nil
			}
			return d.endBlock(), nil
		case stHuffman:
			if d.o >= limit {
				return evLimit, nil
			}
			done, err := d.huffmanBlock(limit)
			if err != nil {
				return evLimit, err
			}
			if !done {
				return evLimit, nil
			}
			return d.endBlock(), nil
		case stStreamEnd:
			return evStreamEnd, nil
		}
	}
}

func (d *inflater) endBlock() event {
	if d.final {
		d.state = stStreamEnd
		return evStreamEnd
	}
	d.state = stHeader
	return evBoundary
}

// corrupt reports invalid data, or truncation if the bits that looked
// invalid were the zero padding past the end of the input.
func (d *inflater) corrupt(what string) error {
	if err := d.checkPhantom(); err != nil {
		return err
	}
	return fmt.Errorf("%w: %s at compressed bit offset %d", ErrCorrupt, what, d.bitPos())
}

// blockHeader reads a block header and prepares its decoding state.
func (d *inflater) blockHeader() error {
	h, err := d.take(3)
	if err != nil {
		return err
	}
	d.final = h&1 != 0
	switch h >> 1 {
	case 0:
		return d.storedHeader()
	case 1:
		d.lit, d.dist = &fixedLit, &fixedDist
		d.state = stHuffman
		return nil
	case 2:
		if err := d.dynamicHeader(); err != nil {
			return err
		}
		d.lit, d.dist = &d.dynLit, &d.dynDist
		d.state = stHuffman
		return nil
	}
	return d.corrupt("invalid block type")
}

func (d *inflater) storedHeader() error {
	if _, err := d.take(d.nbits % 8); err != nil {
		return err
	}
	n, err := d.take(16)
	if err != nil {
		return err
	}
	nn, err := d.take(16)
	if err != nil {
		return err
	}
	if n != ^nn&0xffff {
		return d.corrupt("stored block length check failed")
	}
	if err := d.toBytes(); err != nil {
		return err
	}
	d.storedLeft = int(n)
	d.state = stStored
	return nil
}

// storedBlock copies stored bytes until the block ends or the output
// reaches limit.
func (d *inflater) storedBlock(limit int) (bool, error) {
	for d.storedLeft > 0 {
		room := limit - d.o
		if room <= 0 {
			return false, nil
		}
		if d.inPos >= d.inEnd && !d.fill() {
			return false, d.inputErr()
		}
		n := copy(d.out[d.o:d.o+min(room, d.storedLeft)], d.in[d.inPos:d.inEnd])
		d.o += n
		d.inPos += n
		d.storedLeft -= n
	}
	return true, nil
}

// dynamicHeader reads the code lengths of a dynamic block and builds its
// tables.
func (d *inflater) dynamicHeader() error {
	v, err := d.take(14)
	if err != nil {
		return err
	}
	nlit := int(v&31) + 257
	ndist := int(v>>5&31) + 1
	nclen := int(v>>10) + 4
	if nlit > maxLitCodes || ndist > maxDistCodes {
		return d.corrupt("too many length or distance codes")
	}
	var clens [numClenSyms]uint8
	for i := 0; i < nclen; i++ {
		l, err := d.take(3)
		if err != nil {
			return err
		}
		clens[clenOrder[i]] = uint8(l)
	}
	if err := buildTable(d.clen[:], clenRootBits, clens[:], clenPayload[:]); err != nil {
		return d.corrupt("bad code length code")
	}

	lens := d.lens[:nlit+ndist]
	for i := 0; i < len(lens); {
		if d.nbits < 16 {
			if err := d.refillSlow(); err != nil {
				return err
			}
		}
		e := d.clen[d.bits&(clenTableSize-1)]
		if e&flagInvalid != 0 {
			return d.corrupt("invalid code length code")
		}
		n := uint(e & 15)
		d.bits >>= n
		d.nbits -= n
		sym := e >> 16
		if sym < 16 {
			lens[i] = uint8(sym)
			i++
			continue
		}
		var rep uint32
		var val uint8
		switch sym {
		case 16:
			if i == 0 {
				return d.corrupt("repeat with no previous code length")
			}
			val = lens[i-1]
			rep, err = d.take(2)
			rep += 3
		case 17:
			rep, err = d.take(3)
			rep += 3
		default:
			rep, err = d.take(7)
			rep += 11
		}
		if err != nil {
			return err
		}
		if i+int(rep) > len(lens) {
			return d.corrupt("code length repeat overflows")
		}
		for ; rep > 0; rep-- {
			lens[i] = val
			i++
		}
	}
	if err := d.checkPhantom(); err != nil {
		return err
	}
	if lens[endOfBlock] == 0 {
		return d.corrupt("no end-of-block code")
	}
	if err := buildTable(d.dynLit[:], litRootBits, lens[:nlit], litPayload[:]); err != nil {
		return d.corrupt("bad literal/length code")
	}
	if err := buildTable(d.dynDist[:], distRootBits, lens[nlit:], distPayload[:]); err != nil {
		return d.corrupt("bad distance code")
	}
	return nil
}
