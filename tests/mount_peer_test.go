package tests

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// mntPeerImage builds, with umoci, an OCI layout with a two-layer image
// (files of several modes, a symlink, a hard link, then a deletion and a
// replaced file in the second layer) and returns the layout and umoci's
// own unpacked rootfs of it, the ground truth for the mounted rootfs/.
func mntPeerImage(t *testing.T) (layoutDir, rootfs string) {
	t.Helper()
	mntNeed(t, "umoci", "skopeo")
	if os.Geteuid() != 0 {
		t.Fatalf("umoci unpack needs root here (or --rootless); running as uid %d", os.Geteuid())
	}
	dir := t.TempDir()
	layoutDir = filepath.Join(dir, "layout")
	bundle := filepath.Join(dir, "bundle")
	mntExec(t, "umoci", "init", "--layout", layoutDir)
	mntExec(t, "umoci", "new", "--image", layoutDir+":t")
	mntExec(t, "umoci", "unpack", "--image", layoutDir+":t", bundle)
	rootfs = filepath.Join(bundle, "rootfs")
	write := func(rel, content string, mode os.FileMode) {
		p := filepath.Join(rootfs, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	write("etc/os-release", "ID=demo\nVERSION_ID=1\n", 0o644)
	write("usr/bin/tool", "#!/bin/sh\necho tool\n", 0o755)
	write("root/secret", "only root\n", 0o600)
	write("var/lib/gone", "deleted by the second layer\n", 0o644)
	write("var/lib/replaced", "first version\n", 0o644)
	big := bytes.Repeat([]byte("layoutfs peer interop 0123456789\n"), 40000) // ~1.3 MB, several FUSE reads
	write("usr/share/big.txt", string(big), 0o644)
	if err := os.Symlink("../usr/bin/tool", filepath.Join(rootfs, "etc/tool-link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(rootfs, "usr/bin/tool"), filepath.Join(rootfs, "usr/bin/tool-hard")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(filepath.Join(rootfs, "root/secret"), 1234, 5678); err != nil {
		t.Fatal(err)
	}
	// Special files and xattrs, which only a mount can show as such.
	os.MkdirAll(filepath.Join(rootfs, "dev"), 0o755)
	if err := unix.Mknod(filepath.Join(rootfs, "dev/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknod(filepath.Join(rootfs, "dev/loop9"), unix.S_IFBLK|0o660, int(unix.Mkdev(7, 9))); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(rootfs, "dev/fifo"), 0o620); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lsetxattr(filepath.Join(rootfs, "etc/os-release"), "user.layoutfs.test", []byte("xattr value"), 0); err != nil {
		t.Fatalf("user xattrs unsupported on the temp dir: %v", err)
	}
	// Modes exactly, past the umask; setuid on the tool.
	for rel, mode := range map[string]uint32{"dev/null": 0o666, "dev/loop9": 0o660, "dev/fifo": 0o620, "usr/bin/tool": 0o4755} {
		if err := unix.Chmod(filepath.Join(rootfs, rel), mode); err != nil {
			t.Fatal(err)
		}
	}
	mntSetTimes(t, rootfs, time.Date(2021, 2, 3, 4, 5, 6, 0, time.UTC))
	mntExec(t, "umoci", "repack", "--image", layoutDir+":t", bundle)
	// Second layer, from a fresh unpack of the first: a deletion (a
	// whiteout) and a replacement.
	bundle = filepath.Join(dir, "bundle2")
	mntExec(t, "umoci", "unpack", "--image", layoutDir+":t", bundle)
	rootfs = filepath.Join(bundle, "rootfs")
	if err := os.Remove(filepath.Join(rootfs, "var/lib/gone")); err != nil {
		t.Fatal(err)
	}
	write("var/lib/replaced", "second version, longer\n", 0o640)
	mntSetTimes(t, filepath.Join(rootfs, "var"), time.Date(2022, 3, 4, 5, 6, 7, 0, time.UTC))
	mntExec(t, "umoci", "repack", "--image", layoutDir+":t", bundle)
	return layoutDir, rootfs
}

// TestMountPeerInterop makes archives with skopeo from a umoci-built
// image, mounts them and lets skopeo read the mounts as OCI layouts.
func TestMountPeerInterop(t *testing.T) {
	mntRequireFUSE(t)
	t.Parallel()
	layoutDir, rootfs := mntPeerImage(t)
	dir := t.TempDir()
	const ref = "example.com/demo:v1"
	dockerTar := filepath.Join(dir, "docker-save.tar")
	ociTar := filepath.Join(dir, "oci-archive.tar")
	mntExec(t, "skopeo", "copy", "-q", "oci:"+layoutDir+":t", "docker-archive:"+dockerTar+":"+ref)
	mntExec(t, "skopeo", "copy", "-q", "oci:"+layoutDir+":t", "oci-archive:"+ociTar+":"+ref)

	// Compressed docker saves, as `docker save | gzip` and zstd make them.
	mntNeed(t, "gzip", "zstd")
	gzTar := dockerTar + ".gz"
	gz := mntExec(t, "gzip", "-c", dockerTar)
	if err := os.WriteFile(gzTar, []byte(gz), 0o644); err != nil {
		t.Fatal(err)
	}
	zstTar := dockerTar + ".zst"
	mntExec(t, "zstd", "-q", dockerTar, "-o", zstTar)
	// Same times everywhere: the tree's directories take the source's.
	st, err := os.Stat(dockerTar)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{gzTar, zstTar, ociTar} {
		if err := os.Chtimes(p, st.ModTime(), st.ModTime()); err != nil {
			t.Fatal(err)
		}
	}

	var base map[string]mntEntry // the uncompressed docker save's rootfs
	for _, c := range []struct{ name, file string }{
		{"docker-archive", dockerTar},
		{"oci-archive", ociTar},
		{"docker-archive.gz", gzTar},
		{"docker-archive.zst", zstTar},
	} {
		t.Run(c.name, func(t *testing.T) {
			mnt := mntMount(t, c.file)
			mntWantNames(t, mnt, "tags/example.com", "demo:v1")
			plats := mntNames(t, filepath.Join(mnt, "tags", ref))
			if len(plats) != 1 {
				t.Fatalf("tags/%s = %v, want one image", ref, plats)
			}
			img := filepath.Join(mnt, "tags", ref, plats[0])

			// skopeo reads the mount as an OCI layout.
			var insp struct {
				Digest string
				Layers []string
			}
			out := mntExec(t, "skopeo", "inspect", "oci:"+mnt+":"+ref)
			if err := json.Unmarshal([]byte(out), &insp); err != nil {
				t.Fatalf("skopeo inspect: %v\n%s", err, out)
			}
			var m mntManifest
			raw := mntReadJSON(t, filepath.Join(img, "manifest.json"), &m)
			if want := "sha256:" + mntSumBytes(raw); insp.Digest != want {
				t.Errorf("skopeo inspect says digest %s, the mounted manifest is %s", insp.Digest, want)
			}
			if len(insp.Layers) != 2 || len(m.Layers) != 2 {
				t.Fatalf("layers: skopeo %v, manifest %d, want 2", insp.Layers, len(m.Layers))
			}
			for i := range m.Layers {
				if insp.Layers[i] != m.Layers[i].Digest {
					t.Errorf("layer %d: skopeo %s, manifest %s", i, insp.Layers[i], m.Layers[i].Digest)
				}
			}

			// A copy keeping digests: every blob byte-equal to the mount's.
			exact := filepath.Join(t.TempDir(), "exact")
			mntExec(t, "skopeo", "copy", "-q", "--preserve-digests", "oci:"+mnt+":"+ref, "oci:"+exact+":v1")
			copied := mntNames(t, filepath.Join(exact, "blobs/sha256"))
			if len(copied) != 4 { // manifest, config, 2 layers
				t.Errorf("copy holds blobs %v, want 4", copied)
			}
			for _, b := range copied {
				got, err := os.ReadFile(filepath.Join(exact, "blobs/sha256", b))
				if err != nil {
					t.Fatal(err)
				}
				want, err := os.ReadFile(filepath.Join(mnt, "blobs/sha256", b))
				if err != nil {
					t.Errorf("copied blob %s not in the mount: %v", b, err)
					continue
				}
				if !bytes.Equal(got, want) {
					t.Errorf("copied blob %s differs from the mounted one", b)
				}
			}
			// The plain copy (skopeo may recompress): each copied layer,
			// decompressed, is the mounted layer, decompressed.
			plain := filepath.Join(t.TempDir(), "plain")
			mntExec(t, "skopeo", "copy", "-q", "oci:"+mnt+":"+ref, "oci:"+plain+":v1")
			var pidx struct {
				Manifests []struct{ Digest string } `json:"manifests"`
			}
			mntReadJSON(t, filepath.Join(plain, "index.json"), &pidx)
			if len(pidx.Manifests) != 1 {
				t.Fatalf("copy index: %+v", pidx)
			}
			var pm mntManifest
			mntReadJSON(t, filepath.Join(plain, "blobs/sha256", strings.TrimPrefix(pidx.Manifests[0].Digest, "sha256:")), &pm)
			if len(pm.Layers) != len(m.Layers) {
				t.Fatalf("copy has %d layers, the mount %d", len(pm.Layers), len(m.Layers))
			}
			for i := range pm.Layers {
				got := mntDiffSum(t, filepath.Join(plain, "blobs/sha256", strings.TrimPrefix(pm.Layers[i].Digest, "sha256:")))
				want := mntDiffSum(t, filepath.Join(mnt, "blobs/sha256", strings.TrimPrefix(m.Layers[i].Digest, "sha256:")))
				if got != want {
					t.Errorf("layer %d: copy's content %s, mount's %s", i, got, want)
				}
			}

			// The rootfs is what umoci unpacked.
			got := mntMountEntries(t, filepath.Join(img, "rootfs"))
			mntCompareWithDir(t, got, rootfs)
			if _, err := os.Lstat(filepath.Join(img, "rootfs/var/lib/gone")); !os.IsNotExist(err) {
				t.Errorf("rootfs/var/lib/gone: %v, want it deleted by the second layer's whiteout", err)
			}
			if b, _ := os.ReadFile(filepath.Join(img, "rootfs/var/lib/replaced")); string(b) != "second version, longer\n" {
				t.Errorf("rootfs/var/lib/replaced = %q", b)
			}
			var fst, hst syscall.Stat_t
			if syscall.Lstat(filepath.Join(img, "rootfs/usr/bin/tool"), &fst) != nil || syscall.Lstat(filepath.Join(img, "rootfs/usr/bin/tool-hard"), &hst) != nil || fst.Ino != hst.Ino || fst.Nlink != 2 {
				t.Errorf("hard link: tool ino %d nlink %d, tool-hard ino %d", fst.Ino, fst.Nlink, hst.Ino)
			}
			// Spot checks of what the comparison covers, so a vacuous
			// comparison cannot pass.
			for rel, want := range map[string]os.FileMode{
				"dev/null":     os.ModeDevice | os.ModeCharDevice | 0o666,
				"dev/loop9":    os.ModeDevice | 0o660,
				"dev/fifo":     os.ModeNamedPipe | 0o620,
				"usr/bin/tool": os.ModeSetuid | 0o755,
			} {
				if g, ok := got[rel]; !ok || g.mode != want {
					t.Errorf("rootfs/%s: mode %v, want %v", rel, g.mode, want)
				}
			}
			if g := got["dev/loop9"]; unix.Major(g.rdev) != 7 || unix.Minor(g.rdev) != 9 {
				t.Errorf("rootfs/dev/loop9: device %d:%d, want 7:9", unix.Major(g.rdev), unix.Minor(g.rdev))
			}
			if g := got["etc/os-release"]; g.xattrs["user.layoutfs.test"] != "xattr value" {
				t.Errorf("rootfs/etc/os-release xattrs %v", g.xattrs)
			}
			// Every source shape shows the same rootfs as the plain docker save.
			if c.name == "docker-archive" {
				base = got
			} else if base == nil {
				t.Errorf("no docker-archive rootfs to compare with")
			} else {
				mntCompareTrees(t, base, got)
			}
		})
	}
}

func mntSumBytes(b []byte) string {
	s, _ := mntSum(bytes.NewReader(b))
	return s
}

// mntDiffSum is the sha256 of a layer blob's uncompressed content.
func mntDiffSum(t testing.TB, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	var r io.Reader = bytes.NewReader(b)
	if bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(r)
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	}
	s, err := mntSum(r)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return s
}

// mntCompareWithDir compares a mounted tree (as mntMountEntries returns
// it) with a real directory: names, types, modes, owners, sizes, symlink
// targets, contents and mtimes to the second (tar headers may drop the
// fraction). The directory's own root is not compared.
func mntCompareWithDir(t testing.TB, got map[string]mntEntry, dir string) {
	t.Helper()
	want := map[string]mntEntry{}
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
		e := mntEntry{mode: fi.Mode(), size: fi.Size(), uid: st.Uid, gid: st.Gid, mtime: time.Unix(st.Mtim.Sec, 0), nlink: uint32(st.Nlink)}
		if fi.Mode()&iofs.ModeDevice != 0 {
			e.rdev = st.Rdev
		}
		e.xattrs = mntUserXattrs(mntListXattrs(t, p))
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
		want[filepath.ToSlash(rel)] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for p, w := range want {
		if p == "." {
			continue
		}
		g, ok := got[p]
		if !ok {
			t.Errorf("%s: in umoci's rootfs, missing from the mount", p)
			continue
		}
		if g.mode != w.mode {
			t.Errorf("%s: mode %v in the mount, %v in umoci's rootfs", p, g.mode, w.mode)
		}
		if g.uid != w.uid || g.gid != w.gid {
			t.Errorf("%s: owner %d:%d in the mount, %d:%d in umoci's rootfs", p, g.uid, g.gid, w.uid, w.gid)
		}
		if w.mode.IsRegular() && (g.size != w.size || g.sum != w.sum) {
			t.Errorf("%s: %d bytes sha256 %s in the mount, %d bytes %s in umoci's rootfs", p, g.size, g.sum, w.size, w.sum)
		}
		if !w.mode.IsDir() && g.nlink != w.nlink {
			t.Errorf("%s: nlink %d in the mount, %d in umoci's rootfs", p, g.nlink, w.nlink)
		}
		if g.target != w.target {
			t.Errorf("%s: symlink to %q in the mount, %q in umoci's rootfs", p, g.target, w.target)
		}
		if g.rdev != w.rdev {
			t.Errorf("%s: device %d:%d in the mount, %d:%d in umoci's rootfs", p, unix.Major(g.rdev), unix.Minor(g.rdev), unix.Major(w.rdev), unix.Minor(w.rdev))
		}
		if gx := mntUserXattrs(g.xattrs); len(gx)+len(w.xattrs) > 0 && !mapsEqualMnt(gx, w.xattrs) {
			t.Errorf("%s: user xattrs %v in the mount, %v in umoci's rootfs", p, gx, w.xattrs)
		}
		if g.mtime.Unix() != w.mtime.Unix() {
			t.Errorf("%s: mtime %v in the mount, %v in umoci's rootfs", p, g.mtime.UTC(), w.mtime.UTC())
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: in the mount, not in umoci's rootfs", p)
		}
	}
}

// mntSetTimes sets every mtime under dir to tm (whole seconds, so tar's
// rounding cannot make the layer and the directory disagree).
func mntSetTimes(t testing.TB, dir string, tm time.Time) {
	t.Helper()
	ts := []unix.Timespec{unix.NsecToTimespec(tm.UnixNano()), unix.NsecToTimespec(tm.UnixNano())}
	err := filepath.WalkDir(dir, func(p string, d iofs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// mntUserXattrs keeps the user.* attributes: others (security.*) depend on
// the host filesystem.
func mntUserXattrs(m map[string]string) map[string]string {
	var out map[string]string
	for k, v := range m {
		if strings.HasPrefix(k, "user.") {
			if out == nil {
				out = map[string]string{}
			}
			out[k] = v
		}
	}
	return out
}

// TestMountPeersReadFixtures: skopeo and umoci read mounts of real
// fixtures as OCI layouts: umoci unpacks a legacy docker save's
// synthesised layout to the rootfs the mount shows, and skopeo copies a
// nested multi-platform index with --all, byte for byte.
func TestMountPeersReadFixtures(t *testing.T) {
	mntRequireFUSE(t)
	mntNeed(t, "umoci", "skopeo")
	t.Parallel()
	t.Run("umoci-unpack-legacy", func(t *testing.T) {
		t.Parallel()
		src := mntFixture(t, "A-scalibr-symlinks-docker-save.tar")
		mnt := mntMount(t, src)
		bundle := filepath.Join(t.TempDir(), "bundle")
		mntExec(t, "umoci", "unpack", "--image", mnt+":symlinks:latest", bundle)
		got := mntMountEntries(t, filepath.Join(mnt, "tags/symlinks:latest/linux_amd64/rootfs"))
		mntCompareWithDir(t, got, filepath.Join(bundle, "rootfs"))
		if len(got) < 10 {
			t.Errorf("only %d paths in the rootfs", len(got))
		}
	})
	t.Run("skopeo-copy-all-nested", func(t *testing.T) {
		t.Parallel()
		src := mntFixture(t, "C-stereoscope-multiplatform-nested")
		mnt := mntMount(t, src)
		out := filepath.Join(t.TempDir(), "out")
		mntExec(t, "skopeo", "copy", "-q", "--all", "--preserve-digests", "oci:"+mnt+":latest", "oci:"+out+":x")
		want := mntNames(t, filepath.Join(src, "blobs/sha256"))
		got := mntNames(t, filepath.Join(out, "blobs/sha256"))
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("copied blobs %v, the fixture has %v", got, want)
		}
		for _, b := range got {
			g, _ := os.ReadFile(filepath.Join(out, "blobs/sha256", b))
			w, _ := os.ReadFile(filepath.Join(src, "blobs/sha256", b))
			if !bytes.Equal(g, w) {
				t.Errorf("blob %s differs from the fixture's", b)
			}
		}
	})
}

// TestCLICpLikeCpA: `layoutfs cp` says it "copies like cp -a". A rootfs
// copied out of a docker save equals umoci's unpack of the same image:
// modes (setuid too), owners, times, symlinks, device nodes, fifos, hard
// links and user xattrs. Needs no FUSE.
func TestCLICpLikeCpA(t *testing.T) {
	t.Parallel()
	layoutDir, rootfs := mntPeerImage(t)
	save := filepath.Join(t.TempDir(), "save.tar")
	mntExec(t, "skopeo", "copy", "-q", "oci:"+layoutDir+":t", "docker-archive:"+save+":example.com/demo:v1")
	dest := filepath.Join(t.TempDir(), "out")
	mntRunOK(t, "cp", "--cache-dir", t.TempDir(), save, "/", dest)
	got := mntMountEntries(t, dest)
	mntCompareWithDir(t, got, rootfs)
}

// TestMountAllowOther: other users see a mount only with -o allow_other,
// and then the image's own modes and owners decide what they may read
// (default_permissions): a 0600 file of another uid stays unreadable.
func TestMountAllowOther(t *testing.T) {
	mntRequireFUSE(t)
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skipf("needs root to run a command as another user: NOT RUN")
	}
	layoutDir, _ := mntPeerImage(t)
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		os.Chmod(d, 0o755)
	}
	asNobody := func(args ...string) error {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}
	for _, allow := range []bool{false, true} {
		mnt := filepath.Join(dir, fmt.Sprintf("mnt-%v", allow))
		os.Mkdir(mnt, 0o755)
		args := []string{"mount", "--cache-dir", t.TempDir()}
		if allow {
			args = append(args, "-o", "allow_other")
		}
		mntRunOK(t, append(args, layoutDir, mnt)...)
		mntCleanupUmount(t, mnt)
		rootfs := filepath.Join(mnt, "tags/t/linux_amd64/rootfs")
		public := asNobody("cat", filepath.Join(rootfs, "etc/os-release"))
		secret := asNobody("cat", filepath.Join(rootfs, "root/secret"))
		if !allow {
			if public == nil {
				t.Errorf("without allow_other, another user read the mount")
			}
			continue
		}
		if public != nil {
			t.Errorf("with allow_other, another user cannot read a 0644 file: %v", public)
		}
		if secret == nil {
			t.Errorf("with allow_other, another user read a 0600 file of uid 1234")
		}
		// root still reads it.
		if _, err := os.ReadFile(filepath.Join(rootfs, "root/secret")); err != nil {
			t.Errorf("root cannot read root/secret: %v", err)
		}
	}
}
