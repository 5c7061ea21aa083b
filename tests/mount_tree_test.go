package tests

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	iofs "io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	lfs "github.com/layoutfs/layoutfs/fs"
	"github.com/layoutfs/layoutfs/layout"
	"golang.org/x/sys/unix"
)

// mntEntry is what one path of a tree shows: the same fields are taken
// from the in-process fs tree and from the mount, and compared.
type mntEntry struct {
	mode   iofs.FileMode
	size   int64
	uid    uint32
	gid    uint32
	mtime  time.Time
	nlink  uint32
	ino    uint64
	rdev   uint64 // device nodes, as unix.Mkdev builds it
	target string // symlinks
	sum    string // sha256 of a regular file's content
	xattrs map[string]string
	err    string // reading the content failed
}

// mntGoodFixtures lists the valid real fixtures (A-, B-, C-).
func mntGoodFixtures(t testing.TB) []string {
	t.Helper()
	ents, err := os.ReadDir(mntFixtures)
	if err != nil {
		t.Fatalf("real fixtures: %v", err)
	}
	var out []string
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, "A-") || strings.HasPrefix(n, "B-") || strings.HasPrefix(n, "C-") {
			out = append(out, n)
		}
	}
	if len(out) < 15 {
		t.Fatalf("only %d real fixtures found in %s: %v", len(out), mntFixtures, out)
	}
	return out
}

// mntOpenTree opens source in-process, as the daemon does.
func mntOpenTree(t testing.TB, source string) (lfs.Dir, *layout.Source) {
	t.Helper()
	src, err := layout.Open(context.Background(), source, layout.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatalf("open %s in-process: %v", source, err)
	}
	return lfs.New(src, lfs.Options{}), src
}

