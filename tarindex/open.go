package tarindex

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"

	"github.com/layoutfs/layoutfs/tarindex/zran"
	"github.com/layoutfs/layoutfs/tarindex/zstdframes"
)

// Archive is an indexed tar archive, ready for reads.
type Archive struct {
	*Index
	// Data is the uncompressed archive: entry offsets point into it.
	Data io.ReaderAt
	// Verified is true when Options.Verify was applied to every byte of
	// the stored blob during this Open and matched. A caller that asked for
	// Verify and gets false must check the blob itself.
	Verified    bool
	Compression Compression
	// Cache is the cache the archive was opened with (nil for none), for
	// what callers derive from the index and keep beside it.
	Cache *Cache
}

// File returns the file the archive's uncompressed bytes lie in and the
// offset in it where the archive starts, when there is one: an uncompressed
// archive on disk, a member of an uncompressed outer tarball (a chain of
// sections over the outer file), or a decompressed copy in the cache. Reads
// can then go to the file's descriptor directly (splice), skipping a copy.
func (a *Archive) File() (f *os.File, off int64, ok bool) {
	r := a.Data
	for {
		switch d := r.(type) {
		case *os.File:
			return d, off, true
		case *io.SectionReader:
			outer, base, _ := d.Outer()
			r, off = outer, off+base
		default:
			return nil, 0, false
		}
	}
}

// Options tune Open. The zero value works: no cache, no progress.
type Options struct {
	Cache *Cache
	// Progress, when set, is called now and then with the stored bytes
	// consumed and the total, while a pass reads an archive whole.
	Progress func(done, total int64)
	// Span is the distance between gzip checkpoints; 0 is zran's default.
	Span int64
	// Verify, when set, is fed every byte of the stored blob in a pass that
	// reads it whole (the index build of an uncompressed or gzip blob, the
	// decompression of a single-frame zstd one), and must say Verified at
	// its end: a layer is checked against its digest at no extra read.
	Verify Verifier
	// NoTOC indexes an eStargz or zstd:chunked layer by a full pass like
	// any other, not from its table of contents: to check the tar stream
	// itself (the TOC is believed, see toc.go).
	NoTOC bool
}

// Verifier hashes a stream and tells whether it matched; go-digest's
// Digest.Verifier() is one.
type Verifier interface {
	io.Writer
	Verified() bool
}

// ErrMismatch means a blob did not match the digest it was checked
// against.
var ErrMismatch = errors.New("tarindex: stream does not match its digest")

// errAbandoned ends a pass whose reader gave up on it.
var errAbandoned = errors.New("tarindex: pass abandoned")

// source is the reader of a whole-stream pass: progress, cancellation and
// the digest check.
func (o Options) source(ctx context.Context, r io.ReaderAt, size int64) *progressReader {
	return &progressReader{ctx: ctx, r: io.NewSectionReader(r, 0, size), total: size, report: o.Progress, verify: o.Verify}
}

// checkDigest finishes the digest check of a pass: bytes the decompressor
// did not need (padding after the last member) are hashed too.
func (o Options) checkDigest(p *progressReader) error {
	if o.Verify == nil {
		return nil
	}
	if _, err := discard(p); err != nil {
		return err
	}
	if !o.Verify.Verified() {
		return ErrMismatch
	}
	return nil
}

// spanCache bounds the decoded gzip spans kept for reads, across every
// archive the process has open: about six 1 MiB spans. 32 MiB cost the
// daemon 22 MB more peak RSS after cp -a of the bench's 1 GiB gzip
// oci-archive, for no faster cats or cp -a (3 runs each, interleaved).
var spanCache = zran.NewCache(8 << 20)

// Open indexes the archive of size bytes in r, known to the cache by key (a
// blob digest, or a file identity), or loads the index from the cache.
//
// An uncompressed archive is read in place. A gzip archive is read through
// checkpoints (zran): one pass builds the tar index and the checkpoint
// index together, and a read inflates from the nearest checkpoint. A zstd
// archive of several frames is read frame by frame; a single-frame one is
// decompressed once into the cache directory (or an unlinked temporary
// file without a cache).
//
// An eStargz or zstd:chunked layer is indexed from the table of contents
// it carries, with no pass over its contents (see toc.go); such an archive
// is not Verified, and its Compression says which format it is.
func Open(ctx context.Context, r io.ReaderAt, size int64, key string, o Options) (*Archive, error) {
	comp, err := Detect(r)
	if err != nil {
		return nil, err
	}
	var a *Archive
	var tocWarning string
	if !o.NoTOC {
		if a, tocWarning, err = o.openTOC(ctx, r, size, key, comp); err != nil {
			return nil, err
		}
	}
	if a == nil {
		switch comp {
		case Gzip:
			a, err = o.openGzip(ctx, r, size, key)
		case Zstd:
			a, err = o.openZstd(ctx, r, size, key)
		default:
			a, err = o.openBlob(ctx, r, size, key)
		}
		if err != nil {
			return nil, err
		}
		a.Compression = comp
		if tocWarning != "" {
			a.Warnings = append(a.Warnings[:len(a.Warnings):len(a.Warnings)], tocWarning)
		}
	}
	a.Cache = o.Cache
	return a, nil
}

