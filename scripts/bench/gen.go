package main

import (
	"archive/tar"
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// The generated image: three layers of a seeded PRNG's making, so every
// machine benchmarks the same bytes.
//
//	layer 0: 60% of the files in d000..d0NN/sNN/, two large files in big/,
//	         a few symlinks and hard links
//	layer 1: 35% more files in new and old directories, 2% of layer 0's files
//	         rewritten, two more large files
//	layer 2: whiteouts: 5% of layer 0's files, a few whole directories, one
//	         opaque directory, and the rest of the files
//
// Small files are lowercase text (gzip shrinks them); large ones are random.
type genPlan struct {
	Size  int64
	Files int
}

// genResult is what the runs need to know about the image.
type genResult struct {
	Ref      string   `json:"ref"`
	CatList  []string `json:"cat_list"`  // small files in layer 0 that survive to the rootfs
	Large    string   `json:"large"`     // a large file of layer 0, untouched above
	LargeLen int64    `json:"large_len"` //
	Layers   []string `json:"layers"`    // blob digests, bottom first
	Entries  int      `json:"entries"`   // tar entries over all layers
}

var genTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

type tw struct {
	w   *tar.Writer
	n   int
	rng *rand.ChaCha8
	buf []byte
}

func (t *tw) dir(name string) {
	t.n++
	must(t.w.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755, ModTime: genTime, Uname: "root", Gname: "root", Format: tar.FormatPAX}))
}

func (t *tw) file(name string, size int64, text bool) {
	t.n++
	must(t.w.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: size, ModTime: genTime, Uname: "root", Gname: "root", Format: tar.FormatPAX}))
	for size > 0 {
		b := t.buf[:min(int64(len(t.buf)), size)]
		t.rng.Read(b)
		if text {
			for i := range b {
				b[i] = "abcdefghijklmnopqrstuvwxyz \n  eeaaoo"[b[i]%36]
			}
		}
		_, err := t.w.Write(b)
		must(err)
		size -= int64(len(b))
	}
}

func (t *tw) link(typ byte, name, target string) {
	t.n++
	must(t.w.WriteHeader(&tar.Header{Typeflag: typ, Name: name, Linkname: target, Mode: 0o777, ModTime: genTime, Uname: "root", Gname: "root", Format: tar.FormatPAX}))
}

// smallSize draws a small file's size: log-normal, median about 1.8 KiB,
// capped at 64 KiB.
func smallSize(r *rand.Rand) int64 {
	return int64(min(65536, math.Exp(r.NormFloat64()*1.2+7.5)))
}

