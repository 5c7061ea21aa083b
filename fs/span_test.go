package fs_test

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	lfs "github.com/layoutfs/layoutfs/fs"
)

// TestSpanInPlace: a file of an uncompressed layer inside a docker save (a
// tar inside a tar) is read in place: its Span is the archive file the user
// has, not a copy, and the bytes at that offset are the file's.
func TestSpanInPlace(t *testing.T) {
	for _, name := range []string{"A-scalibr-symlinks-docker-save.tar", "A-ggcr-rules_docker-whiteout.tar", "B-ggcr-hello-world-docker-v25.tar"} {
		t.Run(name, func(t *testing.T) {
			archive, err := filepath.Abs(filepath.Join(fixtures, name))
			if err != nil {
				t.Fatal(err)
			}
			root := openTree(t, archive)
			files := 0
			var walk func(d lfs.Dir, p string)
			walk = func(d lfs.Dir, p string) {
				ents, err := d.ReadDir()
				if err != nil {
					t.Fatalf("%s: %v", p, err)
				}
				for _, e := range ents {
					n, err := d.Lookup(e.Name)
					if err != nil {
						t.Fatalf("%s/%s: %v", p, e.Name, err)
					}
					switch n := n.(type) {
					case lfs.Dir:
						walk(n, p+"/"+e.Name)
					case lfs.File:
						if !strings.Contains(p, "/rootfs") || n.Attr().Size == 0 {
							continue
						}
						files++
						checkSpan(t, p+"/"+e.Name, n, archive)
					}
				}
			}
			for _, top := range []string{"tags", "manifests"} {
				d, err := lfs.Walk(root, top)
				if err != nil {
					t.Fatal(err)
				}
				walk(d.(lfs.Dir), top)
			}
			if files == 0 {
				t.Fatal("no rootfs file with content to check")
			}
		})
	}
}

func checkSpan(t *testing.T, p string, n lfs.File, archive string) {
	t.Helper()
	s, ok := n.(lfs.FileSpan)
	if !ok {
		t.Fatalf("%s: no Span: reads would be copied, not spliced", p)
	}
	f, off, ok := s.Span()
	if !ok {
		t.Fatalf("%s: Span not ok for an uncompressed layer member", p)
	}
	if f.Name() != archive {
		t.Fatalf("%s: bytes lie in %s, not in the archive %s", p, f.Name(), archive)
	}
	size := n.Attr().Size
	want := make([]byte, size)
	if _, err := n.ReadAt(want, 0); err != nil {
		t.Fatalf("%s: ReadAt: %v", p, err)
	}
	got := make([]byte, size)
	if _, err := f.ReadAt(got, off); err != nil {
		t.Fatalf("%s: pread at %d: %v", p, off, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: the archive's bytes at %d are not the file's", p, off)
	}
}
