package fs

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/layoutfs/layoutfs/internal/flock"
)

// rwRoot is the writable rootfs of one image in a read-write mount: the
// merged layers (read-only, read in place) under the pending changes (the
// upper). Copy-up is lazy: a change of metadata records the new metadata
// only, and a file's content is copied into the upper when it is first
// written. One lock serialises the rootfs's edits and lookups, which keeps
// it obviously safe; reads of file content do not take it.
type rwRoot struct {
	lower Dir
	dir   string
	ino   *inos
	warn  func(string)

	// changeMu serialises changes, and lock is the image's lock file,
	// held for each (see change). Taken before mu.
	changeMu sync.Mutex
	lock     *os.File

	mu      sync.Mutex
	up      *upper
	root    *mnode
	checked time.Time
	upIno   map[uint64]uint64 // inode numbers of upper nodes, by id
	// gen counts the times the upper was opened afresh (after a commit or
	// discard elsewhere); nodes of an older one look themselves up again.
	gen   uint64
	files map[string]*os.File
	err   error
}

// mnode is a name in the writable rootfs. Its identity survives renames;
// its path is found through its parents.
type mnode struct {
	r      *rwRoot
	parent *mnode
	name   string
	// lower is the read-only node the name shows when up is nil, and the
	// source of content and listing a copy-up has not replaced.
	lower  Node
	up     *unode
	opaque bool // a directory showing nothing of lower's children
	kids   map[string]*mnode
	ino    uint64
	gen    uint64
	gone   bool // no longer in the rootfs (its upper was dropped)
}

func newRWRoot(lower Dir, dir string, ino *inos, warn func(string)) *rwRoot {
	r := &rwRoot{lower: lower, dir: dir, ino: ino, warn: warn, upIno: map[uint64]uint64{}, files: map[string]*os.File{}}
	r.root = &mnode{r: r, lower: lower, ino: lower.Attr().Ino}
	return r
}

// Dir returns the rootfs directory.
func (r *rwRoot) Dir() Dir { return mdir{r.root} }

// state returns the root, opening the upper on first use and again when
// another process (commit, discard) removed it. Called with r.mu held.
func (r *rwRoot) state() (*mnode, error) {
	if r.up != nil && time.Since(r.checked) < recheckEvery {
		return r.root, nil
	}
	r.checked = time.Now()
	if r.up != nil && !r.up.gone() {
		return r.root, nil
	}
	if r.up != nil {
		r.up.close()
		for _, f := range r.files {
			f.Close()
		}
		r.files = map[string]*os.File{}
	}
	up, err := openUpper(r.dir)
	if err != nil {
		r.warn(err.Error())
		return nil, err
	}
	r.up = up
	// The root keeps its identity (the tree holds it); the nodes below it
	// refresh themselves when next used, since the kernel holds them too.
	r.gen++
	r.root.gen = r.gen
	r.root.kids, r.root.up, r.root.opaque = nil, nil, false
	if rec := up.recs["."]; rec != nil && rec.Node != nil {
		r.root.up = rec.Node
	}
	return r.root, nil
}

// refresh brings a node of an upper since dropped up to date: it takes
// the place of what its path is now, or is gone.
func (m *mnode) refresh() {
	if m.gen == m.r.gen {
		return
	}
	m.gen = m.r.gen
	if m.parent == nil {
		return
	}
	m.parent.refresh()
	if m.parent.gone || m.parent.load() != nil {
		m.gone = true
		return
	}
	k := m.parent.kids[m.name]
	switch {
	case k == nil:
		m.gone = true
	case k != m:
		m.lower, m.up, m.opaque, m.kids, m.gone = k.lower, k.up, k.opaque, nil, false
		m.parent.kids[m.name] = m
	}
}

// node returns the typed node for m.
func (m *mnode) node() Node {
	switch m.attr().Mode.Type() {
	case iofs.ModeDir:
		return mdir{m}
	case iofs.ModeSymlink:
		return mlink{m}
	case 0:
		return mfile{m}
	}
	return mspecial{m}
}

