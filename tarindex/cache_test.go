package tarindex_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/layoutfs/layoutfs/tarindex"
)

func sampleArchive(t testing.TB) []byte {
	x := reg("etc/xattr", "with xattrs")
	x.hdr.PAXRecords = map[string]string{"SCHILY.xattr.user.k": "v", "SCHILY.xattr.trusted.t": "\x00\x01"}
	dev := file{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3, ModTime: epoch}}
	return writeTar(t, tar.FormatPAX, true,
		dir("./"), dir("etc/"), reg("etc/os-release", "ID=test\n"), x,
		symlink("etc/link", "os-release"), hardlink("etc/hard", "etc/os-release"),
		dev, reg("big", strings.Repeat("big data ", 10000)),
		reg("../bad", "skipped with a warning"),
	)
}

// TestCacheRoundTrip: what is stored loads back equal.
func TestCacheRoundTrip(t *testing.T) {
	c := &tarindex.Cache{Dir: t.TempDir()}
	ix := build(t, sampleArchive(t))
	if len(ix.Warnings) == 0 || ix.Entries[3].Xattrs == nil {
		t.Fatalf("sample lacks warnings or xattrs: %+v", ix)
	}
	key := "sha256:0123456789abcdef"
	if _, ok := c.LoadIndex(key); ok {
		t.Fatal("empty cache has the key")
	}
	if err := c.StoreIndex(key, ix); err != nil {
		t.Fatal(err)
	}
	got, ok := c.LoadIndex(key)
	if !ok {
		t.Fatal("stored index does not load")
	}
	if !reflect.DeepEqual(got, ix) {
		t.Errorf("round trip differs:\n%+v\n%+v", got, ix)
	}
	// An empty index too.
	empty := build(t, nil)
	if err := c.StoreIndex("empty", empty); err != nil {
		t.Fatal(err)
	}
	if got, ok := c.LoadIndex("empty"); !ok || !reflect.DeepEqual(got, empty) {
		t.Errorf("empty: %+v %v", got, ok)
	}
	// Keys with ':' and '/' stay inside the cache directory.
	if err := c.StoreIndex("a/../../b:c", ix); err != nil {
		t.Fatal(err)
	}
	for _, p := range listDir(t, c.Dir) {
		if strings.HasPrefix(p, "..") {
			t.Errorf("cache file outside: %s", p)
		}
	}
	if _, ok := c.LoadIndex("a/../../b:c"); !ok {
		t.Error("odd key does not load")
	}
}

func TestCacheNil(t *testing.T) {
	var c *tarindex.Cache
	if _, ok := c.LoadIndex("k"); ok {
		t.Error("nil cache loads")
	}
	if err := c.StoreIndex("k", &tarindex.Index{}); err != nil {
		t.Error(err)
	}
}

// TestCacheCorrupt: a damaged entry does not load, and is removed.
func TestCacheCorrupt(t *testing.T) {
	ix := build(t, sampleArchive(t))
	magic := len("layoutfs-tarindex\n")
	for name, damage := range map[string]func([]byte) []byte{
		"flip body byte":   func(b []byte) []byte { b[magic+40] ^= 1; return b },
		"flip sum byte":    func(b []byte) []byte { b[len(b)-1] ^= 1; return b },
		"truncate":         func(b []byte) []byte { return b[:len(b)/2] },
		"truncate to 10":   func(b []byte) []byte { return b[:10] },
		"empty":            func(b []byte) []byte { return nil },
		"version":          func(b []byte) []byte { b[magic]++; return b },
		"magic":            func(b []byte) []byte { b[0] = 'L'; return b },
		"trailing garbage": func(b []byte) []byte { return append(b, 0) },
	} {
		t.Run(name, func(t *testing.T) {
			c := &tarindex.Cache{Dir: t.TempDir()}
			if err := c.StoreIndex("k", ix); err != nil {
				t.Fatal(err)
			}
			files := listDir(t, c.Dir)
			var p string
			for _, f := range files {
				if fi, err := os.Stat(filepath.Join(c.Dir, f)); err == nil && fi.Mode().IsRegular() {
					p = filepath.Join(c.Dir, f)
				}
			}
			if p == "" {
				t.Fatalf("no cache file in %q", files)
			}
			b := readFile(t, p)
			if err := os.WriteFile(p, damage(bytes.Clone(b)), 0o644); err != nil {
				t.Fatal(err)
			}
			if got, ok := c.LoadIndex("k"); ok {
				t.Fatalf("damaged entry loaded: %+v", got)
			}
			if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("damaged entry left in place: %v", err)
			}
		})
	}
}

// readerAt counts reads and, once armed, fails every read past the magic
// bytes: an Open that gets through did not rebuild the index.
type readerAt struct {
	r     io.ReaderAt
	armed atomic.Bool
	reads atomic.Int64
}

var errArmed = errors.New("read past the magic bytes")

func (r *readerAt) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > 4 {
		r.reads.Add(1)
		if r.armed.Load() {
			return 0, errArmed
		}
	}
	return r.r.ReadAt(p, off)
}

