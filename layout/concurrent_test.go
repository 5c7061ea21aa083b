package layout_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
)

// TestConcurrentUse: one Source serves many callers at once; layers are
// indexed once and shared. Run with -race.
func TestConcurrentUse(t *testing.T) {
	for _, name := range []string{"C-stereoscope-multiplatform-nested", "A-scalibr-symlinks-docker-save.tar", "C-dive-oci-zstd.tar"} {
		s, _ := openPath(t, filepath.Join(fixtures, name))
		var wg sync.WaitGroup
		archives := make([][]any, 8)
		for i := range archives {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.Manifests()
				ims, err := s.Images(s.Manifests())
				if err != nil {
					t.Error(err)
					return
				}
				for _, im := range ims {
					if _, err := s.Config(im); err != nil {
						t.Error(err)
					}
					for _, l := range im.Manifest.Layers {
						a, err := s.Layer(context.Background(), l)
						if err != nil {
							t.Error(err)
							continue
						}
						archives[i] = append(archives[i], a)
					}
				}
			}()
		}
		wg.Wait()
		for i := range archives {
			if len(archives[i]) != len(archives[0]) {
				t.Fatalf("%s: walker %d saw %d layers", name, i, len(archives[i]))
			}
			for j := range archives[i] {
				if archives[i][j] != archives[0][j] {
					t.Errorf("%s: layer %d indexed twice", name, j)
				}
			}
		}
	}
}
