package zstdframes

import (
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
)

// Frame is one frame of a zstd stream.
type Frame struct {
	Offset         int64 // compressed offset of the frame's magic number
	CompressedSize int64 // compressed length, headers and checksum included
	Out            int64 // uncompressed offset of the frame's first byte
	Size           int64 // decompressed length; zero for skippable frames
	Skippable      bool  // a skippable frame, which holds no zstd data
}

// Index lists the frames of a zstd stream in order. Frames are contiguous:
// each starts where the previous one ends, the first at offset 0.
type Index struct {
	Frames         []Frame
	Size           int64 // total decompressed size
	CompressedSize int64 // total compressed size
}

// maxWindow caps the window a frame may ask the decoder for (the zstd CLI
// uses at most 128 MiB, with --long=27), so hostile input cannot make the
// reader allocate more.
const maxWindow = 128 << 20

// Build indexes the zstd stream of size bytes in r. Frames that do not
// declare their content size are decoded once to learn it.
func Build(r io.ReaderAt, size int64) (*Index, error) { return BuildLimit(r, size, 0) }

// BuildLimit is Build refusing, with ErrTooLarge, a stream that expands
// past limit bytes (limit <= 0: none); frames decoded to learn their size
// stop there too, so a bomb costs no more than the limit.
func BuildLimit(r io.ReaderAt, size, limit int64) (*Index, error) {
	if size <= 0 {
		return nil, fmt.Errorf("%w: empty stream", ErrFormat)
	}
	ix := &Index{CompressedSize: size}
	var dec *zstd.Decoder
	defer func() {
		if dec != nil {
			dec.Close()
		}
	}()
	for off := int64(0); off < size; {
		info, err := parseFrame(r, off, size)
		if err != nil {
			return nil, err
		}
		if !info.sizeKnown {
			if dec == nil {
				if dec, err = newStreamDecoder(); err != nil {
					return nil, err
				}
			}
			if info.size, err = decodedSize(dec, io.NewSectionReader(r, off, info.compressed), limit); err != nil {
				return nil, fmt.Errorf("zstdframes: decoding frame at %d: %w", off, err)
			}
		}
		if ix.Size+info.size < ix.Size {
			return nil, fmt.Errorf("%w: decompressed size overflows", ErrFormat)
		}
		if limit > 0 && ix.Size+info.size > limit {
			return nil, fmt.Errorf("%w: expands past %d bytes", ErrTooLarge, limit)
		}
		ix.Frames = append(ix.Frames, Frame{
			Offset:         off,
			CompressedSize: info.compressed,
			Out:            ix.Size,
			Size:           info.size,
			Skippable:      info.skippable,
		})
		ix.Size += info.size
		off += info.compressed
	}
	return ix, nil
}

// newStreamDecoder returns a synchronous decoder: with concurrency 1 it
// starts no goroutines and decodes only as far as it is read.
func newStreamDecoder() (*zstd.Decoder, error) {
	return zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxWindow(maxWindow))
}

// decodedSize decodes one frame to count its bytes, at most limit+1 of
// them when limit > 0.
func decodedSize(dec *zstd.Decoder, frame io.Reader, limit int64) (int64, error) {
	if err := dec.Reset(frame); err != nil {
		return 0, err
	}
	var out io.Reader = dec
	if limit > 0 {
		out = io.LimitReader(dec, limit+1)
	}
	return io.Copy(io.Discard, out)
}

// frameAt returns the index of the data frame holding uncompressed offset
// off, which must be below ix.Size.
func (ix *Index) frameAt(off int64) int {
	lo, hi := 0, len(ix.Frames) // answer in [lo, hi)
	for hi-lo > 1 {
		mid := int(uint(lo+hi) >> 1)
		if ix.Frames[mid].Out <= off {
			lo = mid
		} else {
			hi = mid
		}
	}
	// Frames of size zero share their Out with the next frame; the
	// search lands on the last frame starting at or before off, which is
	// the one holding it.
	return lo
}

// validate checks the invariants the reader relies on.
func (ix *Index) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrIndex, fmt.Sprintf(format, args...))
	}
	var off, out int64
	for i, f := range ix.Frames {
		switch {
		case f.Offset != off || f.Out != out:
			return bad("frame %d not contiguous", i)
		case f.CompressedSize <= 0 || f.Size < 0 || (f.Skippable && f.Size != 0):
			return bad("frame %d sizes", i)
		case off+f.CompressedSize < off || out+f.Size < out:
			return bad("frame %d overflows", i)
		}
		off += f.CompressedSize
		out += f.Size
	}
	if off != ix.CompressedSize || out != ix.Size {
		return bad("frames cover %d/%d bytes, index says %d/%d", off, out, ix.CompressedSize, ix.Size)
	}
	return nil
}
