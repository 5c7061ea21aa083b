package fs

import (
	"io"
	iofs "io/fs"
	"path"
	"time"
)

// FS returns root as an io/fs.FS, for tools and tests written against the
// standard interfaces (testing/fstest checks the tree through it).
func FS(root Dir) iofs.FS { return fsys{root} }

type fsys struct{ root Dir }

func (f fsys) Open(name string) (iofs.File, error) {
	if !iofs.ValidPath(name) {
		return nil, &iofs.PathError{Op: "open", Path: name, Err: iofs.ErrInvalid}
	}
	n, err := Walk(f.root, name)
	if err != nil {
		return nil, &iofs.PathError{Op: "open", Path: name, Err: unwrapPath(err)}
	}
	info := fileInfo{name: path.Base(name), a: n.Attr()}
	switch n := n.(type) {
	case Dir:
		return &openDir{info: info, d: n}, nil
	case File:
		return &openFile{info: info, r: io.NewSectionReader(n, 0, info.a.Size)}, nil
	}
	return &openFile{info: info, r: io.NewSectionReader(nil, 0, 0)}, nil
}

func (f fsys) ReadDir(name string) ([]iofs.DirEntry, error) {
	file, err := f.Open(name)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	d, ok := file.(*openDir)
	if !ok {
		return nil, &iofs.PathError{Op: "readdir", Path: name, Err: iofs.ErrInvalid}
	}
	return d.ReadDir(-1)
}

func unwrapPath(err error) error {
	if pe, ok := err.(*iofs.PathError); ok {
		return pe.Err
	}
	return err
}

// fileInfo is a node's Attr as io/fs.FileInfo.
type fileInfo struct {
	name string
	a    Attr
}

func (i fileInfo) Name() string                 { return i.name }
func (i fileInfo) Size() int64                  { return i.a.Size }
func (i fileInfo) Mode() iofs.FileMode          { return i.a.Mode }
func (i fileInfo) ModTime() time.Time           { return i.a.Mtime }
func (i fileInfo) IsDir() bool                  { return i.a.Mode.IsDir() }
func (i fileInfo) Sys() any                     { return i.a }
func (i fileInfo) Info() (iofs.FileInfo, error) { return i, nil }
func (i fileInfo) Type() iofs.FileMode          { return i.a.Mode.Type() }

type openFile struct {
	info fileInfo
	r    *io.SectionReader
}

func (f *openFile) Stat() (iofs.FileInfo, error)              { return f.info, nil }
func (f *openFile) Read(p []byte) (int, error)                { return f.r.Read(p) }
func (f *openFile) ReadAt(p []byte, off int64) (int, error)   { return f.r.ReadAt(p, off) }
func (f *openFile) Seek(off int64, whence int) (int64, error) { return f.r.Seek(off, whence) }
func (f *openFile) Close() error                              { return nil }

type openDir struct {
	info fileInfo
	d    Dir
	ents []iofs.DirEntry
	read bool
}

func (d *openDir) Stat() (iofs.FileInfo, error) { return d.info, nil }
func (d *openDir) Read([]byte) (int, error) {
	return 0, &iofs.PathError{Op: "read", Path: d.info.name, Err: iofs.ErrInvalid}
}
func (d *openDir) Close() error { return nil }

// ReadDir follows io/fs.ReadDirFile: n > 0 returns at most n entries and
// io.EOF at the end; n <= 0 returns the rest.
func (d *openDir) ReadDir(n int) ([]iofs.DirEntry, error) {
	if !d.read {
		ents, err := d.d.ReadDir()
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			d.ents = append(d.ents, fileInfo{name: e.Name, a: e.Node.Attr()})
		}
		d.read = true
	}
	if n <= 0 {
		out := d.ents
		d.ents = nil
		return out, nil
	}
	if len(d.ents) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(d.ents))
	out := d.ents[:n]
	d.ents = d.ents[n:]
	return out, nil
}
