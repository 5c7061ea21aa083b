package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/layoutfs/layoutfs/layout"
	"golang.org/x/sys/unix"
)

// rwRichLayout builds, with umoci, a layout tagged "t" whose rootfs has
// what the edits below work on: files, a directory tree, a hard link
// pair, a large file.
func rwRichLayout(t *testing.T) string {
	t.Helper()
	mntNeed(t, "umoci", "skopeo", "mkfifo", "truncate")
	return umociImage(t, func(rootfs string) {
		mntExec(t, "sh", "-c", `cd "$1" && mkdir -p etc dir/sub gone usr/bin &&
echo orig > etc/conf && echo keep > dir/sub/f && echo bye > dir/g &&
echo a > gone/a && echo b > gone/b && printf '#!/bin/sh\n' > usr/bin/tool && chmod 755 usr/bin/tool &&
head -c 100000 /dev/zero | tr '\0' x > big && echo linked > low1 && ln low1 low2`, "sh", rootfs)
	})
}

// rwEdits is what a user does in the rootfs, with the usual tools.
const rwEdits = `set -e
echo appended >> etc/conf
echo new > newfile
mkdir -p newdir/deep && echo deep > newdir/deep/x
ln -s newfile lnk
ln newfile hard
rm dir/g
mv dir moved
chmod 600 etc/conf
chown 1234:5678 newfile
touch -d @1000000000 newdir/deep/x
mkfifo fifo
truncate -s 3 big
rm -r gone && mkdir gone && echo back > gone/only
cp -a "$HOSTDIR" copied
`

// rwEdit mounts src read-write with cache and runs the edits in the
// rootfs of tags/t; it returns the mountpoint.
func rwEdit(t *testing.T, src, cache string) string {
	t.Helper()
	mnt := mntEmptyDir(t)
	mntRunOK(t, "mount", "--rw", "--cache-dir", cache, src, mnt)
	mntCleanupUmount(t, mnt)
	host := filepath.Join(t.TempDir(), "host")
	os.MkdirAll(filepath.Join(host, "in"), 0o750)
	os.WriteFile(filepath.Join(host, "in", "file"), []byte("from the host\n"), 0o640)
	os.Chtimes(filepath.Join(host, "in", "file"), time.Unix(1500000000, 0), time.Unix(1500000000, 0))
	os.Chtimes(filepath.Join(host, "in"), time.Unix(1500000000, 0), time.Unix(1500000000, 0))
	os.Chtimes(host, time.Unix(1500000000, 0), time.Unix(1500000000, 0))
	root := filepath.Join(mnt, "tags/t/linux_amd64/rootfs")
	cmd := exec.Command("sh", "-c", rwEdits)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "HOSTDIR="+host)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("edits in %s: %v\n%s", root, err, out)
	}
	if err := unix.Setxattr(filepath.Join(root, "newfile"), "user.note", []byte("edited"), 0); err != nil {
		t.Fatalf("setxattr: %v", err)
	}
	return mnt
}

// rwNoMtimes clears what a commit does not keep: the clock's mtimes of
// what the edits made or wrote (a commit writes a fixed time there).
func rwNoMtimes(tr *oracleTree) *oracleTree {
	out := &oracleTree{recs: map[string]oracleRec{}, links: tr.links}
	for p, r := range tr.recs {
		if p != "newdir/deep/x" && !strings.HasPrefix(p, "copied") {
			r.Mtime = 0
		}
		out.recs[p] = r
	}
	return out
}

