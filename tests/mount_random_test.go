package tests

import (
	"bytes"
	crand "crypto/rand"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// TestMountRandomReads reads a large file of a rootfs at random offsets,
// from many goroutines at once, through the mount, for each way the bytes
// can be stored: a gzip layer, a zstd layer, an uncompressed layer inside
// a gzip-compressed and a zstd-compressed docker save. Every read must
// return exactly the original bytes.
func TestMountRandomReads(t *testing.T) {
	mntRequireFUSE(t)
	mntNeed(t, "umoci", "skopeo", "gzip", "zstd")
	t.Parallel()
	dir := t.TempDir()
	layoutDir := filepath.Join(dir, "layout")
	bundle := filepath.Join(dir, "bundle")
	mntExec(t, "umoci", "init", "--layout", layoutDir)
	mntExec(t, "umoci", "new", "--image", layoutDir+":t")
	mntExec(t, "umoci", "unpack", "--image", layoutDir+":t", bundle)
	// Half random, half text: compressible parts and incompressible ones,
	// so gzip and zstd blocks vary in size.
	big := make([]byte, 12<<20)
	crand.Read(big[:6<<20])
	for i := 6 << 20; i < len(big); i++ {
		big[i] = "layoutfs random reads\n"[i%22]
	}
	if err := os.WriteFile(filepath.Join(bundle, "rootfs/big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	mntExec(t, "umoci", "repack", "--image", layoutDir+":t", bundle)

	zstdLayout := filepath.Join(dir, "zstd-layout")
	mntExec(t, "skopeo", "copy", "-q", "--dest-compress-format", "zstd", "oci:"+layoutDir+":t", "oci:"+zstdLayout+":t")
	save := filepath.Join(dir, "save.tar")
	mntExec(t, "skopeo", "copy", "-q", "oci:"+layoutDir+":t", "docker-archive:"+save+":example.com/demo:t")
	mntExec(t, "gzip", "-k", save)
	mntExec(t, "zstd", "-q", save, "-o", save+".zst")

	for _, c := range []struct{ name, src, rootfs string }{
		{"gzip-layer", layoutDir, "tags/t"},
		{"zstd-layer", zstdLayout, "tags/t"},
		{"docker-save.gz", save + ".gz", "tags/example.com/demo:t"},
		{"docker-save.zst", save + ".zst", "tags/example.com/demo:t"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			mnt := mntMount(t, c.src)
			plats := mntNames(t, filepath.Join(mnt, c.rootfs))
			if len(plats) != 1 {
				t.Fatalf("%s: %v", c.rootfs, plats)
			}
			file := filepath.Join(mnt, c.rootfs, plats[0], "rootfs/big.bin")
			var wg sync.WaitGroup
			errs := make(chan string, 64)
			for g := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					f, err := os.Open(file)
					if err != nil {
						errs <- err.Error()
						return
					}
					defer f.Close()
					rng := rand.New(rand.NewPCG(uint64(g), 42))
					for range 40 {
						n := 1 + rng.IntN(300<<10)
						off := rng.IntN(len(big) - 1)
						buf := make([]byte, n)
						k, err := f.ReadAt(buf, int64(off))
						want := big[off:min(off+n, len(big))]
						if k != len(want) || !bytes.Equal(buf[:k], want) {
							errs <- fmt.Sprintf("read %d at %d: got %d bytes (%v), equal %v", n, off, k, err, bytes.Equal(buf[:k], want))
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for e := range errs {
				t.Error(e)
			}
			got, err := os.ReadFile(file)
			if err != nil || !bytes.Equal(got, big) {
				t.Errorf("whole file: %v, %d bytes, equal %v", err, len(got), bytes.Equal(got, big))
			}
		})
	}
}

// TestMountConcurrentFirstUse: on a fresh mount, many walkers at once hit
// every lazily built part of the tree (tags, manifests, layer trees, the
// merged rootfs shared by both views) for the first time. All of them see
// the same complete tree.
func TestMountConcurrentFirstUse(t *testing.T) {
	mntRequireFUSE(t)
	t.Parallel()
	for _, name := range []string{"A-dive-kaniko-ggcr-tarball.tar", "C-ocitools-hello-world-manifest-list"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			src := mntFixture(t, name)
			mnt := mntMount(t, src)
			const walkers = 6
			results := make([]map[string]mntEntry, walkers)
			var wg sync.WaitGroup
			for i := range walkers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					results[i] = mntMountEntries(t, mnt)
				}()
			}
			wg.Wait()
			root, _ := mntOpenTree(t, src)
			want := mntTreeEntries(t, root)
			for i, got := range results {
				if len(got) != len(want) {
					t.Errorf("walker %d saw %d paths, the tree has %d", i, len(got), len(want))
				}
				mntCompareTrees(t, want, got)
			}
		})
	}
}
