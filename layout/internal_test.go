package layout

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestPlatformName(t *testing.T) {
	for _, tc := range []struct {
		p    *ocispec.Platform
		want string
	}{
		{nil, "unknown_unknown"},
		{&ocispec.Platform{}, "unknown_unknown"},
		{&ocispec.Platform{OS: "linux", Architecture: "amd64"}, "linux_amd64"},
		{&ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, "linux_arm64_v8"},
		{&ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8", OSVersion: "el8"}, "linux_arm64_v8:el8"},
		{&ocispec.Platform{OS: "windows", Architecture: "amd64", OSVersion: "10.0.20348.2227"}, "windows_amd64:10.0.20348.2227"},
		{&ocispec.Platform{Architecture: "amd64"}, "unknown_amd64"},
		{&ocispec.Platform{OS: "linux"}, "linux_unknown"},
		{&ocispec.Platform{OS: "a/b", Architecture: "c/d", Variant: "e/f", OSVersion: "g/h"}, "a-b_c-d_e-f:g-h"},
		{&ocispec.Platform{OS: "li\x00nux", Architecture: "amd64"}, "linux_amd64"},
	} {
		if got := platformName(tc.p); got != tc.want {
			t.Errorf("platformName(%+v) = %q, want %q", tc.p, got, tc.want)
		}
	}
}

// TestCycle plants an index cycle in the parsed-blob memo, which is what a
// cycle would look like had the digests matched: Images reports ErrCycle
// and Manifests stops; neither hangs.
func TestCycle(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
	da, db := digest.FromString("A"), digest.FromString("B")
	idx := func(child digest.Digest) []byte {
		b, _ := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex,
			Manifests: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageIndex, Digest: child}}})
		return b
	}
	top := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: da}
	b, _ := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, Manifests: []ocispec.Descriptor{top}})
	os.WriteFile(filepath.Join(dir, "index.json"), b, 0o644)
	s, err := Open(context.Background(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.blobs[da] = idx(db)
	s.blobs[db] = idx(da)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := s.Images([]ocispec.Descriptor{top}); !errors.Is(err, ErrCycle) {
			t.Errorf("A -> B -> A: %v, want ErrCycle", err)
		}
		self := digest.FromString("self")
		s.blobs[self] = idx(self)
		if _, err := s.Images([]ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageIndex, Digest: self}}); !errors.Is(err, ErrCycle) {
			t.Errorf("self: %v, want ErrCycle", err)
		}
		if got := s.Manifests(); len(got) != 2 {
			t.Errorf("Manifests() = %v", got)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("hang")
	}
}

// TestDiamond: an index reached twice by different paths is no cycle.
func TestDiamond(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "index.json"), []byte(`{"schemaVersion":2,"manifests":[]}`), 0o644)
	s, err := Open(context.Background(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := digest.FromString("manifest")
	s.blobs[m] = []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"digest":"sha256:` + digest.FromString("cfg").Encoded() + `"},"layers":[]}`)
	shared := digest.FromString("shared")
	s.blobs[shared] = []byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + m.String() + `"}]}`)
	top := digest.FromString("top")
	s.blobs[top] = []byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"` + shared.String() + `"},{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"` + shared.String() + `"}]}`)
	ims, err := s.Images([]ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageIndex, Digest: top}})
	if err != nil || len(ims) != 1 || ims[0].Platform != "unknown_unknown" {
		t.Errorf("diamond: %v %v", ims, err)
	}
}
