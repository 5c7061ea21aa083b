package tarindex

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"testing"
)

// benchTOCFiles is a layer of about 64 MiB: small files of 0 to 16 KiB
// (8 KiB on average) in directories of 40, and 8 files of 2 MiB.
func benchTOCFiles(small int) []tfile {
	rnd := rand.New(rand.NewSource(1))
	words := []string{"layer", "index", "chunk", "member", "frame", "table", "contents", "gzip", "zstd", "tar "}
	text := func(n int) []byte {
		var b bytes.Buffer
		for b.Len() < n {
			b.WriteString(words[rnd.Intn(len(words))])
			b.WriteByte(" \n"[rnd.Intn(2)])
		}
		return b.Bytes()[:n]
	}
	var files []tfile
	for i := range small {
		files = append(files, treg(fmt.Sprintf("usr/share/d%03d/f%05d.txt", i/40, i), text(rnd.Intn(16<<10))))
	}
	for i := range 8 + (6000-small)/256 {
		files = append(files, treg(fmt.Sprintf("opt/big%d.bin", i), text(2<<20)))
	}
	return files
}

// The two shapes of layer the Open benchmarks use: 6000 small files and
// 8 large ones, the metadata-heavy case (a /usr/share), or 200 small files
// and 31 large ones (binaries).
var benchShapes = []struct {
	name  string
	small int
}{{"6008-files", 6000}, {"231-files", 200}}

// BenchmarkOpenEstargz: the first Open of an eStargz layer (no cache)
// through its table of contents, against the full pass that inflates it
// all (zran checkpoints and the tar index). The ratio of the two is what
// the TOC saves on a first mount.
func BenchmarkOpenEstargz(b *testing.B) {
	for _, shape := range benchShapes {
		b.Run(shape.name, func(b *testing.B) {
			blob := makeEstargz(b, benchTOCFiles(shape.small), estargzOpts{eof: true})
			benchOpenTOC(b, blob, EStargz, func(ctx context.Context, r *bytes.Reader) error {
				_, err := Options{}.openGzip(ctx, r, int64(len(blob)), "")
				return err
			})
		})
	}
}

// BenchmarkOpenZstdChunked: the same for a zstd:chunked layer, against
// the full pass over its frames.
func BenchmarkOpenZstdChunked(b *testing.B) {
	for _, shape := range benchShapes {
		b.Run(shape.name, func(b *testing.B) {
			blob := makeZstdChunked(b, benchTOCFiles(shape.small), zstdChunkedOpts{chunk: 64 << 10})
			benchOpenTOC(b, blob, ZstdChunked, func(ctx context.Context, r *bytes.Reader) error {
				a, err := Options{}.openZstd(ctx, r, int64(len(blob)), "")
				if err == nil && len(a.Entries) == 0 {
					err = fmt.Errorf("no entries")
				}
				return err
			})
		})
	}
}

func benchOpenTOC(b *testing.B, blob []byte, comp Compression, full func(context.Context, *bytes.Reader) error) {
	ctx := context.Background()
	plain := int64(len(decompressAll(b, blob)))
	b.Logf("layer: %d bytes compressed, %d uncompressed", len(blob), plain)
	b.Run("toc", func(b *testing.B) {
		b.SetBytes(plain)
		for b.Loop() {
			a, err := Open(ctx, bytes.NewReader(blob), int64(len(blob)), "", Options{})
			if err != nil || a.Compression != comp {
				b.Fatalf("Open: %v, %v", err, a.Compression)
			}
		}
	})
	b.Run("full-pass", func(b *testing.B) {
		b.SetBytes(plain)
		for b.Loop() {
			if err := full(ctx, bytes.NewReader(blob)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkTOCRead: a 4 KiB read at a random offset of a 32 MiB file in
// an eStargz layer of 4 MiB chunks, with nothing decompressed yet (cold),
// and reading the file front to back in 128 KiB reads (sequential).
func BenchmarkTOCRead(b *testing.B) {
	files := benchTOCFiles(6000)
	var big []byte
	for _, f := range files[len(files)-8:] {
		big = append(big, f.body...)
	}
	files = append(files, treg("opt/huge.bin", append(big, big...)))
	blob := makeEstargz(b, files, estargzOpts{eof: true})
	a, err := Open(context.Background(), bytes.NewReader(blob), int64(len(blob)), "", Options{})
	if err != nil || a.Compression != EStargz {
		b.Fatalf("Open: %v", err)
	}
	e := entryNamed(b, a, "opt/huge.bin")
	t := a.Data.(*tocReader).t
	b.Run("cold-4k", func(b *testing.B) {
		rnd := rand.New(rand.NewSource(1))
		p := make([]byte, 4096)
		for b.Loop() {
			r := newTOCReader(t, bytes.NewReader(blob)) // nothing cached
			if _, err := r.ReadAt(p, e.Offset+rnd.Int63n(e.Size-4096)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sequential", func(b *testing.B) {
		b.SetBytes(e.Size)
		p := make([]byte, 128<<10)
		for b.Loop() {
			r := newTOCReader(t, bytes.NewReader(blob))
			for off := int64(0); off < e.Size; off += int64(len(p)) {
				if _, err := r.ReadAt(p[:min(int64(len(p)), e.Size-off)], e.Offset+off); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
