package tests

// The commands that work without FUSE: ls, cat, cp, inspect. None of these
// tests needs /dev/fuse.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	lfs "github.com/layoutfs/layoutfs/fs"
)

// mntTreeFile reads a file of the in-process tree.
func mntTreeFile(t testing.TB, root lfs.Dir, p string) []byte {
	t.Helper()
	n, err := lfs.Walk(root, p)
	if err != nil {
		t.Fatalf("tree %s: %v", p, err)
	}
	f, ok := n.(lfs.File)
	if !ok {
		t.Fatalf("tree %s: not a file", p)
	}
	b, err := io.ReadAll(io.NewSectionReader(f, 0, f.Attr().Size))
	if err != nil {
		t.Fatalf("tree %s: %v", p, err)
	}
	return b
}

// TestCLIShorthandCat: an absolute path means that path in the only
// image's rootfs; checked against the layers themselves, read here with
// archive/tar (the topmost layer holding the file wins).
func TestCLIShorthandCat(t *testing.T) {
	t.Parallel()
	src := mntFixture(t, "A-dive-kaniko-ggcr-tarball.tar")
	cache := t.TempDir()
	got := mntRunOK(t, "cat", "--cache-dir", cache, src, "/etc/passwd").stdout
	long := mntRunOK(t, "cat", "--cache-dir", cache, src, "tags/dive-test:kaniko-latest/linux_amd64/rootfs/etc/passwd").stdout
	if got != long {
		t.Errorf("shorthand /etc/passwd differs from the full tree path")
	}
	// The oracle: docker manifest.json's layers, bottom to top.
	raw, _ := mntSourceFile(t, src, "manifest.json")
	var dm []struct{ Layers []string }
	if err := json.Unmarshal(raw, &dm); err != nil || len(dm) != 1 {
		t.Fatalf("fixture manifest.json: %v", err)
	}
	layers := map[string][]byte{}
	mntEachTarEntry(t, src, func(h *tar.Header, r io.Reader) {
		if slices.Contains(dm[0].Layers, h.Name) {
			layers[h.Name], _ = io.ReadAll(r)
		}
	})
	var want []byte
	found := false
	for _, name := range dm[0].Layers {
		zr, err := gzip.NewReader(bytes.NewReader(layers[name]))
		if err != nil {
			t.Fatalf("layer %s: %v", name, err)
		}
		tr := tar.NewReader(zr)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("layer %s: %v", name, err)
			}
			switch path.Clean(strings.TrimPrefix(h.Name, "./")) {
			case "etc/passwd":
				want, _ = io.ReadAll(tr)
				found = true
			case "etc/.wh.passwd":
				want, found = nil, false
			}
		}
	}
	if !found || len(want) == 0 {
		t.Fatalf("fixture: no /etc/passwd in the layers")
	}
	if got != string(want) {
		t.Errorf("cat /etc/passwd = %q..., the layers say %q...", got[:min(len(got), 40)], want[:min(len(want), 40)])
	}
}