// stored notes a failed cache write on the index: the cache only saves
// work, so layoutfs goes on without it.
func (o Options) stored(ix *Index, err error) {
	if err != nil {
		ix.Warnings = append(ix.Warnings, fmt.Sprintf("index cache: %v (going on without it)", err))
	}
}

// openBlob indexes an uncompressed blob. When it is to be checked against
// its digest, one sequential pass both hashes it and indexes it (see
// onePass): hashing reads every byte anyway, and a header pass of its own
// would cost a pread per entry on top.
func (o Options) openBlob(ctx context.Context, r io.ReaderAt, size int64, key string) (*Archive, error) {
	if o.Verify == nil {
		return o.openPlain(ctx, r, size, key)
	}
	read := o
	read.Verify = nil // onePass hashes, on its own goroutine
	pass := newOnePass(read.source(ctx, r, size), size, o.Verify)
	defer pass.stop()
	ix, cached := o.Cache.LoadIndex(key)
	if !cached || ix.Size > size {
		var err error
		if ix, err = Build(ctx, pass); err != nil {
			return nil, err
		}
		cached = false
	}
	if err := pass.finish(); err != nil {
		return nil, err
	}
	if !o.Verify.Verified() {
		return nil, ErrMismatch
	}
	// Only now: the cache is shared by every source and keyed by digest,
	// and an index stored before the check would be served for the
	// genuine blob of that digest.
	if !cached {
		o.stored(ix, o.Cache.StoreIndex(key, ix))
	}
	return &Archive{Index: ix, Data: r, Verified: true}, nil
}

// verifyWhole reads the size bytes of r through Verify, for a layer whose
// index is not built by a pass over all of it (a zstd layer of several
// frames, a TOC), before anything derived from it is cached.
func (o Options) verifyWhole(ctx context.Context, r io.ReaderAt, size int64) error {
	return o.checkDigest(o.source(ctx, r, size))
}

// openPlain indexes an uncompressed archive, or one already made
// uncompressed, reading headers only.
func (o Options) openPlain(ctx context.Context, data io.ReaderAt, size int64, key string) (*Archive, error) {
	ix, ok := o.Cache.LoadIndex(key)
	if !ok || ix.Size > size {
		var err error
		ix, err = Build(ctx, io.NewSectionReader(data, 0, size))
		if err != nil {
			return nil, err
		}
		o.stored(ix, o.Cache.StoreIndex(key, ix))
	}
	return &Archive{Index: ix, Data: data}, nil
}

func (o Options) openGzip(ctx context.Context, r io.ReaderAt, size int64, key string) (*Archive, error) {
	ix, ok := o.Cache.LoadIndex(key)
	if ok {
		if zx := o.Cache.loadZran(key); zx != nil && ix.Size <= zx.Size {
			return &Archive{Index: ix, Data: zran.NewReader(zx, r, zran.ReaderOptions{Cache: spanCache})}, nil
		}
	}
	ix, zp, err := o.buildGzip(ctx, r, size)
	if err != nil {
		return nil, err
	}
	verified := o.Verify != nil
	// Stored a window at a time, then read back from the file as a warm
	// open reads it, the windows left there; without a cache, or when
	// storing failed, they stay compressed in memory.
	var loaded *zran.Index
	if err := o.Cache.storeZran(key, zp); err != nil {
		o.stored(ix, err)
	} else {
		loaded = o.Cache.loadZran(key)
	}
	if loaded != nil {
		zp = loaded
	} else if b, err := zp.MarshalBinary(); err == nil {
		var packed zran.Index
		if packed.UnmarshalBinary(b) == nil {
			zp = &packed
		}
	}
	o.stored(ix, o.Cache.StoreIndex(key, ix))
	return &Archive{Index: ix, Data: zran.NewReader(zp, r, zran.ReaderOptions{Cache: spanCache}), Verified: verified}, nil
}

