package tarindex

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Archive is an indexed tar archive, ready for reads.
type Archive struct {
	*Index
	// Data is the uncompressed archive: entry offsets point into it.
	Data        io.ReaderAt
	Compression Compression
}

// Options tune Open. The zero value works: no cache, no progress.
type Options struct {
	Cache *Cache
	// Progress, when set, is called now and then with the compressed bytes
	// consumed and the total, while a compressed archive is decompressed.
	Progress func(done, total int64)
}

// Open indexes the archive of size bytes in r, known to the cache by key (a
// blob digest, or a file identity). An uncompressed archive is read in place.
// A gzip or zstd archive is decompressed once into the cache directory (or
// an unlinked temporary file without a cache) and read from there.
func Open(ctx context.Context, r io.ReaderAt, size int64, key string, o Options) (*Archive, error) {
	comp, err := Detect(r)
	if err != nil {
		return nil, err
	}
	data := r
	dataSize := size
	if comp != None {
		f, err := o.uncompressed(ctx, r, size, key, comp)
		if err != nil {
			return nil, err
		}
		st, err := f.Stat()
		if err != nil {
			return nil, err
		}
		data, dataSize = f, st.Size()
	}
	ix, ok := o.Cache.LoadIndex(key)
	if !ok || ix.Size > dataSize {
		ix, err = Build(ctx, io.NewSectionReader(data, 0, dataSize))
		if err != nil {
			return nil, err
		}
		if err := o.Cache.StoreIndex(key, ix); err != nil {
			return nil, fmt.Errorf("store index: %w", err)
		}
	}
	return &Archive{Index: ix, Data: data, Compression: comp}, nil
}

// uncompressed returns an open file holding the uncompressed stream of r.
// The file is kept open for the life of the process; its descriptor is what
// reads go to.
func (o Options) uncompressed(ctx context.Context, r io.ReaderAt, size int64, key string, comp Compression) (*os.File, error) {
	var final string
	dir := os.TempDir()
	if o.Cache != nil {
		final = o.Cache.path("data", key)
		if f, err := os.Open(final); err == nil {
			return f, nil
		}
		dir = filepath.Dir(final)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	src := &progressReader{r: io.NewSectionReader(r, 0, size), total: size, report: o.Progress, ctx: ctx}
	zr, err := NewDecompressor(comp, src)
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	if _, err := io.Copy(f, zr); err != nil {
		return nil, fmt.Errorf("%s: %w", comp, err)
	}
	if final != "" {
		if err := os.Rename(f.Name(), final); err != nil {
			return nil, err
		}
	} else {
		os.Remove(f.Name())
	}
	ok = true
	return f, nil
}

// progressReader reports how far a long read has come, and stops it when
// the context is done.
type progressReader struct {
	ctx    context.Context
	r      io.Reader
	done   int64
	total  int64
	report func(done, total int64)
	last   int64
}

func (p *progressReader) Read(b []byte) (int, error) {
	if err := p.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := p.r.Read(b)
	p.done += int64(n)
	if p.report != nil && (p.done-p.last >= 4<<20 || err == io.EOF) {
		p.last = p.done
		p.report(p.done, p.total)
	}
	return n, err
}
