package fs_test

import (
	"testing"

	lfs "github.com/layoutfs/layoutfs/fs"
)

// TestNoXattrs: the root promises "no extended attributes anywhere" only
// once every layer of every image is indexed and none has any, and never
// after finding one.
func TestNoXattrs(t *testing.T) {
	plain := layerTar(t, d("etc/"), f("etc/os-release", "x"))
	x := f("bin/ping", "p")
	x.hdr.PAXRecords = map[string]string{"SCHILY.xattr.security.capability": "cap"}
	withX := layerTar(t, x)

	o := newOCIDir(t)
	o.image("a", plain)
	o.image("b", plain, withX)
	root := o.open()
	nx := root.(lfs.XattrFree)
	if nx.NoXattrs() {
		t.Fatal("no xattrs before any layer is indexed")
	}
	walk(t, root, "tags/a/linux_amd64/rootfs/etc/os-release")
	if nx.NoXattrs() {
		t.Fatal("no xattrs while b's layers are not indexed")
	}
	walk(t, root, "tags/b/linux_amd64/rootfs/bin/ping")
	if nx.NoXattrs() {
		t.Fatal("no xattrs with a layer that has some")
	}

	o = newOCIDir(t)
	o.image("a", plain)
	o.image("c", plain, layerTar(t, f("usr/x", "y")))
	root = o.open()
	nx = root.(lfs.XattrFree)
	walk(t, root, "tags/a/linux_amd64/rootfs/etc")
	walk(t, root, "tags/c/linux_amd64/layers/01/usr")
	if !nx.NoXattrs() || !nx.NoXattrs() {
		t.Error("every layer indexed, none with xattrs: NoXattrs is false")
	}
}

// TestListerAt: reading a directory by position agrees with ReadDir, for
// a tree's directories and the synthesised ones.
func TestListerAt(t *testing.T) {
	root, rootfs := rootfsOf(t, layerTar(t, d("etc/"), f("etc/a", "1"), f("etc/b", "2"), f("z", "3")))
	for _, dir := range []lfs.Dir{root, walkDir(t, root, "tags/t/linux_amd64"), walkDir(t, rootfs, "etc")} {
		l, ok := dir.(lfs.ListerAt)
		if !ok {
			t.Fatalf("%T is no ListerAt", dir)
		}
		ents, err := dir.ReadDir()
		if err != nil {
			t.Fatal(err)
		}
		n, err := l.NumEntries()
		if err != nil || n != len(ents) {
			t.Fatalf("NumEntries = %d, %v; ReadDir has %d", n, err, len(ents))
		}
		for i, e := range ents {
			if got := l.EntryAt(i); got.Name != e.Name || got.Node.Attr() != e.Node.Attr() {
				t.Errorf("EntryAt(%d) = %s %+v, want %s %+v", i, got.Name, got.Node.Attr(), e.Name, e.Node.Attr())
			}
		}
	}
}