// TestRWRootfsCommit: edits in a --rw mount's rootfs survive a daemon
// crash and a remount, status lists them, and commit makes an image that
// umoci unpacks to exactly what the mount showed; the same edits on a
// copy give the same layer.
func TestRWRootfsCommit(t *testing.T) {
	mntRequireFUSE(t)
	t.Parallel()
	base := rwRichLayout(t)
	src := filepath.Join(t.TempDir(), "layout")
	mntExec(t, "cp", "-a", base, src)
	cache := t.TempDir()
	mnt := rwEdit(t, src, cache)
	root := filepath.Join(mnt, "tags/t/linux_amd64/rootfs")
	before := dirTree(t, root)
	if r := before.recs["newdir/deep/x"]; r.Mtime != 1000000000 {
		t.Errorf("touch -d: mtime %d", r.Mtime)
	}

	status := mntRunOK(t, "status", "--cache-dir", cache, mnt).stdout
	for _, want := range []string{"(tags/t/linux_amd64)", "  D dir\n", "  M etc/conf\n", "  A newfile\n", "  A moved/sub/f\n", "  M big\n"} {
		if !strings.Contains(status, want) {
			t.Errorf("status lacks %q:\n%s", want, status)
		}
	}

	// A daemon killed mid-session loses nothing.
	pids := mntDaemonPids(t, mnt)
	if len(pids) != 1 {
		t.Fatalf("daemons: %v", pids)
	}
	syscall.Kill(pids[0], syscall.SIGKILL)
	mntWaitProcGone(t, pids[0], 10*time.Second)
	mntRunOK(t, "umount", mnt)
	mntRunOK(t, "mount", "--rw", "--cache-dir", cache, src, mnt)
	compareTrees(t, dirTree(t, root), before)

	r := mntRunOK(t, "commit", "--cache-dir", cache, "--tag", "edited", "-m", "an edit", mnt, "tags/t/linux_amd64")
	if !strings.HasPrefix(r.stdout, "sha256:") {
		t.Fatalf("commit printed %q", r.stdout)
	}
	if s := mntRunOK(t, "status", "--cache-dir", cache, mnt).stdout; s != "" {
		t.Errorf("status after commit: %q", s)
	}

	// umoci's unpack of the new image is what the mount showed.
	bundle := filepath.Join(t.TempDir(), "bundle")
	mntExec(t, "umoci", "unpack", "--image", src+":edited", bundle)
	compareTrees(t, rwNoMtimes(dirTree(t, filepath.Join(bundle, "rootfs"))), rwNoMtimes(before))

	// The mount shows the new image at once, and t as it was.
	edited := filepath.Join(mnt, "tags/edited/linux_amd64/rootfs")
	rwEventually(t, "tags/edited", func() bool { _, err := os.Stat(edited); return err == nil })
	compareTrees(t, rwNoMtimes(dirTree(t, edited)), rwNoMtimes(before))
	rwEventually(t, "tags/t to show its own rootfs again", func() bool {
		b, _ := os.ReadFile(filepath.Join(root, "etc/conf"))
		return string(b) == "orig\n"
	})

	// The peers take it on.
	mntExec(t, "skopeo", "copy", "-q", "oci:"+src+":edited", "docker-archive:"+filepath.Join(t.TempDir(), "d.tar")+":example.com/edited:1")
	mntExec(t, "skopeo", "copy", "-q", "oci:"+src+":edited", "oci-archive:"+filepath.Join(t.TempDir(), "o.tar")+":edited")

	// The same edits on a copy give the same layer.
	src2 := filepath.Join(t.TempDir(), "layout")
	mntExec(t, "cp", "-a", base, src2)
	cache2 := t.TempDir()
	mnt2 := rwEdit(t, src2, cache2)
	mntRunOK(t, "commit", "--cache-dir", cache2, "--tag", "edited", mnt2, "tags/t/linux_amd64")
	if a, b := rwTopLayer(t, src), rwTopLayer(t, src2); a != b {
		t.Errorf("the same edits gave layers %s and %s", a, b)
	}
}