// path is m's path in the rootfs ("." for the root), as the upper keys
// it.
func (m *mnode) path() string {
	if m.parent == nil {
		return "."
	}
	var parts []string
	for n := m; n.parent != nil; n = n.parent {
		parts = append(parts, n.name)
	}
	for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
		parts[i], parts[j] = parts[j], parts[i]
	}
	return strings.Join(parts, "/")
}

// childPath is the path of name in directory m.
func (m *mnode) childPath(name string) string {
	if m.parent == nil {
		return name
	}
	return m.path() + "/" + name
}

func (m *mnode) attr() Attr {
	if m.up == nil {
		a := m.lower.Attr()
		a.Ino = m.ino
		return a
	}
	u := m.up
	a := Attr{Ino: m.ino, Mode: u.Mode, Uid: u.Uid, Gid: u.Gid, Mtime: time.Unix(0, u.Mtime), Nlink: 1, Size: u.Size, Rdev: u.Rdev}
	switch u.Type {
	case tar.TypeDir:
		a.Mode |= iofs.ModeDir
		a.Size = 0
	case tar.TypeSymlink:
		a.Mode |= iofs.ModeSymlink
		a.Size = int64(len(u.Link))
	case tar.TypeFifo:
		a.Mode |= iofs.ModeNamedPipe
	case tar.TypeChar:
		a.Mode |= iofs.ModeDevice | iofs.ModeCharDevice
	case tar.TypeBlock:
		a.Mode |= iofs.ModeDevice
	}
	if u.Type != tar.TypeReg {
		a.Size = max(a.Size, 0)
	}
	return a
}

func (m *mnode) xattrs() map[string]string {
	if m.up != nil {
		return m.up.Xattrs
	}
	if x, ok := m.lower.(Xattrer); ok {
		return x.Xattrs()
	}
	return nil
}

// load fills m.kids: the lower directory's children unless m is opaque,
// then the upper's records, which replace or hide them.
func (m *mnode) load() error {
	if m.kids != nil {
		return nil
	}
	kids := map[string]*mnode{}
	if d, ok := m.lower.(Dir); ok && !m.opaque {
		ents, err := d.ReadDir()
		if err != nil {
			return err
		}
		for _, e := range ents {
			kids[e.Name] = &mnode{r: m.r, parent: m, name: e.Name, lower: e.Node, ino: e.Node.Attr().Ino, gen: m.r.gen}
		}
	}
	p := m.path()
	if p == "." {
		p = ""
	}
	for name, rec := range m.r.up.under(p) {
		if rec.Whiteout {
			delete(kids, name)
			continue
		}
		k := kids[name]
		if k == nil || rec.Node.Lower != "" && rec.Node.Lower != m.childPath(name) {
			// Made in the upper, or moved here: its content (if any)
			// is the lower's at rec.Node.Lower.
			k = &mnode{r: m.r, parent: m, name: name, ino: m.r.upperIno(rec.Node.ID), gen: m.r.gen}
			if rec.Node.Lower != "" {
				if n, err := Walk(m.r.lower, rec.Node.Lower); err == nil {
					k.lower = n
				}
			}
			kids[name] = k
		}
		k.up, k.opaque = rec.Node, rec.Opaque
	}
	m.kids = kids
	return nil
}

// upperIno returns the inode number of upper node id.
func (r *rwRoot) upperIno(id uint64) uint64 {
	ino, ok := r.upIno[id]
	if !ok {
		ino = r.ino.one()
		r.upIno[id] = ino
	}
	return ino
}

// child returns name in directory m, loading it.
func (m *mnode) child(name string) (*mnode, error) {
	if err := m.load(); err != nil {
		return nil, err
	}
	k := m.kids[name]
	if k == nil {
		return nil, fmt.Errorf("%s: %w", m.childPath(name), iofs.ErrNotExist)
	}
	return k, nil
}

