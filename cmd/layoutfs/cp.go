package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"

	lfs "github.com/layoutfs/layoutfs/fs"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
)

var cpCommand = &cli.Command{
	Name:      "cp",
	Usage:     "copy a file or directory of the tree out, without mounting",
	ArgsUsage: "SOURCE TREE-PATH DEST",
	Description: `Copies like cp -a: modes, times and symbolic links are kept, owners too when run as
root. A DEST that is an existing directory receives TREE-PATH's last element.`,
	Flags: sourceFlags(selectFlags...),
	Action: func(c *cli.Context) error {
		if c.NArg() != 3 {
			return cli.Exit("usage: layoutfs cp SOURCE TREE-PATH DEST", 2)
		}
		node, p, err := lookupArg(c, c.Args().Get(0), c.Args().Get(1))
		if err != nil {
			return err
		}
		dest := c.Args().Get(2)
		if st, err := os.Stat(dest); err == nil && st.IsDir() {
			name := path.Base(p)
			if name == "/" || name == "." {
				name = "root"
			}
			dest = filepath.Join(dest, name)
		}
		return copyOut(node, dest)
	},
}

// copier writes nodes out like cp -a: files that share an inode in the
// tree (hard links) are linked again, not copied twice.
type copier struct {
	links map[uint64]string // inode -> first destination written
}

// copyOut writes node to dest, recursively, never overwriting what is
// there: a file of the user's is never lost to a cp.
func copyOut(node lfs.Node, dest string) error {
	c := &copier{links: map[uint64]string{}}
	return c.copy(node, dest)
}

func (c *copier) copy(node lfs.Node, dest string) error {
	a := node.Attr()
	var err error
	switch n := node.(type) {
	case lfs.Dir:
		err = c.copyDir(n, dest)
	case lfs.File:
		if first, ok := c.links[a.Ino]; ok && a.Nlink > 1 {
			return os.Link(first, dest)
		}
		c.links[a.Ino] = dest
		err = copyFile(n, dest)
	case lfs.Symlink:
		err = os.Symlink(n.Target(), dest)
	default:
		err = mknod(a, dest)
	}
	if err != nil {
		return err
	}
	if x, ok := node.(lfs.Xattrer); ok {
		for k, v := range x.Xattrs() {
			if err := unix.Lsetxattr(dest, k, []byte(v), 0); err != nil {
				return fmt.Errorf("set xattr %s on %s: %w", k, dest, err)
			}
		}
	}
	return setMeta(a, dest)
}

func (c *copier) copyDir(d lfs.Dir, dest string) error {
	if err := os.Mkdir(dest, 0o700); err != nil {
		return err
	}
	ents, err := d.ReadDir()
	if err != nil {
		return fmt.Errorf("%s: %w", dest, err)
	}
	for _, e := range ents {
		if err := c.copy(e.Node, filepath.Join(dest, e.Name)); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(f lfs.File, dest string) (err error) {
	out, err := os.OpenFile(dest, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(dest)
		}
	}()
	if _, err := io.Copy(out, io.NewSectionReader(f, 0, f.Attr().Size)); err != nil {
		return fmt.Errorf("copy to %s: %w", dest, err)
	}
	return nil
}

func mknod(a lfs.Attr, dest string) error {
	mode := uint32(a.Mode.Perm())
	switch {
	case a.Mode&os.ModeNamedPipe != 0:
		mode |= unix.S_IFIFO
	case a.Mode&os.ModeCharDevice != 0:
		mode |= unix.S_IFCHR
	case a.Mode&os.ModeDevice != 0:
		mode |= unix.S_IFBLK
	default:
		return fmt.Errorf("%s: cannot copy a %v", dest, a.Mode.Type())
	}
	if err := unix.Mknod(dest, mode, int(a.Rdev)); err != nil {
		return fmt.Errorf("mknod %s: %w", dest, err)
	}
	return nil
}

// setMeta applies owner (as root), mode and times; a symlink gets owner
// and times only.
func setMeta(a lfs.Attr, dest string) error {
	if os.Geteuid() == 0 {
		if err := os.Lchown(dest, int(a.Uid), int(a.Gid)); err != nil {
			return err
		}
	}
	if a.Mode&os.ModeSymlink == 0 {
		if err := os.Chmod(dest, a.Mode&(os.ModePerm|os.ModeSetuid|os.ModeSetgid|os.ModeSticky)); err != nil {
			return err
		}
	}
	ts := []unix.Timespec{unix.NsecToTimespec(a.Mtime.UnixNano()), unix.NsecToTimespec(a.Mtime.UnixNano())}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, dest, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil && !errors.Is(err, unix.ENOTSUP) {
		return fmt.Errorf("set times of %s: %w", dest, err)
	}
	return nil
}
