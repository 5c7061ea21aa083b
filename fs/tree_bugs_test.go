//go:build bugs

package fs_test

import (
	"testing"
	"time"
)

// TestSymlinkParentFollowed: a layer entry whose parent path runs through
// a symlink of a lower layer (merged /usr: lib -> usr/lib, then a layer
// writing lib/b, as Bazel rules_pkg or hand-made tars do) lands where the
// symlink points, and the symlink stays: Docker, containerd and umoci
// (securejoin within the rootfs) all extract it so. umoci 0.4.7 checked
// by hand on this very layout. builder treats the symlink as "not a
// directory" and replaces it with an implied directory.
func TestSymlinkParentFollowed(t *testing.T) {
	_, rootfs := rootfsOf(t,
		layerTar(t, d("usr/"), d("usr/lib/"), f("usr/lib/a", "a"), sym("lib", "usr/lib"), sym("abs", "/usr/lib"), sym("up", "../../usr/lib")),
		layerTar(t, f("lib/b", "b"), f("abs/c", "c"), f("up/e", "e"), f("lib/.wh.a", "")),
	)
	eq(t, "rootfs", describe(t, rootfs), []string{
		"abs -> /usr/lib", "lib -> usr/lib", "up -> ../../usr/lib",
		"usr/", "usr/lib/", "usr/lib/b = b", "usr/lib/c = c", "usr/lib/e = e",
	})
	// An explicit directory entry replaces the symlink, as extraction does.
	_, rootfs = rootfsOf(t,
		layerTar(t, d("usr/"), d("usr/lib/"), f("usr/lib/a", "a"), sym("lib", "usr/lib")),
		layerTar(t, d("lib/"), f("lib/b", "b")),
	)
	eq(t, "explicit dir", describe(t, rootfs), []string{"lib/", "lib/b = b", "usr/", "usr/lib/", "usr/lib/a = a"})
	// A symlink loop ends (extraction fails with ELOOP; a directory
	// replacing the link is fine), and a chain of links is followed.
	done := make(chan []string, 1)
	go func() {
		_, rootfs := rootfsOf(t,
			layerTar(t, sym("a", "b"), sym("b", "a"), d("real/"), sym("c1", "c2"), sym("c2", "./real")),
			layerTar(t, f("a/x", "x"), f("c1/y", "y")),
		)
		done <- describe(t, rootfs)
	}()
	select {
	case got := <-done:
		eq(t, "loop and chain", got, []string{"a/", "a/x = x", "b -> a", "c1 -> c2", "c2 -> ./real", "real/", "real/y = y"})
	case <-time.After(10 * time.Second):
		t.Fatal("symlink loop: hang")
	}
}
