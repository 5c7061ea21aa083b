package fs

import (
	"archive/tar"
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/layoutfs/layoutfs/tarindex"
)

// writeSynthTars writes synthLayers(n) as three layer tars in dir (every
// regular file 100 bytes of data, one block: ~1 KiB per entry) and returns
// their paths and the number of tar entries in all.
func writeSynthTars(b *testing.B, dir string, n int) ([]string, int) {
	data := []byte(strings.Repeat("x", 100))
	var paths []string
	entries := 0
	for l, a := range synthLayers(n) {
		p := filepath.Join(dir, fmt.Sprintf("layer%d.tar", l))
		f, err := os.Create(p)
		if err != nil {
			b.Fatal(err)
		}
		bw := bufio.NewWriterSize(f, 1<<20)
		tw := tar.NewWriter(bw)
		for _, e := range a.Entries {
			h := &tar.Header{Name: e.Name, Typeflag: e.Type, Mode: e.Mode, ModTime: time.Unix(0, e.ModTime), Format: tar.FormatUSTAR}
			if e.Type == tar.TypeDir {
				h.Name += "/"
			} else if e.Size > 0 {
				h.Size = int64(len(data))
			}
			if err := tw.WriteHeader(h); err != nil {
				b.Fatal(err)
			}
			if h.Size > 0 {
				if _, err := tw.Write(data); err != nil {
					b.Fatal(err)
				}
			}
			entries++
		}
		if err := tw.Close(); err != nil {
			b.Fatal(err)
		}
		if err := bw.Flush(); err != nil {
			b.Fatal(err)
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
		paths = append(paths, p)
	}
	return paths, entries
}

// openLayers opens the layer tars through tarindex.Open as the daemon does
// for uncompressed layers: the index is built by a pass over the headers
// (and stored) when the cache has none, loaded from the cache otherwise.
func openLayers(b *testing.B, files []*os.File, c *tarindex.Cache) []*tarindex.Archive {
	out := make([]*tarindex.Archive, len(files))
	for i, f := range files {
		st, err := f.Stat()
		if err != nil {
			b.Fatal(err)
		}
		a, err := tarindex.Open(context.Background(), f, st.Size(), fmt.Sprintf("sha256:layer%d", i), tarindex.Options{Cache: c})
		if err != nil {
			b.Fatal(err)
		}
		out[i] = a
	}
	return out
}

func heapNow() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// heapFromOS is the heap memory the runtime holds from the OS and has not
// handed back: what the heap adds to RSS, garbage not yet collected
// included.
func heapFromOS() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapSys - m.HeapReleased
}

// heapPeakStart collects and hands the free heap back to the OS, so that
// heapFromOS after a phase is about the phase's peak (the background
// scavenger returns little meanwhile).
func heapPeakStart() {
	runtime.GC()
	debug.FreeOSMemory()
}

// BenchmarkScale is how a mount's in-process work grows from 10k to 100k
// to 1M entries of three layer tars on disk (synthLayers' shape, the tars
// in the page cache), phase by phase, as issue 4's scaling report needs
// (times are the median of the iterations):
//
//   - index-ms: a cold mount indexes the three layers (tarindex.Open on an
//     empty cache: a pread per header, one after the other here; the daemon
//     runs them in parallel) and stores the indexes
//   - merge-ms: builds the layer trees and merges them (layerTree,
//     mergeLayers)
//   - store-ms: stores the merged tree in the cache
//   - warm-ms: a warm mount loads the three indexes and the merged tree
//     from the cache (tarindex.Open and loadTree)
//   - cold-heapB/entry: the heap a cold mount keeps, live after a GC: the
//     indexes and the merged tree (the layer trees go after the merge)
//   - warm-heapB/entry: the heap a warm mount keeps: indexes and merged
//     tree
//   - cold-peakMB, warm-peakMB: heap held from the OS at the end of each
//     phase, started from a heap handed back: about the phase's peak heap,
//     garbage included (the daemon's RSS less its code, stacks and
//     go-fuse's buffers)
//   - cacheB/entry: the cache's size on disk
//
// The garbage collector runs at GOGC 25, as in the daemon.
//
// Per entry is per tar entry (files, directories, whiteouts), the unit of
// issue 4's RSS target (40 MB + 250 B/entry). The layer's sha256 pass,
// which grows with bytes rather than entries, is not in it. scripts/bench
// runs this for the Scaling section of BENCHMARKS.md.
func BenchmarkScale(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			dir := b.TempDir()
			paths, entries := writeSynthTars(b, dir, n)
			var files []*os.File
			for _, p := range paths {
				f, err := os.Open(p)
				if err != nil {
					b.Fatal(err)
				}
				defer f.Close()
				files = append(files, f)
			}
			defer debug.SetGCPercent(debug.SetGCPercent(25))
			var index, merge, store, warm []time.Duration
			var coldPeak, warmPeak uint64
			var coldKept, warmKept int64
			var cacheBytes int64
			iter := 0
			for b.Loop() {
				c := &tarindex.Cache{Dir: filepath.Join(dir, fmt.Sprintf("cache%d", iter))}
				iter++

				h0 := heapNow()
				heapPeakStart()
				t0 := time.Now()
				layers := openLayers(b, files, c)
				t1 := time.Now()
				trees := make([]*ftree, len(layers))
				dangling := make([][]int32, len(layers))
				for i, a := range layers {
					trees[i], dangling[i] = layerTree(a)
				}
				ft := mergeLayers(layers, trees, dangling)
				t2 := time.Now()
				if err := storeTree(ft, "rootfs"); err != nil {
					b.Fatal(err)
				}
				t3 := time.Now()
				coldPeak = heapFromOS()
				trees, dangling = nil, nil
				h1 := heapNow()
				runtime.KeepAlive(ft)
				index = append(index, t1.Sub(t0))
				merge = append(merge, t2.Sub(t1))
				store = append(store, t3.Sub(t2))
				coldKept = int64(h1) - int64(h0)
				layers, ft = nil, nil

				h2 := heapNow()
				heapPeakStart()
				t4 := time.Now()
				loaded := openLayers(b, files, c)
				wt, ok := loadTree(loaded, "rootfs")
				if !ok {
					b.Fatal("no merged tree in the cache")
				}
				warm = append(warm, time.Since(t4))
				warmPeak = heapFromOS()
				h3 := heapNow()
				runtime.KeepAlive(wt)
				warmKept = int64(h3) - int64(h2)

				cacheBytes = 0
				filepath.Walk(c.Dir, func(_ string, fi os.FileInfo, err error) error {
					if err == nil && fi.Mode().IsRegular() {
						cacheBytes += fi.Size()
					}
					return nil
				})
				os.RemoveAll(c.Dir)
			}
			ms := func(d []time.Duration) float64 { // the median: the machine may be shared
				slices.Sort(d)
				return d[len(d)/2].Seconds() * 1000
			}
			per := func(v float64) float64 { return v / float64(entries) }
			b.ReportMetric(float64(entries), "entries")
			b.ReportMetric(ms(index), "index-ms")
			b.ReportMetric(ms(merge), "merge-ms")
			b.ReportMetric(ms(store), "store-ms")
			b.ReportMetric(ms(warm), "warm-ms")
			b.ReportMetric(per(float64(coldKept)), "cold-heapB/entry")
			b.ReportMetric(per(float64(warmKept)), "warm-heapB/entry")
			b.ReportMetric(float64(coldPeak)/1e6, "cold-peakMB")
			b.ReportMetric(float64(warmPeak)/1e6, "warm-peakMB")
			b.ReportMetric(per(float64(cacheBytes)), "cacheB/entry")
		})
	}
}
