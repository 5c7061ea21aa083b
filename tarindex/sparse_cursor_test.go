package tarindex_test

import (
	"bytes"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestSparseSequentialRead: reading a 256 MiB sparse file front to back in
// 128 KiB reads is one pass over it (each read once expanded the file from
// its start: 2048 reads, 256 GiB of zeros), and reads in any order still
// give the right bytes.
func TestSparseSequentialRead(t *testing.T) {
	d := t.TempDir()
	const size = 256 << 20
	f, err := os.Create(filepath.Join(d, "s"))
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(size)
	f.WriteAt([]byte("middle"), size/2)
	f.WriteAt([]byte("end"), size-3)
	f.Close()
	gnuTar(t, d, "--sparse", "--format=posix", "-cf", "a.tar", "s")
	b := readFile(t, filepath.Join(d, "a.tar"))
	ix := build(t, b)
	e := &ix.Entries[0]
	if !e.Sparse || e.Size != size {
		t.Fatalf("entry %+v", e)
	}
	r := e.Reader(bytes.NewReader(b))
	start := time.Now()
	buf := make([]byte, 128<<10)
	var got []byte
	for off := int64(0); off < size; off += int64(len(buf)) {
		n, err := r.ReadAt(buf, off)
		if err != nil && err != io.EOF {
			t.Fatal(err)
		}
		if i := bytes.IndexFunc(buf[:n], func(r rune) bool { return r != 0 }); i >= 0 {
			got = append(got, bytes.Trim(buf[:n], "\x00")...)
		}
	}
	if string(got) != "middleend" {
		t.Errorf("read %q", got)
	}
	if el := time.Since(start); el > 20*time.Second {
		t.Errorf("sequential read took %v", el)
	}
	t.Logf("256 MiB sparse file read front to back in 128 KiB reads: %v", time.Since(start))
	for range 20 {
		off := rand.Int63n(size)
		n, err := r.ReadAt(buf[:10], off)
		if err != nil && err != io.EOF {
			t.Fatal(err)
		}
		want := make([]byte, n)
		for i := range want {
			switch p := off + int64(i); {
			case p >= size/2 && p < size/2+6:
				want[i] = "middle"[p-size/2]
			case p >= size-3:
				want[i] = "end"[p-(size-3)]
			}
		}
		if !bytes.Equal(buf[:n], want) {
			t.Fatalf("at %d: %q, want %q", off, buf[:n], want)
		}
	}
}
