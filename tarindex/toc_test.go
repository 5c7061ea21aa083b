package tarindex

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/layoutfs/layoutfs/internal/binfmt"
)

// stdTar is what archive/tar reads from an uncompressed stream: the
// oracle every TOC-built archive is held to.
type stdTar struct {
	hdr  *tar.Header
	data []byte
}

func readStdTar(t testing.TB, plain []byte) []stdTar {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(plain))
	var out []stdTar
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("archive/tar: %v", err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("archive/tar read %q: %v", h.Name, err)
		}
		out = append(out, stdTar{h, data})
	}
}

// decompressAll is the blob's whole uncompressed stream, as gzip -dc or
// zstd -dc give it (skippable frames and the empty footer member add
// nothing).
func decompressAll(t testing.TB, blob []byte) []byte {
	t.Helper()
	var r io.Reader
	switch {
	case bytes.HasPrefix(blob, gzipMagic):
		zr, err := gzip.NewReader(bytes.NewReader(blob))
		must(t, err)
		r = zr
	case bytes.HasPrefix(blob, zstdMagic):
		zr, err := zstd.NewReader(bytes.NewReader(blob))
		must(t, err)
		defer zr.Close()
		r = zr
	default:
		t.Fatalf("blob is neither gzip nor zstd")
	}
	b, err := io.ReadAll(r)
	must(t, err)
	return b
}

// checkAgainstTar holds every entry of a, metadata and bytes, to what
// archive/tar reads from the blob's uncompressed stream.
func checkAgainstTar(t *testing.T, a *Archive, blob []byte) {
	t.Helper()
	want := readStdTar(t, decompressAll(t, blob))
	if len(a.Entries) != len(want) {
		names := func() (s []string) {
			for _, e := range a.Entries {
				s = append(s, e.Name)
			}
			return
		}()
		t.Fatalf("%d entries (%q), archive/tar reads %d", len(a.Entries), names, len(want))
	}
	for i := range want {
		e, h := &a.Entries[i], want[i].hdr
		name := strings.Trim(strings.TrimPrefix(h.Name, "./"), "/")
		if h.Name == "./" {
			name = ""
		}
		typ := h.Typeflag
		if typ == tar.TypeRegA {
			typ = tar.TypeReg
		}
		size := h.Size
		if typ != tar.TypeReg {
			size = 0
		}
		link := h.Linkname
		if typ == tar.TypeLink {
			link = strings.TrimPrefix(link, "./")
		}
		var xattrs map[string]string
		for k, v := range h.PAXRecords {
			if x, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
				if xattrs == nil {
					xattrs = map[string]string{}
				}
				xattrs[x] = v
			}
		}
		got := fmt.Sprintf("%q %c mode=%o uid=%d gid=%d size=%d mtime=%d link=%q dev=%d,%d xattrs=%q",
			e.Name, e.Type, e.Mode, e.Uid, e.Gid, e.Size, e.ModTime, e.Linkname, e.Devmajor, e.Devminor, e.Xattrs)
		exp := fmt.Sprintf("%q %c mode=%o uid=%d gid=%d size=%d mtime=%d link=%q dev=%d,%d xattrs=%q",
			name, typ, h.Mode, h.Uid, h.Gid, size, h.ModTime.UnixNano(), link, h.Devmajor, h.Devminor, xattrs)
		if got != exp {
			t.Errorf("entry %d:\n  toc  %s\n  tar  %s", i, got, exp)
		}
		if e.Sparse || e.Offset < 0 || e.Offset+e.Size > a.Size {
			t.Errorf("entry %q at %d+%d, outside the %d-byte space", e.Name, e.Offset, e.Size, a.Size)
		}
		if typ == tar.TypeReg {
			if data := readAllAt(t, e.Reader(a.Data), e.Size); !bytes.Equal(data, want[i].data) {
				t.Errorf("entry %q: %d bytes differ from archive/tar's %d", e.Name, len(data), len(want[i].data))
			}
		}
	}
}

func readAllAt(t testing.TB, r io.ReaderAt, size int64) []byte {
	t.Helper()
	b := make([]byte, size)
	n, err := r.ReadAt(b, 0)
	if err != nil && !(err == io.EOF && int64(n) == size) {
		t.Fatalf("read %d bytes: n=%d: %v", size, n, err)
	}
	return b
}

// fullPass indexes the blob the old way, by inflating all of it.
func fullPass(t testing.TB, blob []byte) *Archive {
	t.Helper()
	ctx := context.Background()
	r := bytes.NewReader(blob)
	var a *Archive
	var err error
	if bytes.HasPrefix(blob, gzipMagic) {
		a, err = Options{}.openGzip(ctx, r, int64(len(blob)), "")
	} else {
		a, err = Options{}.openZstd(ctx, r, int64(len(blob)), "")
	}
	must(t, err)
	return a
}