// copyUp gives m an upper node carrying its lower metadata; the content
// stays the lower's until written.
func (m *mnode) copyUp() error {
	if m.up != nil {
		return nil
	}
	a := m.lower.Attr()
	u := &unode{ID: m.r.up.newID(), Type: tarType(a.Mode), Mode: a.Mode & (iofs.ModePerm | iofs.ModeSetuid | iofs.ModeSetgid | iofs.ModeSticky),
		Uid: a.Uid, Gid: a.Gid, Mtime: a.Mtime.UnixNano(), Rdev: a.Rdev, Size: a.Size}
	if x := m.xattrs(); len(x) > 0 {
		u.Xattrs = make(map[string]string, len(x))
		for k, v := range x {
			u.Xattrs[k] = v
		}
	}
	if l, ok := m.lower.(Symlink); ok {
		u.Link = l.Target()
	}
	if u.Type == tar.TypeReg {
		u.Lower = m.path()
	}
	if u.Type == tar.TypeDir {
		u.Size = 0
	}
	if a.Nlink > 1 && !a.Mode.IsDir() {
		// A hard link of the lower that changes on its own is no longer
		// the other names' inode, as it will not be in the layer.
		m.ino = m.r.upperIno(u.ID)
	}
	m.r.upIno[u.ID] = m.ino
	m.up = u
	return m.r.up.put(m.path(), u, m.opaque)
}

// tarType is the tar typeflag for an io/fs mode.
func tarType(mode iofs.FileMode) byte {
	switch mode.Type() {
	case iofs.ModeDir:
		return tar.TypeDir
	case iofs.ModeSymlink:
		return tar.TypeSymlink
	case iofs.ModeNamedPipe:
		return tar.TypeFifo
	case iofs.ModeDevice | iofs.ModeCharDevice:
		return tar.TypeChar
	case iofs.ModeDevice:
		return tar.TypeBlock
	}
	return tar.TypeReg
}

// materialize gives regular file m its own content in the upper, copied
// from the lower the first time.
func (m *mnode) materialize() (*os.File, error) {
	if err := m.copyUp(); err != nil {
		return nil, err
	}
	u := m.up
	if u.Data != "" {
		return m.r.dataFile(u.Data)
	}
	name := strconv.FormatUint(m.r.up.newID(), 10)
	f, err := m.r.up.newData(name)
	if err != nil {
		return nil, err
	}
	if lf, ok := m.lower.(File); ok && u.Lower != "" {
		if _, err := io.Copy(f, io.NewSectionReader(lf, 0, lf.Attr().Size)); err != nil {
			f.Close()
			os.Remove(f.Name())
			return nil, fmt.Errorf("copy up %s: %w", m.path(), err)
		}
	}
	m.r.files[name] = f
	u.Data, u.Lower = name, ""
	return f, m.r.up.putNode(u)
}