// buildGzip inflates the stream once, feeding the tar indexer and the
// checkpoint builder from the same pass.
func (o Options) buildGzip(ctx context.Context, r io.ReaderAt, size int64) (*Index, *zran.Index, error) {
	pr, pw := io.Pipe()
	type result struct {
		ix  *zran.Index
		err error
	}
	done := make(chan result, 1)
	go func() {
		var res result
		defer func() {
			// Nothing above this goroutine would recover a panic: it
			// would take the whole daemon down.
			if p := recover(); p != nil {
				res = result{nil, fmt.Errorf("panic: %v\n%s", p, debug.Stack())}
			}
			pw.CloseWithError(res.err)
			done <- res
		}()
		src := o.source(ctx, r, size)
		res.ix, res.err = zran.Build(src, pw, zran.Options{Span: o.Span})
		if res.err == nil {
			res.err = o.checkDigest(src)
		}
	}()
	// Also when Build panics: the inflater must not wait on the pipe for
	// ever. (A pipe keeps the first error it is closed with.)
	defer pr.CloseWithError(errAbandoned)
	ix, err := Build(ctx, pr)
	if err == nil {
		// Past the end-of-archive blocks there may be padding: let the
		// inflater finish the stream and check its CRC.
		_, err = io.Copy(io.Discard, pr)
	}
	pr.CloseWithError(err)
	res := <-done
	if res.err != nil {
		return nil, nil, fmt.Errorf("gzip: %w", res.err)
	}
	if err != nil {
		return nil, nil, err
	}
	return ix, res.ix, nil
}

func (o Options) openZstd(ctx context.Context, r io.ReaderAt, size int64, key string) (*Archive, error) {
	var fx zstdframes.Index
	cached := o.Cache.loadBinary("zstd", key, &fx)
	if !cached {
		built, err := zstdframes.BuildLimit(r, size, limitOf(ctx))
		if errors.Is(err, zstdframes.ErrTooLarge) {
			return nil, fmt.Errorf("%w: zstd: %w", ErrTooLarge, err)
		}
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		fx = *built
	}
	store := func() {
		if !cached {
			if err := o.Cache.storeBinary("zstd", key, &fx); err != nil {
				o.Cache.warn(err)
			}
		}
	}
	frames := 0
	for _, f := range fx.Frames {
		if !f.Skippable {
			frames++
		}
	}
	if frames > 1 {
		// Nothing derived from the blob is cached before it is checked:
		// a frame table or an index of a forged blob would be served
		// for the genuine one.
		if o.Verify != nil {
			if err := o.verifyWhole(ctx, r, size); err != nil {
				return nil, fmt.Errorf("zstd: %w", err)
			}
		}
		store()
		a, err := o.openPlain(ctx, fx.ReaderAt(r), fx.Size, key)
		if a != nil {
			a.Verified = o.Verify != nil
		}
		return a, err
	}
	// One frame: random access would mean decoding from the start on every
	// read, so decode it once into a file (checked as it is decoded).
	f, verified, err := o.uncompressed(ctx, r, size, key, Zstd)
	if err != nil {
		return nil, err
	}
	if verified || o.Verify == nil {
		store()
	}
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	a, err := o.openPlain(ctx, f, st.Size(), key)
	if a != nil {
		a.Verified = verified
	}
	return a, err
}

// uncompressed returns an open file holding the uncompressed stream of r,
// kept in the cache directory when there is one, else an unlinked temporary
// file, and whether Verify was applied (it is when the file is made, not
// when it comes from the cache). The file stays open for the life of the
// process: reads go to its descriptor.
func (o Options) uncompressed(ctx context.Context, r io.ReaderAt, size int64, key string, comp Compression) (*os.File, bool, error) {
	if f, ok := o.Cache.loadData(key); ok {
		return f, false, nil
	}
	f, err := o.Cache.createData()
	if err != nil {
		f, err = os.CreateTemp("", "layoutfs-*")
		if err != nil {
			return nil, false, err
		}
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	src := o.source(ctx, r, size)
	zr, err := NewDecompressor(comp, src)
	if err != nil {
		return nil, false, err
	}
	defer zr.Close()
	// Stop at the limit: a decompression bomb must not fill the disk.
	var out io.Reader = zr
	limit := limitOf(ctx)
	if limit > 0 {
		out = io.LimitReader(zr, limit+1)
	}
	n, err := io.Copy(f, out)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", comp, err)
	}
	if limit > 0 && n > limit {
		return nil, false, fmt.Errorf("%w: %s stream expands past %d bytes", ErrTooLarge, comp, limit)
	}
	if err := o.checkDigest(src); err != nil {
		return nil, false, fmt.Errorf("%s: %w", comp, err)
	}
	if filepath.Dir(f.Name()) == os.TempDir() || o.Cache.storeData(key, f) != nil {
		os.Remove(f.Name())
	}
	ok = true
	return f, o.Verify != nil, nil
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
	verify io.Writer
}

func (p *progressReader) Read(b []byte) (int, error) {
	if err := p.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := p.r.Read(b)
	p.done += int64(n)
	if p.verify != nil {
		p.verify.Write(b[:n])
	}
	if p.report != nil && (p.done-p.last >= 4<<20 || err == io.EOF) {
		p.last = p.done
		p.report(p.done, p.total)
	}
	return n, err
}
