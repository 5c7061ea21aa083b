package fs_test

import (
	"testing"

	lfs "github.com/layoutfs/layoutfs/fs"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// nlinkOK: a directory's link count is 2 + its subdirectories, or 1 ("not
// counted", as btrfs reports and find -noleaf assumes) where counting is
// too dear; never a wrong count, and the same before and after the
// directory is listed. (They once reported a fixed 2.)
func nlinkOK(t *testing.T, what string, n lfs.Node, want uint32, allowOne bool) {
	t.Helper()
	before := n.Attr().Nlink
	if _, err := n.(lfs.Dir).ReadDir(); err != nil {
		t.Fatal(err)
	}
	after := n.Attr().Nlink
	if before != after {
		t.Errorf("%s: nlink %d before listing, %d after", what, before, after)
	}
	if after != want && !(allowOne && after == 1) {
		t.Errorf("%s: nlink %d, want %d", what, after, want)
	}
}

// TestNlinkTreeRoots: rootfs/ and layers/NN/ count their subdirectories,
// like every directory inside them, or say they do not count.
func TestNlinkTreeRoots(t *testing.T) {
	root, rootfs := rootfsOf(t,
		layerTar(t, d("./"), d("etc/"), d("usr/"), d("var/"), f("file", "f")),
	)
	nlinkOK(t, "rootfs", rootfs, 5, true)
	nlinkOK(t, "layers/00", walk(t, root, "tags/t/linux_amd64/layers/00"), 5, true)
}

// TestNlinkStaticDirs: the directories of the tree itself (the root, tags/,
// an image directory) count their subdirectories, or say they do not.
func TestNlinkStaticDirs(t *testing.T) {
	root, _ := rootfsOf(t, layerTar(t, f("x", "x")))
	for p, want := range map[string]uint32{
		"tags/t/linux_amd64": 4, // layers rootfs
		"tags/t":             3, // linux_amd64
		"tags":               3, // t
	} {
		nlinkOK(t, p, walk(t, root, p), want, true)
	}
	nlinkOK(t, "root", root, 5, true) // blobs tags manifests
}

// TestDanglingLinkThenSameName: the last of duplicate names in a layer
// wins even when the first is a hard link to a lower layer. (mergeLayers
// once placed such links after the whole layer, over the later file.)
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
// (mergeLayers once resolved the link after the layer, against the new file.)
func TestLinkBeforeTargetReplacedInSameLayer(t *testing.T) {
	_, rootfs := rootfsOf(t,
		layerTar(t, f("target", "old")),
		layerTar(t, hard("link", "target"), f("target", "new")),
	)
	eq(t, "rootfs", describe(t, rootfs), []string{"link = old", "target = new"})
}

// TestArtifactTitles: titles with directories ("a/x.txt", "b/x.txt", as
// `oras push a/x.txt b/x.txt` writes) do not give two entries "x.txt" in
// files/ (imageDir once used path.Base), and a climbing title ("../evil") is skipped like other
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

// TestArtifactTitlePaths: SPEC.md serves a titled layer at files/<title>;
// a title with directories ("a/x.txt", which oras pull writes to a/x.txt)
// is files/a/x.txt, so two files of one base name both show.
func TestArtifactTitlePaths(t *testing.T) {
	o := newOCIDir(t)
	cfg := o.blob("application/vnd.oci.empty.v1+json", []byte("{}"))
	var layers []ocispec.Descriptor
	for _, title := range []string{"a/x.txt", "b/x.txt", "top.txt"} {
		l := o.blob("application/octet-stream", []byte("content of "+title))
		l.Annotations = map[string]string{ocispec.AnnotationTitle: title}
		layers = append(layers, l)
	}
	m := o.json(ocispec.MediaTypeImageManifest, ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: layers})
	m.Annotations = map[string]string{ocispec.AnnotationRefName: "art"}
	o.top = append(o.top, m)
	root := o.open()
	eq(t, "files", describe(t, walkDir(t, root, "tags/art/unknown_unknown/files")),
		[]string{"a/", "a/x.txt = content of a/x.txt", "b/", "b/x.txt = content of b/x.txt", "top.txt = content of top.txt"})
}
