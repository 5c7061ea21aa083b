package zran

import "fmt"

// validate checks the invariants the reader relies on, so that an index
// from UnmarshalBinary or built by hand cannot make it misbehave.
func (ix *Index) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrIndex, fmt.Sprintf(format, args...))
	}
	if ix.Span <= 0 || ix.Size < 0 || ix.CompressedSize < 0 {
		return bad("negative span or size")
	}
	if len(ix.Checkpoints) == 0 {
		return bad("no checkpoints")
	}
	prevBit, prevOut := int64(-1), int64(0)
	for i := range ix.Checkpoints {
		c := &ix.Checkpoints[i]
		switch {
		case c.Bits > 7:
			return bad("checkpoint %d: %d bits", i, c.Bits)
		case c.In < 0 || (c.Bits > 0 && c.In == 0):
			return bad("checkpoint %d: compressed offset %d", i, c.In)
		case ix.CompressedSize > 0 && c.In > ix.CompressedSize:
			return bad("checkpoint %d: compressed offset %d past end %d", i, c.In, ix.CompressedSize)
		case i == 0 && c.Out != 0:
			return bad("first checkpoint at uncompressed offset %d", c.Out)
		case c.Out < prevOut || c.Out > ix.Size:
			return bad("checkpoint %d: uncompressed offset %d out of order", i, c.Out)
		case c.bitOffset() <= prevBit:
			return bad("checkpoint %d: compressed offset out of order", i)
		case c.windowLen() > windowSize || int64(c.windowLen()) > c.Out:
			return bad("checkpoint %d: window of %d bytes", i, c.windowLen())
		}
		prevBit, prevOut = c.bitOffset(), c.Out
	}
	return nil
}