func checkArchive(t *testing.T, a *tarindex.Archive, plain []byte) {
	t.Helper()
	var std []stdEntry
	for _, s := range readStd(t, plain) {
		if _, err := tarindex.CleanName(s.hdr.Name); err == nil {
			std = append(std, s)
		}
	}
	if len(a.Entries) != len(std) {
		t.Fatalf("%d entries, archive/tar reads %d", len(a.Entries), len(std))
	}
	for i := range a.Entries {
		e := &a.Entries[i]
		if e.Type == tar.TypeReg {
			if got := readEntry(t, e, a.Data); !bytes.Equal(got, std[i].data) {
				t.Errorf("%s: data differs", e.Name)
			}
		}
	}
}

// TestOpenCacheSkipsBuild: a second Open of the same key reads nothing of
// the archive but its first bytes.
func TestOpenCacheSkipsBuild(t *testing.T) {
	plain := sampleArchive(t)
	c := &tarindex.Cache{Dir: t.TempDir()}
	r := &readerAt{r: bytes.NewReader(plain)}
	ctx := context.Background()
	a1, err := tarindex.Open(ctx, r, int64(len(plain)), "sha256:aaaa", tarindex.Options{Cache: c})
	if err != nil {
		t.Fatal(err)
	}
	if r.reads.Load() == 0 {
		t.Fatal("first Open read nothing")
	}
	r.armed.Store(true)
	r.reads.Store(0)
	a2, err := tarindex.Open(ctx, r, int64(len(plain)), "sha256:aaaa", tarindex.Options{Cache: c})
	if err != nil {
		t.Fatalf("second Open: %v", err)
	}
	if n := r.reads.Load(); n != 0 {
		t.Errorf("second Open read the archive %d times", n)
	}
	if !reflect.DeepEqual(a1.Index, a2.Index) || a2.Compression != tarindex.None {
		t.Errorf("indexes differ")
	}
	// A different key is a different archive: it is built.
	if _, err := tarindex.Open(ctx, r, int64(len(plain)), "sha256:bbbb", tarindex.Options{Cache: c}); err == nil || !strings.Contains(err.Error(), errArmed.Error()) {
		t.Errorf("Open of an unknown key: %v", err)
	}
	// A cached index covering more than the archive holds is stale.
	r.armed.Store(false)
	short := writeTar(t, tar.FormatUnknown, true, reg("x", "x"))
	a3, err := tarindex.Open(ctx, bytes.NewReader(short), int64(len(short)), "sha256:aaaa", tarindex.Options{Cache: c})
	if err != nil {
		t.Fatal(err)
	}
	if len(a3.Entries) != 1 || a3.Entries[0].Name != "x" {
		t.Errorf("stale index served: %+v", a3.Entries)
	}
}

