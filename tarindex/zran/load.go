package zran

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
)

// maxPackedWindow bounds a packed window's length in a file being loaded:
// raw deflate of 32 KiB takes at most a few bytes more.
const maxPackedWindow = 2 * windowSize

// Load reads the index serialized (as MarshalBinary writes it) in the
// size bytes of f, checking it whole as UnmarshalBinary does, and keeps
// only the checkpoints in memory: a window is read from f again when a
// read restarts at its checkpoint, and checked against the CRC-32C taken
// now. So an index costs tens of bytes per checkpoint in memory instead
// of up to 32 KiB, for a pread per restart. f must stay open while the
// index is in use; a window whose bytes changed since is an ErrIndex.
func Load(f io.ReaderAt, size int64) (*Index, error) {
	head := make([]byte, len(indexMagic))
	if size < int64(len(indexMagic))+1+4 {
		return nil, fmt.Errorf("%w: not a zran index", ErrIndex)
	}
	if _, err := f.ReadAt(head, 0); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrIndex, err)
	}
	if string(head) != indexMagic {
		return nil, fmt.Errorf("%w: not a zran index", ErrIndex)
	}
	sum := crc32.New(castagnoli)
	sum.Write(head)
	bodyEnd := size - 4
	p := &streamParser{
		r:   bufio.NewReaderSize(io.NewSectionReader(f, int64(len(head)), bodyEnd-int64(len(head))), 64<<10),
		sum: sum,
		off: int64(len(head)),
		end: bodyEnd,
	}
	out, err := decode(p, func(c *Checkpoint, comp []byte, at int64) {
		c.packedAt, c.packedSize, c.packedCRC = at, len(comp), crc32.Checksum(comp, castagnoli)
	})
	if p.err != nil && p.err != errShort {
		// decode saw the fields end; the read error is the better report.
		return nil, fmt.Errorf("%w: %v", ErrIndex, p.err)
	}
	if err != nil {
		return nil, err
	}
	var tail [4]byte
	if _, err := f.ReadAt(tail[:], bodyEnd); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrIndex, err)
	}
	if binary.LittleEndian.Uint32(tail[:]) != sum.Sum32() {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrIndex)
	}
	out.windows = f
	return &out, nil
}

// streamParser reads the fields of a serialized index from a file, summing
// what it reads.
type streamParser struct {
	r        *bufio.Reader
	sum      hash.Hash32
	off, end int64 // where r is in the file, and where the checksum starts
	buf      []byte
	err      error
}

func (p *streamParser) uvarint() uint64 {
	if p.err != nil {
		return 0
	}
	v, err := binary.ReadUvarint(byteReader{p})
	if err != nil {
		p.fail()
		return 0
	}
	return v
}

// byteReader gives binary.ReadUvarint the parser's bytes.
type byteReader struct{ p *streamParser }

func (b byteReader) ReadByte() (byte, error) {
	v := b.p.byte()
	return v, b.p.err
}

func (p *streamParser) byte() byte {
	if p.err != nil {
		return 0
	}
	b, err := p.r.ReadByte()
	if err != nil {
		p.readErr(err)
		return 0
	}
	p.sum.Write([]byte{b})
	p.off++
	return b
}

func (p *streamParser) bytes(n uint64) ([]byte, int64) {
	if p.err != nil || n > maxPackedWindow || int64(n) > p.end-p.off {
		p.fail()
		return nil, 0
	}
	if uint64(cap(p.buf)) < n {
		p.buf = make([]byte, n)
	}
	b := p.buf[:n]
	if _, err := io.ReadFull(p.r, b); err != nil {
		p.readErr(err)
		return nil, 0
	}
	p.sum.Write(b)
	at := p.off
	p.off += int64(n)
	return b, at
}

func (p *streamParser) rest() (int64, error) { return p.end - p.off, p.err }

func (p *streamParser) fail() {
	if p.err == nil {
		p.err = errShort
	}
}

func (p *streamParser) readErr(err error) {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		p.fail()
		return
	}
	if p.err == nil {
		p.err = err
	}
}
