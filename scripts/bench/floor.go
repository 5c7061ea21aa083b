package main

import (
	"encoding/gob"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	lfs "github.com/layoutfs/layoutfs/fs"
	"github.com/layoutfs/layoutfs/mount"
)

// The FUSE floor: the same tree as the image's merged rootfs, held in
// memory and served through layoutfs's own FUSE layer (package mount, with
// the same settings) by a server that does no work at all: no index, no
// archive, file contents are zeros. What find, the cats and a sequential
// read cost on it is what FUSE itself costs on this machine and kernel (a
// round trip per request, the kernel's inode and page-cache setup), below
// which no FUSE filesystem of this shape can go. The gap between it and
// layoutfs is layoutfs's own work; the gap between it and the extracted
// tree is FUSE's.
//
// `bench floor-list SRC LIST` records a tree (names, types, sizes, link
// targets) in LIST; `bench floorfs LIST MNT` serves it on MNT until
// unmounted.

// floorEntry is one node of a recorded tree; Path is relative to its root.
type floorEntry struct {
	Path   string
	Mode   iofs.FileMode
	Size   int64
	Target string
}

// floorList walks src and writes its tree to list.
func floorList(src, list string) {
	var ents []floorEntry
	must(filepath.WalkDir(src, func(p string, d iofs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil || rel == "." {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		e := floorEntry{Path: rel, Mode: info.Mode(), Size: info.Size()}
		if info.Mode()&iofs.ModeSymlink != 0 {
			if e.Target, err = os.Readlink(p); err != nil {
				return err
			}
		}
		ents = append(ents, e)
		return nil
	}))
	f, err := os.Create(list)
	must(err)
	must(gob.NewEncoder(f).Encode(ents))
	must(f.Close())
}

// serveFloor mounts the tree recorded in list on mnt and serves it until
// it is unmounted.
func serveFloor(list, mnt string) {
	f, err := os.Open(list)
	must(err)
	var ents []floorEntry
	must(gob.NewDecoder(f).Decode(&ents))
	f.Close()
	srv, err := mount.Mount(buildFloor(ents), mnt, mount.Options{FsName: "layoutfs-floor"})
	must(err)
	srv.Wait()
}

// buildFloor makes the in-memory tree of a recording (parents are recorded
// before their children, as WalkDir visits them).
func buildFloor(ents []floorEntry) lfs.Dir {
	mtime := time.Unix(0, 0)
	ino := uint64(1)
	root := &floorRoot{&floorDir{attr: lfs.Attr{Ino: ino, Mode: iofs.ModeDir | 0o755, Nlink: 1, Mtime: mtime}}}
	dirs := map[string]*floorDir{".": root.floorDir}
	for _, e := range ents {
		ino++
		a := lfs.Attr{Ino: ino, Mode: e.Mode, Size: e.Size, Nlink: 1, Mtime: mtime}
		var n lfs.Node
		switch {
		case e.Mode.IsDir():
			a.Size = 0
			d := &floorDir{attr: a}
			dirs[e.Path] = d
			n = d
		case e.Mode&iofs.ModeSymlink != 0:
			n = &floorLink{attr: a, target: e.Target}
		default:
			n = &floorFile{attr: a}
		}
		parent := dirs[filepath.Dir(e.Path)]
		if parent == nil {
			panic("floor: no parent for " + e.Path)
		}
		parent.ents = append(parent.ents, lfs.Dirent{Name: filepath.Base(e.Path), Node: n})
	}
	for _, d := range dirs {
		sort.Slice(d.ents, func(i, j int) bool { return d.ents[i].Name < d.ents[j].Name })
	}
	return root
}

type floorDir struct {
	attr lfs.Attr
	ents []lfs.Dirent // sorted by name
}

func (d *floorDir) Attr() lfs.Attr                 { return d.attr }
func (d *floorDir) ReadDir() ([]lfs.Dirent, error) { return d.ents, nil }
func (d *floorDir) NumEntries() (int, error)       { return len(d.ents), nil }
func (d *floorDir) EntryAt(i int) lfs.Dirent       { return d.ents[i] }

func (d *floorDir) Lookup(name string) (lfs.Node, error) {
	i := sort.Search(len(d.ents), func(i int) bool { return d.ents[i].Name >= name })
	if i < len(d.ents) && d.ents[i].Name == name {
		return d.ents[i].Node, nil
	}
	return nil, iofs.ErrNotExist
}

// floorRoot promises the server that no node has extended attributes, as
// layoutfs's root does once its layers are indexed.
type floorRoot struct{ *floorDir }

func (floorRoot) NoXattrs() bool { return true }

type floorFile struct{ attr lfs.Attr }

func (f *floorFile) Attr() lfs.Attr { return f.attr }

// ReadAt reads zeros.
func (f *floorFile) ReadAt(p []byte, off int64) (int, error) {
	if off >= f.attr.Size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), f.attr.Size-off))
	clear(p[:n])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

type floorLink struct {
	attr   lfs.Attr
	target string
}

func (l *floorLink) Attr() lfs.Attr { return l.attr }
func (l *floorLink) Target() string { return l.target }

// startFloor starts `bench floorfs list mnt` and returns once probe can
// be stat'ed.
func startFloor(list, mnt, probe string) *exec.Cmd {
	self, err := os.Executable()
	must(err)
	cmd := exec.Command(self, "floorfs", list, mnt)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	must(cmd.Start())
	waitStat(probe, time.Minute)
	return cmd
}

// stopFloor unmounts a floor server's mount and waits for it to exit.
func stopFloor(cmd *exec.Cmd, mnt string) {
	unmount(mnt)
	if err := cmd.Wait(); err != nil {
		panic(fmt.Sprintf("floorfs %s: %v", strings.Join(cmd.Args[1:], " "), err))
	}
}