// dataFile returns the open data file name.
func (r *rwRoot) dataFile(name string) (*os.File, error) {
	if f := r.files[name]; f != nil {
		return f, nil
	}
	f, err := os.OpenFile(r.up.dataPath(name), os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	r.files[name] = f
	return f, nil
}

// change runs fn, a change to the upper, as edit does, holding the
// image's lock (see Pending) too: a commit or discard in another process
// holds it from reading the upper to removing it, so no change lands in
// between, where it would be lost, and one made after goes to the upper as
// it is then.
func (m *mnode) change(fn func() error) error {
	r := m.r
	r.changeMu.Lock()
	defer r.changeMu.Unlock()
	if r.lock == nil {
		f, err := flock.Open(r.dir + ".lock")
		if err != nil {
			return err
		}
		r.lock = f
	}
	if err := flock.Wait(context.Background(), r.lock); err != nil {
		return fmt.Errorf("lock %s: %w", r.lock.Name(), err)
	}
	defer flock.Unlock(r.lock)
	r.mu.Lock()
	r.checked = time.Time{} // a commit may have ended a moment ago
	r.mu.Unlock()
	return m.edit(fn)
}

// edit runs fn on m under the rootfs's lock, with the state current.
func (m *mnode) edit(fn func() error) error {
	m.r.mu.Lock()
	defer m.r.mu.Unlock()
	if _, err := m.r.state(); err != nil {
		return err
	}
	m.refresh()
	if m.gone {
		return fmt.Errorf("%s: %w", m.name, iofs.ErrNotExist)
	}
	return fn()
}

// inLower reports whether the lower rootfs has path p.
func (r *rwRoot) inLower(p string) bool {
	_, err := Walk(r.lower, p)
	return err == nil
}

// newChild adds an upper node as name in directory m. A directory made
// where the lower has one is opaque: the old one was deleted first.
func (m *mnode) newChild(name string, u *unode) (*mnode, error) {
	if err := m.load(); err != nil {
		return nil, err
	}
	if m.kids[name] != nil {
		return nil, fmt.Errorf("%s: %w", m.childPath(name), syscall.EEXIST)
	}
	if err := validName(name); err != nil {
		return nil, err
	}
	p := m.childPath(name)
	u.ID = m.r.up.newID()
	u.Mtime, u.Touched = time.Now().UnixNano(), true
	opaque := u.Type == tar.TypeDir && m.r.inLower(p)
	k := &mnode{r: m.r, parent: m, name: name, up: u, opaque: opaque, ino: m.r.upperIno(u.ID), gen: m.r.gen}
	if u.Type == tar.TypeDir {
		k.kids = map[string]*mnode{}
	}
	if err := m.r.up.put(p, u, opaque); err != nil {
		return nil, err
	}
	m.kids[name] = k
	return k, nil
}

// validName refuses names a layer could not carry: a ".wh." name would be
// read back as a whiteout.
func validName(name string) error {
	if strings.HasPrefix(name, ".wh.") {
		return fmt.Errorf("%s: names starting with .wh. mean deletions in a layer: %w", name, syscall.EINVAL)
	}
	return nil
}

// mdir is a directory of the writable rootfs.
type mdir struct{ *mnode }

func (d mdir) Changing() {}

func (d mdir) Lookup(name string) (Node, error) {
	var out Node
	err := d.mnode.edit(func() error {
		k, err := d.mnode.child(name)
		if err == nil {
			out = k.node()
		}
		return err
	})
	return out, err
}

func (d mdir) ReadDir() ([]Dirent, error) {
	var ents []Dirent
	err := d.mnode.edit(func() error {
		if err := d.mnode.load(); err != nil {
			return err
		}
		for name, k := range d.kids {
			ents = append(ents, Dirent{Name: name, Node: k.node()})
		}
		return nil
	})
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name < ents[j].Name })
	return ents, err
}

func (d mdir) Create(name string, perm iofs.FileMode, uid, gid uint32) (Node, error) {
	return d.make(name, &unode{Type: tar.TypeReg, Mode: perm, Uid: uid, Gid: gid}, func(k *mnode) error {
		_, err := k.materialize()
		return err
	})
}

func (d mdir) Mkdir(name string, perm iofs.FileMode, uid, gid uint32) (Node, error) {
	return d.make(name, &unode{Type: tar.TypeDir, Mode: perm, Uid: uid, Gid: gid}, nil)
}

func (d mdir) Symlink(name, target string, uid, gid uint32) (Node, error) {
	return d.make(name, &unode{Type: tar.TypeSymlink, Mode: 0o777, Uid: uid, Gid: gid, Link: target, Size: int64(len(target))}, nil)
}

