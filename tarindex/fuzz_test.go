package tarindex_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/layoutfs/layoutfs/internal/fuzzseed"
	"github.com/layoutfs/layoutfs/tarindex"
)

// fuzzLimit bounds what one fuzz input may expand to.
const fuzzLimit = 16 << 20

// FuzzBuild indexes arbitrary bytes. Build must not panic or hang; when it
// succeeds, every entry it kept must be one archive/tar reads from the
// same bytes, with the same metadata and the same data read back through
// the index, and no entry may point outside the archive.
func FuzzBuild(f *testing.F) {
	for _, b := range fuzzseed.Archives(fuzzseed.Dir, fuzzseed.MaxSeed()) {
		f.Add(b)
	}
	for _, b := range fuzzseed.Layers(fuzzseed.Dir, fuzzseed.MaxSeed()) {
		f.Add(b)
	}
	f.Add(writeTar(f, tar.FormatGNU, true, reg("a/b", "hello"), dir("a/"), symlink("l", "../x"), hardlink("h", "a/b")))
	f.Add(writeTar(f, tar.FormatPAX, false, reg("p/"+string(bytes.Repeat([]byte("n"), 150)), "long"), reg("../up", "x")))
	f.Add([]byte{})
	f.Fuzz(checkBuild)
}

func checkBuild(t *testing.T, b []byte) {
	defer fuzzseed.Watchdog(10 * time.Second)()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	ix, err := tarindex.Build(tarindex.WithLimit(ctx, fuzzLimit), bytes.NewReader(b))
	if time.Since(start) > 5*time.Second {
		t.Fatalf("Build took %v on %d bytes", time.Since(start), len(b))
	}
	checkOnePass(t, ctx, b, ix, err)
	if err != nil {
		if !errors.Is(err, tarindex.ErrHeader) && !errors.Is(err, tarindex.ErrTooLarge) {
			t.Fatalf("Build error matches no sentinel: %v", err)
		}
		return
	}
	if ix.Size > int64(len(b)) {
		t.Fatalf("index covers %d bytes of a %d-byte archive", ix.Size, len(b))
	}
	want, ok := stdEntries(b)
	if !ok {
		t.Fatalf("Build accepts what archive/tar refuses")
	}
	if len(want) != len(ix.Entries) {
		t.Fatalf("Build kept %d entries, archive/tar reads %d usable ones", len(ix.Entries), len(want))
	}
	archive := io.NewSectionReader(bytes.NewReader(b), 0, int64(len(b)))
	for i := range ix.Entries {
		e, w := &ix.Entries[i], want[i]
		if e.Name != w.name || e.Type != w.typ || e.Size != w.size || e.Mode != w.hdr.Mode || e.Uid != w.hdr.Uid || e.ModTime != w.hdr.ModTime.UnixNano() {
			t.Fatalf("entry %d: %+v, archive/tar: %q %c %d %+v", i, e, w.name, w.typ, w.size, w.hdr)
		}
		if !e.Sparse && (e.Offset < 0 || e.Offset+e.Size > int64(len(b))) {
			t.Fatalf("entry %q: data at %d+%d is outside the %d-byte archive", e.Name, e.Offset, e.Size, len(b))
		}
		if !e.IsRegular() {
			continue
		}
		got := make([]byte, e.Size)
		n, err := e.Reader(archive).ReadAt(got, 0)
		if err != nil && !(err == io.EOF && int64(n) == e.Size) {
			t.Fatalf("entry %q: read %d of %d bytes: %v", e.Name, n, e.Size, err)
		}
		if !bytes.Equal(got, w.data) {
			t.Fatalf("entry %q: index reads %q, archive/tar %q", e.Name, trim(got), trim(w.data))
		}
	}
}

func trim(b []byte) []byte { return b[:min(len(b), 64)] }

type stdEnt struct {
	hdr  *tar.Header
	name string
	typ  byte
	size int64
	data []byte
}

// stdEntries reads b with archive/tar alone and keeps the entries the
// index keeps (clean names, supported types), with their data.
func stdEntries(b []byte) ([]stdEnt, bool) {
	tr := tar.NewReader(bytes.NewReader(b))
	var out []stdEnt
	total := int64(0)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out, true
		}
		if err != nil {
			return nil, false
		}
		name, err := tarindex.CleanName(h.Name)
		if err != nil {
			continue
		}
		typ := h.Typeflag
		sparse := false
		if typ == tar.TypeRegA {
			typ = tar.TypeReg
		}
		for k := range h.PAXRecords {
			if len(k) > 11 && k[:11] == "GNU.sparse." {
				sparse = true
			}
		}
		if typ == tar.TypeGNUSparse || sparse {
			typ = tar.TypeReg
		}
		switch typ {
		case tar.TypeReg, tar.TypeLink, tar.TypeSymlink, tar.TypeChar, tar.TypeBlock, tar.TypeDir, tar.TypeFifo:
		default:
			continue
		}
		if h.Typeflag == tar.TypeLink {
			if target, err := tarindex.CleanName(h.Linkname); err != nil || target == "" {
				continue
			}
		}
		size := h.Size
		var data []byte
		if typ == tar.TypeReg {
			total += size
			if total > fuzzLimit {
				return nil, false
			}
			data, err = io.ReadAll(tr)
			if err != nil {
				return nil, false
			}
		} else {
			size = 0
		}
		out = append(out, stdEnt{hdr: h, name: name, typ: typ, size: size, data: data})
	}
}

// checkOnePass: an uncompressed layer checked against its digest is indexed
// in one pass that also hashes it (Open with Verify); that route must index
// the same bytes exactly as Build's header pass did, or fail as it did.
func checkOnePass(t *testing.T, ctx context.Context, b []byte, want *tarindex.Index, wantErr error) {
	if c, err := tarindex.Detect(bytes.NewReader(b)); err != nil || c != tarindex.None {
		return
	}
	// Chunks of an odd size, so that headers, seeks and the end of the
	// archive fall across chunk boundaries.
	defer tarindex.SetOnePassChunk(519)()
	v := tarindex.NewSumCheck(sha256.Sum256(b))
	a, err := tarindex.Open(tarindex.WithLimit(ctx, fuzzLimit), bytes.NewReader(b), int64(len(b)), "", tarindex.Options{Verify: v})
	if (err == nil) != (wantErr == nil) {
		t.Fatalf("one-pass Open: %v; header pass: %v", err, wantErr)
	}
	if err != nil {
		return
	}
	if !a.Verified || a.Size != want.Size || !reflect.DeepEqual(a.Entries, want.Entries) || !slices.Equal(a.Warnings, want.Warnings) {
		t.Fatalf("one-pass Open (verified %v) indexed %d bytes as %+v %q; header pass %d bytes as %+v %q",
			a.Verified, a.Size, a.Entries, a.Warnings, want.Size, want.Entries, want.Warnings)
	}
}