func mntSum(r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// mntTreeEntries walks the in-process tree, reading every file.
func mntTreeEntries(t testing.TB, root lfs.Dir) map[string]mntEntry {
	t.Helper()
	out := map[string]mntEntry{}
	var walk func(p string, n lfs.Node)
	walk = func(p string, n lfs.Node) {
		a := n.Attr()
		e := mntEntry{mode: a.Mode, size: a.Size, uid: a.Uid, gid: a.Gid, mtime: a.Mtime, nlink: max(a.Nlink, 1), ino: a.Ino}
		if a.Mode&iofs.ModeDevice != 0 {
			e.rdev = a.Rdev
		}
		if x, ok := n.(lfs.Xattrer); ok && len(x.Xattrs()) > 0 {
			e.xattrs = x.Xattrs()
		}
		switch n := n.(type) {
		case lfs.Symlink:
			e.target = n.Target()
			if e.size == 0 {
				e.size = int64(len(e.target))
			}
		case lfs.File:
			sum, err := mntSum(io.NewSectionReader(n, 0, a.Size))
			if err != nil {
				e.err = err.Error()
			}
			e.sum = sum
		case lfs.Dir:
			ents, err := n.ReadDir()
			if err != nil {
				t.Errorf("in-process tree: readdir %s: %v", p, err)
			}
			for _, c := range ents {
				walk(path.Join(p, c.Name), c.Node)
			}
		}
		out[p] = e
	}
	walk(".", root)
	return out
}

// mntMountEntries walks the mounted tree with filepath.WalkDir, reading
// every regular file through the mount.
func mntMountEntries(t testing.TB, mnt string) map[string]mntEntry {
	t.Helper()
	out := map[string]mntEntry{}
	err := filepath.WalkDir(mnt, func(p string, d iofs.DirEntry, err error) error {
		rel, _ := filepath.Rel(mnt, p)
		if err != nil {
			t.Errorf("mount: walk %s: %v", rel, err)
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			t.Errorf("mount: lstat %s: %v", rel, err)
			return nil
		}
		if d.Type() != fi.Mode().Type() {
			t.Errorf("mount: %s: readdir says type %v, lstat says %v", rel, d.Type(), fi.Mode().Type())
		}
		st := fi.Sys().(*syscall.Stat_t)
		e := mntEntry{mode: fi.Mode(), size: fi.Size(), uid: st.Uid, gid: st.Gid, mtime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec), nlink: uint32(st.Nlink), ino: st.Ino}
		if fi.Mode()&iofs.ModeDevice != 0 {
			e.rdev = st.Rdev
		}
		e.xattrs = mntListXattrs(t, p)
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			e.target, err = os.Readlink(p)
			if err != nil {
				t.Errorf("mount: readlink %s: %v", rel, err)
			}
		case fi.Mode().IsRegular():
			f, err := os.Open(p)
			if err != nil {
				e.err = err.Error()
				break
			}
			e.sum, err = mntSum(f)
			f.Close()
			if err != nil {
				e.err = err.Error()
			}
		}
		out[filepath.ToSlash(rel)] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func mntListXattrs(t testing.TB, p string) map[string]string {
	sz, err := unix.Llistxattr(p, nil)
	if err != nil || sz == 0 {
		if err != nil && !errors.Is(err, unix.ENOTSUP) && !errors.Is(err, unix.ENODATA) {
			t.Errorf("mount: listxattr %s: %v", p, err)
		}
		return nil
	}
	buf := make([]byte, sz)
	sz, err = unix.Llistxattr(p, buf)
	if err != nil {
		t.Errorf("mount: listxattr %s: %v", p, err)
		return nil
	}
	out := map[string]string{}
	for _, name := range strings.Split(strings.TrimRight(string(buf[:sz]), "\x00"), "\x00") {
		v := make([]byte, 64<<10)
		n, err := unix.Lgetxattr(p, name, v)
		if err != nil {
			t.Errorf("mount: getxattr %s %s: %v", p, name, err)
			continue
		}
		out[name] = string(v[:n])
	}
	return out
}

// mntCompareTrees checks that the mount shows exactly the in-process tree:
// same paths, types, modes, owners, sizes, times, link counts, symlink
// targets, xattrs and file contents; and the same hard-link structure
// (inode numbers are assigned lazily, so only which paths share one can
// be compared, not the numbers themselves).
func mntCompareTrees(t testing.TB, want, got map[string]mntEntry) {
	t.Helper()
	var missing, extra []string
	for p := range want {
		if _, ok := got[p]; !ok {
			missing = append(missing, p)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			extra = append(extra, p)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 {
		t.Errorf("%d paths of the tree missing from the mount, e.g. %q", len(missing), missing[:min(len(missing), 10)])
	}
	if len(extra) > 0 {
		t.Errorf("%d paths in the mount that the tree lacks, e.g. %q", len(extra), extra[:min(len(extra), 10)])
	}
	fwd, back := map[uint64]uint64{}, map[uint64]uint64{}
	fwdPath := map[uint64]string{}
	errs := 0
	report := func(format string, args ...any) {
		errs++
		if errs <= 40 {
			t.Errorf(format, args...)
		}
	}
	paths := make([]string, 0, len(want))
	for p := range want {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	files := 0
	for _, p := range paths {
		w := want[p]
		g, ok := got[p]
		if !ok {
			continue
		}
		if w.err != "" {
			report("%s: in-process read failed: %s", p, w.err)
		}
		if g.err != "" {
			report("%s: read through the mount failed: %s", p, g.err)
		}
		if w.mode != g.mode {
			report("%s: mode %v in the mount, %v in the tree", p, g.mode, w.mode)
		}
		if w.mode.IsRegular() || w.mode&os.ModeSymlink != 0 {
			if w.size != g.size {
				report("%s: size %d in the mount, %d in the tree", p, g.size, w.size)
			}
		}
		if w.uid != g.uid || w.gid != g.gid {
			report("%s: owner %d:%d in the mount, %d:%d in the tree", p, g.uid, g.gid, w.uid, w.gid)
		}
		wm := w.mtime
		if wm.IsZero() {
			wm = time.Unix(0, 0)
		}
		if !wm.Equal(g.mtime) {
			report("%s: mtime %v in the mount, %v in the tree", p, g.mtime.UTC(), wm.UTC())
		}
		if w.nlink != g.nlink {
			report("%s: nlink %d in the mount, %d in the tree", p, g.nlink, w.nlink)
		}
		if w.rdev != g.rdev {
			report("%s: device %d:%d in the mount, %d:%d in the tree", p, unix.Major(g.rdev), unix.Minor(g.rdev), unix.Major(w.rdev), unix.Minor(w.rdev))
		}
		if w.target != g.target {
			report("%s: symlink target %q in the mount, %q in the tree", p, g.target, w.target)
		}
		if w.sum != g.sum {
			report("%s: content sha256 %s in the mount, %s in the tree", p, g.sum, w.sum)
		}
		if w.mode.IsRegular() {
			files++
			if g.sum == "" {
				report("%s: regular file not read through the mount", p)
			}
		}
		if len(w.xattrs)+len(g.xattrs) > 0 && !mapsEqualMnt(w.xattrs, g.xattrs) {
			report("%s: xattrs %v in the mount, %v in the tree", p, g.xattrs, w.xattrs)
		}
		if o, ok := fwd[g.ino]; ok && o != w.ino {
			report("%s: mount inode %d also belongs to %s, which is a different node in the tree", p, g.ino, fwdPath[g.ino])
		}
		if o, ok := back[w.ino]; ok && o != g.ino {
			report("%s: tree node %d (a hard link) has two mount inodes %d and %d", p, w.ino, o, g.ino)
		}
		fwd[g.ino], back[w.ino], fwdPath[g.ino] = w.ino, g.ino, p
	}
	if errs > 40 {
		t.Errorf("... and %d more differences", errs-40)
	}
	if files == 0 {
		t.Errorf("no regular file compared at all")
	}
}

func mapsEqualMnt(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

// TestMountRealFixtures mounts every valid real fixture and compares the
// whole mounted tree with the in-process tree, then checks the SPEC shape
// that holds for every source.
func TestMountRealFixtures(t *testing.T) {
	mntRequireFUSE(t)
	for _, name := range mntGoodFixtures(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			src := mntFixture(t, name)
			mnt := mntMount(t, src)
			root, _ := mntOpenTree(t, src)
			want := mntTreeEntries(t, root)
			got := mntMountEntries(t, mnt)
			t.Logf("%d paths compared", len(want))
			mntCompareTrees(t, want, got)
			mntCheckFind(t, mnt, got)
			mntCheckCommonShape(t, src, mnt)
			if check, ok := mntShapeChecks[name]; ok {
				check(t, src, mnt)
			}
			if !mntIsMounted(t, mnt) {
				t.Fatalf("mount of %s is gone after the walk", name)
			}
		})
	}
}

// mntSourceFile reads a top-level file of a source (directory, tar, or
// gzip/zstd-compressed tar).
func mntSourceFile(t testing.TB, src, name string) ([]byte, bool) {
	t.Helper()
	st, err := os.Stat(src)
	if err != nil {
		t.Fatal(err)
	}
	if st.IsDir() {
		b, err := os.ReadFile(filepath.Join(src, name))
		if errors.Is(err, os.ErrNotExist) {
			return nil, false
		}
		if err != nil {
			t.Fatal(err)
		}
		return b, true
	}
	var found []byte
	ok := false
	mntEachTarEntry(t, src, func(h *tar.Header, r io.Reader) {
		if path.Clean(strings.TrimPrefix(h.Name, "./")) == name && h.Typeflag == tar.TypeReg {
			found, _ = io.ReadAll(r)
			ok = true
		}
	})
	return found, ok
}

// mntEachTarEntry calls fn for each entry of a (possibly compressed) tar.
func mntEachTarEntry(t testing.TB, file string, fn func(*tar.Header, io.Reader)) {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var r io.Reader = bytes.NewReader(raw)
	switch {
	case bytes.HasPrefix(raw, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(r)
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	case bytes.HasPrefix(raw, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(r)
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		r = zr
	}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		fn(h, tr)
	}
}

// mntCheckCommonShape checks what SPEC.md fixes for every source: the
// top-level files, blobs named by their digests, manifests/ entries that
// hash to their names, layers/NN numbering.
func mntCheckCommonShape(t *testing.T, src, mnt string) {
	t.Helper()
	top := mntNames(t, mnt)
	for _, n := range []string{"index.json", "oci-layout", "blobs", "tags", "manifests"} {
		if !slices.Contains(top, n) {
			t.Errorf("top level lacks %s: %v", n, top)
		}
	}
	_, dockerSave := mntSourceFile(t, src, "manifest.json")
	for _, n := range []string{"manifest.json", "repositories"} {
		want, inSource := mntSourceFile(t, src, n)
		got, err := os.ReadFile(filepath.Join(mnt, n))
		switch {
		case inSource && err != nil:
			t.Errorf("%s is in the source but not readable in the mount: %v", n, err)
		case inSource && !bytes.Equal(got, want):
			t.Errorf("%s differs from the source's", n)
		case !inSource && err == nil:
			t.Errorf("%s shown but not in the source", n)
		}
	}
	// A source with its own index.json and oci-layout shows them as they are.
	for _, n := range []string{"index.json", "oci-layout"} {
		want, inSource := mntSourceFile(t, src, n)
		got, err := os.ReadFile(filepath.Join(mnt, n))
		if err != nil {
			t.Errorf("%s: %v", n, err)
			continue
		}
		if inSource && !bytes.Equal(got, want) {
			t.Errorf("%s differs from the source's:\n%s\nwant\n%s", n, got, want)
		}
		if !inSource && !dockerSave {
			t.Errorf("%s synthesised for a source that is no docker save", n)
		}
	}
	// blobs/<alg>/<hex> hash to their names.
	algs := mntNames(t, filepath.Join(mnt, "blobs"))
	if !slices.Equal(algs, []string{"sha256"}) {
		t.Errorf("blobs/ holds %v, want [sha256]", algs)
	}
	blobs := mntNames(t, filepath.Join(mnt, "blobs/sha256"))
	if len(blobs) == 0 {
		t.Errorf("no blobs")
	}
	for _, b := range blobs {
		f, err := os.Open(filepath.Join(mnt, "blobs/sha256", b))
		if err != nil {
			t.Errorf("blob %s: %v", b, err)
			continue
		}
		sum, err := mntSum(f)
		f.Close()
		if err != nil {
			t.Errorf("blob %s: read: %v", b, err)
		} else if sum != b {
			t.Errorf("blob %s hashes to %s", b, sum)
		}
	}
	// An OCI-shaped source shows exactly its own blobs.
	if st, err := os.Stat(src); err == nil && st.IsDir() {
		want := mntNames(t, filepath.Join(src, "blobs/sha256"))
		if !slices.Equal(want, blobs) {
			t.Errorf("blobs/sha256 = %v, the source has %v", blobs, want)
		}
	}
	// manifests/<alg>:<hex>/: the raw index, or each image's manifest,
	// hashes to the name; every image dir has manifest.json, config.json,
	// layers/ numbered 00.. and a config that hashes to its descriptor.
	for _, m := range mntNames(t, filepath.Join(mnt, "manifests")) {
		hexd, ok := strings.CutPrefix(m, "sha256:")
		if !ok || len(hexd) != 64 {
			t.Errorf("manifests/%s: not <alg>:<hex>", m)
			continue
		}
		if !slices.Contains(blobs, hexd) {
			t.Errorf("manifests/%s names no blob in blobs/sha256", m)
		}
		dir := filepath.Join(mnt, "manifests", m)
		kids := mntNames(t, dir)
		if slices.Contains(kids, "index.json") {
			mntCheckHash(t, filepath.Join(dir, "index.json"), hexd)
			continue
		}
		if len(kids) != 1 {
			t.Errorf("manifests/%s (a manifest) holds %v, want one platform dir", m, kids)
			continue
		}
		mntCheckHash(t, filepath.Join(dir, kids[0], "manifest.json"), hexd)
	}
	for _, im := range mntImageDirs(t, mnt) {
		mntCheckImageDir(t, mnt, im)
	}
}

// mntNames lists a directory of the mount, sorted; the test fails if it
// cannot be listed.
func mntNames(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Errorf("readdir %s: %v", dir, err)
		return nil
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func mntCheckHash(t testing.TB, file, hexd string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Errorf("%s: %v", file, err)
		return
	}
	if s := sha256.Sum256(b); hex.EncodeToString(s[:]) != hexd {
		t.Errorf("%s hashes to %x, want %s", file, s, hexd)
	}
}

// mntImageDirs returns every directory under tags/ and manifests/ that
// holds a manifest.json (an image), relative to mnt.
func mntImageDirs(t testing.TB, mnt string) []string {
	t.Helper()
	var out []string
	for _, top := range []string{"tags", "manifests"} {
		filepath.WalkDir(filepath.Join(mnt, top), func(p string, d iofs.DirEntry, err error) error {
			if err != nil {
				t.Errorf("walk %s: %v", p, err)
				return nil
			}
			if d.IsDir() && (d.Name() == "rootfs" || d.Name() == "layers" || d.Name() == "files") {
				return filepath.SkipDir
			}
			if !d.IsDir() && d.Name() == "manifest.json" {
				rel, _ := filepath.Rel(mnt, filepath.Dir(p))
				out = append(out, rel)
			}
			return nil
		})
	}
	if len(out) == 0 {
		t.Errorf("no image directory under tags/ or manifests/")
	}
	return out
}

type mntManifest struct {
	MediaType string `json:"mediaType"`
	Config    struct {
		Digest string `json:"digest"`
		Size   int64  `json:"size"`
	} `json:"config"`
	Layers []struct {
		MediaType   string            `json:"mediaType"`
		Digest      string            `json:"digest"`
		Annotations map[string]string `json:"annotations"`
	} `json:"layers"`
}

func mntCheckImageDir(t testing.TB, mnt, rel string) {
	t.Helper()
	dir := filepath.Join(mnt, rel)
	var m mntManifest
	mntReadJSON(t, filepath.Join(dir, "manifest.json"), &m)
	cfgHex := strings.TrimPrefix(m.Config.Digest, "sha256:")
	mntCheckHash(t, filepath.Join(dir, "config.json"), cfgHex)
	layers := mntNames(t, filepath.Join(dir, "layers"))
	width := max(2, len(strconv.Itoa(len(m.Layers)-1)))
	var want []string
	for i := range m.Layers {
		want = append(want, strings.Repeat("0", width-len(strconv.Itoa(i)))+strconv.Itoa(i))
	}
	if !slices.Equal(layers, want) {
		t.Errorf("%s/layers = %v, want %v", rel, layers, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "rootfs")); err != nil {
		t.Errorf("%s/rootfs: %v", rel, err)
	}
}

// mntReadJSON reads and decodes a JSON file of the mount.
func mntReadJSON(t testing.TB, file string, v any) []byte {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return b
}

// mntCheckFind lists the mount with find(1), which trusts what the kernel
// reports (link counts, d_type) in its own ways: it must see every path.
func mntCheckFind(t testing.TB, mnt string, want map[string]mntEntry) {
	t.Helper()
	out, err := exec.Command("find", mnt, "-printf", "%P\\t%y\\n").Output()
	if err != nil {
		t.Errorf("find: %v", err)
		return
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		p, typ, _ := strings.Cut(line, "\t")
		if p == "" {
			p = "."
		}
		got[p] = typ
	}
	if len(got) != len(want) {
		t.Errorf("find lists %d paths, the walk %d", len(got), len(want))
	}
	for p, e := range want {
		typ, ok := got[p]
		if !ok {
			t.Errorf("find misses %s", p)
			continue
		}
		wantTyp := map[bool]string{true: "d"}[e.mode.IsDir()]
		switch {
		case e.mode.IsRegular():
			wantTyp = "f"
		case e.mode&os.ModeSymlink != 0:
			wantTyp = "l"
		}
		if wantTyp != "" && typ != wantTyp {
			t.Errorf("find says %s is %s, want %s", p, typ, wantTyp)
		}
	}
}