// TestCLIPlatformAndAmbiguity: on a multi-platform source the shorthand
// needs --platform; without it the command fails and lists the choices.
func TestCLIPlatformAndAmbiguity(t *testing.T) {
	t.Parallel()
	src := mntFixture(t, "C-stereoscope-multiplatform-nested")
	cache := t.TempDir()
	root, _ := mntOpenTree(t, src)
	want := mntTreeFile(t, root, "tags/latest/linux_arm64/rootfs/linux/arm64/README.md")
	r := mntRunOK(t, "cat", "--cache-dir", cache, "--platform", "linux/arm64", src, "/linux/arm64/README.md")
	if r.stdout != string(want) || len(want) == 0 {
		t.Errorf("cat --platform linux/arm64 = %q, want %q", r.stdout, want)
	}
	// The other platform's rootfs has no such file: the choice is real.
	r = mntRun(t, "cat", "--cache-dir", cache, "--platform", "linux/amd64", src, "/linux/arm64/README.md")
	if r.code == 0 {
		t.Errorf("--platform linux/amd64 found the arm64 file: %s", r)
	}
	r = mntRunOK(t, "cat", "--cache-dir", cache, "--platform", "linux/amd64", src, "/linux/amd64/README.md")
	if r.stdout != string(mntTreeFile(t, root, "tags/latest/linux_amd64/rootfs/linux/amd64/README.md")) {
		t.Errorf("cat --platform linux/amd64: wrong content %q", r.stdout)
	}
	r = mntRunOK(t, "ls", "--cache-dir", cache, "--platform", "linux/arm64", src, "/linux")
	if strings.Fields(r.stdout)[0] != "arm64" || len(strings.Fields(r.stdout)) != 1 {
		t.Errorf("ls --platform linux/arm64 /linux = %q, want arm64", r.stdout)
	}

	for _, args := range [][]string{
		{"cat", src, "/linux/arm64/README.md"},
		{"ls", src, "/"},
	} {
		r = mntRun(t, append([]string{args[0], "--cache-dir", cache}, args[1:]...)...)
		if r.code == 0 {
			t.Errorf("%s without --platform on a two-platform source succeeded: %s", args[0], r)
			continue
		}
		if r.stdout != "" {
			t.Errorf("%s: ambiguous, yet wrote %q", args[0], r.stdout)
		}
		for _, c := range []string{"linux/amd64", "linux/arm64", "tags/latest/linux_amd64", "tags/latest/linux_arm64", "ambiguous"} {
			if !strings.Contains(r.stderr, c) {
				t.Errorf("%s: the ambiguity error does not mention %q: %q", args[0], c, r.stderr)
			}
		}
	}
	// --ref narrows too: two images of one platform under two refs.
	podman := mntFixture(t, "A-podman-docker-two-images.tar")
	r = mntRun(t, "ls", "--cache-dir", cache, podman, "/")
	if r.code == 0 || !strings.Contains(r.stderr, "example.com/empty:latest") || !strings.Contains(r.stderr, "example.com/empty/but:different") {
		t.Errorf("two refs, no --ref: %s", r)
	}
	r = mntRunOK(t, "ls", "--cache-dir", cache, "--ref", "example.com/empty:latest", podman, "/")
	if strings.TrimSpace(r.stdout) != "empty" {
		t.Errorf("ls --ref example.com/empty:latest / = %q", r.stdout)
	}
	r = mntRun(t, "ls", "--cache-dir", cache, "--ref", "no/such:ref", podman, "/")
	if r.code == 0 || !strings.Contains(r.stderr, "no/such:ref") {
		t.Errorf("unknown --ref: %s", r)
	}
}

// TestCLILsLong: `ls -l` shows, per entry, what the tree says.
func TestCLILsLong(t *testing.T) {
	t.Parallel()
	cache := t.TempDir()
	for _, c := range []struct{ fixture, dir string }{
		{"A-scalibr-symlinks-docker-save.tar", "tags/symlinks:latest/linux_amd64/rootfs/dir1"},
		{"A-scalibr-symlinks-docker-save.tar", ""},
		{"B-buildkit-docker-exporter.tar", "tags/github.com/buildkit/archive:docker/linux_amd64"},
		{"C-ocitools-hello-world-manifest-list", "blobs/sha256"},
	} {
		src := mntFixture(t, c.fixture)
		root, _ := mntOpenTree(t, src)
		args := []string{"ls", "-l", "--cache-dir", cache, src}
		if c.dir != "" {
			args = append(args, c.dir)
		}
		r := mntRunOK(t, args...)
		n, err := lfs.Walk(root, c.dir)
		if err != nil {
			t.Fatal(err)
		}
		ents, err := n.(lfs.Dir).ReadDir()
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
		if len(lines) != len(ents) {
			t.Errorf("%s %s: %d lines for %d entries:\n%s", c.fixture, c.dir, len(lines), len(ents), r.stdout)
			continue
		}
		for i, e := range ents {
			a := e.Node.Attr()
			f := strings.Fields(lines[i])
			name := e.Name
			if l, ok := e.Node.(lfs.Symlink); ok {
				name += " -> " + l.Target()
			}
			if len(f) < 8 || f[0] != a.Mode.String() || f[4] != fmt.Sprint(a.Size) || !strings.HasSuffix(lines[i], " "+name) {
				t.Errorf("%s %s: line %q, tree says %v size %d %q", c.fixture, c.dir, lines[i], a.Mode, a.Size, name)
			}
		}
	}
	// A path that is not there fails, naming it.
	src := mntFixture(t, "A-scalibr-symlinks-docker-save.tar")
	r := mntRun(t, "ls", "--cache-dir", cache, src, "tags/no-such-tag")
	if r.code == 0 || !strings.Contains(r.stderr, "no-such-tag") {
		t.Errorf("ls of a missing path: %s", r)
	}
	// cat refuses directories and symlinks with a message.
	r = mntRun(t, "cat", "--cache-dir", cache, src, "tags/symlinks:latest/linux_amd64/rootfs/dir1")
	if r.code == 0 || !strings.Contains(r.stderr, "directory") {
		t.Errorf("cat of a directory: %s", r)
	}
	r = mntRun(t, "cat", "--cache-dir", cache, src, "/dir1/relative-symlink.txt")
	if r.code == 0 || !strings.Contains(r.stderr, "sample.txt") || r.stdout != "" {
		t.Errorf("cat of a symlink: %s", r)
	}
}