// checkAgainstFullPass: the TOC gives the index a full pass gives, but
// for where the bytes lie.
func checkAgainstFullPass(t *testing.T, a *Archive, blob []byte) {
	t.Helper()
	full := fullPass(t, blob)
	if len(full.Entries) != len(a.Entries) {
		t.Fatalf("%d entries, a full pass finds %d", len(a.Entries), len(full.Entries))
	}
	for i := range full.Entries {
		x, y := full.Entries[i], a.Entries[i]
		x.Offset, x.Header, y.Offset, y.Header = 0, 0, 0, 0
		if fmt.Sprint(x) != fmt.Sprint(y) || !maps.Equal(x.Xattrs, y.Xattrs) {
			t.Errorf("entry %d:\n  toc  %+v\n  full %+v", i, y, x)
		}
	}
	if len(full.Warnings) != len(a.Warnings) {
		t.Errorf("warnings %q, full pass %q", a.Warnings, full.Warnings)
	}
}

// countReads counts reads past the first 4 bytes (what Detect reads).
type countReads struct {
	r     io.ReaderAt
	reads atomic.Int64
	bytes atomic.Int64
}

func (c *countReads) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > 4 {
		c.reads.Add(1)
		c.bytes.Add(int64(len(p)))
	}
	return c.r.ReadAt(p, off)
}

func openTOCTest(t *testing.T, blob []byte, want Compression, c *Cache) *Archive {
	t.Helper()
	a, err := Open(context.Background(), bytes.NewReader(blob), int64(len(blob)), "sha256:toc", Options{Cache: c})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if a.Compression != want {
		t.Fatalf("compression %v (warnings %q), want %v", a.Compression, a.Warnings, want)
	}
	if a.Verified {
		t.Error("a TOC-built archive says Verified: the caller would not hash the blob")
	}
	if _, _, ok := a.File(); ok {
		t.Error("File() gives a file for a virtual space")
	}
	return a
}

// checkTOCLayer runs every check on one blob: archive/tar, the full pass,
// random and concurrent reads, and a warm open from the cache that reads
// nothing of the blob.
func checkTOCLayer(t *testing.T, blob []byte, want Compression) *Archive {
	t.Helper()
	a := checkTOCOnly(t, blob, want)
	checkAgainstFullPass(t, a, blob)
	return a
}

// checkTOCOnly is checkTOCLayer without the comparison with a full pass.
func checkTOCOnly(t *testing.T, blob []byte, want Compression) *Archive {
	t.Helper()
	a := openTOCTest(t, blob, want, nil)
	checkAgainstTar(t, a, blob)
	checkRandomReads(t, a, blob)

	c := &Cache{Dir: t.TempDir()}
	a1 := openTOCTest(t, blob, want, c)
	r := &countReads{r: bytes.NewReader(blob)}
	a2, err := Open(context.Background(), r, int64(len(blob)), "sha256:toc", Options{Cache: c})
	if err != nil {
		t.Fatalf("warm Open: %v", err)
	}
	if n := r.reads.Load(); n != 0 {
		t.Errorf("warm Open read the blob %d times", n)
	}
	if a2.Compression != want || fmt.Sprint(a2.Index) != fmt.Sprint(a1.Index) {
		t.Errorf("warm Open differs: %v %+v", a2.Compression, a2.Index)
	}
	if _, err := os.Stat(filepath.Join(c.Dir, "index", "sha256-toc")); err == nil {
		t.Error("a TOC index was stored where a full pass's goes")
	}
	checkAgainstTar(t, a2, blob)
	return a
}

