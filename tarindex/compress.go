package tarindex

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
)

// Compression is how a stream is compressed, detected from its first bytes.
type Compression int

// The compressions layoutfs reads.
const (
	None Compression = iota
	Gzip
	Zstd
)

func (c Compression) String() string {
	switch c {
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	case EStargz:
		return "estargz"
	case ZstdChunked:
		return "zstd:chunked"
	}
	return "none"
}

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// Detect tells the compression of the stream in r from its magic bytes.
func Detect(r io.ReaderAt) (Compression, error) {
	var head [4]byte
	n, err := r.ReadAt(head[:], 0)
	if err != nil && err != io.EOF {
		return None, err
	}
	switch {
	case bytes.HasPrefix(head[:n], gzipMagic):
		return Gzip, nil
	case bytes.HasPrefix(head[:n], zstdMagic):
		return Zstd, nil
	}
	return None, nil
}

// NewDecompressor returns a reader of the uncompressed stream of r.
func NewDecompressor(c Compression, r io.Reader) (io.ReadCloser, error) {
	switch c {
	case Gzip, EStargz:
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return zr, nil
	case Zstd, ZstdChunked:
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(1<<30))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		return zr.IOReadCloser(), nil
	}
	return io.NopCloser(r), nil
}
