package layout

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestCommitBaseGoneMeanwhile: a lower layer removed after the commit
// read the base image and before it took the lock (a gc once nothing
// named the base, or a peer that takes no lock) stops the commit: it
// would land an image that cannot be unpacked.
func TestCommitBaseGoneMeanwhile(t *testing.T) {
	dir := t.TempDir()
	put := func(b []byte) ocispec.Descriptor {
		d := digest.FromBytes(b)
		p := filepath.Join(dir, "blobs", "sha256", d.Encoded())
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return ocispec.Descriptor{Digest: d, Size: int64(len(b))}
	}
	mustJSON := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	tw.WriteHeader(&tar.Header{Name: "base", Typeflag: tar.TypeReg, Mode: 0o644})
	tw.Close()
	ld := put(layer.Bytes())
	ld.MediaType = ocispec.MediaTypeImageLayer
	cd := put(mustJSON(ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"}, RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{ld.Digest}}}))
	cd.MediaType = ocispec.MediaTypeImageConfig
	md := put(mustJSON(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cd, Layers: []ocispec.Descriptor{ld}}))
	md.MediaType = ocispec.MediaTypeImageManifest
	md.Annotations = map[string]string{ocispec.AnnotationRefName: "v1"}
	os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
	os.WriteFile(filepath.Join(dir, "index.json"), mustJSON(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, Manifests: []ocispec.Descriptor{md}}), 0o644)

	s, err := Open(context.Background(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	crashPoint = func(step string) {
		if step == "locked" {
			os.Remove(filepath.Join(dir, blobPath(ld.Digest)))
		}
	}
	defer func() { crashPoint = func(string) {} }()
	before, _ := os.ReadFile(filepath.Join(dir, "index.json"))
	changes := []Change{{Path: "f", Type: tar.TypeReg, Mode: 0o644}}
	_, err = s.Commit(context.Background(), "v1", "", changes, CommitOptions{Tag: "v2"})
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), ld.Digest.String()) {
		t.Fatalf("err = %v, want ErrConflict naming %s", err, ld.Digest)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "index.json")); !bytes.Equal(before, after) {
		t.Errorf("index.json changed:\n%s", after)
	}
}