// checkRandomReads reads every regular entry in random pieces, from many
// goroutines at once, against one sequential read.
func checkRandomReads(t *testing.T, a *Archive, blob []byte) {
	t.Helper()
	var files []*Entry
	want := map[*Entry][]byte{}
	for i := range a.Entries {
		if e := &a.Entries[i]; e.IsRegular() && e.Size > 0 {
			files = append(files, e)
			want[e] = readAllAt(t, e.Reader(a.Data), e.Size)
		}
	}
	if len(files) == 0 {
		return
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewSource(int64(g)))
			for range 200 {
				e := files[rnd.Intn(len(files))]
				off := rnd.Int63n(e.Size)
				n := 1 + rnd.Int63n(min(e.Size-off, 70<<10))
				p := make([]byte, n)
				m, err := e.Reader(a.Data).ReadAt(p, off)
				if err != nil && !(err == io.EOF && off+int64(m) == e.Size) {
					errs <- fmt.Errorf("%q at %d+%d: %v", e.Name, off, n, err)
					return
				}
				if !bytes.Equal(p[:m], want[e][off:off+int64(m)]) {
					errs <- fmt.Errorf("%q at %d+%d: bytes differ", e.Name, off, n)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Past the end, and across entries (the space is contiguous).
	if n, err := a.Data.ReadAt(make([]byte, 10), a.Size); n != 0 || err != io.EOF {
		t.Errorf("read at the end: %d, %v", n, err)
	}
	if _, err := a.Data.ReadAt(make([]byte, 1), -1); err == nil {
		t.Error("read at -1 succeeds")
	}
	all := readAllAt(t, a.Data, a.Size)
	var joined []byte
	for i := range a.Entries {
		if e := &a.Entries[i]; e.IsRegular() {
			joined = append(joined, want[e]...)
		}
	}
	if !bytes.Equal(all, joined) {
		t.Error("one read of the whole space differs from the files end to end")
	}
}

// TestTOCEstargz: eStargz layers as today's estargz writes them (end of
// archive before the TOC), as older stargz writers did (the TOC's own tar
// continues the stream, so stargz.index.json is the last entry, as docker
// sees it), with the legacy 47-byte footer, with several files' data in
// one gzip member (innerOffset), and with files split into many chunks.
func TestTOCEstargz(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    estargzOpts
		toc  bool // stargz.index.json is an entry
	}{
		{"modern", estargzOpts{chunk: 64 << 10, eof: true}, false},
		{"no-eof", estargzOpts{chunk: 64 << 10}, true},
		{"legacy-footer", estargzOpts{chunk: 1 << 20, legacy: true}, true},
		{"grouped", estargzOpts{chunk: 64 << 10, group: 16 << 10, eof: true}, false},
		{"grouped-no-eof", estargzOpts{chunk: 8 << 10, group: 100 << 10}, true},
		{"small-chunks", estargzOpts{chunk: 1000, eof: true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			blob := makeEstargz(t, tocSample(), tc.o)
			a := checkTOCLayer(t, blob, EStargz)
			last := a.Entries[len(a.Entries)-1].Name
			if (last == stargzTOCName) != tc.toc {
				t.Errorf("last entry %q", last)
			}
		})
	}
}

// TestTOCZstdChunked: zstd:chunked layers with the footer of
// containers/storage today (64 bytes, tar-split, nanosecond times) and of
// skopeo 1.9 (40 bytes).
func TestTOCZstdChunked(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    zstdChunkedOpts
	}{
		{"footer64", zstdChunkedOpts{chunk: 16 << 10}},
		{"footer40", zstdChunkedOpts{chunk: 7000, old: true}},
		{"one-chunk-each", zstdChunkedOpts{chunk: 1 << 30}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkTOCLayer(t, makeZstdChunked(t, tocSample(), tc.o), ZstdChunked)
		})
	}
}

// TestTOCModTime: zstd:chunked TOCs keep nanoseconds; eStargz TOCs round
// to the second, and so does the index built from one (documented).
func TestTOCModTime(t *testing.T) {
	f := treg("f", []byte("x"))
	f.hdr.ModTime = time.Unix(1700000000, 600_000_000)
	f.hdr.Format = tar.FormatPAX
	files := []tfile{f}
	z := openTOCTest(t, makeZstdChunked(t, files, zstdChunkedOpts{chunk: 100}), ZstdChunked, nil)
	if got := z.Entries[0].ModTime; got != f.hdr.ModTime.UnixNano() {
		t.Errorf("zstd:chunked mtime %d, want %d", got, f.hdr.ModTime.UnixNano())
	}
	e := openTOCTest(t, makeEstargz(t, files, estargzOpts{eof: true}), EStargz, nil)
	if got := e.Entries[0].ModTime; got != 1700000001e9 {
		t.Errorf("eStargz mtime %d, want it rounded to %d", got, int64(1700000001e9))
	}
}

