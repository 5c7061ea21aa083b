package layout_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/layoutfs/layoutfs/layout"
	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

const fixtures = "../../shared/fixtures/real"

// dirLayout builds an OCI image layout directory by hand.
type dirLayout struct {
	t   testing.TB
	dir string
}

func newLayout(t testing.TB) *dirLayout {
	t.Helper()
	l := &dirLayout{t: t, dir: t.TempDir()}
	l.write("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	return l
}

func (l *dirLayout) write(name string, b []byte) {
	l.t.Helper()
	p := filepath.Join(l.dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		l.t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		l.t.Fatal(err)
	}
}

// blob stores b under its digest and returns a descriptor of mediaType.
func (l *dirLayout) blob(mediaType string, b []byte) ocispec.Descriptor {
	l.t.Helper()
	d := digest.FromBytes(b)
	l.write("blobs/sha256/"+d.Encoded(), b)
	return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(b))}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// config stores an image config for platform p (nil: no os/arch at all).
func (l *dirLayout) config(p *ocispec.Platform, diffIDs ...digest.Digest) ocispec.Descriptor {
	cfg := ocispec.Image{RootFS: ocispec.RootFS{Type: "layers", DiffIDs: diffIDs}}
	if p != nil {
		cfg.Platform = *p
	}
	if diffIDs == nil {
		cfg.RootFS.DiffIDs = []digest.Digest{}
	}
	return l.blob(ocispec.MediaTypeImageConfig, mustJSON(l.t, cfg))
}

// manifest stores an image manifest of cfg and layers.
func (l *dirLayout) manifest(cfg ocispec.Descriptor, layers ...ocispec.Descriptor) ocispec.Descriptor {
	if layers == nil {
		layers = []ocispec.Descriptor{}
	}
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: layers}
	return l.blob(ocispec.MediaTypeImageManifest, mustJSON(l.t, m))
}

// image stores a one-layer image for platform p and returns its manifest.
func (l *dirLayout) image(p *ocispec.Platform, files ...string) ocispec.Descriptor {
	layer := tarOf(l.t, files...)
	ld := l.blob(ocispec.MediaTypeImageLayer, layer)
	return l.manifest(l.config(p, ld.Digest), ld)
}

func (l *dirLayout) index(descs ...ocispec.Descriptor) ocispec.Descriptor {
	return l.blob(ocispec.MediaTypeImageIndex, mustJSON(l.t, indexOf(descs...)))
}

func indexOf(descs ...ocispec.Descriptor) ocispec.Index {
	if descs == nil {
		descs = []ocispec.Descriptor{}
	}
	return ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: descs}
}

// top writes index.json listing descs.
func (l *dirLayout) top(descs ...ocispec.Descriptor) {
	l.write("index.json", mustJSON(l.t, indexOf(descs...)))
}

// warnings collects what a Source warns about.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) warn(m string) {
	w.mu.Lock()
	w.msgs = append(w.msgs, m)
	w.mu.Unlock()
}

func (w *warnings) has(sub string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, m := range w.msgs {
		if strings.Contains(m, sub) {
			return true
		}
	}
	return false
}

func (l *dirLayout) open() (*layout.Source, *warnings) {
	l.t.Helper()
	w := &warnings{}
	s, err := layout.Open(context.Background(), l.dir, layout.Options{Warn: w.warn})
	if err != nil {
		l.t.Fatalf("Open: %v", err)
	}
	return s, w
}

func openPath(t testing.TB, p string) (*layout.Source, *warnings) {
	t.Helper()
	w := &warnings{}
	s, err := layout.Open(context.Background(), p, layout.Options{Warn: w.warn})
	if err != nil {
		t.Fatalf("Open %s: %v", p, err)
	}
	return s, w
}

func ref(d ocispec.Descriptor, name string) ocispec.Descriptor {
	d.Annotations = map[string]string{ocispec.AnnotationRefName: name}
	return d
}

func plat(p *ocispec.Platform, d ocispec.Descriptor) ocispec.Descriptor {
	d.Platform = p
	return d
}

// tarOf makes a layer: each name a regular file holding its own name, a
// name ending in "/" a directory.
func tarOf(t testing.TB, names ...string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		h := &tar.Header{Name: n, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(n)), ModTime: time.Unix(1700000000, 0)}
		if strings.HasSuffix(n, "/") {
			h.Typeflag, h.Size, h.Mode = tar.TypeDir, 0, 0o755
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			io.WriteString(tw, n)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// tarDir packs a directory tree into a tar file, as an oci-archive.
func tarDir(t testing.TB, dir, out string) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			return tw.WriteHeader(&tar.Header{Name: rel + "/", Typeflag: tar.TypeDir, Mode: 0o755})
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: rel, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(b))}); err != nil {
			return err
		}
		_, err = tw.Write(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readAt(t testing.TB, r io.ReaderAt, size int64) []byte {
	t.Helper()
	b := make([]byte, size)
	n, err := r.ReadAt(b, 0)
	if err != nil && !(err == io.EOF && int64(n) == size) {
		t.Fatalf("ReadAt: %d %v", n, err)
	}
	return b
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
