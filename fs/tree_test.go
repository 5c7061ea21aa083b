package fs_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	lfs "github.com/layoutfs/layoutfs/fs"
	"github.com/layoutfs/layoutfs/layout"
	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ent is one tar entry of a hand-built layer.
type ent struct {
	hdr  tar.Header
	body string
}

var mtime = time.Unix(1700000000, 0)

func f(name, body string) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body)), ModTime: mtime}, body: body}
}
func d(name string) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o750, ModTime: mtime}}
}
func sym(name, target string) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777, ModTime: mtime}}
}
func hard(name, target string) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, Mode: 0o644, ModTime: mtime}}
}

func layerTar(t testing.TB, ents ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := e.hdr
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("%q: %v", h.Name, err)
		}
		io.WriteString(tw, e.body)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// ociDir is a hand-built OCI layout directory.
type ociDir struct {
	t   testing.TB
	dir string
	top []ocispec.Descriptor
}

func newOCIDir(t testing.TB) *ociDir {
	o := &ociDir{t: t, dir: t.TempDir()}
	o.write("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	return o
}

func (o *ociDir) write(name string, b []byte) {
	p := filepath.Join(o.dir, name)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		o.t.Fatal(err)
	}
}

func (o *ociDir) blob(mt string, b []byte) ocispec.Descriptor {
	dg := digest.FromBytes(b)
	o.write("blobs/sha256/"+dg.Encoded(), b)
	return ocispec.Descriptor{MediaType: mt, Digest: dg, Size: int64(len(b))}
}

func (o *ociDir) json(mt string, v any) ocispec.Descriptor {
	b, err := json.Marshal(v)
	if err != nil {
		o.t.Fatal(err)
	}
	return o.blob(mt, b)
}

// image stores an amd64 image of the given layers and tags it.
func (o *ociDir) image(tag string, layers ...[]byte) ocispec.Descriptor {
	var lds []ocispec.Descriptor
	var diffs []digest.Digest
	for _, l := range layers {
		ld := o.blob(ocispec.MediaTypeImageLayer, l)
		lds = append(lds, ld)
		diffs = append(diffs, ld.Digest)
	}
	if lds == nil {
		lds, diffs = []ocispec.Descriptor{}, []digest.Digest{}
	}
	cfg := o.json(ocispec.MediaTypeImageConfig, ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"}, RootFS: ocispec.RootFS{Type: "layers", DiffIDs: diffs}})
	m := o.json(ocispec.MediaTypeImageManifest, ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: lds})
	if tag != "" {
		m.Annotations = map[string]string{ocispec.AnnotationRefName: tag}
	}
	o.top = append(o.top, m)
	return m
}

func (o *ociDir) open() lfs.Dir {
	o.t.Helper()
	o.write("index.json", mustMarshal(o.t, ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: o.top}))
	src, err := layout.Open(context.Background(), o.dir, layout.Options{Warn: func(m string) { o.t.Log("warn:", m) }})
	if err != nil {
		o.t.Fatal(err)
	}
	return lfs.New(src, lfs.Options{Warn: func(m string) { o.t.Log("warn:", m) }})
}

