package tests

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	lfs "github.com/layoutfs/layoutfs/fs"
	"github.com/layoutfs/layoutfs/layout"
	"golang.org/x/sys/unix"
)

// oracleRec is what the rootfs comparison looks at for one path.
type oracleRec struct {
	Type   string
	Perm   iofs.FileMode // permission and setuid/setgid/sticky bits; not for symlinks
	Uid    uint32
	Gid    uint32
	Size   int64  // regular files
	Sum    string // sha256 of regular files
	Link   string // symlink target
	Rdev   uint64
	Mtime  int64 // seconds, regular files and symlinks
	Xattrs string
}

func (r oracleRec) String() string {
	return fmt.Sprintf("%s perm=%v uid=%d gid=%d size=%d sum=%.12s link=%q rdev=%d mtime=%d xattrs=%s",
		r.Type, r.Perm, r.Uid, r.Gid, r.Size, r.Sum, r.Link, r.Rdev, r.Mtime, r.Xattrs)
}

// oracleTree is a whole rootfs: records by path, and the groups of paths
// that share an inode (hard links).
type oracleTree struct {
	recs  map[string]oracleRec
	links []string // each group of hard-linked paths, sorted and joined
}

func oracleType(m iofs.FileMode) string {
	switch {
	case m.IsDir():
		return "dir"
	case m&iofs.ModeSymlink != 0:
		return "symlink"
	case m&iofs.ModeNamedPipe != 0:
		return "fifo"
	case m&iofs.ModeCharDevice != 0:
		return "char"
	case m&iofs.ModeDevice != 0:
		return "block"
	case m.IsRegular():
		return "file"
	}
	return "other"
}

func specialPerm(m iofs.FileMode) iofs.FileMode {
	return m & (iofs.ModePerm | iofs.ModeSetuid | iofs.ModeSetgid | iofs.ModeSticky)
}

