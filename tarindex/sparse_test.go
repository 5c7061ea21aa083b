package tarindex_test

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/layoutfs/layoutfs/tarindex"
)

// TestBuildTwoSparseFiles: a sparse file right after another sparse file
// (what `tar --sparse` makes of two VM images or two core files) must read
// back like the first. Build once recorded Header = -1 for any entry following
// a sparse one, so the second could not be read at all.
func TestBuildTwoSparseFiles(t *testing.T) {
	for _, format := range []string{"gnu", "posix"} {
		t.Run(format, func(t *testing.T) {
			d := t.TempDir()
			sparseFile(t, filepath.Join(d, "s1"), 1000, "first")
			sparseFile(t, filepath.Join(d, "s2"), 700000, "second")
			gnuTar(t, d, "--sparse", "--format="+format, "-cf", "a.tar", "s1", "s2")
			b := readFile(t, filepath.Join(d, "a.tar"))
			ix := build(t, b)
			if len(ix.Entries) != 2 || !ix.Entries[1].Sparse {
				t.Fatalf("entries %+v", ix.Entries)
			}
			for i, name := range []string{"s1", "s2"} {
				want := readFile(t, filepath.Join(d, name))
				if got := readEntry(t, &ix.Entries[i], bytes.NewReader(b)); !bytes.Equal(got, want) {
					t.Errorf("%s: content differs", name)
				}
			}
		})
	}
}

// TestOpenTwoSparseGzip: the same through a gzip archive, indexed as a
// stream.
func TestOpenTwoSparseGzip(t *testing.T) {
	d := t.TempDir()
	sparseFile(t, filepath.Join(d, "s1"), 1000, "first")
	sparseFile(t, filepath.Join(d, "s2"), 700000, "second")
	gnuTar(t, d, "--sparse", "-cf", "a.tar", "s1", "s2")
	plain := readFile(t, filepath.Join(d, "a.tar"))
	gz := gzipped(t, plain)
	a, err := tarindex.Open(context.Background(), bytes.NewReader(gz), int64(len(gz)), "k", tarindex.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"s1", "s2"} {
		if got := readEntry(t, &a.Entries[i], a.Data); !bytes.Equal(got, readFile(t, filepath.Join(d, name))) {
			t.Errorf("%s: content differs", name)
		}
	}
}
