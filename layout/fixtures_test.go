package layout_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/layoutfs/layoutfs/layout"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestOpenFixtures: every real fixture opens as the shape it is, with the
// references its writer gave it.
func TestOpenFixtures(t *testing.T) {
	for _, tc := range []struct {
		name string
		kind layout.Kind
		refs []string
	}{
		{"A-containers-image-almostempty.tar", layout.KindDockerLegacy, []string{"emptyimage:latest"}},
		{"A-dive-kaniko-ggcr-tarball.tar", layout.KindDockerLegacy, []string{"dive-test:kaniko-latest"}},
		{"A-ggcr-rules_docker-whiteout.tar", layout.KindDockerLegacy, []string{"bazel/pkg/v1/mutate:whiteout_image"}},
		{"A-podman-docker-two-images.tar", layout.KindDockerLegacy, []string{"example.com/empty/but:different", "example.com/empty:latest"}},
		{"A-scalibr-symlinks-docker-save.tar", layout.KindDockerLegacy, []string{"symlinks:latest"}},
		{"B-buildkit-docker-exporter.tar", layout.KindDockerSave, []string{"docker", "github.com/buildkit/archive:docker"}},
		{"B-ggcr-hello-world-docker-v25.tar", layout.KindDockerSave, nil},
		{"B-orasgo-hello-world-containerd-export.tar", layout.KindDockerSave, []string{"hello-world:latest", "latest"}},
		{"C-dive-oci-estargz.tar", layout.KindOCIArchive, nil},
		{"C-dive-oci-zstd.tar", layout.KindOCIArchive, nil},
		{"C-ocitools-hello-world-manifest-list", layout.KindLayoutDir, nil},
		{"C-ocitools-whiteout-explicit-dir", layout.KindLayoutDir, nil},
		{"C-ocitools-whiteout-opaque", layout.KindLayoutDir, nil},
		{"C-skopeo-oci-archive-name-only.tar.gz", layout.KindOCIArchive, []string{"pretty-empty:latest"}},
		{"C-stereoscope-multiplatform-nested", layout.KindLayoutDir, []string{"latest"}},
		{"X-ocitools-aufs-whiteouts-BADDIGESTS", layout.KindLayoutDir, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := openPath(t, filepath.Join(fixtures, tc.name))
			if s.Kind != tc.kind {
				t.Errorf("kind %v, want %v", s.Kind, tc.kind)
			}
			var refs []string
			for _, r := range s.Refs() {
				refs = append(refs, r.Name)
				if got, ok := s.Ref(r.Name); !ok || !reflect.DeepEqual(got, r) {
					t.Errorf("Ref(%q) = %v %v", r.Name, got, ok)
				}
			}
			if !reflect.DeepEqual(refs, tc.refs) {
				t.Errorf("refs %q, want %q", refs, tc.refs)
			}
			if _, ok := s.Ref("no-such-ref"); ok {
				t.Error("Ref of an unknown name")
			}
			for _, f := range []string{"oci-layout", "index.json"} {
				if _, ok := s.Files[f]; !ok {
					t.Errorf("no %s", f)
				}
			}
			_, hasDocker := s.Files["manifest.json"]
			if docker := tc.kind == layout.KindDockerLegacy || tc.kind == layout.KindDockerSave; hasDocker != docker {
				t.Errorf("manifest.json served: %v", hasDocker)
			}
		})
	}
}

func TestOpenFixtureDetails(t *testing.T) {
	// The second image of a podman save has its own tag, and its layer is
	// a symlink to the first image's layer.tar inside the archive.
	s, _ := openPath(t, filepath.Join(fixtures, "A-podman-docker-two-images.tar"))
	a, _ := s.Ref("example.com/empty:latest")
	b, _ := s.Ref("example.com/empty/but:different")
	if len(a.Descs) != 1 || len(b.Descs) != 1 || a.Descs[0].Digest == b.Descs[0].Digest {
		t.Fatalf("refs %v %v", a, b)
	}
	if ims, err := s.Images(b.Descs); err != nil || len(ims) != 1 || ims[0].Platform != "linux_amd64" {
		t.Errorf("images of %v: %v %v", b, ims, err)
	}

	// BuildKit's docker exporter: the RepoTag points at the same manifest
	// as index.json's short ref.name.
	s, _ = openPath(t, filepath.Join(fixtures, "B-buildkit-docker-exporter.tar"))
	short, _ := s.Ref("docker")
	full, _ := s.Ref("github.com/buildkit/archive:docker")
	if len(short.Descs) != 1 || len(full.Descs) != 1 || short.Descs[0].Digest != full.Descs[0].Digest {
		t.Errorf("refs %v %v", short, full)
	}
	ims, err := s.Images(full.Descs)
	if err != nil || len(ims) != 1 || len(ims[0].Manifest.Layers) != 0 {
		t.Errorf("zero-layer image: %v %v", ims, err)
	}

	// A containerd export holding one platform of ten: the others are
	// left out with a warning, not an error.
	s, w := openPath(t, filepath.Join(fixtures, "B-orasgo-hello-world-containerd-export.tar"))
	r, _ := s.Ref("latest")
	ims, err = s.Images(r.Descs)
	if err != nil || len(ims) != 1 || ims[0].Platform != "linux_amd64" {
		t.Errorf("images: %v %v", ims, err)
	}
	if !w.has("is not in the source") {
		t.Errorf("no warning about absent platforms: %q", w.msgs)
	}

	// Nested: index.json -> index -> amd64 + arm64.
	s, _ = openPath(t, filepath.Join(fixtures, "C-stereoscope-multiplatform-nested"))
	r, _ = s.Ref("latest")
	ims, err = s.Images(r.Descs)
	if err != nil || len(ims) != 2 || ims[0].Platform != "linux_amd64" || ims[1].Platform != "linux_arm64" {
		t.Errorf("nested images: %v %v", ims, err)
	}
	if got := len(s.Manifests()); got != 3 {
		t.Errorf("%d manifests, want the index and two images", got)
	}
}

