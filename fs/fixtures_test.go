package fs_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	lfs "github.com/layoutfs/layoutfs/fs"
	"github.com/layoutfs/layoutfs/layout"
)

const fixtures = "../../shared/fixtures/real"

func realFixtures(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir(fixtures)
	if err != nil {
		t.Fatalf("real fixtures: %v (../shared must sit beside the repository)", err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "A-") || strings.HasPrefix(e.Name(), "B-") || strings.HasPrefix(e.Name(), "C-") {
			out = append(out, filepath.Join(fixtures, e.Name()))
		}
	}
	return out
}

func openTree(t *testing.T, path string) lfs.Dir {
	t.Helper()
	src, err := layout.Open(context.Background(), path, layout.Options{CacheDir: t.TempDir(), Warn: func(m string) { t.Log("warn:", m) }})
	if err != nil {
		t.Fatal(err)
	}
	return lfs.New(src, lfs.Options{Warn: func(m string) { t.Log("warn:", m) }})
}

// TestFSRealFixtures walks every real fixture's whole tree through
// testing/fstest, which reads every file and cross-checks listings.
func TestFSRealFixtures(t *testing.T) {
	for _, f := range realFixtures(t) {
		if strings.Contains(f, "kaniko") {
			// fstest reads every file byte by byte at many offsets: minutes
			// for this fixture's 14 layers. The rootfs comparison with umoci
			// covers it.
			continue
		}
		t.Run(filepath.Base(f), func(t *testing.T) {
			root := openTree(t, f)
			if err := fstest.TestFS(lfs.FS(root), "index.json", "oci-layout", "blobs", "tags", "manifests"); err != nil {
				t.Fatal(err)
			}
		})
	}
}