// rwTopLayer is the last layer of the image tagged edited.
func rwTopLayer(t *testing.T, src string) string {
	t.Helper()
	s, err := layout.Open(t.Context(), src, layout.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ref, ok := s.Ref("edited")
	if !ok {
		t.Fatalf("%s: no tag edited", src)
	}
	ims, err := s.Images(ref.Descs)
	if err != nil || len(ims) != 1 {
		t.Fatalf("%s: images %v %v", src, ims, err)
	}
	ls := ims[0].Manifest.Layers
	return ls[len(ls)-1].Digest.String()
}

// TestRWRootfsDiscard: discard drops the pending changes, and the mount
// shows the image as it is.
func TestRWRootfsDiscard(t *testing.T) {
	mntRequireFUSE(t)
	t.Parallel()
	base := rwRichLayout(t)
	cache := t.TempDir()
	mnt := rwEdit(t, base, cache)
	root := filepath.Join(mnt, "tags/t/linux_amd64/rootfs")
	// A name a layer would read back as a whiteout is refused.
	rwWantErrno(t, "a .wh. file", os.WriteFile(filepath.Join(root, ".wh.x"), nil, 0o644), syscall.EINVAL)
	rwWantErrno(t, "a .wh. directory", os.Mkdir(filepath.Join(root, ".wh..wh..opq"), 0o755), syscall.EINVAL)
	mntRunOK(t, "discard", "--cache-dir", cache, mnt, filepath.Join(mnt, "tags/t/linux_amd64"))
	rwEventually(t, "the edits to go", func() bool {
		_, err := os.Lstat(filepath.Join(root, "newfile"))
		b, _ := os.ReadFile(filepath.Join(root, "etc/conf"))
		return os.IsNotExist(err) && string(b) == "orig\n"
	})
	if s := mntRunOK(t, "status", "--cache-dir", cache, mnt).stdout; s != "" {
		t.Errorf("status after discard: %q", s)
	}
	if r := mntRun(t, "commit", "--cache-dir", cache, mnt, "tags/t/linux_amd64"); r.code == 0 || !strings.Contains(r.stderr, "nothing to commit") {
		t.Errorf("commit with nothing pending: %s", r)
	}
}

// TestRWRootfsCommitArchive: the same on an oci-archive, which commit
// rewrites beside itself while the mount serves it.
func TestRWRootfsCommitArchive(t *testing.T) {
	mntRequireFUSE(t)
	t.Parallel()
	base := rwRichLayout(t)
	src := filepath.Join(t.TempDir(), "image.tar")
	mntExec(t, "skopeo", "copy", "-q", "oci:"+base+":t", "oci-archive:"+src+":t")
	cache := t.TempDir()
	mnt := mntEmptyDir(t)
	mntRunOK(t, "mount", "--rw", "--cache-dir", cache, src, mnt)
	mntCleanupUmount(t, mnt)
	root := filepath.Join(mnt, "tags/t/linux_amd64/rootfs")
	if err := os.WriteFile(filepath.Join(root, "newfile"), []byte("in an archive\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(root, "etc/conf")); err != nil {
		t.Fatal(err)
	}
	mntRunOK(t, "commit", "--cache-dir", cache, "--tag", "edited", mnt, "tags/t/linux_amd64")
	copyDir := filepath.Join(t.TempDir(), "copy")
	mntExec(t, "skopeo", "copy", "-q", "oci-archive:"+src+":edited", "oci:"+copyDir+":e")
	bundle := filepath.Join(t.TempDir(), "bundle")
	mntExec(t, "umoci", "unpack", "--image", copyDir+":e", bundle)
	if b, err := os.ReadFile(filepath.Join(bundle, "rootfs/newfile")); err != nil || string(b) != "in an archive\n" {
		t.Errorf("newfile in the committed image: %q %v", b, err)
	}
	if _, err := os.Lstat(filepath.Join(bundle, "rootfs/etc/conf")); !os.IsNotExist(err) {
		t.Errorf("etc/conf still in the committed image: %v", err)
	}
	edited := filepath.Join(mnt, "tags/edited/linux_amd64/rootfs/newfile")
	rwEventually(t, "the mount to show tags/edited", func() bool {
		b, err := os.ReadFile(edited)
		return err == nil && string(b) == "in an archive\n"
	})
}