// TestTOCFixture: the real eStargz layer of dive's test image.
func TestTOCFixture(t *testing.T) {
	const fixture = "../../shared/fixtures/real/C-dive-oci-estargz.tar"
	f, err := os.Open(fixture)
	if err != nil {
		t.Skipf("fixture: %v", err)
	}
	defer f.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		must(t, err)
		b, err := io.ReadAll(tr)
		must(t, err)
		files[strings.TrimPrefix(h.Name, "./")] = b
	}
	blob := func(d string) []byte {
		b, ok := files["blobs/sha256/"+strings.TrimPrefix(d, "sha256:")]
		if !ok {
			t.Fatalf("no blob %s", d)
		}
		return b
	}
	var index struct{ Manifests []struct{ Digest string } }
	must(t, json.Unmarshal(files["index.json"], &index))
	var manifest struct{ Layers []struct{ Digest string } }
	must(t, json.Unmarshal(blob(index.Manifests[0].Digest), &manifest))
	layer := blob(manifest.Layers[0].Digest)
	a := checkTOCLayer(t, layer, EStargz)
	if len(a.Entries) != 1 || a.Entries[0].Name != "README.md" || a.Entries[0].Size != 11189 {
		t.Errorf("entries %+v", a.Entries)
	}
	// The whole first mount read the footer, the TOC and one member, not
	// the file's contents twice over.
	r := &countReads{r: bytes.NewReader(layer)}
	if _, err := Open(context.Background(), r, int64(len(layer)), "k", Options{}); err != nil {
		t.Fatal(err)
	}
	t.Logf("first open: %d reads, %d bytes of a %d-byte blob", r.reads.Load(), r.bytes.Load(), len(layer))
}

// TestTOCSkopeo: zstd:chunked layers made by skopeo from a layer with
// every kind of entry.
func TestTOCSkopeo(t *testing.T) {
	if _, err := exec.LookPath("skopeo"); err != nil {
		t.Skip("SKIPPED: skopeo is not installed (apt-get install skopeo); zstd:chunked from a real writer is not checked")
	}
	src := filepath.Join(t.TempDir(), "src")
	writeOCILayout(t, src, plainTar(t, tocSample()))
	dst := filepath.Join(t.TempDir(), "dst")
	out, err := exec.Command("skopeo", "copy", "-q", "--insecure-policy", "--dest-compress-format", "zstd:chunked", "oci:"+src+":t", "oci:"+dst+":t").CombinedOutput()
	if err != nil {
		t.Skipf("SKIPPED: this skopeo cannot write zstd:chunked: %v: %s", err, out)
	}
	layer := onlyLayer(t, dst)
	if !bytes.HasPrefix(layer, zstdMagic) {
		t.Fatalf("skopeo wrote no zstd layer")
	}
	// skopeo 1.9 writes the tar headers in zstd frames that declare a
	// 32 MiB window: the full pass must take those too.
	checkTOCLayer(t, layer, ZstdChunked)
}

func plainTar(t testing.TB, files []tfile) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := f.hdr
		must(t, tw.WriteHeader(&h))
		_, err := tw.Write(f.body)
		must(t, err)
	}
	must(t, tw.Close())
	return buf.Bytes()
}

// writeOCILayout writes an image of one uncompressed layer.
func writeOCILayout(t testing.TB, dir string, layer []byte) {
	put := func(b []byte) (string, int) {
		d := sha(b)
		p := filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(d, "sha256:"))
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, b, 0o644))
		return d, len(b)
	}
	ld, ln := put(layer)
	config := fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[%q]}}`, ld)
	cd, cn := put([]byte(config))
	manifest := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]}`, cd, cn, ld, ln)
	md, mn := put([]byte(manifest))
	index := fmt.Sprintf(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":%q,"size":%d,"annotations":{"org.opencontainers.image.ref.name":"t"}}]}`, md, mn)
	must(t, os.WriteFile(filepath.Join(dir, "index.json"), []byte(index), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644))
}

func onlyLayer(t testing.TB, dir string) []byte {
	read := func(d string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(d, "sha256:")))
		must(t, err)
		return b
	}
	var index struct{ Manifests []struct{ Digest string } }
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	must(t, err)
	must(t, json.Unmarshal(b, &index))
	var manifest struct{ Layers []struct{ Digest string } }
	must(t, json.Unmarshal(read(index.Manifests[0].Digest), &manifest))
	return read(manifest.Layers[0].Digest)
}

