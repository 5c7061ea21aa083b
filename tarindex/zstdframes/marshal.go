package zstdframes

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Serialized index layout, integers as unsigned varints:
//
//	magic "zstdidx" and a version byte
//	number of frames
//	per frame: kind (one byte: 0 data, 1 skippable), compressed size,
//	    decompressed size
//	CRC-32C of everything before it (4 bytes, little endian)
//
// Offsets are not stored: frames are contiguous, so they are running sums.
const (
	indexMagic   = "zstdidx"
	indexVersion = 2 // 2: stored only once the blob matched its digest
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// MarshalBinary encodes the index in a versioned, checksummed format.
func (ix *Index) MarshalBinary() ([]byte, error) {
	if err := ix.validate(); err != nil {
		return nil, err
	}
	b := append([]byte(indexMagic), indexVersion)
	b = binary.AppendUvarint(b, uint64(len(ix.Frames)))
	for _, f := range ix.Frames {
		kind := byte(0)
		if f.Skippable {
			kind = 1
		}
		b = append(b, kind)
		b = binary.AppendUvarint(b, uint64(f.CompressedSize))
		b = binary.AppendUvarint(b, uint64(f.Size))
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli)), nil
}

var errShort = errors.New("short or malformed field")

// UnmarshalBinary decodes an index encoded by MarshalBinary, rejecting data
// that is truncated, corrupt, of another version, or inconsistent.
func (ix *Index) UnmarshalBinary(data []byte) error {
	bad := func(what string) error { return fmt.Errorf("%w: %s", ErrIndex, what) }
	if len(data) < len(indexMagic)+1+4 || string(data[:len(indexMagic)]) != indexMagic {
		return bad("not a zstd frame index")
	}
	body := data[:len(data)-4]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(data[len(data)-4:]) {
		return bad("checksum mismatch")
	}
	if v := body[len(indexMagic)]; v != indexVersion {
		return bad(fmt.Sprintf("unsupported version %d", v))
	}
	b := body[len(indexMagic)+1:]
	var err error
	uvarint := func() int64 {
		v, n := binary.Uvarint(b)
		if n <= 0 || v > 1<<62 {
			err = errShort
			return 0
		}
		b = b[n:]
		return int64(v)
	}
	count := uvarint()
	// A frame takes at least three bytes, which bounds the allocation.
	if err != nil || count > int64(len(b))/3 {
		return bad("bad frame count")
	}
	out := Index{Frames: make([]Frame, count)}
	for i := range out.Frames {
		if len(b) == 0 || b[0] > 1 {
			return bad(fmt.Sprintf("frame %d kind", i))
		}
		f := Frame{Skippable: b[0] == 1, Offset: out.CompressedSize, Out: out.Size}
		b = b[1:]
		f.CompressedSize, f.Size = uvarint(), uvarint()
		if err != nil {
			return bad(fmt.Sprintf("frame %d malformed", i))
		}
		out.Frames[i] = f
		out.CompressedSize += f.CompressedSize
		out.Size += f.Size
		if out.CompressedSize < 0 || out.Size < 0 {
			return bad("sizes overflow")
		}
	}
	if len(b) != 0 {
		return bad("trailing bytes")
	}
	if err := out.validate(); err != nil {
		return err
	}
	*ix = out
	return nil
}
