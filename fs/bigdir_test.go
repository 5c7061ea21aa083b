package fs

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/layoutfs/layoutfs/tarindex"
)

// bigTar is a tar archive of one directory d/ holding n one-byte files
// d/f0000000 ..., generated on demand: it takes no memory of its own, so
// what the test measures is the index and the tree.
type bigTar struct {
	n    int
	tmpl []byte // header block of d/f0000000
	dir  []byte // header block of d/
}

func newBigTar(t testing.TB, n int) *bigTar {
	hdr := func(h *tar.Header) []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		h.Format, h.ModTime, h.Mode = tar.FormatUSTAR, time.Unix(1600000000, 0), 0o644
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Flush()
		return buf.Bytes()[:512]
	}
	return &bigTar{n: n, tmpl: hdr(&tar.Header{Name: "d/f0000000", Typeflag: tar.TypeReg, Size: 1}), dir: hdr(&tar.Header{Name: "d/", Typeflag: tar.TypeDir})}
}

// Size: the directory header, n headers each with one data block, two
// zero blocks.
func (b *bigTar) Size() int64 { return int64(512 + b.n*1024 + 1024) }

func (b *bigTar) block(k int64, out []byte) {
	clear(out)
	switch {
	case k == 0:
		copy(out, b.dir)
	case k <= int64(2*b.n):
		i := (k - 1) / 2
		if (k-1)%2 == 1 {
			out[0] = byte('a' + i%26)
			return
		}
		copy(out, b.tmpl)
		copy(out[3:10], fmt.Sprintf("%07d", i))
		copy(out[148:156], "        ")
		sum := 0
		for _, c := range out[:512] {
			sum += int(c)
		}
		copy(out[148:156], fmt.Sprintf("%06o\x00 ", sum))
	}
}

func (b *bigTar) ReadAt(p []byte, off int64) (int, error) {
	var blk [512]byte
	n := 0
	for n < len(p) && off < b.Size() {
		b.block(off/512, blk[:])
		c := copy(p[n:], blk[off%512:])
		n += c
		off += int64(c)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func heapMB() float64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(m.HeapAlloc) / (1 << 20)
}

func peakRSSMB() float64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return float64(kb) / 1024
		}
	}
	return 0
}

// TestMillionEntryDirectory: one directory of a million one-byte files
// indexes, caches, builds its tree and lists in bounded memory (measured
// live heap, not counting what the garbage collector may reclaim) and in
// seconds. go test -short skips it.
func TestMillionEntryDirectory(t *testing.T) {
	if testing.Short() {
		t.Skip("a million entries: not with -short")
	}
	const n = 1_000_000
	src := newBigTar(t, n)
	base := heapMB()
	start := time.Now()
	cache := &tarindex.Cache{Dir: t.TempDir()}
	a, err := tarindex.Open(context.Background(), src, src.Size(), "big", tarindex.Options{Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	built := time.Since(start)
	rssIndex := peakRSSMB()
	if len(a.Entries) != n+1 {
		t.Fatalf("%d entries, want %d", len(a.Entries), n+1)
	}
	afterIndex := heapMB()
	start = time.Now()
	ft, _ := layerTree(a)
	v := &view{t: ft, ino: 1}
	d, err := v.node(0).(Dir).Lookup("d")
	if err != nil {
		t.Fatal(err)
	}
	treeTime := time.Since(start)
	rssTree := peakRSSMB()
	afterTree := heapMB()
	start = time.Now()
	ents, err := d.(Dir).ReadDir()
	if err != nil || len(ents) != n {
		t.Fatalf("ReadDir: %d entries, %v", len(ents), err)
	}
	listTime := time.Since(start)
	afterList := heapMB()
	runtime.KeepAlive(ents)
	for _, i := range []int{0, 1, 424242, n - 1} {
		f, err := d.(Dir).Lookup(fmt.Sprintf("f%07d", i))
		if err != nil {
			t.Fatal(err)
		}
		var b [2]byte
		k, _ := f.(File).ReadAt(b[:], 0)
		if k != 1 || b[0] != byte('a'+i%26) {
			t.Errorf("f%07d reads %q", i, b[:k])
		}
	}
	ents = nil
	start = time.Now()
	if _, ok := cache.LoadIndex("big"); !ok {
		t.Error("index not cached")
	}
	loadTime := time.Since(start)
	t.Logf("%d entries: index %.2fs (+%.0f MiB live), tree %.2fs (+%.0f MiB), list %.2fs (+%.0f MiB while the listing is held), cache load %.2fs; peak RSS %.0f MiB after indexing, %.0f after the tree, %.0f at the end",
		n, built.Seconds(), afterIndex-base, treeTime.Seconds(), afterTree-afterIndex, listTime.Seconds(), afterList-afterTree, loadTime.Seconds(), rssIndex, rssTree, peakRSSMB())
	// Bounds with room to spare over what was measured (about 200 B per
	// entry for the index, 100 B for the tree, 50 B for a listing).
	if per := (afterIndex - base) * (1 << 20) / n; per > 400 {
		t.Errorf("index holds %.0f bytes per entry", per)
	}
	if per := (afterTree - afterIndex) * (1 << 20) / n; per > 250 {
		t.Errorf("tree holds %.0f bytes per entry", per)
	}
	if per := (afterList - afterTree) * (1 << 20) / n; per > 150 {
		t.Errorf("a listing holds %.0f bytes per entry", per)
	}
	// The peak includes the garbage of indexing (the cache entry is
	// encoded in memory) and, at the end, the second copy of the index
	// this test loads from the cache.
	if rss := peakRSSMB(); rss > 1536 && !raceEnabled {
		t.Errorf("peak RSS %.0f MiB", rss)
	}
	runtime.KeepAlive(a)
	runtime.KeepAlive(ft)
}