// TestTOCHostile: a TOC that is not well formed is never used: the layer
// is indexed by a full pass (and reads what archive/tar reads), with a
// warning saying why; nothing panics, hangs or reads outside the blob.
func TestTOCHostile(t *testing.T) {
	sample := tocSample()
	entry := func(name string) func(d *tocDoc) *tocRec {
		return func(d *tocDoc) *tocRec {
			for i := range d.Entries {
				if d.Entries[i].Name == name && d.Entries[i].Type != "chunk" {
					return &d.Entries[i]
				}
			}
			panic("no " + name)
		}
	}
	big, last := entry("opt/big.bin"), entry("last")
	chunkOf := func(d *tocDoc, name string, k int) *tocRec {
		for i := range d.Entries {
			if d.Entries[i].Name == name {
				if k == 0 {
					return &d.Entries[i]
				}
				k--
			}
		}
		panic("no chunk")
	}
	for _, tc := range []struct {
		name string
		edit func(d *tocDoc)
		json string
		want string // in the warning
	}{
		{name: "not JSON", json: "{not json", want: "JSON"},
		{name: "trailing data", json: `{"version":1,"entries":[]} {}`, want: "after top-level value"},
		{name: "JSON of another shape", json: `{"version":1,"entries":{"a":1}}`, want: "JSON"},
		{name: "version 2", edit: func(d *tocDoc) { d.Version = 2 }, want: "version"},
		{name: "offset past the payload", edit: func(d *tocDoc) { last(d).Offset = 1 << 40 }, want: "outside"},
		{name: "negative offset", edit: func(d *tocDoc) { last(d).Offset = -5 }, want: "outside"},
		{name: "size larger than its chunks", edit: func(d *tocDoc) {
			r := chunkOf(d, "opt/big.bin", 4)
			r.ChunkSize = 300<<10 - r.ChunkOffset
			big(d).Size += 10
		}, want: "cover"},
		{name: "size smaller than its chunks", edit: func(d *tocDoc) { big(d).Size -= 50000 }, want: "chunk of"},
		{name: "chunks overlap", edit: func(d *tocDoc) { chunkOf(d, "opt/big.bin", 2).ChunkOffset -= 100 }, want: "expected"},
		{name: "chunk larger than the file", edit: func(d *tocDoc) { chunkOf(d, "opt/big.bin", 1).ChunkSize = 1 << 40 }, want: "chunk of"},
		{name: "absurd size", edit: func(d *tocDoc) { last(d).Size = 1 << 62 }, want: "size"},
		{name: "negative size", edit: func(d *tocDoc) { last(d).Size = -1 }, want: "size"},
		{name: "files add up past the limit", edit: func(d *tocDoc) { last(d).Size = maxTOCSize - 1000 }, want: "add up"},
		{name: "absurd inner offset", edit: func(d *tocDoc) { last(d).InnerOffset = 1 << 40 }, want: "claimed"},
		{name: "dot-dot name", edit: func(d *tocDoc) { entry("etc/os-release")(d).Name = "../../etc/passwd" }, want: "unsafe"},
		{name: "hard link out", edit: func(d *tocDoc) { entry("etc/hard")(d).LinkName = "../x" }, want: "hard link"},
		{name: "NUL in a name", edit: func(d *tocDoc) { entry("empty")(d).Name = "a\x00b" }, want: "NUL"},
		{name: "unknown type", edit: func(d *tocDoc) { entry("run/fifo")(d).Type = "socket" }, want: "type"},
		{name: "chunk first", edit: func(d *tocDoc) { d.Entries = append([]tocRec{{Type: "chunk", Name: "x", Offset: 10}}, d.Entries...) }, want: "chunk of no"},
		{name: "chunk of another file", edit: func(d *tocDoc) { chunkOf(d, "opt/big.bin", 1).Name = "other" }, want: "follows"},
		{name: "xattr not base64", edit: func(d *tocDoc) { entry("etc/xattr")(d).Xattrs["user.k"] = "!!" }, want: "base64"},
		{name: "bad modtime", edit: func(d *tocDoc) { entry("empty")(d).ModTime = "yesterday" }, want: "modtime"},
		{name: "bad digest", edit: func(d *tocDoc) { last(d).ChunkDigest = "md5:abc" }, want: "sha256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := estargzOpts{chunk: 64 << 10, eof: true, edit: tc.edit}
			if tc.json != "" {
				o.json = []byte(tc.json)
			}
			blob := makeEstargz(t, sample, o)
			checkFallback(t, blob, Gzip, tc.want)
		})
	}
}

// checkFallback: the blob is indexed by a full pass, correctly, with a
// warning holding want; and a warm open keeps the warning without reading
// the TOC again.
func checkFallback(t *testing.T, blob []byte, comp Compression, want string) {
	t.Helper()
	c := &Cache{Dir: t.TempDir()}
	a, err := Open(context.Background(), bytes.NewReader(blob), int64(len(blob)), "sha256:bad", Options{Cache: c})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if a.Compression != comp {
		t.Fatalf("compression %v, want %v (a full pass)", a.Compression, comp)
	}
	warning := strings.Join(a.Warnings, "\n")
	if !strings.Contains(warning, "unusable table of contents") || !strings.Contains(warning, "full pass") || !strings.Contains(warning, want) {
		t.Errorf("warnings %q, want one saying %q", a.Warnings, want)
	}
	if full := readStdTar(t, decompressAll(t, blob)); len(full) != len(a.Entries) {
		// A dot-dot name is skipped by the full pass, with its own warning.
		if len(full) != len(a.Entries)+1 || !strings.Contains(warning, "unsafe path") {
			t.Errorf("%d entries, archive/tar reads %d", len(a.Entries), len(full))
		}
	}
	r := &countReads{r: bytes.NewReader(blob)}
	a2, err := Open(context.Background(), r, int64(len(blob)), "sha256:bad", Options{Cache: c})
	if err != nil {
		t.Fatalf("warm Open: %v", err)
	}
	if r.reads.Load() != 0 || strings.Join(a2.Warnings, "\n") != warning {
		t.Errorf("warm Open: %d reads, warnings %q", r.reads.Load(), a2.Warnings)
	}
}

