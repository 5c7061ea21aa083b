package fs_test

import (
	"path/filepath"
	"reflect"
	"sync"
	"testing"

	lfs "github.com/layoutfs/layoutfs/fs"
)

// inodes lists path -> inode of a whole tree.
func inodes(t testing.TB, root lfs.Dir) map[string]uint64 {
	out := map[string]uint64{}
	var rec func(p string, d lfs.Dir)
	rec = func(p string, d lfs.Dir) {
		ents, err := d.ReadDir()
		if err != nil {
			t.Errorf("%s: %v", p, err)
			return
		}
		for _, e := range ents {
			q := filepath.Join(p, e.Name)
			out[q] = e.Node.Attr().Ino
			if sub, ok := e.Node.(lfs.Dir); ok {
				rec(q, sub)
			}
		}
	}
	rec("", root)
	return out
}

// TestConcurrentFirstWalk: many walkers meeting a fresh tree at once (lazy
// directories, layer indexes and merged trees built on first use) all see
// the same tree, contents and inode numbers. Run with -race.
func TestConcurrentFirstWalk(t *testing.T) {
	trees := map[string]func() lfs.Dir{
		"hand-built": func() lfs.Dir {
			o := newOCIDir(t)
			l0 := layerTar(t, d("etc/"), f("etc/a", "a"), f("t", "old"), hard("h", "t"), sym("s", "etc/a"))
			l1 := layerTar(t, f("etc/.wh..wh..opq", ""), f("etc/b", "b"), f("t", "new"))
			o.image("x", l0, l1)
			o.image("y", l1, l0)
			return o.open()
		},
		"podman": func() lfs.Dir { return openTree(t, filepath.Join(fixtures, "A-podman-docker-two-images.tar")) },
	}
	for name, open := range trees {
		t.Run(name, func(t *testing.T) {
			root := open()
			const n = 12
			descs := make([][]string, n)
			inos := make([]map[string]uint64, n)
			var wg sync.WaitGroup
			for i := 0; i < n; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					descs[i] = describe(t, root)
					inos[i] = inodes(t, root)
				}()
			}
			wg.Wait()
			for i := 1; i < n; i++ {
				if !reflect.DeepEqual(descs[i], descs[0]) {
					t.Errorf("walker %d saw another tree", i)
				}
				if !reflect.DeepEqual(inos[i], inos[0]) {
					t.Errorf("walker %d saw other inode numbers", i)
				}
			}
		})
	}
}