func sumReader(r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func groupLinks(byIno map[uint64][]string) []string {
	var out []string
	for _, paths := range byIno {
		if len(paths) > 1 {
			sort.Strings(paths)
			out = append(out, strings.Join(paths, " = "))
		}
	}
	sort.Strings(out)
	return out
}

// dirTree reads a real directory (umoci's unpacked rootfs, or a mount).
func dirTree(t *testing.T, root string) *oracleTree {
	t.Helper()
	tr := &oracleTree{recs: map[string]oracleRec{}}
	byIno := map[uint64][]string{}
	err := filepath.WalkDir(root, func(p string, d iofs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := info.Sys().(*syscall.Stat_t)
		r := oracleRec{Type: oracleType(info.Mode()), Perm: specialPerm(info.Mode()), Uid: st.Uid, Gid: st.Gid}
		switch r.Type {
		case "file":
			r.Size = info.Size()
			r.Mtime = info.ModTime().Unix()
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			r.Sum, err = sumReader(f)
			f.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", rel, err)
			}
			byIno[st.Ino] = append(byIno[st.Ino], rel)
		case "symlink":
			r.Perm = 0
			r.Mtime = info.ModTime().Unix()
			r.Link, _ = os.Readlink(p)
		case "char", "block":
			r.Rdev = st.Rdev
		}
		r.Xattrs = realXattrs(p)
		tr.recs[rel] = r
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
	tr.links = groupLinks(byIno)
	return tr
}

// realXattrs lists the user.* and security.capability xattrs of a path:
// the ones image layers carry (umoci leaves out the rest).
func realXattrs(p string) string {
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if err != nil || n == 0 {
		return ""
	}
	var kv []string
	for _, name := range strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
		if !strings.HasPrefix(name, "user.") {
			continue
		}
		v := make([]byte, 64<<10)
		m, err := unix.Lgetxattr(p, name, v)
		if err != nil {
			continue
		}
		kv = append(kv, name+"="+string(v[:m]))
	}
	sort.Strings(kv)
	return strings.Join(kv, ",")
}

// nodeTree reads a layoutfs tree in process, without FUSE.
func nodeTree(t *testing.T, root lfs.Dir) *oracleTree {
	t.Helper()
	tr := &oracleTree{recs: map[string]oracleRec{}}
	byIno := map[uint64][]string{}
	var walk func(d lfs.Dir, prefix string)
	walk = func(d lfs.Dir, prefix string) {
		ents, err := d.ReadDir()
		if err != nil {
			t.Fatalf("readdir %s: %v", prefix, err)
		}
		for _, e := range ents {
			rel := filepath.Join(prefix, e.Name)
			a := e.Node.Attr()
			r := oracleRec{Type: oracleType(a.Mode), Perm: specialPerm(a.Mode), Uid: a.Uid, Gid: a.Gid}
			switch n := e.Node.(type) {
			case lfs.Dir:
				walk(n, rel)
			case lfs.File:
				r.Size = a.Size
				r.Mtime = a.Mtime.Unix()
				sum, err := sumReader(io.NewSectionReader(n, 0, a.Size))
				if err != nil {
					t.Fatalf("read %s: %v", rel, err)
				}
				r.Sum = sum
				byIno[a.Ino] = append(byIno[a.Ino], rel)
			case lfs.Symlink:
				r.Perm = 0
				r.Mtime = a.Mtime.Unix()
				r.Link = n.Target()
			}
			if r.Type == "char" || r.Type == "block" {
				r.Rdev = a.Rdev
			}
			if x, ok := e.Node.(lfs.Xattrer); ok {
				var kv []string
				for k, v := range x.Xattrs() {
					if strings.HasPrefix(k, "user.") {
						kv = append(kv, k+"="+v)
					}
				}
				sort.Strings(kv)
				r.Xattrs = strings.Join(kv, ",")
			}
			tr.recs[rel] = r
		}
	}
	walk(root, "")
	tr.links = groupLinks(byIno)
	return tr
}

// compareTrees reports every difference between what layoutfs serves and
// what the oracle unpacked.
func compareTrees(t *testing.T, got, want *oracleTree) {
	t.Helper()
	var paths []string
	for p := range want.recs {
		paths = append(paths, p)
	}
	for p := range got.recs {
		if _, ok := want.recs[p]; !ok {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	bad := 0
	for _, p := range paths {
		g, gok := got.recs[p]
		w, wok := want.recs[p]
		switch {
		case !gok:
			t.Errorf("%s: missing from layoutfs (oracle: %v)", p, w)
		case !wok:
			t.Errorf("%s: layoutfs has it, the oracle does not (%v)", p, g)
		case g != w:
			t.Errorf("%s:\n  layoutfs %v\n  oracle   %v", p, g, w)
		default:
			continue
		}
		if bad++; bad > 20 {
			t.Fatal("too many differences")
		}
	}
	if strings.Join(got.links, "\n") != strings.Join(want.links, "\n") {
		t.Errorf("hard link groups differ:\n layoutfs %q\n oracle   %q", got.links, want.links)
	}
	if len(want.recs) == 0 {
		t.Error("the oracle unpacked nothing: the comparison would prove nothing")
	}
}

// run runs a peer tool and fails the test with its output on error.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (.ci/run installs it): the oracle tests need it", tool)
		}
	}
}

// openDir opens source in process and returns the directory at treePath
// of its tree.
func openDir(t *testing.T, source, treePath string) lfs.Dir {
	t.Helper()
	src, err := layout.Open(context.Background(), source, layout.Options{CacheDir: t.TempDir(), Warn: func(m string) { t.Log("warn:", m) }})
	if err != nil {
		t.Fatal(err)
	}
	n, err := lfs.Walk(lfs.New(src, lfs.Options{Warn: func(m string) { t.Log("warn:", m) }}), treePath)
	if err != nil {
		t.Fatal(err)
	}
	d, ok := n.(lfs.Dir)
	if !ok {
		t.Fatalf("%s is not a directory", treePath)
	}
	return d
}

// umociRootfs unpacks layoutDir:tag with umoci and returns the rootfs path.
// raw unpack: a full bundle would also need an OS in the image config,
// which some real images lack.
func umociRootfs(t *testing.T, layoutDir, tag string) string {
	t.Helper()
	rootfs := filepath.Join(t.TempDir(), "rootfs")
	run(t, "umoci", "raw", "unpack", "--image", layoutDir+":"+tag, rootfs)
	return rootfs
}

func sprintfRef(format, path string) string { return fmt.Sprintf(format, path) }