// TestTOCHostileFooter: footers that point anywhere, and TOCs too large.
func TestTOCHostileFooter(t *testing.T) {
	sample := tocSample()
	good := makeEstargz(t, sample, estargzOpts{chunk: 64 << 10, eof: true})
	payload := good[:len(good)-estargzFooterSize]
	withFooter := func(off int64) []byte {
		return append(bytes.Clone(payload), estargzFooterBytes(t, off, false)...)
	}
	t.Run("toc offset past the blob", func(t *testing.T) {
		checkFallback(t, withFooter(int64(len(good))), Gzip, "outside")
	})
	t.Run("toc offset at a file's data", func(t *testing.T) {
		checkFallback(t, withFooter(10), Gzip, "eStargz TOC")
	})
	t.Run("not hex", func(t *testing.T) {
		b := withFooter(0)
		copy(b[len(b)-estargzFooterSize+16:], "zzzz")
		checkFallback(t, b, Gzip, "outside")
	})
	t.Run("toc json past the limit", func(t *testing.T) {
		// A TOC tar whose header claims a 4 GiB stargz.index.json.
		var toc bytes.Buffer
		zw := gzip.NewWriter(&toc)
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: stargzTOCName, Size: 4 << 30}
		var blk bytes.Buffer
		tw := tar.NewWriter(&blk)
		must(t, tw.WriteHeader(hdr))
		zw.Write(blk.Bytes()[:512])
		zw.Write([]byte(`{"version":1,"entries":[]}`))
		must(t, zw.Close())
		plainEnd := bytes.Clone(good[:mustFooter(t, good).tocOff])
		b := append(append(plainEnd, toc.Bytes()...), estargzFooterBytes(t, int64(len(plainEnd)), false)...)
		checkFallback(t, b, Gzip, "past the limit")
	})
	zgood := makeZstdChunked(t, sample, zstdChunkedOpts{chunk: 16 << 10})
	zfooter := func(edit func(f []byte)) []byte {
		b := bytes.Clone(zgood)
		edit(b[len(b)-zstdFooterNew:])
		return b
	}
	put := func(f []byte, i int, v uint64) {
		for k := range 8 {
			f[8*i+k] = byte(v >> (8 * k))
		}
	}
	t.Run("zstd manifest type", func(t *testing.T) {
		checkFallback(t, zfooter(func(f []byte) { put(f, 3, 2) }), Zstd, "manifest type")
	})
	t.Run("zstd manifest past the blob", func(t *testing.T) {
		checkFallback(t, zfooter(func(f []byte) { put(f, 0, uint64(len(zgood))) }), Zstd, "outside")
	})
	t.Run("zstd manifest huge", func(t *testing.T) {
		checkFallback(t, zfooter(func(f []byte) { put(f, 2, 1<<40) }), Zstd, "past the limit")
	})
	t.Run("zstd manifest length lies", func(t *testing.T) {
		checkFallback(t, zfooter(func(f []byte) { put(f, 2, 5) }), Zstd, "footer says")
	})
	t.Run("zstd manifest not zstd", func(t *testing.T) {
		checkFallback(t, zfooter(func(f []byte) { put(f, 0, 100) }), Zstd, "zstd:chunked TOC")
	})
	t.Run("zstd no skippable frame", func(t *testing.T) {
		// Not a zstd stream any more: the full pass refuses it.
		b := bytes.Clone(zgood)
		copy(b[len(b)-zstdFooterNew-skippableHeader:], "XXXX")
		_, err := Open(context.Background(), bytes.NewReader(b), int64(len(b)), "", Options{})
		if err == nil {
			t.Error("a broken zstd stream opens")
		}
	})
	t.Run("zstd chunk at the manifest", func(t *testing.T) {
		off := int64(binaryLE(zgood[len(zgood)-zstdFooterNew:]))
		b := makeZstdChunked(t, sample, zstdChunkedOpts{chunk: 16 << 10, edit: func(d *tocDoc) {
			d.Entries[len(d.Entries)-1].Offset = off
		}})
		checkFallback(t, b, Zstd, "outside")
	})
}