func mustMarshal(t testing.TB, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rootfsOf builds a one-image layout of layers and returns its tree root
// and its merged rootfs.
func rootfsOf(t testing.TB, layers ...[]byte) (lfs.Dir, lfs.Dir) {
	t.Helper()
	o := newOCIDir(t)
	o.image("t", layers...)
	root := o.open()
	return root, walkDir(t, root, "tags/t/linux_amd64/rootfs")
}

func walk(t testing.TB, root lfs.Dir, p string) lfs.Node {
	t.Helper()
	n, err := lfs.Walk(root, p)
	if err != nil {
		t.Fatalf("walk %s: %v", p, err)
	}
	return n
}

func walkDir(t testing.TB, root lfs.Dir, p string) lfs.Dir {
	t.Helper()
	dn, ok := walk(t, root, p).(lfs.Dir)
	if !ok {
		t.Fatalf("%s is not a directory", p)
	}
	return dn
}

func content(t testing.TB, n lfs.Node) string {
	t.Helper()
	fn, ok := n.(lfs.File)
	if !ok {
		t.Fatalf("not a file: %T %v", n, n.Attr().Mode)
	}
	b := make([]byte, n.Attr().Size)
	if len(b) == 0 {
		return ""
	}
	k, err := fn.ReadAt(b, 0)
	if err != nil && !(err == io.EOF && k == len(b)) {
		t.Fatalf("read: %d %v", k, err)
	}
	return string(b[:k])
}

// describe lists a tree as "path type [content|target]" lines, sorted.
func describe(t testing.TB, dn lfs.Dir) []string {
	t.Helper()
	var out []string
	var rec func(prefix string, dn lfs.Dir)
	rec = func(prefix string, dn lfs.Dir) {
		ents, err := dn.ReadDir()
		if err != nil {
			t.Fatalf("readdir %s: %v", prefix, err)
		}
		for _, e := range ents {
			p := path.Join(prefix, e.Name)
			switch n := e.Node.(type) {
			case lfs.Dir:
				out = append(out, p+"/")
				rec(p, n)
			case lfs.Symlink:
				out = append(out, p+" -> "+n.Target())
			case lfs.File:
				out = append(out, p+" = "+content(t, n))
			default:
				out = append(out, p+" "+n.Attr().Mode.String())
			}
		}
	}
	rec("", dn)
	sort.Strings(out)
	return out
}

func eq(t testing.TB, what string, got, want []string) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %q\nwant %q", what, got, want)
	}
}

func TestWhiteoutSameLayer(t *testing.T) {
	_, rootfs := rootfsOf(t,
		layerTar(t, f("a", "a1"), f("b", "b1"), f("c", "c1")),
		// Whiteouts hide lower layers only: this layer's own a stays,
		// whichever comes first in the archive.
		layerTar(t, f(".wh.a", ""), f("a", "a2"), f("c", "c2"), f(".wh.c", ""), f(".wh.b", ""), f(".wh.nothing", "")),
	)
	eq(t, "rootfs", describe(t, rootfs), []string{"a = a2", "c = c2"})
}

func TestOpaqueDir(t *testing.T) {
	root, rootfs := rootfsOf(t,
		layerTar(t, d("d/"), f("d/old", "old"), d("d/sub/"), f("d/sub/x", "x"), f("keep", "k")),
		layerTar(t, d("d/"), f("d/new", "new"), f("d/.wh..wh..opq", ""), d("d/newsub/"), f("d/newsub/y", "y")),
	)
	eq(t, "rootfs", describe(t, rootfs), []string{"d/", "d/new = new", "d/newsub/", "d/newsub/y = y", "keep = k"})
	// The layer's own tree shows the marker.
	eq(t, "layer 01", describe(t, walkDir(t, root, "tags/t/linux_amd64/layers/01")),
		[]string{"d/", "d/.wh..wh..opq = ", "d/new = new", "d/newsub/", "d/newsub/y = y"})
	// The opaque directory takes the upper layer's metadata.
	if m := walk(t, rootfs, "d").Attr().Mode; m != iofs.ModeDir|0o750 {
		t.Errorf("d mode %v", m)
	}
}

func TestWhiteoutDirectory(t *testing.T) {
	_, rootfs := rootfsOf(t,
		layerTar(t, d("d/"), d("d/x/"), f("d/x/y", "y"), f("d/z", "z"), f("dz", "sibling")),
		layerTar(t, f(".wh.d", "")),
		layerTar(t, d("d/"), f("d/w", "w")),
	)
	eq(t, "rootfs", describe(t, rootfs), []string{"d/", "d/w = w", "dz = sibling"})
}

func TestReplaceFileAndDir(t *testing.T) {
	_, rootfs := rootfsOf(t,
		layerTar(t, d("p/"), f("p/q", "q"), d("p/r/"), f("f", "file"), sym("s", "p")),
		layerTar(t, f("p", "now a file"), d("f/"), f("f/inner", "inner"), d("s/"), f("s/t", "t")),
	)
	eq(t, "rootfs", describe(t, rootfs), []string{"f/", "f/inner = inner", "p = now a file", "s/", "s/t = t"})
	// And back again, in one more layer.
	_, rootfs = rootfsOf(t,
		layerTar(t, d("p/"), f("p/q", "q")),
		layerTar(t, f("p", "file")),
		layerTar(t, f("p/new", "dir again")),
	)
	eq(t, "rootfs", describe(t, rootfs), []string{"p/", "p/new = dir again"})
}