func (d mdir) Mknod(name string, mode iofs.FileMode, rdev uint64, uid, gid uint32) (Node, error) {
	t := tarType(mode)
	if t == tar.TypeReg {
		return d.Create(name, mode.Perm(), uid, gid)
	}
	if t == tar.TypeDir || t == tar.TypeSymlink {
		return nil, fmt.Errorf("mknod %s: %w", name, syscall.EINVAL)
	}
	return d.make(name, &unode{Type: t, Mode: mode & (iofs.ModePerm | iofs.ModeSetuid | iofs.ModeSetgid | iofs.ModeSticky), Uid: uid, Gid: gid, Rdev: rdev}, nil)
}

// make adds u as name, then runs then (if any) on the new node.
func (d mdir) make(name string, u *unode, then func(*mnode) error) (Node, error) {
	var out Node
	err := d.mnode.change(func() error {
		k, err := d.mnode.newChild(name, u)
		if err != nil {
			return err
		}
		if then != nil {
			if err := then(k); err != nil {
				return err
			}
		}
		out = k.node()
		return nil
	})
	return out, err
}

func (d mdir) Link(name string, target Node) (Node, error) {
	var src *mnode
	switch t := target.(type) {
	case mfile:
		src = t.mnode
	case mlink:
		src = t.mnode
	case mspecial:
		src = t.mnode
	}
	if src == nil || src.r != d.r {
		return nil, fmt.Errorf("link %s: %w", name, syscall.EXDEV)
	}
	var out Node
	err := d.mnode.change(func() error {
		if err := d.mnode.load(); err != nil {
			return err
		}
		if d.kids[name] != nil {
			return fmt.Errorf("%s: %w", d.mnode.childPath(name), syscall.EEXIST)
		}
		if err := validName(name); err != nil {
			return err
		}
		if src.refresh(); src.gone {
			return fmt.Errorf("link %s: %w", name, iofs.ErrNotExist)
		}
		if err := src.copyUp(); err != nil {
			return err
		}
		k := &mnode{r: d.r, parent: d.mnode, name: name, lower: src.lower, up: src.up, ino: src.ino, gen: d.r.gen}
		if err := d.r.up.put(k.path(), src.up, false); err != nil {
			return err
		}
		d.kids[name] = k
		out = k.node()
		return nil
	})
	return out, err
}

// Remove unlinks or rmdirs name: a whiteout where the lower has it.
func (d mdir) Remove(name string, dir bool) error {
	return d.mnode.change(func() error {
		k, err := d.mnode.child(name)
		if err != nil {
			return err
		}
		isDir := k.attr().Mode.IsDir()
		switch {
		case dir && !isDir:
			return fmt.Errorf("%s: %w", k.path(), syscall.ENOTDIR)
		case !dir && isDir:
			return fmt.Errorf("%s: %w", k.path(), syscall.EISDIR)
		case isDir:
			if err := k.load(); err != nil {
				return err
			}
			if len(k.kids) > 0 {
				return fmt.Errorf("%s: %w", k.path(), syscall.ENOTEMPTY)
			}
		}
		p := k.path()
		if err := d.r.up.remove(p, d.r.inLower(p)); err != nil {
			return err
		}
		delete(d.kids, name)
		return nil
	})
}

