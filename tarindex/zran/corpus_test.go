package zran

import (
	"archive/tar"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// The benchmark corpus is a tar of real files (Go's tree and /usr/share), cut
// at benchCorpusSize bytes and compressed with gzip -6. Building it takes a
// while, so it is cached in the temp directory across runs.
const benchCorpusSize = 256 << 20

var (
	corpusOnce sync.Once
	corpusPath string
	corpusErr  error
)

func benchCorpus(tb testing.TB) string {
	tb.Helper()
	if _, err := exec.LookPath("gzip"); err != nil {
		tb.Skipf("SKIP: gzip binary not found: %v", err)
	}
	corpusOnce.Do(func() {
		dir := filepath.Join(os.TempDir(), "layoutfs-zran-bench")
		corpusPath = filepath.Join(dir, "corpus-v1.tar.gz")
		if _, err := os.Stat(corpusPath); err == nil {
			return
		}
		if corpusErr = os.MkdirAll(dir, 0o755); corpusErr != nil {
			return
		}
		corpusErr = writeCorpus(corpusPath)
	})
	if corpusErr != nil {
		tb.Fatalf("building benchmark corpus: %v", corpusErr)
	}
	return corpusPath
}

func writeCorpus(path string) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.Command("gzip", "-6", "-c")
	cmd.Stdout = f
	pw, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	werr := writeTarOf(pw, benchCorpusSize, runtimeGOROOT(), "/usr/share")
	pw.Close()
	if err := cmd.Wait(); err != nil {
		return err
	}
	if werr != nil {
		return werr
	}
	return os.Rename(tmp, path)
}

func runtimeGOROOT() string {
	if r := os.Getenv("GOROOT"); r != "" {
		return r
	}
	return "/usr/local/go"
}

// errEnough stops the walk once the tar is big enough.
var errEnough = io.EOF

// writeTarOf writes regular files under roots as a tar of about limit bytes.
func writeTarOf(w io.Writer, limit int64, roots ...string) error {
	tw := tar.NewWriter(w)
	var total int64
	for _, root := range roots {
		err := filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
			if err != nil || !de.Type().IsRegular() {
				return nil
			}
			info, err := de.Info()
			if err != nil {
				return nil
			}
			f, err := os.Open(p)
			if err != nil {
				return nil
			}
			defer f.Close()
			hdr, err := tar.FileInfoHeader(info, "")
			if err != nil {
				return nil
			}
			hdr.Name = p
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			n, err := io.Copy(tw, io.LimitReader(f, info.Size()))
			if err != nil {
				return err
			}
			if n < info.Size() {
				// The file shrank; pad so the archive stays well formed.
				if _, err := tw.Write(make([]byte, info.Size()-n)); err != nil {
					return err
				}
			}
			total += info.Size() + 512
			if total >= limit {
				return errEnough
			}
			return nil
		})
		if err == errEnough {
			break
		}
		if err != nil {
			return err
		}
	}
	return tw.Close()
}