// TestImpliedDirs: archives that list no directories (rules_docker) still
// give 0755 directories with the right link counts.
func TestImpliedDirs(t *testing.T) {
	root, rootfs := rootfsOf(t, layerTar(t, f("a/b/c/file", "deep"), f("a/x", "x"), f("a/b2/y", "y")))
	eq(t, "rootfs", describe(t, rootfs), []string{"a/", "a/b/", "a/b/c/", "a/b/c/file = deep", "a/b2/", "a/b2/y = y", "a/x = x"})
	for p, nlink := range map[string]uint32{"a": 4, "a/b": 3, "a/b/c": 2, "a/b2": 2} {
		at := walk(t, rootfs, p).Attr()
		if at.Mode != iofs.ModeDir|0o755 || at.Nlink != nlink {
			t.Errorf("%s: mode %v nlink %d, want drwxr-xr-x %d", p, at.Mode, at.Nlink, nlink)
		}
	}
	at := walk(t, root, "tags/t/linux_amd64/layers/00/a/b").Attr()
	if at.Mode != iofs.ModeDir|0o755 || at.Nlink != 3 {
		t.Errorf("layer view a/b: %v %d", at.Mode, at.Nlink)
	}
}

func TestNlinkDirs(t *testing.T) {
	_, rootfs := rootfsOf(t,
		layerTar(t, d("./"), d("etc/"), d("etc/a/"), d("etc/b/"), f("etc/f", "f"), sym("etc/l", "f"), d("usr/")),
		layerTar(t, d("etc/c/"), f(".wh.usr", ""), d("var/")),
	)
	// (rootfs itself: see TestNlinkTreeRoots in tree_bugs_test.go)
	for p, nlink := range map[string]uint32{"etc": 5, "etc/a": 2, "var": 2} {
		if got := walk(t, rootfs, p).Attr().Nlink; got != nlink {
			t.Errorf("%q: nlink %d, want %d", p, got, nlink)
		}
	}
	for p := range map[string]bool{"etc/f": true, "etc/l": true} {
		if got := walk(t, rootfs, p).Attr().Nlink; got != 1 {
			t.Errorf("%q: nlink %d, want 1", p, got)
		}
	}
}

// TestHardLinkLowerLayer: a hard link to a file of a lower layer is that
// file: same inode, same content, link count 2.
func TestHardLinkLowerLayer(t *testing.T) {
	_, rootfs := rootfsOf(t,
		layerTar(t, d("bin/"), f("bin/busybox", "BUSYBOX")),
		layerTar(t, d("sbin/"), hard("sbin/init", "bin/busybox"), hard("./bin/sh", "/bin/busybox")),
	)
	target := walk(t, rootfs, "bin/busybox")
	for _, p := range []string{"sbin/init", "bin/sh"} {
		n := walk(t, rootfs, p)
		if got := content(t, n); got != "BUSYBOX" {
			t.Errorf("%s: %q", p, got)
		}
		if n.Attr().Ino != target.Attr().Ino {
			t.Errorf("%s: inode %d, target %d", p, n.Attr().Ino, target.Attr().Ino)
		}
		if n.Attr().Nlink != 3 {
			t.Errorf("%s: nlink %d, want 3", p, n.Attr().Nlink)
		}
	}
	if target.Attr().Nlink != 3 {
		t.Errorf("target nlink %d, want 3", target.Attr().Nlink)
	}
}

