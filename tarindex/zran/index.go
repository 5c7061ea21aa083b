package zran

import "io"

// DefaultSpan is the default distance in uncompressed bytes between
// checkpoints.
const DefaultSpan = 1 << 20

// Options tunes Build.
type Options struct {
	// Span is the minimum number of uncompressed bytes between checkpoints;
	// zero means DefaultSpan. Smaller spans make reads faster and the index
	// larger (each checkpoint keeps up to 32 KiB of window). Past 1,024
	// checkpoints the distance grows with the stream (see
	// spansBeforeGrowth). Checkpoints
	// can only sit between deflate blocks, so a stream of huge blocks (very
	// repetitive data) gets fewer checkpoints than its size suggests.
	Span int64
}

// Checkpoint is a point in the stream where inflating can restart: the start
// of a deflate block, or the start of a gzip member's deflate data.
//
// The position follows zlib's zran.c: the block's first bit is in byte
// In-1 when Bits > 0, namely the Bits most significant bits of that byte,
// and otherwise it is the lowest bit of byte In. Equivalently the block
// starts at bit 8*In - Bits of the compressed stream.
//
// An index read back from its serialized form keeps each window compressed
// as stored (Window nil) and inflates it only when a read restarts there:
// loading costs no inflating. UnmarshalBinary keeps the compressed windows
// in memory; Load leaves them in the file and reads one when it is needed.
type Checkpoint struct {
	In     int64  // compressed offset just past the byte holding the block's first bit, or of that byte when Bits is 0
	Bits   uint8  // number of high bits of byte In-1 that belong to the block (0-7)
	Out    int64  // uncompressed offset of the block's first byte
	Window []byte // up to 32 KiB of uncompressed data before Out within the same member; empty at a member start

	// When Window is nil and packedLen > 0, the window is packed: raw
	// deflate, in packed, or (Load) packedSize bytes at packedAt in the
	// index's file, whose CRC-32C is packedCRC.
	packed     []byte
	packedAt   int64
	packedSize int
	packedCRC  uint32
	packedLen  int // the window's length once inflated
}

// windowLen is the length of the checkpoint's window, packed or not.
func (c *Checkpoint) windowLen() int {
	if c.Window != nil {
		return len(c.Window)
	}
	return c.packedLen
}

// bitOffset is the offset of the checkpoint's first bit in the compressed
// stream.
func (c *Checkpoint) bitOffset() int64 { return c.In*8 - int64(c.Bits) }

// Index lists the checkpoints of one gzip stream.
type Index struct {
	Span           int64        // Options.Span the index was built with
	Size           int64        // total uncompressed size of the stream
	CompressedSize int64        // total compressed size, including framing
	Checkpoints    []Checkpoint // ordered by Out; the first has Out 0

	windows io.ReaderAt // where Load left the packed windows
}

// checkpointAt returns the index of the last checkpoint at or before the
// uncompressed offset off.
func (ix *Index) checkpointAt(off int64) int {
	lo, hi := 0, len(ix.Checkpoints) // invariant: answer in [lo, hi)
	for hi-lo > 1 {
		mid := int(uint(lo+hi) >> 1)
		if ix.Checkpoints[mid].Out <= off {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo
}

// spanEnd returns the uncompressed offset where the span of checkpoint i
// ends: the next checkpoint, or the end of the stream.
func (ix *Index) spanEnd(i int) int64 {
	if i+1 < len(ix.Checkpoints) {
		return ix.Checkpoints[i+1].Out
	}
	return ix.Size
}
