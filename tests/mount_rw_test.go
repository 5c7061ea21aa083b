package tests

import (
	"errors"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRWTags: in a --rw mount of every shape of source, plain tools edit
// the references (ln -s to a manifest or a tag, mv, rm -r, rmdir), the
// peers read the result, and the edits the tags/ namespace cannot hold
// fail with a clear errno.
func TestRWTags(t *testing.T) {
	mntRequireFUSE(t)
	base := wrBaseLayout(t)
	for _, sh := range wrShapes {
		t.Run(sh.name, func(t *testing.T) {
			t.Parallel()
			src, first, _ := wrSource(t, sh, base)
			dig := wrManifestDigest(t, src)
			mnt := mntMount(t, src, "--rw")
			tags := filepath.Join(mnt, "tags")
			var want []string
			if first != "" {
				want = append(want, first)
				if target, err := os.Readlink(filepath.Join(tags, first)); err != nil || !strings.HasSuffix(target, "manifests/"+dig) {
					t.Errorf("tags/%s is not a link to its manifest: %q %v", first, target, err)
				}
			}

			// ln -s to a manifest, in a directory made for the name.
			added := "rw.example/added:1"
			if err := os.MkdirAll(filepath.Join(tags, path.Dir(added)), 0o755); err != nil {
				t.Fatalf("mkdir in tags/: %v", err)
			}
			rwSymlink(t, "../../manifests/"+dig, filepath.Join(tags, added))
			want = append(want, added)
			rwCheckImage(t, filepath.Join(tags, added))
			wrCheck(t, sh, src, want, nil)

			// ln -s to another tag.
			second := "rw.example/second:2"
			rwSymlink(t, path.Base(added), filepath.Join(tags, second))
			want = append(want, second)
			rwCheckImage(t, filepath.Join(tags, second))
			wrCheck(t, sh, src, want, nil)

			// mv renames; rm -r and rmdir remove the reference only.
			moved := "rw.example/moved:3"
			mntExec(t, "mv", filepath.Join(tags, second), filepath.Join(tags, moved))
			want[len(want)-1] = moved
			rwCheckImage(t, filepath.Join(tags, moved))
			wrCheck(t, sh, src, want, []string{second})
			mntExec(t, "rm", "-r", filepath.Join(tags, moved))
			want = want[:len(want)-1]
			wrCheck(t, sh, src, want, []string{second, moved})
			if _, err := os.Lstat(filepath.Join(tags, moved)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("tags/%s after rm -r: %v", moved, err)
			}
			rwCheckImage(t, filepath.Join(tags, added))

			// What tags/ cannot hold, and what no edit can change.
			rwWantErrno(t, "a file in tags/", os.WriteFile(filepath.Join(tags, "file"), nil, 0o644), syscall.EPERM)
			rwWantErrno(t, "a link to nowhere", os.Symlink("../blobs", filepath.Join(tags, "bad")), syscall.EINVAL)
			rwWantErrno(t, "a link over a tag", os.Symlink("../manifests/"+dig, filepath.Join(tags, added)), syscall.EEXIST)
			rwWantErrno(t, "a tag moved out of tags/", os.Rename(filepath.Join(tags, added), filepath.Join(mnt, "blobs", "x")), syscall.EXDEV)
			rwWantErrno(t, "a file in manifests/", os.WriteFile(filepath.Join(mnt, "manifests", "x"), nil, 0o644), syscall.EROFS)
			rwWantErrno(t, "a blob removed", os.Remove(filepath.Join(mnt, "blobs", strings.Replace(dig, ":", "/", 1))), syscall.EROFS)
			rwWantErrno(t, "index.json removed", os.Remove(filepath.Join(mnt, "index.json")), syscall.EPERM)
			rwWantErrno(t, "rmdir of a tag link", syscall.Rmdir(filepath.Join(tags, added)), syscall.ENOTDIR)
			wrCheck(t, sh, src, want, nil)

			// rmdir of a directory of tags removes every tag in it.
			if err := syscall.Rmdir(filepath.Join(tags, "rw.example")); err != nil {
				t.Fatalf("rmdir tags/rw.example: %v", err)
			}
			wrCheck(t, sh, src, want[:len(want)-1], []string{added})
			if ents, _ := os.ReadDir(tags); slices.ContainsFunc(ents, func(e os.DirEntry) bool { return e.Name() == "rw.example" }) {
				t.Errorf("tags/rw.example still listed after rmdir")
			}
		})
	}
}

// TestRWTagsFollowOtherWriters: a --rw mount shows a tag another writer
// adds to the source, and drops one it removes, within a second or two.
func TestRWTagsFollowOtherWriters(t *testing.T) {
	mntRequireFUSE(t)
	t.Parallel()
	base := wrBaseLayout(t)
	src, _, _ := wrSource(t, wrShape{name: "dir-skopeo", transport: "oci"}, base)
	mnt := mntMount(t, src, "--rw")
	tags := filepath.Join(mnt, "tags")
	if _, err := os.Readlink(filepath.Join(tags, "t")); err != nil {
		t.Fatalf("tags/t: %v", err)
	}
	mntExec(t, "skopeo", "copy", "-q", "oci:"+src+":t", "oci:"+src+":from-skopeo")
	rwEventually(t, "tags/from-skopeo to appear", func() bool {
		_, err := os.Readlink(filepath.Join(tags, "from-skopeo"))
		return err == nil
	})
	rwCheckImage(t, filepath.Join(tags, "from-skopeo"))
	mntRunOK(t, "untag", src, "t")
	rwEventually(t, "tags/t to go", func() bool {
		_, err := os.Lstat(filepath.Join(tags, "t"))
		return errors.Is(err, os.ErrNotExist)
	})
	if data, err := os.ReadFile(filepath.Join(mnt, "index.json")); err != nil || strings.Contains(string(data), `"t"`) {
		t.Errorf("index.json in the mount after the untag: %s %v", data, err)
	}
}

// rwSymlink makes a link with ln -s, as a user would.
func rwSymlink(t *testing.T, target, name string) {
	t.Helper()
	mntExec(t, "ln", "-s", target, name)
}

// rwCheckImage checks that a tag leads to an image: a platform directory
// with a rootfs, and in the image of the write tests, its file.
func rwCheckImage(t *testing.T, tag string) {
	t.Helper()
	ents, err := os.ReadDir(tag + "/")
	if err != nil || len(ents) == 0 {
		t.Fatalf("%s/: %v %v", tag, ents, err)
	}
	var plat string
	for _, e := range ents {
		if e.IsDir() {
			plat = e.Name()
		}
	}
	rootfs := filepath.Join(tag, plat, "rootfs")
	if ents, err := os.ReadDir(rootfs); err != nil || len(ents) == 0 {
		t.Fatalf("%s: %v %v", rootfs, ents, err)
	}
	// (The Docker 25 fixture is hello-world, whose /hello is a program.)
	got, err := os.ReadFile(filepath.Join(rootfs, "hello"))
	if err != nil || len(got) < 1000 && string(got) != "hello from the write tests\n" {
		t.Errorf("%s/hello: %d bytes, not the test image's, %v", rootfs, len(got), err)
	}
}

// rwWantErrno checks that an edit failed with errno.
func rwWantErrno(t *testing.T, what string, err error, errno syscall.Errno) {
	t.Helper()
	if !errors.Is(err, errno) {
		t.Errorf("%s: %v, want %v", what, err, errno)
	}
}

// rwEventually waits up to 5 s for cond.
func rwEventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Errorf("waited 5 s for %s", what)
}
