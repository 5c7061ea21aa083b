package tarindex_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/layoutfs/layoutfs/tarindex"
)

// file is one entry to write: a header and, for regular files, a body.
type file struct {
	hdr  tar.Header
	body string
}

var epoch = time.Unix(1700000000, 0)

func reg(name, body string) file {
	return file{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body)), ModTime: epoch}, body: body}
}

func dir(name string) file {
	return file{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: epoch}}
}

func symlink(name, target string) file {
	return file{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777, ModTime: epoch}}
}

func hardlink(name, target string) file {
	return file{hdr: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, Mode: 0o644, ModTime: epoch}}
}

// writeTar writes files as a tar archive in format (tar.FormatUnknown lets
// archive/tar choose). With eof false the end-of-archive blocks are left
// out, as umoci 0.4.7 does.
func writeTar(t testing.TB, format tar.Format, eof bool, files ...file) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := f.hdr
		if format != tar.FormatUnknown {
			h.Format = format
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("write header %q: %v", h.Name, err)
		}
		if f.body != "" {
			if _, err := io.WriteString(tw, f.body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if eof {
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
	} else if err := tw.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// stdEntry is what archive/tar itself reads for one entry.
type stdEntry struct {
	hdr  *tar.Header
	data []byte
}

func readStd(t testing.TB, b []byte) []stdEntry {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(b))
	var out []stdEntry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("archive/tar: %v", err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("archive/tar read %q: %v", h.Name, err)
		}
		out = append(out, stdEntry{h, data})
	}
}

func build(t testing.TB, b []byte) *tarindex.Index {
	t.Helper()
	ix, err := tarindex.Build(context.Background(), io.NewSectionReader(bytes.NewReader(b), 0, int64(len(b))))
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return ix
}

// readEntry reads an entry's bytes through Entry.Reader, the way the tree does.
func readEntry(t testing.TB, e *tarindex.Entry, archive io.ReaderAt) []byte {
	t.Helper()
	got := make([]byte, e.Size)
	n, err := e.Reader(archive).ReadAt(got, 0)
	if err != nil && !(err == io.EOF && int64(n) == e.Size) {
		t.Fatalf("read %q: n=%d: %v", e.Name, n, err)
	}
	return got[:n]
}

// gnuTar runs GNU tar in dir, skipping the test when it is not there.
func gnuTar(t *testing.T, dir string, args ...string) {
	t.Helper()
	p, err := exec.LookPath("tar")
	if err != nil {
		t.Skip("no tar")
	}
	out, err := exec.Command(p, "--version").CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("GNU tar")) {
		t.Skip("tar is not GNU tar")
	}
	cmd := exec.Command(p, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tar %v: %v\n%s", args, err, out)
	}
}

// sparseFile makes a 1 MiB file that is a hole but for want written at off.
func sparseFile(t *testing.T, name string, off int64, want string) {
	t.Helper()
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(1 << 20); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte(want), off); err != nil {
		t.Fatal(err)
	}
}

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func listDir(t testing.TB, d string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(d, func(p string, e os.DirEntry, err error) error {
		if err == nil && p != d {
			rel, _ := filepath.Rel(d, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}

func mustErrIs(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v does not wrap %v", err, target)
	}
}

func writeTestFile(t testing.TB, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