func binaryLE(b []byte) uint64 {
	var v uint64
	for k := range 8 {
		v |= uint64(b[k]) << (8 * k)
	}
	return v
}

// TestTOCLimit: a TOC whose files add up past WithLimit is not used; the
// full pass then refuses the layer too.
func TestTOCLimit(t *testing.T) {
	blob := makeEstargz(t, tocSample(), estargzOpts{chunk: 64 << 10, eof: true})
	ctx := WithLimit(context.Background(), 100<<10)
	_, err := Open(ctx, bytes.NewReader(blob), int64(len(blob)), "", Options{})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Open under a 100 KiB limit: %v", err)
	}
}

// TestTOCChunkDigest: a chunk whose bytes are not what its digest says
// fails the reads of that chunk, every time, and only those.
func TestTOCChunkDigest(t *testing.T) {
	for _, tc := range []struct {
		name string
		blob func(edit func(*tocDoc)) []byte
		comp Compression
	}{
		{"estargz", func(edit func(*tocDoc)) []byte {
			return makeEstargz(t, tocSample(), estargzOpts{chunk: 64 << 10, eof: true, edit: edit})
		}, EStargz},
		{"zstd", func(edit func(*tocDoc)) []byte {
			return makeZstdChunked(t, tocSample(), zstdChunkedOpts{chunk: 16 << 10, edit: edit})
		}, ZstdChunked},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wrong := sha([]byte("something else"))
			blob := tc.blob(func(d *tocDoc) {
				for i := range d.Entries {
					r := &d.Entries[i]
					switch {
					case r.Name == "opt/big.bin" && r.Type == "chunk" && r.ChunkOffset > 100<<10 && r.ChunkOffset < 200<<10:
						r.ChunkDigest = wrong
					case r.Name == "last":
						r.Digest, r.ChunkDigest = wrong, "" // one chunk: the file digest is its
					}
				}
			})
			a := openTOCTest(t, blob, tc.comp, nil)
			for i := range a.Entries {
				e := &a.Entries[i]
				if !e.IsRegular() || e.Size == 0 {
					continue
				}
				for range 2 {
					_, err := e.Reader(a.Data).ReadAt(make([]byte, e.Size), 0)
					switch e.Name {
					case "opt/big.bin", "last":
						if !errors.Is(err, ErrTOCMismatch) {
							t.Errorf("%q: %v, want ErrTOCMismatch", e.Name, err)
						}
					default:
						if err != nil && err != io.EOF {
							t.Errorf("%q: %v", e.Name, err)
						}
					}
				}
			}
			// The start of big.bin lies in chunks that match.
			big := entryNamed(t, a, "opt/big.bin")
			if _, err := big.Reader(a.Data).ReadAt(make([]byte, 1000), 0); err != nil {
				t.Errorf("a good chunk: %v", err)
			}
		})
	}
}

func entryNamed(t testing.TB, a *Archive, name string) *Entry {
	for i := range a.Entries {
		if a.Entries[i].Name == name {
			return &a.Entries[i]
		}
	}
	t.Fatalf("no %q", name)
	return nil
}

// TestTOCShortFrame: a TOC that claims more bytes than a member holds,
// consistently (no digests to catch it), gives a read error, not a hang or
// a panic; and a member that is not gzip at all likewise.
func TestTOCShortFrame(t *testing.T) {
	blob := makeEstargz(t, tocSample(), estargzOpts{chunk: 64 << 10, eof: true, edit: func(d *tocDoc) {
		for i := range d.Entries {
			r := &d.Entries[i]
			r.Digest, r.ChunkDigest = "", ""
			if r.Name == "b513" {
				r.Size = 5000
			}
		}
	}})
	a := openTOCTest(t, blob, EStargz, nil)
	e := entryNamed(t, a, "b513")
	if _, err := e.Reader(a.Data).ReadAt(make([]byte, e.Size), 0); !errors.Is(err, ErrTOCMismatch) {
		t.Errorf("short member: %v", err)
	}
	// Corrupt the member of b512 in place.
	ix, tt, err := loadTOC(context.Background(), bytes.NewReader(blob), int64(len(blob)), mustFooter(t, blob))
	must(t, err)
	e = nil
	for i := range ix.Entries {
		if ix.Entries[i].Name == "b512" {
			e = &ix.Entries[i]
		}
	}
	var c *tocChunk
	for i := range tt.Chunks {
		if tt.Chunks[i].VOff == e.Offset {
			c = &tt.Chunks[i]
		}
	}
	bad := bytes.Clone(blob)
	bad[tt.Frames[c.Frame].Off] = 0 // no gzip member starts there
	r := newTOCReader(tt, bytes.NewReader(bad))
	if _, err := r.ReadAt(make([]byte, e.Size), e.Offset); !errors.Is(err, ErrTOCMismatch) {
		t.Errorf("corrupt member: %v", err)
	}
}