// TestCLICpRootfs: cp of a rootfs out keeps modes, owners, times and
// symlinks verbatim (never followed), and never overwrites.
func TestCLICpRootfs(t *testing.T) {
	t.Parallel()
	cache := t.TempDir()
	for _, c := range []struct{ fixture, dir string }{
		{"A-scalibr-symlinks-docker-save.tar", "tags/symlinks:latest/linux_amd64/rootfs"},
		{"C-ocitools-whiteout-opaque", ""},
		{"A-dive-kaniko-ggcr-tarball.tar", "tags/dive-test:kaniko-latest/linux_amd64/rootfs"},
	} {
		t.Run(c.fixture, func(t *testing.T) {
			src := mntFixture(t, c.fixture)
			root, _ := mntOpenTree(t, src)
			dir := c.dir
			if dir == "" {
				dir = mntOnlyImageTree(t, root) + "/rootfs"
			}
			dest := filepath.Join(t.TempDir(), "out")
			mntRunOK(t, "cp", "--cache-dir", cache, src, dir, dest)
			n, err := lfs.Walk(root, dir)
			if err != nil {
				t.Fatal(err)
			}
			want := mntTreeEntries(t, n.(lfs.Dir))
			got := mntDirEntries(t, dest)
			mntCompareCopy(t, want, got)
		})
	}
	// The shorthand "/" copies the image's rootfs; into an existing
	// directory it lands as "root"; a second cp refuses to overwrite.
	src := mntFixture(t, "A-scalibr-symlinks-docker-save.tar")
	into := t.TempDir()
	mntRunOK(t, "cp", "--cache-dir", cache, src, "/dir1", into)
	if b, err := os.ReadFile(filepath.Join(into, "dir1/sample.txt")); err != nil || len(b) != 12 {
		t.Errorf("cp /dir1 into a directory: %v %q", err, b)
	}
	if l, err := os.Readlink(filepath.Join(into, "dir1/attack-symlink.txt")); err != nil || l != "../../secret.txt" {
		t.Errorf("symlink copied as %q, %v", l, err)
	}
	r := mntRun(t, "cp", "--cache-dir", cache, src, "/dir1/sample.txt", filepath.Join(into, "dir1/sample.txt"))
	if r.code == 0 {
		t.Errorf("cp over an existing file succeeded")
	}
	os.WriteFile(filepath.Join(into, "mine"), []byte("user data"), 0o644)
	r = mntRun(t, "cp", "--cache-dir", cache, src, "/dir1/sample.txt", filepath.Join(into, "mine"))
	if b, _ := os.ReadFile(filepath.Join(into, "mine")); r.code == 0 || string(b) != "user data" {
		t.Errorf("cp over a user's file: exit %d, file now %q", r.code, b)
	}
	// Nothing was written outside the destination through the copied
	// symlinks (../../secret.txt, /../secret.txt).
	if _, err := os.Lstat(filepath.Join(filepath.Dir(into), "secret.txt")); err == nil {
		t.Errorf("cp wrote through a symlink")
	}
}

func mntOnlyImageTree(t testing.TB, root lfs.Dir) string {
	t.Helper()
	n, _ := lfs.Walk(root, "manifests")
	ents, err := n.(lfs.Dir).ReadDir()
	if err != nil || len(ents) != 1 {
		t.Fatalf("manifests: %v, %d entries", err, len(ents))
	}
	plats, err := ents[0].Node.(lfs.Dir).ReadDir()
	if err != nil || len(plats) != 1 {
		t.Fatalf("manifests/%s: %v, %d entries", ents[0].Name, err, len(plats))
	}
	return "manifests/" + ents[0].Name + "/" + plats[0].Name
}

