package fs_test

import (
	"fmt"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
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

// TestConfigSizeFromBlob: config.json is the config blob, whose bytes
// match the digest; a descriptor that misstates the size (the X- fixture
// has two such) must not cut or pad it. imageDir takes the size of
// config.json from the descriptor; blobs/ and files/ take it from the blob.
func TestConfigSizeFromBlob(t *testing.T) {
	o := newOCIDir(t)
	layer := o.blob(ocispec.MediaTypeImageLayer, layerTar(t, f("x", "x")))
	cfgRaw := mustMarshal(t, ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"}, RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{layer.Digest}}})
	for _, skew := range []int64{-20, +20} {
		cfg := o.blob(ocispec.MediaTypeImageConfig, cfgRaw)
		cfg.Size += skew
		m := o.json(ocispec.MediaTypeImageManifest, ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: []ocispec.Descriptor{layer}})
		m.Annotations = map[string]string{ocispec.AnnotationRefName: fmt.Sprint("skew", skew)}
		o.top = append(o.top, m)
	}
	root := o.open()
	for _, skew := range []int64{-20, +20} {
		n := walk(t, root, fmt.Sprintf("tags/skew%d/linux_amd64/config.json", skew))
		if got := n.Attr().Size; got != int64(len(cfgRaw)) {
			t.Errorf("skew %d: size %d, blob has %d bytes", skew, got, len(cfgRaw))
		}
		if got := content(t, n); got != string(cfgRaw) {
			t.Errorf("skew %d: content %q", skew, got)
		}
	}
}
