package fs

import (
	"archive/tar"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// view serves an ftree as nodes, numbering inodes from ino.
type view struct {
	t   *ftree
	ino uint64
}

func (v *view) node(i int32) Node {
	n := &v.t.nodes[i]
	e := v.t.entry(n)
	switch {
	case e == nil || e.Type == tar.TypeDir:
		return &viewDir{v: v, i: i}
	case e.Type == tar.TypeSymlink:
		return &viewLink{v: v, i: i}
	case e.IsRegular() || e.Type == tar.TypeLink:
		// A hard link left unresolved (its target is in a lower layer) is
		// an empty file in its layer's own tree.
		return &viewFile{v: v, i: i}
	}
	return &viewSpecial{v: v, i: i}
}

func (v *view) attr(i int32) Attr {
	n := &v.t.nodes[i]
	a := Attr{Ino: v.ino + v.t.identity(i), Nlink: n.nlink}
	e := v.t.entry(n)
	if e == nil {
		a.Mode = iofs.ModeDir | 0o755
		a.Mtime = time.Unix(0, 0)
		return a
	}
	a.Mode = e.FileMode()
	a.Uid, a.Gid = uint32(e.Uid), uint32(e.Gid)
	a.Mtime = e.Time()
	switch e.Type {
	case tar.TypeSymlink:
		a.Size = int64(len(e.Linkname))
	case tar.TypeChar, tar.TypeBlock:
		a.Rdev = unix.Mkdev(uint32(e.Devmajor), uint32(e.Devminor))
	default:
		if e.IsRegular() {
			a.Size = e.Size
		}
	}
	return a
}

func (v *view) xattrs(i int32) map[string]string {
	if e := v.t.entry(&v.t.nodes[i]); e != nil {
		return e.Xattrs
	}
	return nil
}

type viewNode struct {
	v *view
	i int32
}

func (n viewNode) Attr() Attr                { return n.v.attr(n.i) }
func (n viewNode) Xattrs() map[string]string { return n.v.xattrs(n.i) }

type viewDir viewNode

func (d *viewDir) Attr() Attr                { return d.v.attr(d.i) }
func (d *viewDir) Xattrs() map[string]string { return d.v.xattrs(d.i) }

func (d *viewDir) Lookup(name string) (Node, error) {
	k, ok := d.v.t.lookup(d.i, name)
	if !ok {
		return nil, iofs.ErrNotExist
	}
	return d.v.node(k), nil
}

func (d *viewDir) ReadDir() ([]Dirent, error) {
	first, end := d.v.t.nodes[d.i].kids()
	out := make([]Dirent, end-first)
	for k := first; k < end; k++ {
		out[k-first] = Dirent{Name: d.v.t.nodes[k].name, Node: d.v.node(k)}
	}
	return out, nil
}

var _ ListerAt = (*viewDir)(nil)

// NumEntries and EntryAt read the children by position: they lie in a
// consecutive range of the tree.
func (d *viewDir) NumEntries() (int, error) {
	return int(max(d.v.t.nodes[d.i].nkids, 0)), nil
}

func (d *viewDir) EntryAt(i int) Dirent {
	k := d.v.t.nodes[d.i].first + int32(i)
	return Dirent{Name: d.v.t.nodes[k].name, Node: d.v.node(k)}
}

type viewFile viewNode

func (f *viewFile) Attr() Attr                { return f.v.attr(f.i) }
func (f *viewFile) Xattrs() map[string]string { return f.v.xattrs(f.i) }

// ReadAt reads the entry's bytes straight from the archive.
func (f *viewFile) ReadAt(p []byte, off int64) (int, error) {
	n := &f.v.t.nodes[f.i]
	e := f.v.t.entry(n)
	data := f.v.t.layers[n.layer].Data
	if e.Sparse {
		return e.Reader(data).ReadAt(p, off)
	}
	if off < 0 {
		return 0, fmt.Errorf("read %s: negative offset", e.Name)
	}
	if off >= e.Size {
		return 0, io.EOF
	}
	want := min(int64(len(p)), e.Size-off)
	got, err := data.ReadAt(p[:want], e.Offset+off)
	if err == io.EOF && int64(got) < want {
		return got, fmt.Errorf("read %s: %w", e.Name, io.ErrUnexpectedEOF)
	}
	if int64(got) == want && want < int64(len(p)) {
		return got, io.EOF
	}
	if err == io.EOF {
		err = nil
	}
	return got, err
}

var _ FileSpan = (*viewFile)(nil)

// Span returns where the entry's bytes lie in the archive file, for an
// uncompressed layer read in place.
func (f *viewFile) Span() (*os.File, int64, bool) {
	n := &f.v.t.nodes[f.i]
	e := f.v.t.entry(n)
	a := f.v.t.layers[n.layer]
	if e == nil || e.Sparse || !e.IsRegular() || e.Offset+e.Size > a.Size {
		return nil, 0, false
	}
	file, base, ok := a.File()
	if !ok {
		return nil, 0, false
	}
	return file, base + e.Offset, true
}

type viewLink viewNode

func (l *viewLink) Attr() Attr                { return l.v.attr(l.i) }
func (l *viewLink) Xattrs() map[string]string { return l.v.xattrs(l.i) }
func (l *viewLink) Target() string            { return l.v.t.entry(&l.v.t.nodes[l.i]).Linkname }

// viewSpecial is a device node or a fifo: attributes only.
type viewSpecial = viewNode
