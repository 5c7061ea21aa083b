package zran

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sync"
)

// Serialized index layout, all integers unsigned varints unless noted:
//
//	magic "zranidx" and a version byte
//	span, size, compressed size, number of checkpoints
//	per checkpoint: In minus the previous In, Out minus the previous Out,
//	    Bits (one byte), window length, compressed window length, and the
//	    window compressed with raw deflate
//	CRC-32C of everything before it (4 bytes, little endian)
//
// Windows are compressed because they are most of the index and compress
// like the data they come from.
const (
	indexMagic   = "zranidx"
	indexVersion = 1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// MarshalBinary encodes the index in a versioned, checksummed format.
func (ix *Index) MarshalBinary() ([]byte, error) {
	if err := ix.validate(); err != nil {
		return nil, err
	}
	return ix.encode()
}

// encode serializes ix without validating it.
func (ix *Index) encode() ([]byte, error) {
	buf := bytes.NewBuffer(append([]byte(indexMagic), indexVersion))
	putUvarint := func(v uint64) {
		buf.Write(binary.AppendUvarint(nil, v))
	}
	putUvarint(uint64(ix.Span))
	putUvarint(uint64(ix.Size))
	putUvarint(uint64(ix.CompressedSize))
	putUvarint(uint64(len(ix.Checkpoints)))

	var win bytes.Buffer
	fw, err := flate.NewWriter(&win, flate.DefaultCompression)
	if err != nil {
		return nil, err
	}
	var prevIn, prevOut int64
	for i := range ix.Checkpoints {
		c := &ix.Checkpoints[i]
		putUvarint(uint64(c.In - prevIn))
		putUvarint(uint64(c.Out - prevOut))
		buf.WriteByte(c.Bits)
		prevIn, prevOut = c.In, c.Out
		putUvarint(uint64(c.windowLen()))
		if c.windowLen() == 0 {
			putUvarint(0)
			continue
		}
		if c.Window == nil { // packed already
			putUvarint(uint64(len(c.packed)))
			buf.Write(c.packed)
			continue
		}
		win.Reset()
		fw.Reset(&win)
		fw.Write(c.Window)
		if err := fw.Close(); err != nil {
			return nil, err
		}
		putUvarint(uint64(win.Len()))
		buf.Write(win.Bytes())
	}
	return binary.LittleEndian.AppendUint32(buf.Bytes(), crc32.Checksum(buf.Bytes(), castagnoli)), nil
}

// UnmarshalBinary decodes an index encoded by MarshalBinary. It rejects
// data that is truncated, corrupt, of another version, or inconsistent.
func (ix *Index) UnmarshalBinary(data []byte) error {
	bad := func(what string) error { return fmt.Errorf("%w: %s", ErrIndex, what) }
	if len(data) < len(indexMagic)+1+4 || string(data[:len(indexMagic)]) != indexMagic {
		return bad("not a zran index")
	}
	body, sum := data[:len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return bad("checksum mismatch")
	}
	if v := body[len(indexMagic)]; v != indexVersion {
		return bad(fmt.Sprintf("unsupported version %d", v))
	}
	p := &parser{b: body[len(indexMagic)+1:]}
	out := Index{
		Span:           p.int64(),
		Size:           p.int64(),
		CompressedSize: p.int64(),
	}
	n := p.uvarint()
	// Each checkpoint takes at least five bytes, which bounds the
	// allocation by the input size.
	if p.err != nil || n > uint64(len(p.b))/5 {
		return bad("bad header")
	}
	out.Checkpoints = make([]Checkpoint, n)
	// The windows stay compressed, in one copy of their bytes (the data
	// is not ours to keep): they are inflated when a read restarts at
	// them (Checkpoint.inflateWindow).
	packed := make([]byte, 0, len(p.b))
	var in, off int64
	for i := range out.Checkpoints {
		c := &out.Checkpoints[i]
		in += p.int64()
		off += p.int64()
		c.In, c.Out, c.Bits = in, off, p.byte()
		wlen, clen := p.uvarint(), p.uvarint()
		comp := p.bytes(clen)
		if p.err != nil || in < 0 || off < 0 || wlen > windowSize || (wlen > 0) != (clen > 0) {
			return bad(fmt.Sprintf("checkpoint %d malformed", i))
		}
		if wlen == 0 {
			continue
		}
		packed = append(packed, comp...)
		c.packed, c.packedLen = packed[len(packed)-len(comp):len(packed):len(packed)], int(wlen)
	}
	if len(p.b) != 0 {
		return bad("trailing bytes")
	}
	if err := out.validate(); err != nil {
		return err
	}
	*ix = out
	return nil
}

// parser reads the fields of a serialized index, remembering the first
// error so call sites stay linear.
type parser struct {
	b   []byte
	err error
}

var errShort = errors.New("short or malformed field")

func (p *parser) uvarint() uint64 {
	if p.err != nil {
		return 0
	}
	v, n := binary.Uvarint(p.b)
	if n <= 0 {
		p.err = errShort
		return 0
	}
	p.b = p.b[n:]
	return v
}

func (p *parser) int64() int64 {
	v := p.uvarint()
	if v > 1<<62 {
		p.err = errShort
		return 0
	}
	return int64(v)
}

func (p *parser) byte() byte {
	if p.err != nil || len(p.b) == 0 {
		p.err = errShort
		return 0
	}
	v := p.b[0]
	p.b = p.b[1:]
	return v
}

func (p *parser) bytes(n uint64) []byte {
	if p.err != nil || n > uint64(len(p.b)) {
		p.err = errShort
		return nil
	}
	v := p.b[:n]
	p.b = p.b[n:]
	return v
}

// windowReaders recycles the inflaters of packed windows.
var windowReaders = sync.Pool{New: func() any { return flate.NewReader(nil) }}

// inflateWindow writes the checkpoint's window at the start of dst and
// returns its length. A packed window that does not inflate to the length
// recorded is an error (ErrIndex): the index does not describe the stream.
func (c *Checkpoint) inflateWindow(dst []byte) (int, error) {
	if c.Window != nil || c.packedLen == 0 {
		return copy(dst, c.Window), nil
	}
	fr := windowReaders.Get().(io.ReadCloser)
	defer windowReaders.Put(fr)
	fr.(flate.Resetter).Reset(bytes.NewReader(c.packed), nil)
	if _, err := io.ReadFull(fr, dst[:c.packedLen]); err != nil {
		return 0, fmt.Errorf("%w: checkpoint window: %v", ErrIndex, err)
	}
	if n, err := fr.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("%w: checkpoint window longer than recorded", ErrIndex)
	}
	return c.packedLen, nil
}