// mntDirEntries is mntMountEntries for a plain directory (no xattr noise
// from the host filesystem: only user.* and trusted.* would be copied).
func mntDirEntries(t testing.TB, dir string) map[string]mntEntry {
	t.Helper()
	out := map[string]mntEntry{}
	err := filepath.WalkDir(dir, func(p string, d iofs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		e := mntEntry{mode: fi.Mode(), size: fi.Size(), uid: st.Uid, gid: st.Gid, mtime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec), nlink: uint32(st.Nlink)}
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			e.target, _ = os.Readlink(p)
		case fi.Mode().IsRegular():
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			e.sum, err = mntSum(f)
			f.Close()
			if err != nil {
				return err
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

// mntCompareCopy compares a copied-out tree with the tree it came from:
// paths, modes (with setuid/setgid/sticky), owners (as root), symlink
// targets, contents and mtimes.
func mntCompareCopy(t testing.TB, want, got map[string]mntEntry) {
	t.Helper()
	n := 0
	for p, w := range want {
		g, ok := got[p]
		if !ok {
			t.Errorf("%s: not copied", p)
			continue
		}
		if g.mode != w.mode {
			t.Errorf("%s: copied with mode %v, tree says %v", p, g.mode, w.mode)
		}
		if os.Geteuid() == 0 && (g.uid != w.uid || g.gid != w.gid) {
			t.Errorf("%s: copied as %d:%d, tree says %d:%d", p, g.uid, g.gid, w.uid, w.gid)
		}
		if g.target != w.target {
			t.Errorf("%s: symlink to %q, tree says %q", p, g.target, w.target)
		}
		if w.mode.IsRegular() && (g.sum != w.sum || g.size != w.size) {
			t.Errorf("%s: copied content differs", p)
		}
		wm := w.mtime
		if wm.IsZero() {
			wm = time.Unix(0, 0)
		}
		if p != "." && !g.mtime.Equal(wm) {
			t.Errorf("%s: mtime %v, tree says %v", p, g.mtime.UTC(), wm.UTC())
		}
		n++
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: copied but not in the tree", p)
		}
	}
	if n < 2 {
		t.Errorf("only %d entries compared", n)
	}
}

// TestCLIInspectJSON: inspect --json agrees with the tree for every real
// fixture: references, platforms, manifest digests, layers, sizes.
func TestCLIInspectJSON(t *testing.T) {
	t.Parallel()
	type image struct {
		Platform, Digest string
		Size             int64
		Layers           []struct {
			Digest, MediaType string
			Size              int64
		}
	}
	for _, name := range append(mntGoodFixtures(t), "X-ocitools-aufs-whiteouts-BADDIGESTS") {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			src := mntFixture(t, name)
			r := mntRunOK(t, "inspect", "--json", "--cache-dir", t.TempDir(), src)
			var rep struct {
				Source, Kind string
				Refs         []struct {
					Name   string
					Images []image
				}
				Untagged []image
			}
			if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
				t.Fatalf("inspect --json: %v\n%s", err, r.stdout)
			}
			if rep.Source != src || rep.Kind == "" {
				t.Errorf("source %q kind %q", rep.Source, rep.Kind)
			}
			root, _ := mntOpenTree(t, src)
			check := func(dir string, im image) {
				raw := mntTreeFile(t, root, dir+"/"+im.Platform+"/manifest.json")
				if d := "sha256:" + mntSumBytes(raw); d != im.Digest {
					t.Errorf("%s/%s: inspect says %s, manifest.json is %s", dir, im.Platform, im.Digest, d)
				}
				var m struct {
					Config struct{ Size int64 }
					Layers []struct {
						Digest, MediaType string
						Size              int64
					}
				}
				json.Unmarshal(raw, &m)
				size := int64(len(raw)) + m.Config.Size
				if len(m.Layers) != len(im.Layers) {
					t.Errorf("%s/%s: %d layers, manifest has %d", dir, im.Platform, len(im.Layers), len(m.Layers))
					return
				}
				for i, l := range m.Layers {
					size += l.Size
					if l != im.Layers[i] {
						t.Errorf("%s/%s layer %d: inspect %+v, manifest %+v", dir, im.Platform, i, im.Layers[i], l)
					}
				}
				if size != im.Size {
					t.Errorf("%s/%s: size %d, manifest+config+layers = %d", dir, im.Platform, im.Size, size)
				}
			}
			var refNames []string
			for _, ref := range rep.Refs {
				refNames = append(refNames, ref.Name)
				var plats []string
				for _, im := range ref.Images {
					check("tags/"+ref.Name, im)
					plats = append(plats, im.Platform)
				}
				// The ref's directory holds exactly those platforms.
				n, err := lfs.Walk(root, "tags/"+ref.Name)
				if err != nil {
					t.Fatal(err)
				}
				ents, _ := n.(lfs.Dir).ReadDir()
				for _, e := range ents {
					if _, isDir := e.Node.(lfs.Dir); isDir && !slices.Contains(plats, e.Name) {
						if _, err := lfs.Walk(root, "tags/"+ref.Name+"/"+e.Name+"/manifest.json"); err == nil {
							t.Errorf("tags/%s/%s: an image inspect does not list", ref.Name, e.Name)
						}
					}
				}
			}
			// Every tag directory of the tree is a ref inspect lists.
			for _, ref := range mntTreeRefs(t, root) {
				if !slices.Contains(refNames, ref) {
					t.Errorf("tags/%s in the tree, not in inspect's refs %q", ref, refNames)
				}
			}
			for _, im := range rep.Untagged {
				check("manifests/"+im.Digest, im)
			}
			if len(rep.Refs) == 0 && len(rep.Untagged) == 0 {
				t.Errorf("inspect lists no image")
			}
		})
	}
}

