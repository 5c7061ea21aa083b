package tests

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"
)

// TestWriteKilled SIGKILLs the layoutfs binary at random moments while it
// rewrites a 48 MB archive (plain and gzip), with no test hook: after
// every kill the archive is the old one or the new one, skopeo reads it,
// every blob matches its digest, and the next write clears what the
// killed one left.
func TestWriteKilled(t *testing.T) {
	base := wrBaseLayout(t)
	for _, sh := range []wrShape{
		{name: "oci-archive", transport: "oci-archive"},
		{name: "docker-legacy-gz", transport: "docker-archive", legacy: true, gz: true},
	} {
		t.Run(sh.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			stage := t.TempDir()
			// 48 MB of incompressible bytes as a blob nothing references.
			big := make([]byte, 48<<20)
			rand.Read(big)
			sum := sha256.Sum256(big)
			name := "blobs/sha256/" + hex.EncodeToString(sum[:])
			if sh.legacy {
				name = hex.EncodeToString(sum[:]) + ".tar"
			}
			os.MkdirAll(filepath.Dir(filepath.Join(stage, name)), 0o755)
			os.WriteFile(filepath.Join(stage, name), big, 0o644)
			src := filepath.Join(dir, "image.tar")
			first := "t"
			if sh.legacy {
				first = "example.com/base:1"
				mntExec(t, "skopeo", "copy", "-q", "oci:"+base+":t", "docker-archive:"+src+":"+first)
			} else {
				mntExec(t, "skopeo", "copy", "-q", "oci:"+base+":t", "oci-archive:"+src+":t")
			}
			wrAppend(t, src, stage, name)
			if sh.gz {
				mntExec(t, "gzip", "-1", src)
				src += ".gz"
			}
			cache := t.TempDir()

			// How long one whole write takes, to spread the kills over it.
			start := time.Now()
			mntRunOK(t, "tag", "--cache-dir", cache, src, first, "example.com/whole:1")
			whole := time.Since(start)
			tags := []string{first, "example.com/whole:1"}
			killedMidway := 0
			for i := range 12 {
				newTag := "example.com/kill:" + string(rune('a'+i))
				before, _ := os.ReadFile(src)
				cmd := exec.Command(mntBinPath, "tag", "--cache-dir", cache, src, first, newTag)
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				time.Sleep(time.Duration(mrand.Int64N(int64(whole) + 1)))
				cmd.Process.Signal(syscall.SIGKILL)
				err := cmd.Wait()
				after, _ := os.ReadFile(src)
				got := wrRefNames(t, src)
				hasNew := slices.Contains(got, newTag)
				if err != nil {
					killedMidway++
				}
				switch {
				case string(before) == string(after) && hasNew, string(before) != string(after) && !hasNew:
					t.Errorf("kill %d: archive changed=%v, new tag %v", i, string(before) != string(after), hasNew)
				}
				if hasNew {
					tags = append(tags, newTag)
				}
				wrCheck(t, sh, src, []string{first, tags[len(tags)-1]}, nil)
			}
			t.Logf("%d of 12 writes killed before they finished (a whole write takes %v)", killedMidway, whole)
			mntRunOK(t, "untag", "--cache-dir", cache, src, "example.com/whole:1")
			wrNoTemps(t, src)
			if got := wrRefNames(t, src); len(got) != len(tags)-1 {
				t.Errorf("refs %v, want %d", got, len(tags)-1)
			}
		})
	}
}
