package tests

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/layoutfs/layoutfs/layout"
	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// wrNewImage makes the blobs of a one-layer image holding one file.
func wrNewImage(t *testing.T, file, content string) ([]layout.NewBlob, ocispec.Descriptor) {
	t.Helper()
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	tw.WriteHeader(&tar.Header{Name: file, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg})
	tw.Write([]byte(content))
	tw.Close()
	ld := digest.FromBytes(layer.Bytes())
	cfg, _ := json.Marshal(ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{ld}}})
	cd := digest.FromBytes(cfg)
	m, _ := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: cd, Size: int64(len(cfg))},
		Layers: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayer, Digest: ld, Size: int64(layer.Len())}}})
	md := digest.FromBytes(m)
	blob := func(b []byte) layout.NewBlob {
		return layout.NewBlob{Digest: digest.FromBytes(b), Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }}
	}
	return []layout.NewBlob{blob(layer.Bytes()), blob(cfg), blob(m)},
		ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: md, Size: int64(len(m))}
}

// TestWriteAddImage: AddAndTag lands a new image (layer, config,
// manifest) and its tag in one write; skopeo and umoci read it, umoci
// unpacks its file, the old tag is untouched, gc finds nothing new to
// remove, and bytes that do not match their digest change nothing.
func TestWriteAddImage(t *testing.T) {
	base := wrBaseLayout(t)
	for _, sh := range []wrShape{
		{name: "dir-skopeo", transport: "oci"},
		{name: "oci-archive", transport: "oci-archive"},
		{name: "oci-archive-zst", transport: "oci-archive", gz: true, zst: true},
	} {
		t.Run(sh.name, func(t *testing.T) {
			t.Parallel()
			src, first, _ := wrSource(t, sh, base)
			garbage, err := layout.OpenForWrite(src, layout.Options{}).GC(t.Context(), true)
			if err != nil {
				t.Fatal(err)
			}
			blobs, desc := wrNewImage(t, "added.txt", "added by AddAndTag\n")
			s := layout.OpenForWrite(src, layout.Options{})

			// A blob whose bytes are wrong: nothing changes.
			bad := append([]layout.NewBlob{}, blobs...)
			bad[0].Open = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("wrong")), nil }
			before := wrRefNames(t, src)
			if err := s.AddAndTag(t.Context(), bad, desc, "example.com/added:1"); err == nil {
				t.Fatal("AddAndTag took a blob that does not match its digest")
			}
			if got := wrRefNames(t, src); strings.Join(got, " ") != strings.Join(before, " ") {
				t.Errorf("refs changed by a failed AddAndTag: %v", got)
			}
			wrNoTemps(t, src)

			if err := s.AddAndTag(t.Context(), blobs, desc, "example.com/added:1"); err != nil {
				t.Fatal(err)
			}
			wrCheck(t, sh, src, []string{first, "example.com/added:1"}, nil)
			fresh := filepath.Join(t.TempDir(), "copy")
			mntExec(t, "skopeo", "copy", "-q", wrPeerRef(sh, wrPeerPath(t, sh, src), "example.com/added:1"), "oci:"+fresh+":x")
			bundle := filepath.Join(t.TempDir(), "bundle")
			mntExec(t, "umoci", "unpack", "--image", fresh+":x", bundle)
			if b, err := os.ReadFile(filepath.Join(bundle, "rootfs/added.txt")); err != nil || string(b) != "added by AddAndTag\n" {
				t.Errorf("unpacked added.txt: %q, %v", b, err)
			}
			after, err := s.GC(t.Context(), true)
			if err != nil || len(after) != len(garbage) {
				t.Errorf("gc would now remove %v (before the add: %v), %v", after, garbage, err)
			}
			wrNoTemps(t, src)
		})
	}
}
