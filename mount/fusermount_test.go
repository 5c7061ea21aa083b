package mount

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
)

// TestFusermountPath mounts the way a non-root user does, through
// fusermount3, and unmounts with it; the tests run as root and would
// otherwise only ever see mount(2).
func TestFusermountPath(t *testing.T) {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skipf("!!! SKIPPING FUSE TEST %s: /dev/fuse is missing (%v) !!!", t.Name(), err)
	}
	if _, err := exec.LookPath("fusermount3"); err != nil {
		t.Skipf("!!! SKIPPING %s: no fusermount3 (Debian package fuse3) !!!", t.Name())
	}
	opts, err := fuseOptions(Options{FsName: "/src/img.tar", Options: []string{"ro", "default_permissions"}}, false)
	if err != nil {
		t.Fatal(err)
	}

	mnt := t.TempDir()
	root := &memRoot{}
	srv, err := fusefs.Mount(mnt, &node{n: root, m: &shared{log: opts.Logger}}, opts)
	if err != nil {
		t.Fatalf("mount via fusermount3: %v", err)
	}
	served := make(chan struct{})
	go func() { srv.Wait(); close(served) }()

	m, ok, err := findMount(mnt)
	if err != nil || !ok {
		t.Fatalf("not in mountinfo: %v", err)
	}
	if m.fstype != "fuse.layoutfs" || m.source != "/src/img.tar" {
		t.Errorf("mountinfo: type %q source %q", m.fstype, m.source)
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	for line := range strings.Lines(string(mi)) {
		if f := strings.Fields(line); len(f) > 5 && f[4] == mnt && !strings.HasPrefix(f[5], "ro,nosuid,nodev") {
			t.Errorf("not ro,nosuid,nodev: %s", line)
		}
	}
	if _, err := os.Stat(filepath.Join(mnt, "nope")); !os.IsNotExist(err) {
		t.Errorf("stat: %v", err)
	}
	if err := fusermount("-u", mnt); err != nil {
		t.Fatalf("fusermount3 -u: %v", err)
	}
	<-served
}
