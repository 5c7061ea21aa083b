package fs

import (
	"archive/tar"
	"fmt"
	"runtime"
	"testing"

	"github.com/layoutfs/layoutfs/tarindex"
)

// synthLayers makes three in-memory layer indexes of n entries in all, shaped
// like scripts/bench's image: 60% in layer 0, 35% in layer 1 (some
// rewriting layer 0), the rest in layer 2 with 5% of layer 0 whited out.
func synthLayers(n int) []*tarindex.Archive {
	n0, n1 := n*60/100, n*35/100
	n2 := n - n0 - n1
	name0 := func(i int) string { d := i / 40; return fmt.Sprintf("d%03d/s%02d/f%07d.txt", d/32, d%32, i) }
	file := func(name string, size int64) tarindex.Entry {
		return tarindex.Entry{Name: name, Type: tar.TypeReg, Mode: 0o644, Size: size, ModTime: 1e18, Offset: 512}
	}
	dir := func(name string) tarindex.Entry {
		return tarindex.Entry{Name: name, Type: tar.TypeDir, Mode: 0o755, ModTime: 1e18}
	}
	var l0, l1, l2 []tarindex.Entry
	for i := 0; i < n0; i++ {
		if i%40 == 0 {
			d := i / 40
			if d%32 == 0 {
				l0 = append(l0, dir(fmt.Sprintf("d%03d", d/32)))
			}
			l0 = append(l0, dir(fmt.Sprintf("d%03d/s%02d", d/32, d%32)))
		}
		l0 = append(l0, file(name0(i), 1000))
	}
	for j := 0; j < n1; j++ {
		if j%50 == 0 {
			l1 = append(l1, file(name0(j%n0), 10))
			continue
		}
		l1 = append(l1, file(fmt.Sprintf("n%03d/s%02d/h%07d.txt", j/1280, j/40%32, j), 1000))
	}
	for j := 0; j < n2; j++ {
		if j%4 == 0 {
			i := (j * 7) % n0
			d := i / 40
			l2 = append(l2, file(fmt.Sprintf("d%03d/s%02d/.wh.f%07d.txt", d/32, d%32, i), 0))
			continue
		}
		l2 = append(l2, file(fmt.Sprintf("w/%04d/k%07d.txt", j/40, j), 1000))
	}
	var out []*tarindex.Archive
	for _, es := range [][]tarindex.Entry{l0, l1, l2} {
		out = append(out, &tarindex.Archive{Index: &tarindex.Index{Entries: es, Size: 1 << 40}})
	}
	return out
}

var sizes = []int{10_000, 100_000, 1_000_000}

// BenchmarkMerge builds each layer's tree and the merged rootfs, as the
// first look into rootfs/ does, and reports the heap the finished trees
// keep per entry (the index entries themselves not counted).
func BenchmarkMerge(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			layers := synthLayers(n)
			var keep *ftree
			var kept uint64
			for b.Loop() {
				runtime.GC()
				var m0, m1 runtime.MemStats
				runtime.ReadMemStats(&m0)
				trees := make([]*ftree, len(layers))
				dangling := make([][]int32, len(layers))
				for i, a := range layers {
					trees[i], dangling[i] = layerTree(a)
				}
				keep = mergeLayers(layers, trees, dangling)
				runtime.GC()
				runtime.ReadMemStats(&m1)
				kept = m1.HeapAlloc - m0.HeapAlloc
				runtime.KeepAlive(trees)
			}
			b.ReportMetric(float64(kept)/float64(n), "heapB/entry")
			b.ReportMetric(float64(len(keep.nodes)), "nodes")
		})
	}
}

// BenchmarkLookup looks up every path of layer 0 in the merged tree.
func BenchmarkLookup(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			layers := synthLayers(n)
			trees := make([]*ftree, len(layers))
			dangling := make([][]int32, len(layers))
			for i, a := range layers {
				trees[i], dangling[i] = layerTree(a)
			}
			v := &view{t: mergeLayers(layers, trees, dangling)}
			root := &viewDir{v: v, i: 0}
			names := []string{"d000", "s05", fmt.Sprintf("f%07d.txt", 5*40+3)}
			for b.Loop() {
				var d Dir = root
				for _, name := range names {
					nd, err := d.Lookup(name)
					if err != nil {
						b.Fatal(err)
					}
					if dd, ok := nd.(Dir); ok {
						d = dd
					}
				}
			}
		})
	}
}

// BenchmarkReadDir lists a directory of 40 entries and stats each.
func BenchmarkReadDir(b *testing.B) {
	layers := synthLayers(100_000)
	trees := make([]*ftree, len(layers))
	dangling := make([][]int32, len(layers))
	for i, a := range layers {
		trees[i], dangling[i] = layerTree(a)
	}
	v := &view{t: mergeLayers(layers, trees, dangling)}
	d0, _ := (&viewDir{v: v, i: 0}).Lookup("d000")
	d, _ := d0.(Dir).Lookup("s07")
	for b.Loop() {
		ents, _ := d.(Dir).ReadDir()
		for _, e := range ents {
			_ = e.Node.Attr()
		}
	}
}

// BenchmarkWarmMount is a warm mount's work for a rootfs of n entries:
// load the three layer indexes and the merged tree from the cache. It
// reports the heap they keep per entry: the daemon's RSS beyond its fixed
// cost and the kernel's inodes.
func BenchmarkWarmMount(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			c := &tarindex.Cache{Dir: b.TempDir()}
			layers := synthLayers(n)
			trees := make([]*ftree, len(layers))
			dangling := make([][]int32, len(layers))
			for i, a := range layers {
				a.Cache = c
				trees[i], dangling[i] = layerTree(a)
				if err := c.StoreIndex(fmt.Sprint(i), a.Index); err != nil {
					b.Fatal(err)
				}
			}
			if err := storeTree(mergeLayers(layers, trees, dangling), "rootfs"); err != nil {
				b.Fatal(err)
			}
			layers, trees, dangling = nil, nil, nil
			var kept uint64
			for b.Loop() {
				runtime.GC()
				var m0, m1 runtime.MemStats
				runtime.ReadMemStats(&m0)
				loaded := make([]*tarindex.Archive, 3)
				for i := range loaded {
					ix, ok := c.LoadIndex(fmt.Sprint(i))
					if !ok {
						b.Fatal("no index")
					}
					loaded[i] = &tarindex.Archive{Index: ix, Cache: c}
				}
				t, ok := loadTree(loaded, "rootfs")
				if !ok {
					b.Fatal("no tree")
				}
				runtime.GC()
				runtime.ReadMemStats(&m1)
				kept = m1.HeapAlloc - m0.HeapAlloc
				runtime.KeepAlive(t)
			}
			b.ReportMetric(float64(kept)/float64(n), "heapB/entry")
		})
	}
}