// TestHardLinkTargetReplaced: a link made before its target was replaced
// keeps the old content, as extraction would; the two are then distinct
// files, each with one link.
func TestHardLinkTargetReplaced(t *testing.T) {
	root, rootfs := rootfsOf(t,
		layerTar(t, f("target", "old"), hard("link", "target"), hard("link2", "target")),
		layerTar(t, f("target", "new content")),
	)
	tg, ln, ln2 := walk(t, rootfs, "target"), walk(t, rootfs, "link"), walk(t, rootfs, "link2")
	if content(t, tg) != "new content" || content(t, ln) != "old" || content(t, ln2) != "old" {
		t.Errorf("contents %q %q %q", content(t, tg), content(t, ln), content(t, ln2))
	}
	if tg.Attr().Ino == ln.Attr().Ino {
		t.Error("replaced target shares the link's inode")
	}
	if ln.Attr().Ino != ln2.Attr().Ino {
		t.Error("the two links of the old file differ")
	}
	if tg.Attr().Nlink != 1 || ln.Attr().Nlink != 2 || ln2.Attr().Nlink != 2 {
		t.Errorf("nlink target %d link %d link2 %d, want 1 2 2", tg.Attr().Nlink, ln.Attr().Nlink, ln2.Attr().Nlink)
	}
	if tg.Attr().Size != int64(len("new content")) || ln.Attr().Size != 3 {
		t.Errorf("sizes %d %d", tg.Attr().Size, ln.Attr().Size)
	}
	// In the bottom layer's own tree the three names are one file.
	l0 := walkDir(t, root, "tags/t/linux_amd64/layers/00")
	a, b := walk(t, l0, "target").Attr(), walk(t, l0, "link").Attr()
	if a.Ino != b.Ino || a.Nlink != 3 || b.Nlink != 3 {
		t.Errorf("layer 00: ino %d/%d nlink %d/%d", a.Ino, b.Ino, a.Nlink, b.Nlink)
	}
	// A whiteout of the target leaves the link.
	_, rootfs = rootfsOf(t,
		layerTar(t, f("target", "old"), hard("link", "target")),
		layerTar(t, f(".wh.target", "")),
	)
	eq(t, "after whiteout", describe(t, rootfs), []string{"link = old"})
	if n := walk(t, rootfs, "link").Attr().Nlink; n != 1 {
		t.Errorf("link nlink %d after its target was deleted", n)
	}
}

// TestDuplicateNames: the last of duplicate names in one layer wins.
func TestDuplicateNames(t *testing.T) {
	root, rootfs := rootfsOf(t, layerTar(t,
		f("dup", "first"), f("dup", "second"),
		f("fd", "file first"), d("fd/"), f("fd/k", "k"),
		d("df/"), f("df/k", "k"), f("df", "file last"),
		d("dd/"), f("dd/a", "a"), d("dd/"), f("dd/b", "b"),
	))
	want := []string{"dd/", "dd/a = a", "dd/b = b", "df = file last", "dup = second", "fd/", "fd/k = k"}
	eq(t, "rootfs", describe(t, rootfs), want)
	eq(t, "layer", describe(t, walkDir(t, root, "tags/t/linux_amd64/layers/00")), want)
}

func inoOf(t testing.TB, root lfs.Dir, p string) uint64 { return walk(t, root, p).Attr().Ino }

// TestInodes: inode numbers are stable across lookups, unique within the
// tree but for hard links, and distinct between the tags/ and manifests/
// views of one directory.
func TestInodes(t *testing.T) {
	o := newOCIDir(t)
	m := o.image("t", layerTar(t, d("etc/"), f("etc/a", "a"), hard("etc/b", "etc/a")), layerTar(t, f("etc/c", "c")))
	root := o.open()
	tagged := "tags/t/linux_amd64/"
	byDigest := "manifests/" + m.Digest.String() + "/linux_amd64/"
	for _, p := range []string{"", "tags", "tags/t", tagged + "rootfs", tagged + "rootfs/etc", tagged + "rootfs/etc/a", tagged + "layers/00/etc/a", byDigest + "rootfs/etc"} {
		if a, b := inoOf(t, root, p), inoOf(t, root, p); a != b || a == 0 {
			t.Errorf("%q: inode %d then %d", p, a, b)
		}
	}
	for _, p := range []string{"rootfs", "rootfs/etc", "rootfs/etc/a", "layers/00/etc", "layers/01", "manifest.json"} {
		if inoOf(t, root, tagged+p) == inoOf(t, root, byDigest+p) {
			t.Errorf("%s: the tags/ and manifests/ views share inode %d", p, inoOf(t, root, tagged+p))
		}
	}
	// Unique across the whole tree, hard links aside.
	seen := map[uint64]string{}
	var rec func(p string, dn lfs.Dir)
	rec = func(p string, dn lfs.Dir) {
		ents, err := dn.ReadDir()
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			q := path.Join(p, e.Name)
			ino := e.Node.Attr().Ino
			if other, ok := seen[ino]; ok && e.Node.Attr().Nlink < 2 {
				t.Errorf("inode %d: %s and %s", ino, other, q)
			}
			seen[ino] = q
			if sub, ok := e.Node.(lfs.Dir); ok {
				rec(q, sub)
			}
			// ReadDir and Lookup agree.
			if got := inoOf(t, root, q); got != ino {
				t.Errorf("%s: ReadDir ino %d, Lookup %d", q, ino, got)
			}
		}
	}
	rec("", root)
	if inoOf(t, root, tagged+"rootfs/etc/a") != inoOf(t, root, tagged+"rootfs/etc/b") {
		t.Error("hard links differ in the rootfs")
	}
}

