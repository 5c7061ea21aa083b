package fs_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	lfs "github.com/layoutfs/layoutfs/fs"
	"github.com/layoutfs/layoutfs/internal/fuzzseed"
	"github.com/layoutfs/layoutfs/layout"
	"github.com/layoutfs/layoutfs/tarindex"
	digest "github.com/opencontainers/go-digest"
)

// FuzzTree serves an image of two fuzzed layers and walks its whole tree,
// reading every file. No panic, no hang, no read outside the archive, and
// no wrong data without an error: a file of layers/NN reads as archive/tar
// reads the last entry of that name, a blob as its digest says, and every
// rootfs file as some entry of some layer.
func FuzzTree(f *testing.F) {
	layers := fuzzseed.Layers(fuzzseed.Dir, fuzzseed.MaxSeed())
	for i, l := range layers {
		f.Add(l, layers[(i+1)%len(layers)])
	}
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, l0, l1 []byte) {
		defer fuzzseed.Watchdog(20 * time.Second)()
		archive := twoLayerArchive(l0, l1)
		r := &fuzzseed.StrictReader{B: archive, Fail: t.Errorf}
		src, err := layout.OpenReaderAt(context.Background(), r, int64(len(archive)), "fuzz.tar", layout.Options{MaxLayerSize: 32 << 20})
		if err != nil {
			t.Fatalf("the archive around the layers does not open: %v", err)
		}
		root := lfs.New(src, lfs.Options{})
		want := []map[string][]byte{stdFiles(l0), stdFiles(l1)}
		all := map[string]bool{}
		for _, m := range want {
			for _, b := range m {
				all[string(b)] = true
			}
		}
		walkAll(t, root, "", func(p string, b []byte) {
			switch {
			case strings.HasPrefix(p, "blobs/sha256/"):
				if s := sha256.Sum256(b); hex.EncodeToString(s[:]) != strings.TrimPrefix(p, "blobs/sha256/") {
					t.Fatalf("%s reads bytes of another digest", p)
				}
			case strings.HasPrefix(p, "tags/v1/linux_amd64/layers/"):
				rest := strings.TrimPrefix(p, "tags/v1/linux_amd64/layers/")
				n, name, _ := strings.Cut(rest, "/")
				l := map[string]int{"00": 0, "01": 1}[n]
				if w, ok := want[l][name]; ok && !bytes.Equal(w, b) {
					t.Fatalf("%s reads %q, archive/tar %q", p, trim(b), trim(w))
				}
			case strings.HasPrefix(p, "tags/v1/linux_amd64/rootfs/"):
				if len(b) > 0 && !all[string(b)] {
					t.Fatalf("%s reads %q, which no entry of either layer holds", p, trim(b))
				}
			}
		})
	})
}

func trim(b []byte) []byte { return b[:min(len(b), 64)] }

// twoLayerArchive is an oci-archive with one image, tagged v1, of layers
// l0 and l1.
func twoLayerArchive(l0, l1 []byte) []byte {
	files := map[string][]byte{"oci-layout": []byte(`{"imageLayoutVersion":"1.0.0"}`)}
	put := func(b []byte) string {
		d := digest.FromBytes(b)
		files["blobs/sha256/"+d.Encoded()] = b
		return fmt.Sprintf(`{"mediaType":"%%s","digest":"%s","size":%d}`, d, len(b))
	}
	cfg := put([]byte(`{"os":"linux","architecture":"amd64","rootfs":{"type":"layers","diff_ids":[]}}`))
	layer := "application/vnd.oci.image.layer.v1.tar"
	man := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":%s,"layers":[%s,%s]}`,
		fmt.Sprintf(cfg, "application/vnd.oci.image.config.v1+json"), fmt.Sprintf(put(l0), layer), fmt.Sprintf(put(l1), layer)))
	m := put(man)
	m = strings.TrimSuffix(fmt.Sprintf(m, "application/vnd.oci.image.manifest.v1+json"), "}") + `,"annotations":{"org.opencontainers.image.ref.name":"v1"}}`
	files["index.json"] = []byte(`{"schemaVersion":2,"manifests":[` + m + `]}`)
	return fuzzseed.Tar(files)
}

// stdFiles is what archive/tar reads of a layer: the data of the last
// regular entry of each clean name, for names whose last entry is regular.
// Nil when archive/tar fails on the layer.
func stdFiles(b []byte) map[string][]byte {
	out := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(b))
	total := 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			return nil
		}
		name, err := tarindex.CleanName(h.Name)
		if err != nil {
			continue
		}
		delete(out, name)
		if h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeRegA && h.Typeflag != tar.TypeGNUSparse {
			continue
		}
		total += int(h.Size)
		if total > 32<<20 {
			return nil
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil
		}
		out[name] = data
	}
}

// walkAll lists every directory and reads every file whole, calling got
// for each file read without an error.
func walkAll(t *testing.T, d lfs.Dir, p string, got func(p string, b []byte)) {
	ents, err := d.ReadDir()
	if err != nil {
		return
	}
	for _, e := range ents {
		if e.Name == "" || e.Name == "." || e.Name == ".." || strings.ContainsAny(e.Name, "/\x00") {
			t.Fatalf("%s: entry named %q", p, e.Name)
		}
		cp := strings.TrimPrefix(p+"/"+e.Name, "/")
		switch n := e.Node.(type) {
		case lfs.Dir:
			walkAll(t, n, cp, got)
		case lfs.File:
			size := n.Attr().Size
			if size < 0 || size > 64<<20 {
				t.Fatalf("%s: size %d", cp, size)
			}
			b := make([]byte, size)
			k, err := n.ReadAt(b, 0)
			if err == io.EOF && int64(k) == size {
				err = nil
			}
			if err == nil && int64(k) != size {
				t.Fatalf("%s: %d of %d bytes and no error", cp, k, size)
			}
			if err == nil {
				got(cp, b)
			}
		}
	}
}
