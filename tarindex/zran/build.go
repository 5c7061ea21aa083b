package zran

import (
	"fmt"
	"hash/crc32"
	"io"
)

// Buffer sizes for Build: the output buffer keeps one window of history in
// front of a chunk of fresh output, and is drained to the writer whenever
// the chunk fills.
const (
	buildInSize    = 256 << 10
	buildChunkSize = 512 << 10
)

// Build inflates the whole gzip stream read from r once, writes every
// uncompressed byte to w, and returns the checkpoint index of the stream.
// It checks the CRC-32 and ISIZE of every member. The stream may consist of
// several concatenated members; zero bytes after the last one are ignored.
func Build(r io.Reader, w io.Writer, o Options) (*Index, error) {
	span := o.Span
	if span <= 0 {
		span = DefaultSpan
	}
	b := &builder{
		ix: &Index{Span: span},
		d:  newInflater(buildInSize),
		w:  w,
	}
	b.d.out = make([]byte, windowSize+buildChunkSize+outSlack)
	b.d.reset(r, 0)
	if err := b.run(); err != nil {
		return nil, err
	}
	return b.ix, nil
}

type builder struct {
	ix      *Index
	d       *inflater
	w       io.Writer
	outBase int64 // uncompressed offset of d.out[0]
	flushed int   // d.out[:flushed] has been written
	crc     uint32
	memberN int64 // uncompressed bytes of the current member written so far
	lastCP  int64 // Out of the last checkpoint, or -1
}

func (b *builder) run() error {
	d := b.d
	if err := d.memberHeader(); err != nil {
		return err
	}
	d.startStream()
	b.lastCP = -1
	b.checkpoint()
	limit := len(d.out) - outSlack
	for {
		ev, err := d.run(limit)
		if err != nil {
			return err
		}
		switch ev {
		case evLimit:
			if err := b.flush(); err != nil {
				return err
			}
			b.slide()
		case evBoundary:
			if b.due() {
				b.checkpoint()
			}
		case evStreamEnd:
			if err := b.flush(); err != nil {
				return err
			}
			crc, size, at, err := d.memberEnd()
			if err != nil {
				return err
			}
			if crc != b.crc {
				return fmt.Errorf("%w in member trailer at compressed offset %d", ErrChecksum, at)
			}
			if size != uint32(b.memberN) {
				return fmt.Errorf("%w in member trailer at compressed offset %d", ErrSize, at)
			}
			more, err := d.nextMember()
			if err != nil {
				return err
			}
			b.crc, b.memberN = 0, 0
			if !more {
				b.ix.Size = b.outBase + int64(d.o)
				b.ix.CompressedSize = d.inBase + int64(d.inPos)
				return nil
			}
			if b.due() {
				b.checkpoint()
			}
		}
	}
}

// spansBeforeGrowth is how many checkpoints a stream gets at the span it
// asked for. Past that, the distance grows with the output (a 1/1024 of
// it), so a huge stream keeps a bounded number of 32 KiB windows in
// memory: 1 GiB at 1 MiB spans is 1,024 of them, 10 GiB about 3,400, and
// a 64 GiB stream (the most the default limit lets a layer expand to)
// about 5,300, where fixed spans would keep 65,536.
//
// A variable so tests can reach the growth on small streams.
var spansBeforeGrowth int64 = 1024

// due reports whether the block boundary reached is far enough from the
// last checkpoint for another.
func (b *builder) due() bool {
	out := b.outBase + int64(b.d.o)
	return out-b.lastCP >= max(b.ix.Span, out/spansBeforeGrowth)
}

// checkpoint records the current block boundary.
func (b *builder) checkpoint() {
	d := b.d
	pos := d.bitPos()
	out := b.outBase + int64(d.o)
	b.ix.Checkpoints = append(b.ix.Checkpoints, Checkpoint{
		In:     (pos + 7) / 8,
		Bits:   uint8(-pos & 7),
		Out:    out,
		Window: append([]byte(nil), d.out[max(d.histLo, d.o-windowSize):d.o]...),
	})
	b.lastCP = out
}

// flush writes the output produced since the last flush.
func (b *builder) flush() error {
	d := b.d
	p := d.out[b.flushed:d.o]
	b.crc = crc32.Update(b.crc, crc32.IEEETable, p)
	b.memberN += int64(len(p))
	b.flushed = d.o
	if _, err := b.w.Write(p); err != nil {
		return fmt.Errorf("zran: writing output at %d: %w", b.outBase+int64(b.flushed)-int64(len(p)), err)
	}
	return nil
}

// slide moves the last window of output to the front of the buffer.
func (b *builder) slide() {
	d := b.d
	drop := max(d.o-windowSize, 0)
	copy(d.out, d.out[drop:d.o])
	d.o -= drop
	d.histLo = max(d.histLo-drop, 0)
	b.flushed -= drop
	b.outBase += int64(drop)
}
