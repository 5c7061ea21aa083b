package zstdframes

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Frame format constants (RFC 8878 section 3.1).
const (
	frameMagic          = 0xFD2FB528
	skippableMagicMask  = 0xFFFFFFF0
	skippableMagic      = 0x184D2A50
	maxBlockSize        = 128 << 10
	blockHeaderSize     = 3
	checksumSize        = 4
	maxFrameHeaderSize  = 4 + 1 + 1 + 4 + 8
	fhdReservedBit      = 1 << 3
	fhdChecksumBit      = 1 << 2
	fhdSingleSegmentBit = 1 << 5
)

// Block types.
const (
	blockRaw        = 0
	blockRLE        = 1
	blockCompressed = 2
)

// frameInfo is what the headers of one frame tell without decoding it.
type frameInfo struct {
	skippable  bool
	compressed int64 // whole frame, headers and checksum included
	// size is the decompressed size: declared, or summed from raw and RLE
	// blocks when sizeKnown is false and the frame has no compressed block.
	size      int64
	sizeKnown bool
}

// readFull reads len(p) bytes at off, reporting a short stream as
// ErrTruncated.
func readFull(r io.ReaderAt, p []byte, off, end int64) error {
	if off+int64(len(p)) > end {
		return fmt.Errorf("%w at compressed offset %d", ErrTruncated, off)
	}
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return fmt.Errorf("%w at compressed offset %d", ErrTruncated, off+int64(n))
	}
	return fmt.Errorf("zstdframes: reading at %d: %w", off, err)
}

// parseFrame walks the headers of the frame at off, where end is the end of
// the stream.
func parseFrame(r io.ReaderAt, off, end int64) (frameInfo, error) {
	var hdr [maxFrameHeaderSize]byte
	bad := func(what string) error {
		return fmt.Errorf("%w: %s in frame at compressed offset %d", ErrFormat, what, off)
	}
	if err := readFull(r, hdr[:4], off, end); err != nil {
		return frameInfo{}, err
	}
	magic := binary.LittleEndian.Uint32(hdr[:4])
	if magic&skippableMagicMask == skippableMagic {
		if err := readFull(r, hdr[4:8], off+4, end); err != nil {
			return frameInfo{}, err
		}
		n := 8 + int64(binary.LittleEndian.Uint32(hdr[4:8]))
		if off+n > end {
			return frameInfo{}, fmt.Errorf("%w: skippable frame at %d", ErrTruncated, off)
		}
		return frameInfo{skippable: true, compressed: n, sizeKnown: true}, nil
	}
	if magic != frameMagic {
		return frameInfo{}, bad("bad magic")
	}
	if err := readFull(r, hdr[4:5], off+4, end); err != nil {
		return frameInfo{}, err
	}
	fhd := hdr[4]
	if fhd&fhdReservedBit != 0 {
		return frameInfo{}, bad("reserved bit set")
	}
	single := fhd&fhdSingleSegmentBit != 0
	didSize := [4]int{0, 1, 2, 4}[fhd&3]
	fcsSize := [4]int{0, 2, 4, 8}[fhd>>6]
	if fcsSize == 0 && single {
		fcsSize = 1
	}
	n := 5 + didSize + fcsSize
	if !single {
		n++
	}
	if err := readFull(r, hdr[5:n], off+5, end); err != nil {
		return frameInfo{}, err
	}
	fields := hdr[5:n]
	if !single {
		fields = fields[1:] // Window_Descriptor: the decoder checks it
	}
	if didSize > 0 {
		var id uint32
		for i := didSize - 1; i >= 0; i-- {
			id = id<<8 | uint32(fields[i])
		}
		if id != 0 {
			return frameInfo{}, fmt.Errorf("%w: dictionary %d in frame at compressed offset %d", ErrDictionary, id, off)
		}
	}
	fcs := fields[didSize:]
	info := frameInfo{}
	switch fcsSize {
	case 1:
		info.size, info.sizeKnown = int64(fcs[0]), true
	case 2:
		info.size, info.sizeKnown = int64(binary.LittleEndian.Uint16(fcs))+256, true
	case 4:
		info.size, info.sizeKnown = int64(binary.LittleEndian.Uint32(fcs)), true
	case 8:
		v := binary.LittleEndian.Uint64(fcs)
		if v > 1<<62 {
			return frameInfo{}, bad("content size too large")
		}
		info.size, info.sizeKnown = int64(v), true
	}

	pos := off + int64(n)
	var summed int64
	allRaw := true
	for {
		var bh [4]byte
		if err := readFull(r, bh[:blockHeaderSize], pos, end); err != nil {
			return frameInfo{}, err
		}
		h := binary.LittleEndian.Uint32(bh[:])
		last := h&1 != 0
		size := int64(h >> 3)
		if size > maxBlockSize {
			return frameInfo{}, bad(fmt.Sprintf("block of %d bytes at %d", size, pos))
		}
		pos += blockHeaderSize
		switch h >> 1 & 3 {
		case blockRaw:
			pos += size
			summed += size
		case blockRLE:
			pos++
			summed += size
		case blockCompressed:
			pos += size
			allRaw = false
		default:
			return frameInfo{}, bad(fmt.Sprintf("reserved block type at %d", pos-blockHeaderSize))
		}
		if pos > end {
			return frameInfo{}, fmt.Errorf("%w: block at %d", ErrTruncated, pos)
		}
		if last {
			break
		}
	}
	if fhd&fhdChecksumBit != 0 {
		pos += checksumSize
		if pos > end {
			return frameInfo{}, fmt.Errorf("%w: checksum of frame at %d", ErrTruncated, off)
		}
	}
	info.compressed = pos - off
	if !info.sizeKnown && allRaw {
		info.size, info.sizeKnown = summed, true
	}
	if info.sizeKnown && allRaw && info.size != summed {
		return frameInfo{}, bad("content size does not match blocks")
	}
	return info, nil
}