func TestReadAt(t *testing.T) {
	body := strings.Repeat("0123456789", 100)
	_, rootfs := rootfsOf(t, layerTar(t, f("f", body), f("empty", ""), f("next", "NEXT")))
	fn := walk(t, rootfs, "f").(lfs.File)
	p := make([]byte, 2000)
	if n, err := fn.ReadAt(p, 0); n != 1000 || err != io.EOF || string(p[:n]) != body {
		t.Errorf("large buffer: %d %v", n, err)
	}
	if n, err := fn.ReadAt(p[:10], 995); n != 5 || err != io.EOF || string(p[:5]) != "56789" {
		t.Errorf("across EOF: %d %v %q", n, err, p[:n])
	}
	if n, err := fn.ReadAt(p[:10], 990); n != 10 || (err != nil && err != io.EOF) || string(p[:10]) != "0123456789" {
		t.Errorf("up to EOF: %d %v", n, err)
	}
	for _, off := range []int64{1000, 1001, 1 << 40} {
		if n, err := fn.ReadAt(p[:10], off); n != 0 || err != io.EOF {
			t.Errorf("at %d: %d %v", off, n, err)
		}
	}
	if n, err := fn.ReadAt(p[:0], 0); n != 0 || (err != nil && err != io.EOF) {
		t.Errorf("empty buffer: %d %v", n, err)
	}
	if _, err := fn.ReadAt(p[:10], -1); err == nil {
		t.Error("negative offset read")
	}
	// Never a byte of the next entry.
	if n, _ := fn.ReadAt(p, 500); n != 500 || bytes.Contains(p[:n], []byte("NEXT")) {
		t.Errorf("read past the entry: %d", n)
	}
	en := walk(t, rootfs, "empty").(lfs.File)
	if n, err := en.ReadAt(p, 0); n != 0 || err != io.EOF {
		t.Errorf("empty file: %d %v", n, err)
	}
}

// TestMetadata: mode, owner, mtime, symlink target, xattrs and device
// numbers come from the headers.
func TestMetadata(t *testing.T) {
	x := f("x", "x")
	x.hdr.Mode = 0o4755
	x.hdr.Uid, x.hdr.Gid = 1000, 100
	x.hdr.PAXRecords = map[string]string{"SCHILY.xattr.user.k": "v"}
	dev := ent{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3, ModTime: mtime}}
	fifo := ent{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "fifo", Mode: 0o600, ModTime: mtime}}
	sticky := d("tmp/")
	sticky.hdr.Mode = 0o1777
	_, rootfs := rootfsOf(t, layerTar(t, x, dev, fifo, sticky, sym("l", "../../outside")))
	a := walk(t, rootfs, "x").Attr()
	if a.Mode != 0o755|iofs.ModeSetuid || a.Uid != 1000 || a.Gid != 100 || !a.Mtime.Equal(mtime) || a.Size != 1 {
		t.Errorf("x: %+v", a)
	}
	if xa, ok := walk(t, rootfs, "x").(lfs.Xattrer); !ok || !reflect.DeepEqual(xa.Xattrs(), map[string]string{"user.k": "v"}) {
		t.Errorf("xattrs: %v", ok)
	}
	if a := walk(t, rootfs, "dev/null").Attr(); a.Mode != iofs.ModeDevice|iofs.ModeCharDevice|0o666 || a.Rdev != 1<<8|3 {
		t.Errorf("dev/null: %v %d", a.Mode, a.Rdev)
	}
	if a := walk(t, rootfs, "fifo").Attr(); a.Mode != iofs.ModeNamedPipe|0o600 {
		t.Errorf("fifo: %v", a.Mode)
	}
	if a := walk(t, rootfs, "tmp").Attr(); a.Mode != iofs.ModeDir|iofs.ModeSticky|0o777 {
		t.Errorf("tmp: %v", a.Mode)
	}
	l := walk(t, rootfs, "l")
	if s, ok := l.(lfs.Symlink); !ok || s.Target() != "../../outside" || l.Attr().Size != int64(len("../../outside")) || l.Attr().Mode != iofs.ModeSymlink|0o777 {
		t.Errorf("symlink: %T %+v", l, l.Attr())
	}
	// A symlink in the middle of a path is not followed.
	if _, err := lfs.Walk(rootfs, "l/x"); !errors.Is(err, iofs.ErrNotExist) {
		t.Errorf("walk through a symlink: %v", err)
	}
	if _, err := rootfs.Lookup("absent"); !errors.Is(err, iofs.ErrNotExist) {
		t.Errorf("absent: %v", err)
	}
}