func generate(dir string, p genPlan) genResult {
	r := rand.New(rand.NewPCG(1, uint64(p.Files)))
	n0, n1 := p.Files*60/100, p.Files*35/100
	n2 := p.Files - n0 - n1
	sizes := make([]int64, p.Files)
	var small int64
	for i := range sizes {
		sizes[i] = smallSize(r)
		small += sizes[i]
	}
	large := max(p.Size-small, 64<<20)
	bigs := []int64{large * 40 / 100, large * 25 / 100, large * 20 / 100, large * 15 / 100}

	// Layer 0's file names: 32 top directories of up to 32 subdirectories.
	perDir := 40
	ndirs := (n0 + perDir - 1) / perDir
	name0 := func(i int) string {
		d := i / perDir
		return fmt.Sprintf("d%03d/s%02d/f%05d.txt", d/32, d%32, i)
	}
	dirs0 := func(yield func(string)) {
		for d := 0; d < ndirs; d++ {
			if d%32 == 0 {
				yield(fmt.Sprintf("d%03d", d/32))
			}
			yield(fmt.Sprintf("d%03d/s%02d", d/32, d%32))
		}
	}

	// What later layers do to layer 0.
	rewritten := map[int]bool{}
	for len(rewritten) < n0*2/100 {
		rewritten[r.IntN(n0)] = true
	}
	deleted := map[int]bool{}
	for len(deleted) < n0*5/100 {
		if i := r.IntN(n0); !rewritten[i] {
			deleted[i] = true
		}
	}
	// Whole directories removed, and one made opaque.
	goneDirs := map[int]bool{}
	for len(goneDirs) < min(4, ndirs/8) {
		goneDirs[1+r.IntN(ndirs-1)] = true
	}
	opaque := -1
	for opaque < 0 || goneDirs[opaque] {
		opaque = 1 + r.IntN(ndirs-1)
	}
	survives := func(i int) bool {
		d := i / perDir
		return !rewritten[i] && !deleted[i] && !goneDirs[d] && d != opaque
	}

	res := genResult{Ref: "bench", Large: "big/large-0.bin", LargeLen: bigs[0]}
	must(os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755))
	var diffIDs []string
	var layerDescs []map[string]any
	writeLayer := func(fill func(t *tw)) {
		f, err := os.CreateTemp(filepath.Join(dir, "blobs", "sha256"), ".tmp-*")
		must(err)
		h := sha256.New()
		bw := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
		t := &tw{w: tar.NewWriter(bw), rng: rand.NewChaCha8([32]byte{byte(len(diffIDs))}), buf: make([]byte, 1<<20)}
		fill(t)
		must(t.w.Close())
		must(bw.Flush())
		st, err := f.Stat()
		must(err)
		must(f.Close())
		d := "sha256:" + hex.EncodeToString(h.Sum(nil))
		must(os.Rename(f.Name(), filepath.Join(dir, "blobs", "sha256", d[7:])))
		diffIDs = append(diffIDs, d)
		layerDescs = append(layerDescs, map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": st.Size()})
		res.Entries += t.n
	}

	writeLayer(func(t *tw) {
		t.dir("big")
		t.file("big/large-0.bin", bigs[0], false)
		t.file("big/large-1.bin", bigs[1], false)
		t.dir("etc")
		t.file("etc/os-release", 64, true)
		dirs0(t.dir)
		for i := 0; i < n0; i++ {
			name := name0(i)
			switch {
			case i%100 == 7 && i > 0:
				t.link(tar.TypeSymlink, name, fmt.Sprintf("f%05d.txt", i-1))
			case i%200 == 13 && i > 0 && (i-1)/perDir == i/perDir:
				t.link(tar.TypeLink, name, name0(i-1))
			default:
				t.file(name, sizes[i], true)
			}
		}
	})
	writeLayer(func(t *tw) {
		t.dir("big")
		t.file("big/large-2.bin", bigs[2], false)
		t.file("big/large-3.bin", bigs[3], false)
		for _, i := range sortedKeys(rewritten) {
			t.file(name0(i), sizes[i]/2+1, true)
		}
		for j := 0; j < n1; j++ {
			d := j / perDir
			if j%perDir == 0 {
				if d%32 == 0 {
					t.dir(fmt.Sprintf("n%03d", d/32))
				}
				t.dir(fmt.Sprintf("n%03d/s%02d", d/32, d%32))
			}
			if j%3 == 0 {
				// beside layer 0's files
				dd := d % ndirs
				name := fmt.Sprintf("d%03d/s%02d/g%05d.txt", dd/32, dd%32, j)
				t.file(name, sizes[n0+j], true)
				continue
			}
			t.file(fmt.Sprintf("n%03d/s%02d/h%05d.txt", d/32, d%32, j), sizes[n0+j], true)
		}
	})
	writeLayer(func(t *tw) {
		for _, i := range sortedKeys(deleted) {
			name := name0(i)
			t.file(strings.TrimSuffix(name, filepath.Base(name))+".wh."+filepath.Base(name), 0, false)
		}
		for _, d := range sortedKeys(goneDirs) {
			t.file(fmt.Sprintf("d%03d/.wh.s%02d", d/32, d%32), 0, false)
		}
		t.dir(fmt.Sprintf("d%03d/s%02d", opaque/32, opaque%32))
		t.file(fmt.Sprintf("d%03d/s%02d/.wh..wh..opq", opaque/32, opaque%32), 0, false)
		t.dir("w")
		for j := 0; j < n2; j++ {
			if j%perDir == 0 {
				t.dir(fmt.Sprintf("w/%04d", j/perDir))
			}
			t.file(fmt.Sprintf("w/%04d/k%05d.txt", j/perDir, j), sizes[n0+n1+j], true)
		}
	})

	// 1,000 survivors of layer 0 for the cat runs, in a random order.
	var pool []string
	for i := 0; i < n0; i++ {
		if survives(i) && !(i%100 == 7) && !(i%200 == 13) {
			pool = append(pool, name0(i))
		}
	}
	r.Shuffle(len(pool), func(i, j int) { pool[i], pool[j] = pool[j], pool[i] })
	res.CatList = pool[:min(1000, len(pool))]
	res.Layers = diffIDs

	config := map[string]any{
		"architecture": "amd64", "os": "linux", "created": genTime,
		"config": map[string]any{"Cmd": []string{"/bin/sh"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs},
	}
	cdesc := writeBlob(dir, "application/vnd.oci.image.config.v1+json", config)
	manifest := map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": cdesc, "layers": layerDescs}
	mdesc := writeBlob(dir, "application/vnd.oci.image.manifest.v1+json", manifest)
	mdesc["annotations"] = map[string]string{"org.opencontainers.image.ref.name": res.Ref}
	index := map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []any{mdesc}}
	writeJSON(filepath.Join(dir, "index.json"), index)
	must(os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644))
	return res
}

func sortedKeys(m map[int]bool) []int {
	var k []int
	for i := range m {
		k = append(k, i)
	}
	sort.Ints(k)
	return k
}

func writeBlob(dir, mediaType string, v any) map[string]any {
	b, err := json.Marshal(v)
	must(err)
	sum := sha256.Sum256(b)
	d := "sha256:" + hex.EncodeToString(sum[:])
	must(os.WriteFile(filepath.Join(dir, "blobs", "sha256", d[7:]), b, 0o644))
	return map[string]any{"mediaType": mediaType, "digest": d, "size": len(b)}
}

func writeJSON(name string, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	must(err)
	must(os.WriteFile(name, b, 0o644))
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}
