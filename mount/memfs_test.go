package mount_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"slices"
	"strings"
	"time"

	lfs "github.com/layoutfs/layoutfs/fs"
	"golang.org/x/sys/unix"
)

// A small in-memory lfs tree, enough to exercise every adapter path.

type memNode struct{ attr lfs.Attr }

func (m *memNode) Attr() lfs.Attr { return m.attr }

type memDir struct {
	memNode
	kids map[string]lfs.Node
}

func (d *memDir) Lookup(name string) (lfs.Node, error) {
	n, ok := d.kids[name]
	if !ok {
		return nil, &iofs.PathError{Op: "lookup", Path: name, Err: iofs.ErrNotExist}
	}
	return n, nil
}

func (d *memDir) ReadDir() ([]lfs.Dirent, error) {
	var ents []lfs.Dirent
	for name, n := range d.kids {
		ents = append(ents, lfs.Dirent{Name: name, Node: n})
	}
	slices.SortFunc(ents, func(a, b lfs.Dirent) int { return strings.Compare(a.Name, b.Name) })
	return ents, nil
}

type memFile struct {
	memNode
	data   []byte
	xattrs map[string]string
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	return bytes.NewReader(f.data).ReadAt(p, off)
}

func (f *memFile) Xattrs() map[string]string { return f.xattrs }

// genFile is a large file whose bytes are computed from their offset.
type genFile struct{ memNode }

func genByte(off int64) byte { return byte(off % 251) }

func (f *genFile) ReadAt(p []byte, off int64) (int, error) {
	size := f.attr.Size
	if off >= size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), size-off))
	for i := range n {
		p[i] = genByte(off + int64(i))
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

type panicFile struct{ memNode }

func (f *panicFile) ReadAt(p []byte, off int64) (int, error) { panic("corrupt tar entry") }

var errCorrupt = errors.New("tarindex: corrupt header")

type brokenFile struct{ memNode }

func (f *brokenFile) ReadAt(p []byte, off int64) (int, error) {
	return 0, fmt.Errorf("layer sha256:abc: %w", errCorrupt)
}

// oddDir fails every way a lazily loaded directory can.
type oddDir struct {
	memNode
	panics bool
}

func (d *oddDir) Lookup(name string) (lfs.Node, error) {
	if d.panics {
		panic("lookup exploded")
	}
	return nil, fmt.Errorf("lookup %s: %w", name, errors.ErrUnsupported)
}

func (d *oddDir) ReadDir() ([]lfs.Dirent, error) {
	if d.panics {
		panic("readdir exploded")
	}
	return nil, fmt.Errorf("load manifest: %w", errCorrupt)
}

type memLink struct {
	memNode
	target string
}

func (l *memLink) Target() string { return l.target }

var testMtime = time.Date(2024, 1, 2, 3, 4, 5, 500_000_000, time.UTC)

const (
	rootIno  = 100
	shIno    = 10
	bigSize  = 6<<30 + 12345 // past 4 GiB: offsets must not be truncated anywhere
	helloTxt = "hello world\n"
)

// testTree builds:
//
//	/ hello.txt link->hello.txt abs->/etc/passwd big boom broken zero
//	  bin/sh  usr/bin/sh (hard links)  dev/{null,sda,fifo}  tmp/ (sticky)
//	  odd/ (errors)  panicdir/ (panics)
func testTree() *memDir {
	ino := uint64(1000)
	attr := func(mode iofs.FileMode) lfs.Attr {
		ino++
		return lfs.Attr{Ino: ino, Mode: mode, Mtime: testMtime, Nlink: 1}
	}
	dir := func(mode iofs.FileMode, kids map[string]lfs.Node) *memDir {
		return &memDir{memNode{attr(iofs.ModeDir | mode)}, kids}
	}

	hello := &memFile{memNode: memNode{attr(0o644)}, data: []byte(helloTxt),
		xattrs: map[string]string{"user.origin": "layer-0", "user.empty": ""}}
	hello.attr.Size = int64(len(helloTxt))
	hello.attr.Uid, hello.attr.Gid = 1000, 1001

	sh := &memFile{memNode: memNode{lfs.Attr{Ino: shIno, Mode: iofs.ModeSetuid | 0o755,
		Size: 4, Nlink: 2, Mtime: testMtime}}, data: []byte("\x7fELF")}

	big := &genFile{memNode{attr(0o444)}}
	big.attr.Size = bigSize

	devNull := &memNode{attr(iofs.ModeDevice | iofs.ModeCharDevice | 0o666)}
	devNull.attr.Rdev = unix.Mkdev(1, 3)
	devSda := &memNode{attr(iofs.ModeDevice | 0o660)}
	devSda.attr.Rdev = unix.Mkdev(259, 70000) // a minor above 255 tests the split encoding

	root := dir(0o755, map[string]lfs.Node{
		"hello.txt": hello,
		"link":      &memLink{memNode{attr(iofs.ModeSymlink | 0o777)}, "hello.txt"},
		"abs":       &memLink{memNode{attr(iofs.ModeSymlink | 0o777)}, "/etc/passwd"},
		"big":       big,
		"boom":      &panicFile{memNode{attr(0o644)}},
		"broken":    &brokenFile{memNode{attr(0o644)}},
		"zero":      &memFile{memNode: memNode{attr(0)}},
		"bin":       dir(0o755, map[string]lfs.Node{"sh": sh}),
		"usr":       dir(0o755, map[string]lfs.Node{"bin": dir(0o755, map[string]lfs.Node{"sh": sh})}),
		"dev": dir(0o755, map[string]lfs.Node{
			"null": devNull,
			"sda":  devSda,
			"fifo": &memNode{attr(iofs.ModeNamedPipe | 0o600)},
		}),
		"tmp":      dir(iofs.ModeSticky|0o777, map[string]lfs.Node{}),
		"odd":      &oddDir{memNode: memNode{attr(iofs.ModeDir | 0o755)}},
		"panicdir": &oddDir{memNode: memNode{attr(iofs.ModeDir | 0o755)}, panics: true},
	})
	root.attr.Ino = rootIno
	for _, n := range []*memNode{&root.kids["boom"].(*panicFile).memNode, &root.kids["broken"].(*brokenFile).memNode} {
		n.attr.Size = 100
	}
	return root
}
