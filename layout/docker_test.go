package layout_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/layoutfs/layoutfs/layout"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

type dockerEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// TestLegacyDockerSave builds a legacy save by hand: several tags on one
// image, an untagged image, a gzip layer, an unsafe config path.
func TestLegacyDockerSave(t *testing.T) {
	l := newLayout(t) // used as a plain directory to pack
	plain := tarOf(t, "etc/", "etc/hostname")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(tarOf(t, "gz-file"))
	zw.Close()
	cfg1 := mustJSON(t, ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromBytes(plain), digest.FromString("diff id of the gzip layer")}}})
	cfg2 := mustJSON(t, ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromBytes(plain)}}})
	l.write("aaa/layer.tar", plain)
	l.write("bbb/layer.tar.gz", gz.Bytes())
	l.write(digest.FromBytes(cfg1).Encoded()+".json", cfg1)
	l.write("cfg2.json", cfg2)
	l.write("manifest.json", mustJSON(t, []dockerEntry{
		{Config: digest.FromBytes(cfg1).Encoded() + ".json", RepoTags: []string{"example.com/a:1", "a:latest"}, Layers: []string{"aaa/layer.tar", "./bbb/layer.tar.gz"}},
		{Config: "/cfg2.json", Layers: []string{"aaa/layer.tar"}},
		{Config: "../../etc/passwd", RepoTags: []string{"evil:1"}, Layers: []string{}},
	}))
	out := filepath.Join(t.TempDir(), "save.tar")
	tarDir(t, l.dir, out)
	s, w := openPath(t, out)
	if s.Kind != layout.KindDockerLegacy {
		t.Fatalf("kind %v", s.Kind)
	}
	var names []string
	for _, r := range s.Refs() {
		names = append(names, r.Name)
	}
	if want := []string{"a:latest", "example.com/a:1"}; !reflect.DeepEqual(names, want) {
		t.Errorf("refs %q, want %q", names, want)
	}
	if !w.has("../../etc/passwd") {
		t.Errorf("no warning about the unsafe config path: %q", w.msgs)
	}
	a, _ := s.Ref("a:latest")
	ims, err := s.Images(a.Descs)
	if err != nil || len(ims) != 1 || ims[0].Platform != "linux_arm64_v8" {
		t.Fatalf("images %v %v", ims, err)
	}
	layers := ims[0].Manifest.Layers
	if len(layers) != 2 || layers[0].MediaType != ocispec.MediaTypeImageLayer || layers[1].MediaType != ocispec.MediaTypeImageLayerGzip {
		t.Fatalf("layers %+v", layers)
	}
	if layers[0].Digest != digest.FromBytes(plain) || layers[1].Digest != digest.FromBytes(gz.Bytes()) {
		t.Errorf("layer digests %v", layers)
	}
	for _, ld := range layers {
		checkBlob(t, s, ld)
		if _, err := s.Layer(context.Background(), ld); err != nil {
			t.Errorf("layer %s: %v", ld.Digest, err)
		}
	}
	// index.json: one descriptor per tag, plus the untagged image.
	var idx ocispec.Index
	if err := json.Unmarshal(s.Files["index.json"], &idx); err != nil {
		t.Fatal(err)
	}
	if len(idx.Manifests) != 3 {
		t.Fatalf("synthesised index: %s", s.Files["index.json"])
	}
	if got := len(s.Manifests()); got != 2 {
		t.Errorf("%d manifests, want 2", got)
	}
	untagged := idx.Manifests[2]
	if untagged.Annotations != nil {
		t.Errorf("untagged image annotated: %v", untagged.Annotations)
	}
	if ims, err := s.Images([]ocispec.Descriptor{untagged}); err != nil || ims[0].Platform != "linux_amd64" {
		t.Errorf("untagged: %v %v", ims, err)
	}
}

// TestDockerSaveHybrid builds the Docker 25+ shape by its definition (moby
// PR 44598): an OCI layout whose manifest.json points at blob paths. The
// RepoTags are refs beside index.json's ref.name.
func TestDockerSaveHybrid(t *testing.T) {
	l := newLayout(t)
	layer := tarOf(t, "hello")
	ld := l.blob(ocispec.MediaTypeImageLayer, layer)
	cfg := l.config(amd64, ld.Digest)
	m := l.manifest(cfg, ld)
	untaggedLayer := l.blob(ocispec.MediaTypeImageLayer, tarOf(t, "other"))
	ucfg := l.config(arm64, untaggedLayer.Digest)
	um := l.manifest(ucfg, untaggedLayer)
	named := ref(m, "3.20")
	named.Annotations["io.containerd.image.name"] = "docker.io/library/alpine:3.20"
	l.top(named)
	l.write("manifest.json", mustJSON(t, []dockerEntry{
		{Config: "blobs/sha256/" + cfg.Digest.Encoded(), RepoTags: []string{"alpine:3.20"}, Layers: []string{"blobs/sha256/" + ld.Digest.Encoded()}},
		{Config: "blobs/sha256/" + ucfg.Digest.Encoded(), Layers: []string{"blobs/sha256/" + untaggedLayer.Digest.Encoded()}},
	}))
	out := filepath.Join(t.TempDir(), "save.tar")
	tarDir(t, l.dir, out)
	s, _ := openPath(t, out)
	if s.Kind != layout.KindDockerSave {
		t.Fatalf("kind %v", s.Kind)
	}
	var names []string
	for _, r := range s.Refs() {
		names = append(names, r.Name)
		if len(r.Descs) != 1 || r.Descs[0].Digest != m.Digest {
			t.Errorf("ref %q -> %v", r.Name, r.Descs)
		}
	}
	if want := []string{"3.20", "alpine:3.20"}; !reflect.DeepEqual(names, want) {
		t.Errorf("refs %q, want %q", names, want)
	}
	got := map[digest.Digest]bool{}
	for _, d := range s.Manifests() {
		got[d.Digest] = true
	}
	if !reflect.DeepEqual(got, map[digest.Digest]bool{m.Digest: true, um.Digest: true}) {
		t.Errorf("Manifests() = %v, want the tagged and the untagged image", got)
	}
}