func mustFooter(t testing.TB, blob []byte) tocFooter {
	comp, _ := Detect(bytes.NewReader(blob))
	f, ok, err := readTOCFooter(bytes.NewReader(blob), int64(len(blob)), comp)
	if !ok || err != nil {
		t.Fatalf("footer: %v %v", ok, err)
	}
	return f
}

// TestTOCLargeFrame: a chunk too large to decompress whole is streamed,
// still checked against its digest first.
func TestTOCLargeFrame(t *testing.T) {
	body := make([]byte, tocWholeFrame+3<<20)
	rand.New(rand.NewSource(1)).Read(body[:1<<20]) // some incompressible bytes
	for i := 1 << 20; i < len(body); i++ {
		body[i] = byte(i / 4096)
	}
	files := []tfile{treg("small", []byte("x")), treg("huge", body), treg("after", []byte("tail"))}
	blob := makeEstargz(t, files, estargzOpts{chunk: 64 << 20, eof: true})
	a := openTOCTest(t, blob, EStargz, nil)
	checkAgainstTar(t, a, blob)
	e := entryNamed(t, a, "huge")
	p := make([]byte, 100)
	for _, off := range []int64{e.Size - 100, 5, 1 << 20, 1<<20 + 100} { // backwards, then on
		if _, err := e.Reader(a.Data).ReadAt(p, off); err != nil || !bytes.Equal(p, body[off:off+100]) {
			t.Fatalf("read at %d: %v", off, err)
		}
	}
	bad := makeEstargz(t, files, estargzOpts{chunk: 64 << 20, eof: true, edit: func(d *tocDoc) {
		for i := range d.Entries {
			if d.Entries[i].Name == "huge" {
				d.Entries[i].ChunkDigest = sha(nil)
			}
		}
	}})
	a = openTOCTest(t, bad, EStargz, nil)
	e = entryNamed(t, a, "huge")
	if _, err := e.Reader(a.Data).ReadAt(p, 0); !errors.Is(err, ErrTOCMismatch) {
		t.Errorf("large chunk with a wrong digest: %v", err)
	}
}

// TestTOCCacheCorrupt: a damaged cache entry is rebuilt, never trusted.
func TestTOCCacheCorrupt(t *testing.T) {
	blob := makeEstargz(t, tocSample(), estargzOpts{chunk: 64 << 10, eof: true})
	c := &Cache{Dir: t.TempDir()}
	openTOCTest(t, blob, EStargz, c)
	p := filepath.Join(c.Dir, "toc", "sha256-toc")
	good, err := os.ReadFile(p)
	must(t, err)
	for _, i := range []int{0, len(tocCacheMagic), len(good) / 2, len(good) - 1} {
		b := bytes.Clone(good)
		b[i] ^= 0x40
		must(t, os.WriteFile(p, b, 0o644))
		a := openTOCTest(t, blob, EStargz, c)
		checkAgainstTar(t, a, blob)
	}
	// A stored table for another blob size is not used either.
	ix, tt, _, err := decodeTOC(good, int64(len(blob)))
	must(t, err)
	if _, _, _, err := decodeTOC(encodeTOC(ix, tt, ""), int64(len(blob))-1); err == nil {
		t.Error("a table for another blob size decodes")
	}
	// Every prefix of a body fails, never panics.
	body, _ := unsealTOC(good)
	for i := range body {
		if _, _, _, err := decodeTOC(sealTOC(body[:i]), int64(len(blob))); err == nil {
			t.Fatalf("prefix of %d bytes decodes", i)
		}
	}
}

func unsealTOC(b []byte) ([]byte, bool) { return binfmt.Unseal(tocCacheMagic, tocCacheVersion, b) }
func sealTOC(body []byte) []byte        { return binfmt.Seal(tocCacheMagic, tocCacheVersion, body) }

// TestTOCNoTOC: Options.NoTOC indexes such a layer by a full pass.
func TestTOCNoTOC(t *testing.T) {
	blob := makeEstargz(t, tocSample(), estargzOpts{chunk: 64 << 10, eof: true})
	a, err := Open(context.Background(), bytes.NewReader(blob), int64(len(blob)), "", Options{NoTOC: true})
	if err != nil || a.Compression != Gzip {
		t.Fatalf("Open: %v, %v", err, a.Compression)
	}
	checkAgainstTar(t, a, blob)
}
