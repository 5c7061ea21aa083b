package tarindex

import (
	"archive/tar"
	"bytes"
	"strings"
	"testing"
	"time"
)

// headerBlocks writes one header with archive/tar in each format that can
// hold it and returns the header blocks (the first block of each archive).
func headerBlocks(h tar.Header) [][]byte {
	var out [][]byte
	for _, f := range []tar.Format{tar.FormatUSTAR, tar.FormatGNU} {
		h := h
		h.Format = f
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		if err := tw.WriteHeader(&h); err != nil {
			continue
		}
		out = append(out, buf.Bytes()[:blockSize])
	}
	return out
}

// sameAsArchiveTar checks plainHeader against archive/tar on one block:
// when plainHeader parses it, archive/tar must read the same header from
// it, in every field an index keeps.
func sameAsArchiveTar(t *testing.T, b []byte) bool {
	var blk [blockSize]byte
	copy(blk[:], b)
	got, ok := plainHeader(&blk)
	if !ok {
		return false
	}
	want, err := tar.NewReader(bytes.NewReader(blk[:])).Next()
	if err != nil {
		t.Fatalf("plainHeader parses a block archive/tar refuses (%v): %q", err, blk[:])
	}
	if got.Typeflag != want.Typeflag || got.Name != want.Name || got.Linkname != want.Linkname ||
		got.Size != want.Size || got.Mode != want.Mode || got.Uid != want.Uid || got.Gid != want.Gid ||
		!got.ModTime.Equal(want.ModTime) || got.Devmajor != want.Devmajor || got.Devminor != want.Devminor ||
		len(want.PAXRecords) != 0 {
		t.Fatalf("plainHeader: %+v\narchive/tar: %+v", got, want)
	}
	ge, gerr := entryOf(&got)
	we, werr := entryOf(want)
	if ge.Name != we.Name || ge.Linkname != we.Linkname || ge.Type != we.Type || ge.Size != we.Size || ge.ModTime != we.ModTime || (gerr == nil) != (werr == nil) {
		t.Fatalf("entries differ: %+v (%v), archive/tar's %+v (%v)", ge, gerr, we, werr)
	}
	return true
}

// TestPlainHeader: the headers layers are made of take the fast path, and
// read as archive/tar reads them.
func TestPlainHeader(t *testing.T) {
	mtime := time.Unix(1700000000, 0)
	long := strings.Repeat("d", 90) + "/" + strings.Repeat("f", 60) // USTAR splits it into prefix and name
	for _, h := range []tar.Header{
		{Typeflag: tar.TypeReg, Name: "usr/bin/sh", Size: 12345, Mode: 0o755, Uid: 0, Gid: 0, ModTime: mtime},
		{Typeflag: tar.TypeReg, Name: "etc/.wh..wh..opq", Mode: 0o644, Uid: 1000, Gid: 1000, ModTime: mtime},
		{Typeflag: tar.TypeDir, Name: "var/lib/", Mode: 0o1777, ModTime: mtime},
		{Typeflag: tar.TypeSymlink, Name: "lib", Linkname: "usr/lib", Mode: 0o777, ModTime: mtime},
		{Typeflag: tar.TypeLink, Name: "usr/bin/ls2", Linkname: "usr/bin/ls", Mode: 0o755, ModTime: mtime},
		{Typeflag: tar.TypeReg, Name: "big", Size: 1<<33 - 1, Mode: 0o4755, Uid: 65534, Gid: 65534, ModTime: mtime},
	} {
		blocks := headerBlocks(h)
		if len(blocks) != 2 {
			t.Fatalf("%q: archive/tar wrote %d formats of 2", h.Name, len(blocks))
		}
		for _, b := range blocks {
			if !sameAsArchiveTar(t, b) {
				t.Errorf("%q (%s magic): not parsed by the fast path", h.Name, b[257:263])
			}
		}
	}
	// USTAR only (GNU writes a long-name entry for it).
	h := tar.Header{Typeflag: tar.TypeReg, Name: long, Size: 3, Mode: 0o644, ModTime: mtime, Format: tar.FormatUSTAR}
	if b := headerBlocks(h)[0]; !sameAsArchiveTar(t, b) {
		t.Errorf("USTAR prefix+name: not parsed by the fast path")
	}

	// What the fast path leaves to archive/tar.
	var zero [blockSize]byte
	if _, ok := plainHeader(&zero); ok {
		t.Errorf("a zero block took the fast path")
	}
	for _, h := range []tar.Header{
		{Typeflag: tar.TypeChar, Name: "dev/null", Devmajor: 1, Devminor: 3, ModTime: mtime},
		{Typeflag: tar.TypeReg, Name: "neg", Uid: -1, ModTime: mtime}, // base-256, GNU only
	} {
		blocks := headerBlocks(h)
		if len(blocks) == 0 {
			t.Fatalf("%q: archive/tar wrote no block", h.Name)
		}
		for _, b := range blocks {
			var blk [blockSize]byte
			copy(blk[:], b)
			if _, ok := plainHeader(&blk); ok {
				t.Errorf("%q: took the fast path", h.Name)
			}
		}
	}
	bad := headerBlocks(tar.Header{Typeflag: tar.TypeReg, Name: "x", ModTime: mtime})[0]
	bad[0] = 'y' // checksum no longer matches
	var blk [blockSize]byte
	copy(blk[:], bad)
	if _, ok := plainHeader(&blk); ok {
		t.Errorf("a block with a bad checksum took the fast path")
	}
}

// FuzzPlainHeader: whatever block plainHeader parses, archive/tar reads
// the same header from.
func FuzzPlainHeader(f *testing.F) {
	mtime := time.Unix(1700000000, 0)
	for _, h := range []tar.Header{
		{Typeflag: tar.TypeReg, Name: "a/b", Size: 5, Mode: 0o644, ModTime: mtime},
		{Typeflag: tar.TypeDir, Name: "a/", Mode: 0o755, ModTime: mtime},
		{Typeflag: tar.TypeSymlink, Name: "l", Linkname: "../x", ModTime: mtime},
		{Typeflag: tar.TypeLink, Name: "h", Linkname: "a/b", ModTime: mtime},
	} {
		for _, b := range headerBlocks(h) {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var blk [blockSize]byte
		copy(blk[:], b)
		// Mutations almost always break the checksum: fix it up half the
		// time, so the fuzzer explores the fields behind it.
		if len(b) > 0 && b[0]&1 == 1 {
			SetChecksum(blk[:])
		}
		sameAsArchiveTar(t, blk[:])
	})
}
