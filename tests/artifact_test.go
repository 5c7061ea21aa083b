package tests

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	lfs "github.com/layoutfs/layoutfs/fs"
	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// writeBlob stores b in an OCI layout directory and returns its descriptor.
func writeBlob(t *testing.T, layoutDir, mediaType string, b []byte) ocispec.Descriptor {
	t.Helper()
	d := digest.FromBytes(b)
	p := filepath.Join(layoutDir, "blobs", "sha256", d.Encoded())
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(b))}
}

func writeJSONBlob(t *testing.T, layoutDir, mediaType string, v any) ocispec.Descriptor {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return writeBlob(t, layoutDir, mediaType, b)
}

// writeIndex writes index.json and oci-layout.
func writeIndex(t *testing.T, layoutDir string, manifests ...ocispec.Descriptor) {
	t.Helper()
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: manifests}
	b, _ := json.Marshal(idx)
	if err := os.WriteFile(filepath.Join(layoutDir, "index.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(layoutDir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestArtifactFiles builds an ORAS-style artifact (as `oras push
// --oci-layout` writes it: empty config, titled layers) and reads its files
// under files/<title>, with no rootfs (its layers are not filesystems).
func TestArtifactFiles(t *testing.T) {
	dir := t.TempDir()
	readme := writeBlob(t, dir, "text/markdown", []byte("# hello artifact\n"))
	readme.Annotations = map[string]string{ocispec.AnnotationTitle: "README.md"}
	data := writeBlob(t, dir, "application/octet-stream", []byte{0, 1, 2, 3, 255})
	data.Annotations = map[string]string{ocispec.AnnotationTitle: "data.bin"}
	cfg := writeBlob(t, dir, ocispec.MediaTypeEmptyJSON, []byte("{}"))
	m := writeJSONBlob(t, dir, ocispec.MediaTypeImageManifest, ocispec.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: "application/vnd.example.thing",
		Config:       cfg,
		Layers:       []ocispec.Descriptor{readme, data},
	})
	m.Annotations = map[string]string{ocispec.AnnotationRefName: "v1"}
	writeIndex(t, dir, m)

	img := openDir(t, dir, "tags/v1/unknown_unknown")
	for name, want := range map[string]string{"README.md": "# hello artifact\n", "data.bin": "\x00\x01\x02\x03\xff"} {
		n, err := lfs.Walk(img, "files/"+name)
		if err != nil {
			t.Fatalf("files/%s: %v", name, err)
		}
		f := n.(lfs.File)
		b, err := io.ReadAll(io.NewSectionReader(f, 0, f.Attr().Size))
		if err != nil || string(b) != want {
			t.Errorf("files/%s = %q, %v; want %q", name, b, err, want)
		}
	}
	if _, err := lfs.Walk(img, "rootfs"); err == nil {
		t.Error("an artifact with only titled layers has a rootfs/")
	}
}