// Rename moves oldName to newName in newDir. Everything moved is recorded
// under its new path, with its content (if unchanged) still read from the
// lower at the old one, and the old path becomes a whiteout; a moved
// directory is opaque, described whole by the upper.
func (d mdir) Rename(oldName string, newDir Dir, newName string, noReplace bool) error {
	nd, ok := newDir.(mdir)
	if !ok || nd.r != d.r {
		return fmt.Errorf("rename %s: %w", oldName, syscall.EXDEV)
	}
	return d.mnode.change(func() error {
		src, err := d.mnode.child(oldName)
		if err != nil {
			return err
		}
		if nd.mnode.refresh(); nd.gone {
			return fmt.Errorf("rename to %s: %w", newName, iofs.ErrNotExist)
		}
		if err := nd.mnode.load(); err != nil {
			return err
		}
		if err := validName(newName); err != nil {
			return err
		}
		for p := nd.mnode; p != nil; p = p.parent {
			if p == src {
				return fmt.Errorf("rename %s into itself: %w", src.path(), syscall.EINVAL)
			}
		}
		srcDir := src.attr().Mode.IsDir()
		dst := nd.kids[newName]
		if dst == src {
			return nil
		}
		if dst != nil {
			dstDir := dst.attr().Mode.IsDir()
			switch {
			case noReplace:
				return fmt.Errorf("%s: %w", dst.path(), syscall.EEXIST)
			case srcDir && !dstDir:
				return fmt.Errorf("%s: %w", dst.path(), syscall.ENOTDIR)
			case !srcDir && dstDir:
				return fmt.Errorf("%s: %w", dst.path(), syscall.EISDIR)
			case dstDir:
				if err := dst.load(); err != nil {
					return err
				}
				if len(dst.kids) > 0 {
					return fmt.Errorf("%s: %w", dst.path(), syscall.ENOTEMPTY)
				}
			}
		}
		// Everything below src gets an upper node before anything moves,
		// so that the records can be written under the new path.
		var moved []*mnode
		var walk func(n *mnode) error
		walk = func(n *mnode) error {
			if err := n.copyUp(); err != nil {
				return err
			}
			moved = append(moved, n)
			if !n.attr().Mode.IsDir() {
				return nil
			}
			if err := n.load(); err != nil {
				return err
			}
			for _, name := range sortedKeys(n.kids) {
				if err := walk(n.kids[name]); err != nil {
					return err
				}
			}
			return nil
		}
		if err := walk(src); err != nil {
			return err
		}
		oldPath, newPath := src.path(), nd.mnode.childPath(newName)
		if err := d.r.up.remove(oldPath, d.r.inLower(oldPath)); err != nil {
			return err
		}
		if dst != nil {
			if err := d.r.up.remove(newPath, d.r.inLower(newPath)); err != nil {
				return err
			}
		}
		delete(d.kids, oldName)
		src.parent, src.name = nd.mnode, newName
		nd.kids[newName] = src
		var lines []journalLine
		for _, n := range moved {
			if n.attr().Mode.IsDir() {
				n.opaque = true
			}
			p := n.path()
			d.r.up.set(p, &urec{Opaque: n.opaque, Node: n.up})
			lines = append(lines, journalLine{Path: p, Opaque: n.opaque, Node: n.up})
		}
		return d.r.up.write(lines...)
	})
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// The metadata methods all nodes of the writable rootfs share; mdir,
// mfile, mlink and mspecial add what their type does.

// Attr returns the node's attributes, brought up to date.
func (m *mnode) Attr() Attr {
	m.r.mu.Lock()
	defer m.r.mu.Unlock()
	m.r.state()
	m.refresh()
	return m.attr()
}

// Xattrs returns the node's extended attributes, brought up to date.
func (m *mnode) Xattrs() map[string]string {
	m.r.mu.Lock()
	defer m.r.mu.Unlock()
	m.r.state()
	m.refresh()
	return m.xattrs()
}

// Setattr changes the node's metadata, copying it up.
func (m *mnode) Setattr(s SetAttr) error {
	return m.change(func() error {
		if s.Size != nil {
			if m.attr().Mode.Type() != 0 {
				return fmt.Errorf("truncate %s: %w", m.path(), syscall.EINVAL)
			}
			f, err := m.materialize()
			if err != nil {
				return err
			}
			if err := f.Truncate(*s.Size); err != nil {
				return err
			}
			m.up.Size = *s.Size
			m.up.Mtime, m.up.Touched = time.Now().UnixNano(), true
		}
		if err := m.copyUp(); err != nil {
			return err
		}
		u := m.up
		if s.Mode != nil {
			u.Mode = *s.Mode & (iofs.ModePerm | iofs.ModeSetuid | iofs.ModeSetgid | iofs.ModeSticky)
		}
		if s.Uid != nil {
			u.Uid = *s.Uid
		}
		if s.Gid != nil {
			u.Gid = *s.Gid
		}
		if s.Mtime != nil {
			u.Mtime, u.Touched = s.Mtime.UnixNano(), false
		}
		return m.r.up.putNode(u)
	})
}

// SetXattr sets an extended attribute, copying the node up.
func (m *mnode) SetXattr(name string, value []byte) error {
	if !strings.HasPrefix(name, "user.") && !strings.HasPrefix(name, "trusted.") && !strings.HasPrefix(name, "security.") {
		// system.* are ACLs and the like, which layers do not carry as
		// xattrs; cp -a and tar fall back to plain modes on ENOTSUP.
		return fmt.Errorf("xattr %s: %w", name, syscall.ENOTSUP)
	}
	return m.change(func() error {
		if err := m.copyUp(); err != nil {
			return err
		}
		if m.up.Xattrs == nil {
			m.up.Xattrs = map[string]string{}
		}
		m.up.Xattrs[name] = string(value)
		return m.r.up.putNode(m.up)
	})
}

// RemoveXattr removes an extended attribute, copying the node up.
func (m *mnode) RemoveXattr(name string) error {
	return m.change(func() error {
		if _, ok := m.xattrs()[name]; !ok {
			return fmt.Errorf("%s: xattr %s: %w", m.path(), name, syscall.ENODATA)
		}
		if err := m.copyUp(); err != nil {
			return err
		}
		delete(m.up.Xattrs, name)
		return m.r.up.putNode(m.up)
	})
}

// mfile is a regular file of the writable rootfs.
type mfile struct{ *mnode }

// ReadAt reads the upper's copy if there is one, else the lower file.
func (f mfile) ReadAt(p []byte, off int64) (int, error) {
	f.r.mu.Lock()
	f.r.state()
	f.mnode.refresh()
	var file *os.File
	var err error
	lower, _ := f.lower.(File)
	size := f.mnode.attr().Size
	if f.up != nil && f.up.Data != "" {
		file, err = f.r.dataFile(f.up.Data)
	}
	f.r.mu.Unlock()
	switch {
	case err != nil:
		return 0, err
	case file != nil:
		if off >= size {
			return 0, io.EOF
		}
		return file.ReadAt(p[:min(int64(len(p)), size-off)], off)
	case lower != nil:
		return lower.ReadAt(p, off)
	}
	return 0, io.EOF
}

// WriteAt writes into the upper's copy, copying the file up first.
func (f mfile) WriteAt(p []byte, off int64) (int, error) {
	var n int
	err := f.mnode.change(func() error {
		file, err := f.mnode.materialize()
		if err != nil {
			return err
		}
		n, err = file.WriteAt(p, off)
		if err != nil {
			return err
		}
		f.up.Size = max(f.up.Size, off+int64(n))
		f.up.Mtime, f.up.Touched = time.Now().UnixNano(), true
		return f.r.up.putNode(f.up)
	})
	return n, err
}

// mlink is a symbolic link of the writable rootfs.
type mlink struct{ *mnode }

func (l mlink) Target() string {
	l.r.mu.Lock()
	defer l.r.mu.Unlock()
	if l.up != nil {
		return l.up.Link
	}
	if s, ok := l.lower.(Symlink); ok {
		return s.Target()
	}
	return ""
}

// mspecial is a device node or fifo of the writable rootfs.
type mspecial struct{ *mnode }

var _ FileSpan = mfile{}

// Span hands out the lower file's place in the archive while the file's
// content is still the lower's.
func (f mfile) Span() (*os.File, int64, bool) {
	f.r.mu.Lock()
	unchanged := f.up == nil || f.up.Data == "" && f.up.Size == f.lower.Attr().Size
	f.r.mu.Unlock()
	if s, ok := f.lower.(FileSpan); ok && unchanged {
		return s.Span()
	}
	return nil, 0, false
}
