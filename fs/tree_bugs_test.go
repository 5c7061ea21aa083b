//go:build bugs

package fs_test

import (
	"testing"

	lfs "github.com/layoutfs/layoutfs/fs"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestNlinkTreeRoots: rootfs/ and layers/NN/ report 2 + their
// subdirectories, like every directory inside them. treeRoot.Attr returns
// a fixed Nlink of 2.
func TestNlinkTreeRoots(t *testing.T) {
	root, rootfs := rootfsOf(t,
		layerTar(t, d("./"), d("etc/"), d("usr/"), d("var/"), f("file", "f")),
	)
	if got := rootfs.Attr().Nlink; got != 5 {
		t.Errorf("rootfs nlink %d, want 5", got)
	}
	if got := walk(t, root, "tags/t/linux_amd64/layers/00").Attr().Nlink; got != 5 {
		t.Errorf("layers/00 nlink %d, want 5", got)
	}
}

// TestNlinkStaticDirs: the directories of the tree itself (the root, tags/,
// an image directory) count their subdirectories too. lazyDir's Nlink is
// always 2.
func TestNlinkStaticDirs(t *testing.T) {
	root, _ := rootfsOf(t, layerTar(t, f("x", "x")))
	for p, want := range map[string]uint32{
		"":                   5, // blobs tags manifests
		"tags/t/linux_amd64": 4, // layers rootfs
		"tags/t":             3, // linux_amd64
	} {
		if got := walk(t, root, p).Attr().Nlink; got != want {
			t.Errorf("%q: nlink %d, want %d", p, got, want)
		}
	}
}

// TestDanglingLinkThenSameName: the last of duplicate names in a layer
// wins even when the first is a hard link to a lower layer. mergeLayers
// places such links after the whole layer is applied, over the later file.
func TestDanglingLinkThenSameName(t *testing.T) {
	_, rootfs := rootfsOf(t,
		layerTar(t, f("target", "lower")),
		layerTar(t, hard("name", "target"), f("name", "upper file, last in the layer")),
	)
	eq(t, "rootfs", describe(t, rootfs), []string{"name = upper file, last in the layer", "target = lower"})
}

// TestLinkBeforeTargetReplacedInSameLayer: a layer that links to a lower
// file and then replaces that file keeps the link on the old content, as
// extraction does (the link is made while the old file is on disk).
// mergeLayers resolves the link after the layer, against the new file.
func TestLinkBeforeTargetReplacedInSameLayer(t *testing.T) {
	_, rootfs := rootfsOf(t,
		layerTar(t, f("target", "old")),
		layerTar(t, hard("link", "target"), f("target", "new")),
	)
	eq(t, "rootfs", describe(t, rootfs), []string{"link = old", "target = new"})
}

// TestLayerViewShowsCrossLayerLinks: a layer's own tree shows every name
// the layer stores. A hard link whose target is in a lower layer is left
// out of layers/NN altogether today.
func TestLayerViewShowsCrossLayerLinks(t *testing.T) {
	root, _ := rootfsOf(t,
		layerTar(t, f("bin/busybox", "BUSYBOX")),
		layerTar(t, hard("bin/sh", "bin/busybox")),
	)
	if _, err := lfs.Walk(root, "tags/t/linux_amd64/layers/01/bin/sh"); err != nil {
		t.Errorf("layers/01/bin/sh: %v", err)
	}
}

// TestArtifactTitles: titles with directories ("a/x.txt", "b/x.txt", as
// `oras push a/x.txt b/x.txt` writes) must not give two entries of one
// name in files/, and a climbing title ("../evil") is skipped like other
// unsafe titles (ORAS itself refuses it on pull).
func TestArtifactTitles(t *testing.T) {
	o := newOCIDir(t)
	cfg := o.blob("application/vnd.oci.empty.v1+json", []byte("{}"))
	var layers []ocispec.Descriptor
	for title, body := range map[string]string{"a/x.txt": "from a", "b/x.txt": "from b", "../evil": "evil"} {
		l := o.blob("application/octet-stream", []byte(body))
		l.Annotations = map[string]string{ocispec.AnnotationTitle: title}
		layers = append(layers, l)
	}
	m := o.json(ocispec.MediaTypeImageManifest, ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: layers})
	m.Annotations = map[string]string{ocispec.AnnotationRefName: "art"}
	o.top = append(o.top, m)
	root := o.open()
	files := walkDir(t, root, "tags/art/unknown_unknown/files")
	ents, err := files.ReadDir()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range ents {
		if seen[e.Name] {
			t.Errorf("files/ lists %q twice", e.Name)
		}
		seen[e.Name] = true
	}
	if seen["evil"] {
		t.Errorf("title ../evil served as files/evil")
	}
}
