// Package fuzzseed gives the fuzz targets their seed corpora from the real
// fixtures of ../shared/fixtures/real (see PROVENANCE.md there): the
// archives themselves and the layer tars inside them.
package fuzzseed

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Dir is where the real fixtures are, relative to a package directory one
// level below the repository (tarindex/, layout/, fs/).
const Dir = "../../shared/fixtures/real"

// Archives returns the fixture tarballs (not directories) of at most max
// bytes, by name.
func Archives(dir string, max int64) map[string][]byte {
	out := map[string][]byte{}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		st, err := e.Info()
		if err != nil || !st.Mode().IsRegular() || st.Size() > max || !strings.Contains(e.Name(), ".tar") {
			continue
		}
		if b, err := os.ReadFile(filepath.Join(dir, e.Name())); err == nil {
			out[e.Name()] = b
		}
	}
	return out
}

// Layers returns the uncompressed layer tars found in the fixtures (inside
// tarballs and in layout directories), each at most max bytes.
func Layers(dir string, max int64) [][]byte {
	var out [][]byte
	add := func(b []byte) {
		if zr, err := gzip.NewReader(bytes.NewReader(b)); err == nil {
			if u, err := io.ReadAll(io.LimitReader(zr, max+1)); err == nil {
				b = u
			}
		}
		if int64(len(b)) <= max && isTar(b) {
			out = append(out, b)
		}
	}
	for _, b := range Archives(dir, 1<<20) {
		if zr, err := gzip.NewReader(bytes.NewReader(b)); err == nil {
			if u, err := io.ReadAll(zr); err == nil {
				b = u
			}
		}
		tr := tar.NewReader(bytes.NewReader(b))
		for {
			h, err := tr.Next()
			if err != nil {
				break
			}
			if h.Typeflag == tar.TypeReg && h.Size <= max && h.Size >= 512 {
				body, _ := io.ReadAll(tr)
				add(body)
			}
		}
	}
	matches, _ := filepath.Glob(filepath.Join(dir, "*", "blobs", "sha256", "*"))
	for _, m := range matches {
		if st, err := os.Stat(m); err == nil && st.Size() <= max && st.Size() >= 512 {
			b, _ := os.ReadFile(m)
			add(b)
		}
	}
	return out
}

// isTar reports whether b starts with a tar header archive/tar accepts.
func isTar(b []byte) bool {
	_, err := tar.NewReader(bytes.NewReader(b)).Next()
	return err == nil
}

// MaxSeed is the largest seed to add: small while fuzzing (the mutator
// spends its time on small inputs best), everything up to 1 MiB when the
// seeds only run as regression tests.
func MaxSeed() int64 {
	if f := flag.Lookup("test.fuzz"); f != nil && f.Value.String() != "" {
		return 8 << 10
	}
	return 1 << 20
}

// Files returns the files of a fixture, a layout directory or a tarball
// (gzip-compressed or not), by slash path.
func Files(path string) map[string][]byte {
	out := map[string][]byte{}
	st, err := os.Stat(path)
	if err != nil {
		return out
	}
	if st.IsDir() {
		filepath.WalkDir(path, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				rel, _ := filepath.Rel(path, p)
				out[filepath.ToSlash(rel)], _ = os.ReadFile(p)
			}
			return nil
		})
		return out
	}
	b, _ := os.ReadFile(path)
	if zr, err := gzip.NewReader(bytes.NewReader(b)); err == nil {
		if u, err := io.ReadAll(zr); err == nil {
			b = u
		}
	}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err != nil {
			return out
		}
		if h.Typeflag == tar.TypeReg {
			out[strings.TrimPrefix(h.Name, "./")], _ = io.ReadAll(tr)
		}
	}
}

// Image is one image of a fixture with every digest and size of the
// chosen blobs replaced by placeholders: @M @C @L for the manifest,
// config and layer digests (sha256:hex), @m @c @l for their bare hex, #M
// #C #L for their sizes. The fuzz targets fill them in, so mutated inputs
// still form a graph.
type Image struct {
	Index, Manifest, Config, Layer, Docker []byte
}

