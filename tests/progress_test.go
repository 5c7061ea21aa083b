package tests

import (
	"archive/tar"
	"bytes"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// progressLine is how a layer's pass shows on a terminal, redrawn in
// place: "indexing layer <12 hex digits>: 16% (4/24 MB)".
var progressLine = regexp.MustCompile(`\r\x1b\[Kindexing layer [0-9a-f]{12}: +[0-9]+% \([0-9]+/[0-9]+ MB\)`)

// TestProgressOnTerminal: indexing a large layer shows progress on a
// terminal (here a pty from script(1)), and nothing at all otherwise.
func TestProgressOnTerminal(t *testing.T) {
	script, err := exec.LookPath("script")
	if err != nil {
		t.Fatalf("script(1) (util-linux, Debian's bsdutils) is needed for a terminal: %v", err)
	}
	t.Parallel()
	// 24 MiB that do not compress: the layer's pass reports every 4 MiB.
	body := make([]byte, 24<<20)
	rng := rand.NewChaCha8([32]byte{1})
	rng.Read(body)
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	tw.WriteHeader(&tar.Header{Name: "big", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body)), ModTime: time.Unix(1600000000, 0)})
	tw.Write(body)
	tw.Close()
	for _, kind := range []string{"plain", "gzip"} {
		t.Run(kind, func(t *testing.T) {
			a := hNew(t)
			l := a.layer(layer.Bytes())
			if kind == "gzip" {
				l = a.gzipLayer(layer.Bytes())
			}
			src := filepath.Join(t.TempDir(), "image.tar")
			if err := os.WriteFile(src, a.top(mntRef(a.image(l), "v1")).tar(), 0o644); err != nil {
				t.Fatal(err)
			}
			const rootfs = "tags/v1/linux_amd64/rootfs"
			cmd := exec.Command(script, "-qec", strings.Join([]string{mntBinPath, "ls", "--cache-dir", t.TempDir(), src, rootfs}, " "), "/dev/null")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("ls on a terminal: %v\n%q", err, out)
			}
			if !progressLine.Match(out) {
				t.Errorf("ls on a terminal shows no progress line:\n%q", out)
			}
			r := mntRun(t, "ls", "--cache-dir", t.TempDir(), src, rootfs)
			if r.code != 0 || r.stderr != "" || strings.TrimSpace(r.stdout) != "big" {
				t.Errorf("ls without a terminal must print the listing only: %s", r)
			}
		})
	}
}
