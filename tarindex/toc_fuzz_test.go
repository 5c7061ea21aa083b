package tarindex

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"testing"
	"time"

	"github.com/layoutfs/layoutfs/internal/fuzzseed"
)

// fuzzTOCFiles is a small layer for FuzzTOC: a file split in chunks, one
// sharing a member with it, links, a directory.
func fuzzTOCFiles() []tfile {
	return []tfile{
		{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "d/", Mode: 0o755, ModTime: tocEpoch}},
		treg("d/a", bytes.Repeat([]byte("chunked data "), 300)),
		treg("d/b", []byte("small")),
		treg("d/empty", nil),
		{hdr: tar.Header{Typeflag: tar.TypeLink, Name: "d/h", Linkname: "d/b", ModTime: tocEpoch}},
	}
}

// fuzzTOCPayloads are the two payloads a fuzzed TOC is attached to, and
// the TOCs their writers made, as seeds.
func fuzzTOCPayloads(t testing.TB) (estargz, zstd []byte, seeds [][]byte) {
	var doc tocDoc
	capture := func(d *tocDoc) { doc = *d }
	full := makeEstargz(t, fuzzTOCFiles(), estargzOpts{chunk: 1000, group: 600, eof: true, edit: capture})
	estargz = full[:mustFooter(t, full).tocOff]
	js, _ := json.Marshal(doc)
	seeds = append(seeds, js)
	full = makeZstdChunked(t, fuzzTOCFiles(), zstdChunkedOpts{chunk: 1000, edit: capture})
	zstd = full[:mustFooter(t, full).tocOff-skippableHeader]
	js, _ = json.Marshal(doc)
	seeds = append(seeds, js)
	return estargz, zstd, seeds
}

// FuzzTOC attaches arbitrary bytes as the table of contents of an eStargz
// (first byte even) or zstd:chunked layer whose payload is sound. Reading
// the TOC must not panic or hang, and refuses with errBadTOC what it does
// not use (Open then does a full pass, which FuzzBuild covers). A TOC it
// uses puts every entry in the virtual space, tiles that space with chunks
// inside the blob, reads every file to its end or to ErrTOCMismatch, and
// round-trips through its cache encoding.
func FuzzTOC(f *testing.F) {
	estargz, zstd, seeds := fuzzTOCPayloads(f)
	for i, s := range seeds {
		f.Add(append([]byte{byte(i)}, s...))
	}
	f.Add([]byte{0})
	f.Add([]byte("\x00{\"version\":1,\"entries\":[{\"name\":\"x\",\"type\":\"reg\",\"size\":5,\"offset\":0,\"innerOffset\":512}]}"))
	f.Add([]byte("\x01{\"version\":1,\"entries\":[{\"type\":\"chunk\"}]}"))
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		defer fuzzseed.Watchdog(20 * time.Second)()
		var blob []byte
		if in[0]%2 == 0 {
			blob = estargzWithTOC(t, estargz, in[1:], in[0]%4 == 2)
		} else {
			blob = zstdChunkedWithTOC(t, zstd, in[1:], in[0]%4 == 3)
		}
		checkFuzzedTOC(t, blob)
	})
}

func checkFuzzedTOC(t *testing.T, blob []byte) {
	ctx, cancel := context.WithTimeout(WithLimit(context.Background(), 16<<20), 10*time.Second)
	defer cancel()
	size := int64(len(blob))
	r := bytes.NewReader(blob)
	comp, _ := Detect(r)
	foot, ok, err := readTOCFooter(r, size, comp)
	if !ok || err != nil {
		t.Fatalf("footer: %v, %v", ok, err)
	}
	start := time.Now()
	ix, tt, err := loadTOC(ctx, r, size, foot)
	if time.Since(start) > 5*time.Second {
		t.Fatalf("reading the TOC took %v", time.Since(start))
	}
	if err != nil {
		if !errors.Is(err, errBadTOC) {
			t.Fatalf("a TOC refused without errBadTOC: %v", err)
		}
		return
	}
	var voff int64
	for i := range tt.Chunks {
		c := &tt.Chunks[i]
		f := &tt.Frames[c.Frame]
		if c.VOff != voff || c.Size <= 0 || c.Inner < 0 || c.Inner+c.Size > f.Need || f.Off < 0 || f.Off >= f.End || f.End > size {
			t.Fatalf("chunk %d %+v of frame %+v (space at %d, blob of %d)", i, c, f, voff, size)
		}
		voff += c.Size
	}
	if voff != tt.Size || ix.Size != tt.Size {
		t.Fatalf("chunks cover %d of a %d-byte space (index %d)", voff, tt.Size, ix.Size)
	}
	data := newTOCReader(tt, r)
	for i := range ix.Entries {
		e := &ix.Entries[i]
		if e.Offset < 0 || e.Size < 0 || e.Offset+e.Size > tt.Size || e.Sparse {
			t.Fatalf("entry %q at %d+%d outside the %d-byte space", e.Name, e.Offset, e.Size, tt.Size)
		}
		if !e.IsRegular() || e.Size > 1<<20 {
			continue
		}
		b := make([]byte, e.Size)
		n, err := e.Reader(data).ReadAt(b, 0)
		if err != nil && !(err == io.EOF && int64(n) == e.Size) && !errors.Is(err, ErrTOCMismatch) {
			t.Fatalf("read %q: %v", e.Name, err)
		}
	}
	ix2, tt2, _, err := decodeTOC(encodeTOC(ix, tt, ""), size)
	if err != nil {
		t.Fatalf("cache encoding does not decode: %v", err)
	}
	if !reflect.DeepEqual(ix, ix2) || !reflect.DeepEqual(tt, tt2) {
		t.Fatalf("cache encoding does not round-trip")
	}
}