// Images returns an Image per fixture holding an OCI index.json.
func Images(dir string, max int64) []Image {
	var out []Image
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		files := Files(filepath.Join(dir, e.Name()))
		idx, ok := files["index.json"]
		if !ok {
			continue
		}
		var ix struct {
			Manifests []struct{ Digest string } `json:"manifests"`
		}
		if json.Unmarshal(idx, &ix) != nil || len(ix.Manifests) == 0 {
			continue
		}
		blob := func(d string) []byte { return files["blobs/"+strings.Replace(d, ":", "/", 1)] }
		mDigest := ix.Manifests[0].Digest
		m := blob(mDigest)
		var man struct {
			Manifests []struct{ Digest string } `json:"manifests"`
			Config    struct{ Digest string }   `json:"config"`
			Layers    []struct{ Digest string } `json:"layers"`
		}
		if json.Unmarshal(m, &man) != nil {
			continue
		}
		if len(man.Manifests) > 0 && blob(man.Manifests[0].Digest) != nil {
			// An index first: take its first present manifest, and let
			// index.json point at it directly.
			for _, c := range man.Manifests {
				if mb := blob(c.Digest); mb != nil {
					mDigest, m = c.Digest, mb
					json.Unmarshal(m, &man)
					break
				}
			}
		}
		img := Image{Manifest: m, Config: blob(man.Config.Digest), Index: idx, Docker: files["manifest.json"]}
		lDigest := ""
		if len(man.Layers) > 0 {
			lDigest = man.Layers[0].Digest
			img.Layer = blob(lDigest)
		}
		if int64(len(img.Layer)+len(img.Config)+len(img.Manifest)+len(img.Index)) > max {
			continue
		}
		repl := []string{}
		for _, p := range []struct {
			d, full, hex, size string
			b                  []byte
		}{{mDigest, "@M", "@m", "#M", img.Manifest}, {man.Config.Digest, "@C", "@c", "#C", img.Config}, {lDigest, "@L", "@l", "#L", img.Layer}} {
			if p.d == "" {
				continue
			}
			repl = append(repl, p.d, p.full, strings.TrimPrefix(p.d, "sha256:"), p.hex, `"size":`+strconv.Itoa(len(p.b)), `"size":`+p.size)
		}
		r := strings.NewReplacer(repl...)
		img.Index = []byte(r.Replace(string(img.Index)))
		img.Manifest = []byte(r.Replace(string(img.Manifest)))
		img.Docker = []byte(r.Replace(string(img.Docker)))
		out = append(out, img)
	}
	return out
}

// Fill replaces the placeholders of Images in the index, manifest and
// docker manifest.json with the digests and sizes of the blobs given, and
// returns the files of an OCI layout holding them.
func Fill(index, manifest, config, layer, docker []byte) map[string][]byte {
	sum := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	c, l := sum(config), sum(layer)
	r1 := strings.NewReplacer("@C", "sha256:"+c, "@c", c, "#C", strconv.Itoa(len(config)), "@L", "sha256:"+l, "@l", l, "#L", strconv.Itoa(len(layer)))
	manifest = []byte(r1.Replace(string(manifest)))
	m := sum(manifest)
	r2 := strings.NewReplacer("@M", "sha256:"+m, "@m", m, "#M", strconv.Itoa(len(manifest)))
	files := map[string][]byte{
		"oci-layout":        []byte(`{"imageLayoutVersion":"1.0.0"}`),
		"index.json":        []byte(r2.Replace(r1.Replace(string(index)))),
		"blobs/sha256/" + m: manifest,
		"blobs/sha256/" + c: config,
		"blobs/sha256/" + l: layer,
	}
	if len(docker) > 0 {
		files["manifest.json"] = []byte(r2.Replace(r1.Replace(string(docker))))
	}
	return files
}

// Tar writes files as a tar archive, in sorted order.
func Tar(files map[string][]byte) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range slices.Sorted(maps.Keys(files)) {
		tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(files[name]))})
		tw.Write(files[name])
	}
	tw.Close()
	return buf.Bytes()
}

// StrictReader serves B and calls Fail on any read not wholly inside it.
type StrictReader struct {
	B    []byte
	Fail func(format string, args ...any)
}

func (r *StrictReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off > int64(len(r.B)) || off+int64(len(p)) > int64(len(r.B)) && !(off == 0 && len(p) <= 4) {
		r.Fail("read of %d bytes at %d, outside the %d-byte archive", len(p), off, len(r.B))
	}
	if off < 0 || off >= int64(len(r.B)) {
		return 0, io.EOF
	}
	n := copy(p, r.B[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Watchdog turns a hang into a crash the fuzzer records: past d, it
// panics with every goroutine's stack. Call the returned stop when done.
func Watchdog(d time.Duration) (stop func() bool) {
	return time.AfterFunc(d, func() {
		buf := make([]byte, 1<<20)
		panic(fmt.Sprintf("still running after %v: a hang\n%s", d, buf[:runtime.Stack(buf, true)]))
	}).Stop
}
