package tests

import (
	"fmt"
	"maps"
	"os"
	"strings"
	"testing"
	"time"
)

// mntRecorder is a testing.TB that records failures instead of failing,
// to check that the comparisons of these tests can fail.
type mntRecorder struct {
	testing.TB
	errs []string
}

func (r *mntRecorder) Helper() {}
func (r *mntRecorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}
func (r *mntRecorder) Error(args ...any) { r.errs = append(r.errs, fmt.Sprint(args...)) }
func (r *mntRecorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	panic(r)
}

// TestMountComparatorCatches feeds mntCompareTrees a real tree and copies
// of it with one difference each: every one must be reported.
func TestMountComparatorCatches(t *testing.T) {
	t.Parallel()
	root, _ := mntOpenTree(t, mntFixture(t, "A-scalibr-symlinks-docker-save.tar"))
	want := mntTreeEntries(t, root)
	// The tree's hard-link-free numbering, as a mount would show it.
	got := maps.Clone(want)

	ok := &mntRecorder{TB: t}
	mntCompareTrees(ok, want, got)
	if len(ok.errs) != 0 {
		t.Fatalf("identical trees reported as different: %q", ok.errs)
	}
	file := "tags/symlinks:latest/linux_amd64/rootfs/dir1/sample.txt"
	link := "tags/symlinks:latest/linux_amd64/rootfs/dir1/relative-symlink.txt"
	if want[file].sum == "" || want[link].target == "" {
		t.Fatalf("fixture lacks %s or %s", file, link)
	}
	mutations := map[string]func(m map[string]mntEntry){
		"content": func(m map[string]mntEntry) { e := m[file]; e.sum = strings.Repeat("0", 64); m[file] = e },
		"size":    func(m map[string]mntEntry) { e := m[file]; e.size++; m[file] = e },
		"mode":    func(m map[string]mntEntry) { e := m[file]; e.mode |= 0o002; m[file] = e },
		"setuid":  func(m map[string]mntEntry) { e := m[file]; e.mode |= os.ModeSetuid; m[file] = e },
		"owner":   func(m map[string]mntEntry) { e := m[file]; e.uid = 42; m[file] = e },
		"mtime":   func(m map[string]mntEntry) { e := m[file]; e.mtime = e.mtime.Add(time.Second); m[file] = e },
		"nlink":   func(m map[string]mntEntry) { e := m[file]; e.nlink = 2; m[file] = e },
		"target":  func(m map[string]mntEntry) { e := m[link]; e.target = "elsewhere"; m[link] = e },
		"xattr":   func(m map[string]mntEntry) { e := m[file]; e.xattrs = map[string]string{"user.x": "1"}; m[file] = e },
		"missing": func(m map[string]mntEntry) { delete(m, file) },
		"extra":   func(m map[string]mntEntry) { m[file+".extra"] = m[file] },
		"readerr": func(m map[string]mntEntry) { e := m[file]; e.err = "EIO"; m[file] = e },
		"alias": func(m map[string]mntEntry) { // two nodes, one inode
			e := m[file]
			e.ino = m[link].ino
			m[file] = e
		},
	}
	for name, mutate := range mutations {
		got := maps.Clone(want)
		mutate(got)
		r := &mntRecorder{TB: t}
		mntCompareTrees(r, want, got)
		if len(r.errs) == 0 {
			t.Errorf("mutation %q not detected", name)
		}
	}

	// The copy and umoci comparisons too.
	sub := map[string]mntEntry{}
	for p, e := range want {
		if rest, ok := strings.CutPrefix(p, "tags/symlinks:latest/linux_amd64/rootfs/"); ok {
			sub[rest] = e
		}
	}
	bad := maps.Clone(sub)
	e := bad["dir1/sample.txt"]
	e.mode = 0o600
	bad["dir1/sample.txt"] = e
	r := &mntRecorder{TB: t}
	mntCompareCopy(r, sub, bad)
	if len(r.errs) == 0 {
		t.Errorf("mntCompareCopy missed a mode difference")
	}
	r = &mntRecorder{TB: t}
	mntCompareCopy(r, sub, sub)
	if len(r.errs) != 0 {
		t.Errorf("mntCompareCopy: equal trees reported: %q", r.errs)
	}
}