// mntTreeRefs lists the references of the tree: directories under tags/
// that hold an image or an index.json.
func mntTreeRefs(t testing.TB, root lfs.Dir) []string {
	t.Helper()
	var out []string
	var walk func(p string, d lfs.Dir)
	walk = func(p string, d lfs.Dir) {
		ents, err := d.ReadDir()
		if err != nil {
			t.Errorf("tree %s: %v", p, err)
			return
		}
		isRef := false
		for _, e := range ents {
			sub, ok := e.Node.(lfs.Dir)
			if e.Name == "index.json" {
				isRef = true
				continue
			}
			if !ok {
				continue
			}
			if _, err := lfs.Walk(sub, "manifest.json"); err == nil {
				isRef = true
				continue
			}
			walk(path.Join(p, e.Name), sub)
		}
		if isRef {
			out = append(out, strings.TrimPrefix(p, "tags/"))
		}
	}
	n, err := lfs.Walk(root, "tags")
	if err != nil {
		t.Fatal(err)
	}
	walk("tags", n.(lfs.Dir))
	return out
}

// TestCLIDefaultCacheDir: without --cache-dir the index cache goes to
// $XDG_CACHE_HOME/layoutfs.
func TestCLIDefaultCacheDir(t *testing.T) {
	t.Parallel()
	xdg := t.TempDir()
	src := mntFixture(t, "C-skopeo-oci-archive-name-only.tar.gz")
	cmd := exec.Command(mntBinPath, "ls", src, "tags")
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+xdg, "LAYOUTFS_CACHE_DIR=")
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "pretty-empty:latest" {
		t.Fatalf("ls: %v\n%s", err, out)
	}
	ents, err := os.ReadDir(filepath.Join(xdg, "layoutfs"))
	if err != nil || len(ents) == 0 {
		t.Errorf("$XDG_CACHE_HOME/layoutfs after ls of a compressed archive: %v, %d entries", err, len(ents))
	}
}

// TestCLIUnusableCacheDir: the index cache is an optimisation. When it
// cannot be written (a read-only home, a path under a file), reading a
// source must still work, or at the very least fail saying the cache is
// the problem: never call a good archive "not an image".
func TestCLIUnusableCacheDir(t *testing.T) {
	t.Parallel()
	blocker := filepath.Join(t.TempDir(), "a-file")
	os.WriteFile(blocker, []byte("x"), 0o644)
	cache := filepath.Join(blocker, "cache") // mkdir fails: ENOTDIR
	for _, c := range []struct{ fixture, path, want string }{
		{"A-scalibr-symlinks-docker-save.tar", "tags", "symlinks:latest"},
		{"C-skopeo-oci-archive-name-only.tar.gz", "tags", "pretty-empty:latest"},
		{"C-dive-oci-zstd.tar", "tags", ""},
		{"C-stereoscope-multiplatform-nested", "tags", "latest"},
		// A layout directory needs no cache to open, but its gzip layer does.
		{"C-stereoscope-multiplatform-nested", "tags/latest/linux_amd64/rootfs", "linux"},
	} {
		src := mntFixture(t, c.fixture)
		r := mntRun(t, "ls", "--cache-dir", cache, src, c.path)
		if r.code == 0 {
			if strings.TrimSpace(r.stdout) != c.want {
				t.Errorf("%s with an unusable cache: %s/ = %q, want %q", c.fixture, c.path, r.stdout, c.want)
			}
			continue
		}
		if strings.Contains(r.stderr, "not an image") || !strings.Contains(r.stderr, blocker) {
			t.Errorf("%s %s with an unusable cache dir: %q; want it read without the cache, or an error about the cache dir", c.fixture, c.path, strings.TrimSpace(r.stderr))
		}
	}
	// The same through XDG_CACHE_HOME, as a read-only home would give.
	src := mntFixture(t, "A-scalibr-symlinks-docker-save.tar")
	cmd := exec.Command(mntBinPath, "ls", src, "tags")
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+blocker, "LAYOUTFS_CACHE_DIR=")
	out, err := cmd.CombinedOutput()
	if err != nil && (strings.Contains(string(out), "not an image") || !strings.Contains(string(out), blocker)) {
		t.Errorf("XDG_CACHE_HOME unusable: %v: %s", err, out)
	}
}