// TestDocker25Untagged: Docker 25.0 wrote "manifests": null for an
// untagged save; the manifest is still found from manifest.json.
func TestDocker25Untagged(t *testing.T) {
	s, _ := openPath(t, filepath.Join(fixtures, "B-ggcr-hello-world-docker-v25.tar"))
	want := digest.Digest("sha256:411caf340c828657e915a83ed561a79d2b8150dabad4dc079d881cbfe6f86afe")
	var got []digest.Digest
	for _, d := range s.Manifests() {
		got = append(got, d.Digest)
	}
	if !slices.Contains(got, want) {
		t.Fatalf("Manifests() = %v, want it to hold %s", got, want)
	}
	ims, err := s.Images([]ocispec.Descriptor{{Digest: want}})
	if err != nil || len(ims) != 1 || ims[0].Platform != "linux_arm64" {
		t.Errorf("images of %s: %v %v", want, ims, err)
	}
}

// TestBadDigestsFixture: blobs that do not hash to their digest are refused
// when read, but the image is still listed.
func TestBadDigestsFixture(t *testing.T) {
	s, _ := openPath(t, filepath.Join(fixtures, "X-ocitools-aufs-whiteouts-BADDIGESTS"))
	ims, err := s.Images(s.Index().Manifests)
	if err != nil || len(ims) != 1 {
		t.Fatalf("Images: %v %v", ims, err)
	}
	if ims[0].Platform != "linux_arm64_v8" {
		t.Errorf("platform %q", ims[0].Platform)
	}
	if _, err := s.Config(ims[0]); !errors.Is(err, layout.ErrDigest) {
		t.Errorf("Config: %v, want ErrDigest", err)
	}
	for _, l := range ims[0].Manifest.Layers {
		if _, err := s.Layer(context.Background(), l); !errors.Is(err, layout.ErrDigest) {
			t.Errorf("Layer %s: %v, want ErrDigest", l.Digest, err)
		}
	}
}

func allFixtures(t *testing.T) []string {
	ents, err := os.ReadDir(fixtures)
	if err != nil {
		t.Fatalf("real fixtures: %v", err)
	}
	var out []string
	for _, e := range ents {
		if n := e.Name(); n[0] >= 'A' && n[0] <= 'C' && n[1] == '-' {
			out = append(out, n)
		}
	}
	return out
}

// TestFixturesSelfConsistent: everything index.json (given or synthesised)
// reaches resolves, and every blob an image names is there, of the size
// its descriptor says, hashing to its digest.
func TestFixturesSelfConsistent(t *testing.T) {
	for _, name := range allFixtures(t) {
		t.Run(name, func(t *testing.T) {
			s, _ := openPath(t, filepath.Join(fixtures, name))
			var idx ocispec.Index
			if err := jsonUnmarshal(s.Files["index.json"], &idx); err != nil {
				t.Fatalf("index.json as served: %v", err)
			}
			if !reflect.DeepEqual(idx.Manifests, s.Index().Manifests) && len(idx.Manifests)+len(s.Index().Manifests) > 0 {
				t.Errorf("served index.json differs from Index()")
			}
			for _, d := range s.Manifests() {
				if _, err := s.Resolve(d); err != nil {
					t.Errorf("Resolve %s: %v", d.Digest, err)
				}
				checkBlob(t, s, d)
			}
			ims, err := s.Images(s.Manifests())
			if err != nil {
				t.Fatal(err)
			}
			if len(ims) == 0 {
				t.Fatal("no images")
			}
			for _, im := range ims {
				cfg, err := s.Config(im)
				if err != nil {
					t.Errorf("config of %s: %v", im.Desc.Digest, err)
				}
				if int64(len(cfg)) != im.Manifest.Config.Size {
					t.Errorf("config of %s: %d bytes, descriptor says %d", im.Desc.Digest, len(cfg), im.Manifest.Config.Size)
				}
				checkBlob(t, s, im.Manifest.Config)
				for _, l := range im.Manifest.Layers {
					checkBlob(t, s, l)
					if strings.Contains(name, "kaniko") {
						continue // 14 layers: the blob check is enough
					}
					if _, err := s.Layer(context.Background(), l); err != nil {
						t.Errorf("layer %s: %v", l.Digest, err)
					}
				}
			}
			blobs := s.Blobs()
			if !slices.IsSorted(blobs) {
				t.Errorf("Blobs() not sorted")
			}
			for _, d := range s.Manifests() {
				if !slices.Contains(blobs, d.Digest) {
					t.Errorf("manifest %s missing from Blobs()", d.Digest)
				}
			}
		})
	}
}