func gzipped(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zstded(t testing.TB, b []byte) []byte {
	zw, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer zw.Close()
	return zw.EncodeAll(b, nil)
}

// zstdFrames compresses b as several zstd frames, as zstd --long or a
// seekable-format writer would.
func zstdFrames(t testing.TB, b []byte, n int) []byte {
	var out []byte
	step := (len(b) + n - 1) / n
	for i := 0; i < len(b); i += step {
		out = append(out, zstded(t, b[i:min(i+step, len(b))])...)
	}
	return out
}

// TestOpenCompressed: gzip and zstd archives give the entries of the
// uncompressed one, what they need for reads lands in the cache (gzip
// checkpoints, zstd frame index, a single-frame zstd archive's data), and
// a second Open reads none of the compressed archive.
func TestOpenCompressed(t *testing.T) {
	plain := sampleArchive(t)
	ctx := context.Background()
	base, err := tarindex.Open(ctx, bytes.NewReader(plain), int64(len(plain)), "plain", tarindex.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		comp    tarindex.Compression
		b       []byte
		files   []string // what the cache holds after the first Open
		inPlace bool     // reads go to the compressed archive
	}{
		{"gzip", tarindex.Gzip, gzipped(t, plain), []string{"index/sha256-cccc", "zran/sha256-cccc"}, true},
		{"zstd", tarindex.Zstd, zstded(t, plain), []string{"data/sha256-cccc", "data-stamp/sha256-cccc", "index/sha256-cccc", "zstd/sha256-cccc"}, false},
		{"zstd-frames", tarindex.Zstd, zstdFrames(t, plain, 3), []string{"index/sha256-cccc", "zstd/sha256-cccc"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &tarindex.Cache{Dir: t.TempDir()}
			r := &readerAt{r: bytes.NewReader(tc.b)}
			var progress atomic.Int64
			a, err := tarindex.Open(ctx, r, int64(len(tc.b)), "sha256:cccc", tarindex.Options{Cache: c, Progress: func(done, total int64) {
				if total != int64(len(tc.b)) || done > total {
					t.Errorf("progress %d/%d", done, total)
				}
				progress.Store(done)
			}})
			if err != nil {
				t.Fatal(err)
			}
			if a.Compression != tc.comp {
				t.Errorf("compression %v", a.Compression)
			}
			if tc.comp == tarindex.Gzip && progress.Load() != int64(len(tc.b)) {
				t.Errorf("last progress %d of %d", progress.Load(), len(tc.b))
			}
			if !reflect.DeepEqual(a.Entries, base.Entries) {
				t.Errorf("entries differ from the uncompressed archive:\n%+v\n%+v", a.Entries, base.Entries)
			}
			checkArchive(t, a, plain)
			var files []string
			for _, f := range listDir(t, c.Dir) {
				if fi, err := os.Stat(filepath.Join(c.Dir, f)); err == nil && fi.Mode().IsRegular() {
					files = append(files, f)
				}
			}
			if !reflect.DeepEqual(files, tc.files) {
				t.Errorf("cache holds %q, want %q", files, tc.files)
			}
			if data := filepath.Join(c.Dir, "data", "sha256-cccc"); slices.Contains(tc.files, "data/sha256-cccc") {
				if got := readFile(t, data); !bytes.Equal(got, plain) {
					t.Errorf("cached data file differs from the uncompressed archive")
				}
			}
			r.armed.Store(true)
			a2, err := tarindex.Open(ctx, r, int64(len(tc.b)), "sha256:cccc", tarindex.Options{Cache: c})
			if err != nil {
				t.Fatalf("second Open: %v", err)
			}
			if a2.Compression != tc.comp || !reflect.DeepEqual(a2.Entries, base.Entries) {
				t.Errorf("second Open differs")
			}
			if tc.inPlace {
				r.armed.Store(false)
			}
			checkArchive(t, a2, plain)
			closeData(a)
			closeData(a2)
		})
	}
}

func closeData(a *tarindex.Archive) {
	if c, ok := a.Data.(io.Closer); ok {
		c.Close()
	}
}

// TestOpenCompressedNoCache: without a cache the uncompressed data lives
// in an unlinked temporary file: nothing is left in the temp directory.
func TestOpenCompressedNoCache(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	plain := sampleArchive(t)
	for _, b := range [][]byte{gzipped(t, plain), zstded(t, plain)} {
		a, err := tarindex.Open(context.Background(), bytes.NewReader(b), int64(len(b)), "k", tarindex.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if left := listDir(t, tmp); len(left) != 0 {
			t.Errorf("left in the temp dir: %q", left)
		}
		checkArchive(t, a, plain)
		closeData(a)
	}
	// A broken stream leaves nothing either.
	bad := gzipped(t, plain)
	bad = bad[:len(bad)/2]
	if _, err := tarindex.Open(context.Background(), bytes.NewReader(bad), int64(len(bad)), "k", tarindex.Options{}); err == nil {
		t.Error("truncated gzip opened")
	}
	if left := listDir(t, tmp); len(left) != 0 {
		t.Errorf("left in the temp dir after an error: %q", left)
	}
}

// TestOpenCompressedBroken: a truncated compressed archive is an error,
// and leaves no data file in the cache for the next Open to trust.
func TestOpenCompressedBroken(t *testing.T) {
	plain := sampleArchive(t)
	for _, b := range [][]byte{gzipped(t, plain), zstded(t, plain)} {
		c := &tarindex.Cache{Dir: t.TempDir()}
		bad := b[:len(b)-len(b)/3]
		if _, err := tarindex.Open(context.Background(), bytes.NewReader(bad), int64(len(bad)), "sha256:dd", tarindex.Options{Cache: c}); err == nil {
			t.Error("truncated archive opened")
		}
		if left := listDir(t, filepath.Join(c.Dir, "data")); len(left) != 0 {
			t.Errorf("left in the cache: %q", left)
		}
		// The whole archive then opens fine.
		a, err := tarindex.Open(context.Background(), bytes.NewReader(b), int64(len(b)), "sha256:dd", tarindex.Options{Cache: c})
		if err != nil {
			t.Fatal(err)
		}
		checkArchive(t, a, plain)
		closeData(a)
	}
}

func TestOpenCancel(t *testing.T) {
	plain := sampleArchive(t)
	b := gzipped(t, plain)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c := &tarindex.Cache{Dir: t.TempDir()}
	if _, err := tarindex.Open(ctx, bytes.NewReader(b), int64(len(b)), "k", tarindex.Options{Cache: c}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Open: %v", err)
	}
	if _, err := tarindex.Open(ctx, bytes.NewReader(plain), int64(len(plain)), "k2", tarindex.Options{Cache: c}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Open, uncompressed: %v", err)
	}
}

func TestDetect(t *testing.T) {
	plain := sampleArchive(t)
	for _, tc := range []struct {
		b    []byte
		want tarindex.Compression
	}{
		{plain, tarindex.None}, {gzipped(t, plain), tarindex.Gzip}, {zstded(t, plain), tarindex.Zstd},
		{nil, tarindex.None}, {[]byte{0x1f}, tarindex.None}, {[]byte{0x1f, 0x8b}, tarindex.Gzip},
	} {
		got, err := tarindex.Detect(bytes.NewReader(tc.b))
		if err != nil || got != tc.want {
			t.Errorf("Detect(% x...) = %v, %v; want %v", head(tc.b), got, err, tc.want)
		}
	}
}