// TestLayersView: layers/NN shows each layer as stored, whiteouts
// included, numbered from the bottom with a common width.
func TestLayersView(t *testing.T) {
	var layers [][]byte
	for i := 0; i < 11; i++ {
		layers = append(layers, layerTar(t, f(fmt.Sprintf("f%d", i), fmt.Sprint(i)), f(".wh.f"+fmt.Sprint(i-1), "")))
	}
	root, rootfs := rootfsOf(t, layers...)
	eq(t, "rootfs", describe(t, rootfs), []string{"f10 = 10"})
	ents, err := walkDir(t, root, "tags/t/linux_amd64/layers").ReadDir()
	if err != nil || len(ents) != 11 || ents[0].Name != "00" || ents[10].Name != "10" {
		t.Fatalf("layers: %v %v", ents, err)
	}
	eq(t, "layer 03", describe(t, walkDir(t, root, "tags/t/linux_amd64/layers/03")), []string{".wh.f2 = ", "f3 = 3"})
}

// TestArtifactFiles: titled layers of an ORAS artifact are files/<title>.
func TestArtifactFiles(t *testing.T) {
	o := newOCIDir(t)
	cfg := o.blob("application/vnd.oci.empty.v1+json", []byte("{}"))
	a := o.blob("application/vnd.oci.image.layer.v1.tar", []byte("hello\n"))
	a.Annotations = map[string]string{ocispec.AnnotationTitle: "hello.txt"}
	b := o.blob("application/octet-stream", []byte("\x00\x01binary"))
	b.Annotations = map[string]string{ocispec.AnnotationTitle: "bin.dat"}
	bad := o.blob("application/octet-stream", []byte("bad"))
	bad.Annotations = map[string]string{ocispec.AnnotationTitle: "a/../.."}
	m := o.json(ocispec.MediaTypeImageManifest, ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		ArtifactType: "application/vnd.example", Config: cfg, Layers: []ocispec.Descriptor{a, b, bad}})
	m.Annotations = map[string]string{ocispec.AnnotationRefName: "art"}
	o.top = append(o.top, m)
	root := o.open()
	im := walkDir(t, root, "tags/art/unknown_unknown")
	eq(t, "files", describe(t, walkDir(t, im, "files")), []string{"bin.dat = \x00\x01binary", "hello.txt = hello\n"})
	if got := content(t, walk(t, im, "config.json")); got != "{}" {
		t.Errorf("config.json %q", got)
	}
}

// TestFSHandBuilt runs testing/fstest over a hand-built tree holding every
// case above.
func TestFSHandBuilt(t *testing.T) {
	o := newOCIDir(t)
	o.image("a/b:1",
		layerTar(t, d("d/"), f("d/x", "x"), f("t", "old"), hard("h", "t"), sym("s", "d/x"), f("implied/dir/f", "f")),
		layerTar(t, f("d/.wh..wh..opq", ""), f("d/y", "y"), f("t", "new"), f(".wh.implied", "")),
	)
	o.image("", layerTar(t, f("untagged", "u")))
	root := o.open()
	if err := fstest.TestFS(lfs.FS(root), "index.json", "oci-layout", "tags/a/b:1/linux_amd64/rootfs/h", "tags/a/b:1/linux_amd64/rootfs/d/y"); err != nil {
		t.Fatal(err)
	}
}