func checkBlob(t *testing.T, s *layout.Source, d ocispec.Descriptor) {
	t.Helper()
	r, size, err := s.Blob(d.Digest)
	if err != nil {
		t.Errorf("blob %s: %v", d.Digest, err)
		return
	}
	if size != d.Size {
		t.Errorf("blob %s: %d bytes, descriptor says %d", d.Digest, size, d.Size)
	}
	v := d.Digest.Verifier()
	if _, err := io.Copy(v, io.NewSectionReader(r, 0, size)); err != nil {
		t.Errorf("blob %s: %v", d.Digest, err)
	}
	if !v.Verified() {
		t.Errorf("blob %s does not hash to its digest", d.Digest)
	}
}

// TestLegacySynthesisDeterministic: a legacy docker save gives the same
// synthesised index.json, byte for byte, on every Open.
func TestLegacySynthesisDeterministic(t *testing.T) {
	for _, name := range allFixtures(t) {
		if !strings.HasPrefix(name, "A-") {
			continue
		}
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(fixtures, name)
			a, _ := openPath(t, p)
			b, _ := openPath(t, p)
			if !bytes.Equal(a.Files["index.json"], b.Files["index.json"]) {
				t.Errorf("index.json differs:\n%s\n%s", a.Files["index.json"], b.Files["index.json"])
			}
			if !bytes.Equal(a.Files["oci-layout"], b.Files["oci-layout"]) || !strings.Contains(string(a.Files["oci-layout"]), `"imageLayoutVersion":"1.0.0"`) {
				t.Errorf("oci-layout %s", a.Files["oci-layout"])
			}
			if !reflect.DeepEqual(a.Manifests(), b.Manifests()) {
				t.Errorf("manifests differ")
			}
			// With a cache too: the outer archive's index comes from it.
			cache := t.TempDir()
			c1, err := layout.Open(context.Background(), p, layout.Options{CacheDir: cache})
			if err != nil {
				t.Fatal(err)
			}
			c2, err := layout.Open(context.Background(), p, layout.Options{CacheDir: cache})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(c1.Files["index.json"], a.Files["index.json"]) || !bytes.Equal(c2.Files["index.json"], a.Files["index.json"]) {
				t.Errorf("index.json differs with a cache")
			}
			// Every synthesised descriptor is an OCI image manifest whose
			// platform is that of its config.
			for _, d := range a.Index().Manifests {
				if d.MediaType != ocispec.MediaTypeImageManifest {
					t.Errorf("%s: media type %q", d.Digest, d.MediaType)
				}
				n, err := a.Resolve(d)
				if err != nil || n.Manifest == nil {
					t.Fatalf("%s: %v", d.Digest, err)
				}
				if int64(len(n.Raw)) != d.Size || digest.FromBytes(n.Raw) != d.Digest {
					t.Errorf("%s: raw manifest does not match its descriptor", d.Digest)
				}
				var cfg ocispec.Image
				raw, _ := a.Config(&layout.Image{Manifest: n.Manifest})
				if err := jsonUnmarshal(raw, &cfg); err != nil {
					t.Fatal(err)
				}
				if d.Platform == nil || d.Platform.OS != cfg.OS || d.Platform.Architecture != cfg.Architecture {
					t.Errorf("%s: platform %+v, config says %s/%s", d.Digest, d.Platform, cfg.OS, cfg.Architecture)
				}
				if len(n.Manifest.Layers) != len(cfg.RootFS.DiffIDs) {
					t.Errorf("%s: %d layers, %d diff_ids", d.Digest, len(n.Manifest.Layers), len(cfg.RootFS.DiffIDs))
				}
			}
		})
	}
}
