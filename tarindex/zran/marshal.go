package zran

import (
	"bufio"
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
	var buf bytes.Buffer
	if err := ix.Encode(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Encode writes the index to w as MarshalBinary encodes it, a window at a
// time: the encoding is never whole in memory.
func (ix *Index) Encode(w io.Writer) error {
	if err := ix.validate(); err != nil {
		return err
	}
	return ix.write(w)
}

// encode serializes ix without validating it.
func (ix *Index) encode() ([]byte, error) {
	var buf bytes.Buffer
	err := ix.write(&buf)
	return buf.Bytes(), err
}

// write serializes ix to w.
func (ix *Index) write(w io.Writer) error {
	sum := crc32.New(castagnoli)
	bw := bufio.NewWriterSize(io.MultiWriter(w, sum), 64<<10)
	bw.WriteString(indexMagic)
	bw.WriteByte(indexVersion)
	putUvarint := func(v uint64) {
		bw.Write(binary.AppendUvarint(nil, v))
	}
	putUvarint(uint64(ix.Span))
	putUvarint(uint64(ix.Size))
	putUvarint(uint64(ix.CompressedSize))
	putUvarint(uint64(len(ix.Checkpoints)))

	var win bytes.Buffer
	var fileBuf []byte // a packed window read from the file (Load)
	// BestSpeed: the index is written on the cold mount's critical path,
	// where DefaultCompression took 0.6 s for the bench's 1 GiB layers
	// (2.3 ms a window of text, 0.6 of random bytes, against 0.19 and
	// 0.09), and Load leaves the windows on disk, where the better
	// ratio (0.16 against 0.24 of text) buys little.
	fw, err := flate.NewWriter(&win, flate.BestSpeed)
	if err != nil {
		return err
	}
	var prevIn, prevOut int64
	for i := range ix.Checkpoints {
		c := &ix.Checkpoints[i]
		putUvarint(uint64(c.In - prevIn))
		putUvarint(uint64(c.Out - prevOut))
		bw.WriteByte(c.Bits)
		prevIn, prevOut = c.In, c.Out
		putUvarint(uint64(c.windowLen()))
		if c.windowLen() == 0 {
			putUvarint(0)
			continue
		}
		if c.Window == nil { // packed already, in memory or in a file
			packed, err := ix.packedWindow(c, &fileBuf)
			if err != nil {
				return err
			}
			putUvarint(uint64(len(packed)))
			bw.Write(packed)
			continue
		}
		win.Reset()
		fw.Reset(&win)
		fw.Write(c.Window)
		if err := fw.Close(); err != nil {
			return err
		}
		putUvarint(uint64(win.Len()))
		bw.Write(win.Bytes())
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	_, err = w.Write(binary.LittleEndian.AppendUint32(nil, sum.Sum32()))
	return err
}

// UnmarshalBinary decodes an index encoded by MarshalBinary. It rejects
// data that is truncated, corrupt, of another version, or inconsistent.
func (ix *Index) UnmarshalBinary(data []byte) error {
	if len(data) < len(indexMagic)+1+4 || string(data[:len(indexMagic)]) != indexMagic {
		return fmt.Errorf("%w: not a zran index", ErrIndex)
	}
	body, sum := data[:len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return fmt.Errorf("%w: checksum mismatch", ErrIndex)
	}
	// The windows stay compressed, in one copy of their bytes (the data
	// is not ours to keep): they are inflated when a read restarts at
	// them (Index.window).
	p := &parser{b: body[len(indexMagic):]}
	packed := make([]byte, 0, len(p.b))
	out, err := decode(p, func(c *Checkpoint, comp []byte, _ int64) {
		packed = append(packed, comp...)
		c.packed = packed[len(packed)-len(comp) : len(packed) : len(packed)]
	})
	if err != nil {
		return err
	}
	*ix = out
	return nil
}

// fields reads the fields of a serialized index, remembering the first
// error so call sites stay linear.
type fields interface {
	uvarint() uint64
	byte() byte
	// bytes returns the next n bytes, valid until the next call, and
	// where they start in the serialized index.
	bytes(n uint64) ([]byte, int64)
	// rest is the number of bytes left before the checksum, or the first
	// error met.
	rest() (int64, error)
	// fail records a malformed field.
	fail()
}

// decode reads a serialized index from its version byte up to its
// checksum; keep is given each packed window, and where it starts in the
// serialized index.
func decode(p fields, keep func(c *Checkpoint, comp []byte, at int64)) (Index, error) {
	bad := func(what string) error { return fmt.Errorf("%w: %s", ErrIndex, what) }
	if v := p.byte(); v != indexVersion {
		return Index{}, bad(fmt.Sprintf("unsupported version %d", v))
	}
	out := Index{
		Span:           int64Field(p),
		Size:           int64Field(p),
		CompressedSize: int64Field(p),
	}
	n := p.uvarint()
	// Each checkpoint takes at least five bytes, which bounds the
	// allocation by the input size.
	if rest, err := p.rest(); err != nil || n > uint64(rest)/5 {
		return Index{}, bad("bad header")
	}
	out.Checkpoints = make([]Checkpoint, n)
	var in, off int64
	for i := range out.Checkpoints {
		c := &out.Checkpoints[i]
		in += int64Field(p)
		off += int64Field(p)
		c.In, c.Out, c.Bits = in, off, p.byte()
		wlen, clen := p.uvarint(), p.uvarint()
		comp, at := p.bytes(clen)
		if _, err := p.rest(); err != nil || in < 0 || off < 0 || wlen > windowSize || (wlen > 0) != (clen > 0) {
			return Index{}, bad(fmt.Sprintf("checkpoint %d malformed", i))
		}
		if wlen == 0 {
			continue
		}
		c.packedLen = int(wlen)
		keep(c, comp, at)
	}
	if rest, _ := p.rest(); rest != 0 {
		return Index{}, bad("trailing bytes")
	}
	if err := out.validate(); err != nil {
		return Index{}, err
	}
	return out, nil
}

// int64Field reads a uvarint that must fit an int64 with room to add.
func int64Field(p fields) int64 {
	v := p.uvarint()
	if v > 1<<62 {
		p.fail()
		return 0
	}
	return int64(v)
}

// parser reads the fields of a serialized index held in memory.
type parser struct {
	b   []byte
	off int64 // where b starts in the serialized index
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
	p.advance(n)
	return v
}

func (p *parser) byte() byte {
	if p.err != nil || len(p.b) == 0 {
		p.err = errShort
		return 0
	}
	v := p.b[0]
	p.advance(1)
	return v
}

func (p *parser) bytes(n uint64) ([]byte, int64) {
	if p.err != nil || n > uint64(len(p.b)) {
		p.err = errShort
		return nil, 0
	}
	v, at := p.b[:n], p.off
	p.advance(int(n))
	return v, at
}

func (p *parser) advance(n int) {
	p.b = p.b[n:]
	p.off += int64(n)
}

func (p *parser) rest() (int64, error) { return int64(len(p.b)), p.err }

func (p *parser) fail() { p.err = errShort }

// windowReaders recycles the inflaters of packed windows.
var windowReaders = sync.Pool{New: func() any { return flate.NewReader(nil) }}

// window writes the window of checkpoint i at the start of dst and
// returns its length. A packed window that does not inflate to the length
// recorded, or (Load) whose bytes in the file changed, is an error
// (ErrIndex): the index does not describe the stream.
func (ix *Index) window(i int, dst []byte) (int, error) {
	c := &ix.Checkpoints[i]
	if c.Window != nil || c.packedLen == 0 {
		return copy(dst, c.Window), nil
	}
	buf := packedBufs.Get().(*[]byte)
	defer packedBufs.Put(buf)
	packed, err := ix.packedWindow(c, buf)
	if err != nil {
		return 0, err
	}
	fr := windowReaders.Get().(io.ReadCloser)
	defer windowReaders.Put(fr)
	fr.(flate.Resetter).Reset(bytes.NewReader(packed), nil)
	if _, err := io.ReadFull(fr, dst[:c.packedLen]); err != nil {
		return 0, fmt.Errorf("%w: checkpoint window: %v", ErrIndex, err)
	}
	if n, err := fr.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("%w: checkpoint window longer than recorded", ErrIndex)
	}
	return c.packedLen, nil
}

// packedWindow returns c's packed window: in memory, or read from the
// index's file (Load) into *buf, grown as needed, and checked against the
// CRC-32C taken at load.
func (ix *Index) packedWindow(c *Checkpoint, buf *[]byte) ([]byte, error) {
	if c.packed != nil {
		return c.packed, nil
	}
	if cap(*buf) < c.packedSize {
		*buf = make([]byte, c.packedSize)
	}
	packed := (*buf)[:c.packedSize]
	if _, err := ix.windows.ReadAt(packed, c.packedAt); err != nil {
		return nil, fmt.Errorf("%w: checkpoint window: %v", ErrIndex, err)
	}
	if crc32.Checksum(packed, castagnoli) != c.packedCRC {
		return nil, fmt.Errorf("%w: checkpoint window changed in the index file since it was loaded", ErrIndex)
	}
	return packed, nil
}

// packedBufs recycles the buffers windows are read into from a file.
var packedBufs = sync.Pool{New: func() any { return new([]byte) }}
