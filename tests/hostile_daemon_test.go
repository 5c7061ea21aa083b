package tests

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestHostileDaemonSurvives mounts one archive holding many of the broken
// pieces of the hostile table next to a good image, then walks the whole
// mount, listing every directory and reading every file. The broken
// pieces fail with errors (EIO for corrupt data, ENOENT for what is
// absent), nothing hangs, the daemon logs the problems naming the blob and
// never a panic, and after all of it the mount is still up and serving
// the good image.
func TestHostileDaemonSurvives(t *testing.T) {
	mntRequireFUSE(t)
	t.Parallel()
	a := hNew(t)
	good := a.image(a.layer(hTarBodies(t, hReg("etc/hostname", "good\n"))))
	badTar := a.image(a.layer(hRawTar(hRaw{name: "good"}.block(), hRaw{name: "bad", chksum: "0000001\x00"}.block())))
	truncated := a.image(a.layer(append(hRaw{name: "big", size: "00004000000\x00"}.block(), make([]byte, 100)...)))
	hole := a.image(a.layer(hRawTar(append(hPAX(map[string]string{
		"GNU.sparse.major": "0", "GNU.sparse.minor": "1", "GNU.sparse.name": "sparse",
		"GNU.sparse.realsize": strconv.FormatInt(1<<50, 10), "GNU.sparse.numblocks": "1",
		"GNU.sparse.map": strconv.FormatInt(1<<50-3, 10) + ",3",
	}), append(hRaw{name: "sparse", size: "00000000003\x00"}.block(), "abc"...)...))))
	links := a.image(a.layer(hTar(t,
		&tar.Header{Name: "loop", Typeflag: tar.TypeSymlink, Linkname: "loop"},
		&tar.Header{Name: "c1", Typeflag: tar.TypeLink, Linkname: "c2"},
		&tar.Header{Name: "c2", Typeflag: tar.TypeLink, Linkname: "c1"},
		&tar.Header{Name: "../escape", Typeflag: tar.TypeReg},
	)))
	missing := mntDesc{MediaType: "application/vnd.oci.image.manifest.v1+json", Digest: hDigest([]byte("absent")), Size: 6}
	trick := mntDesc{MediaType: "application/vnd.oci.image.manifest.v1+json", Digest: "sha256:../../../../etc/passwd", Size: 10}
	deep := a.blob("application/vnd.oci.image.manifest.v1+json", []byte(`{"config":`+strings.Repeat("[", 100000)+strings.Repeat("]", 100000)+`}`))
	nested := good
	for range 100 {
		nested = a.index(nested)
	}
	// A blob whose bytes do not match its name.
	corrupt := a.blob("application/octet-stream", []byte("original bytes"))
	a.put("blobs/sha256/"+strings.TrimPrefix(corrupt.Digest, "sha256:"), []byte("tampered bytes"))
	a.top(mntRef(good, "good"), mntRef(badTar, "badtar"), mntRef(truncated, "truncated"), mntRef(hole, "hole"),
		mntRef(links, "links"), mntRef(missing, "missing"), mntRef(trick, "trick"), mntRef(deep, "deep"), mntRef(nested, "nested"))
	src := filepath.Join(t.TempDir(), "hostile.tar")
	if err := os.WriteFile(src, a.tar(), 0o644); err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(t.TempDir(), "daemon.log")
	mnt := mntMount(t, src, "--log", logFile)
	pids := mntDaemonPids(t, mnt)

	done := make(chan map[string]error, 1)
	go func() {
		errs := map[string]error{}
		filepath.WalkDir(mnt, func(p string, d fs.DirEntry, err error) error {
			rel, _ := filepath.Rel(mnt, p)
			if err != nil {
				errs[rel] = err
				return nil
			}
			if d.Type().IsRegular() {
				f, err := os.Open(p)
				if err == nil {
					_, err = io.Copy(io.Discard, io.LimitReader(f, 8<<20))
					f.Close()
				}
				if err != nil {
					errs[rel] = err
				}
			}
			return nil
		})
		done <- errs
	}()
	var errs map[string]error
	select {
	case errs = <-done:
	case <-time.After(90 * time.Second):
		t.Fatal("walking the mount hangs")
	}
	for p, err := range errs {
		if !errors.Is(err, syscall.EIO) && !errors.Is(err, syscall.ENOENT) && !errors.Is(err, syscall.EINVAL) {
			t.Errorf("%s: %v, want EIO or ENOENT", p, err)
		}
	}
	wantErr := func(rel string, errno syscall.Errno) {
		t.Helper()
		for p, err := range errs {
			if strings.HasPrefix(p, rel) && errors.Is(err, errno) {
				return
			}
		}
		t.Errorf("no %v under %s", errno, rel)
	}
	if testing.Verbose() {
		for p, err := range errs {
			t.Logf("%s: %v", p, err)
		}
	}
	wantErr("tags/badtar/linux_amd64/layers/00", syscall.EIO)
	wantErr("tags/truncated/linux_amd64/rootfs", syscall.EIO)
	wantErr("blobs/sha256/"+strings.TrimPrefix(corrupt.Digest, "sha256:"), syscall.EIO)
	wantErr("tags/missing", syscall.EIO) // a reference to nothing is a broken archive
	wantErr("tags/trick", syscall.EIO)
	wantErr("tags/deep", syscall.EIO)
	wantErr("tags/hole/linux_amd64/layers/00", syscall.EIO)

	// Still up, same daemon, still serving.
	if b, err := os.ReadFile(filepath.Join(mnt, "tags/good/linux_amd64/rootfs/etc/hostname")); err != nil || string(b) != "good\n" {
		t.Errorf("after the walk: good rootfs reads %q, %v", b, err)
	}
	if l, err := os.Readlink(filepath.Join(mnt, "tags/links/linux_amd64/rootfs/loop")); err != nil || l != "loop" {
		t.Errorf("symlink loop: %q, %v", l, err)
	}
	if now := mntDaemonPids(t, mnt); len(pids) == 0 || len(now) == 0 || now[0] != pids[0] {
		t.Errorf("daemon pids %v, then %v", pids, now)
	}
	log, _ := os.ReadFile(logFile)
	if bytes.Contains(bytes.ToLower(log), []byte("panic")) {
		t.Errorf("the daemon log tells of a panic:\n%s", log)
	}
	for _, want := range []string{strings.TrimPrefix(corrupt.Digest, "sha256:"), "invalid tar header", "truncated"} {
		if !bytes.Contains(log, []byte(want)) {
			t.Errorf("the daemon log does not say %q:\n%s", want, log)
		}
	}
}
