package layout_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/layoutfs/layoutfs/layout"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// copyFixture copies a real fixture to a writable temporary file.
func copyFixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtures, name))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func tarMember(t *testing.T, archive, name string) []byte {
	t.Helper()
	out, err := exec.Command("tar", "-xOf", archive, name).Output()
	if err != nil {
		t.Fatalf("tar -xOf %s %s: %v", archive, name, err)
	}
	return out
}

// TestDocker25Tag: tagging the untagged Docker 25 save adds the name to
// index.json (ref.name, and io.containerd.image.name as Docker writes it)
// and to manifest.json's RepoTags; untag takes both away again.
func TestDocker25Tag(t *testing.T) {
	ctx := context.Background()
	src := copyFixture(t, "B-ggcr-hello-world-docker-v25.tar")
	s, _ := openPath(t, src)
	ms := s.Manifests()
	if len(ms) != 1 {
		t.Fatalf("%d manifests", len(ms))
	}
	if err := s.Tag(ctx, ms[0].Digest.String(), "hello:v1"); err != nil {
		t.Fatal(err)
	}
	var idx ocispec.Index
	json.Unmarshal(tarMember(t, src, "index.json"), &idx)
	if len(idx.Manifests) != 1 || idx.Manifests[0].Digest != ms[0].Digest ||
		idx.Manifests[0].Annotations[ocispec.AnnotationRefName] != "hello:v1" ||
		idx.Manifests[0].Annotations["io.containerd.image.name"] != "docker.io/library/hello:v1" {
		t.Errorf("index.json: %+v", idx.Manifests)
	}
	var dm []struct{ RepoTags []string }
	json.Unmarshal(tarMember(t, src, "manifest.json"), &dm)
	if len(dm) != 1 || !slices.Equal(dm[0].RepoTags, []string{"hello:v1"}) {
		t.Errorf("manifest.json: %+v", dm)
	}
	if !strings.Contains(string(tarMember(t, src, "manifest.json")), `"LayerSources"`) {
		t.Errorf("manifest.json lost LayerSources")
	}
	s2, _ := openPath(t, src)
	if _, ok := s2.Ref("hello:v1"); !ok {
		t.Errorf("no ref hello:v1: %v", s2.Refs())
	}
	if err := s2.Untag(ctx, "hello:v1"); err != nil {
		t.Fatal(err)
	}
	s3, _ := openPath(t, src)
	if len(s3.Refs()) != 0 {
		t.Errorf("refs after untag: %v", s3.Refs())
	}
}

// TestLegacyParentAndSharedLayer: in the podman two-image save, the second
// image's layer.tar is a symlink to the first one's and its manifest.json
// entry names the first as Parent. Untagging the first keeps it in
// manifest.json (docker load needs the parent) and gc removes nothing;
// untagging the second then lets gc remove its directory and config but
// never the shared layer. skopeo reads the result each time.
func TestLegacyParentAndSharedLayer(t *testing.T) {
	if _, err := exec.LookPath("skopeo"); err != nil {
		t.Fatalf("skopeo not installed (.ci/run installs it): %v", err)
	}
	ctx := context.Background()
	src := copyFixture(t, "A-podman-docker-two-images.tar")
	s := layout.OpenForWrite(src, layout.Options{})
	if err := s.Untag(ctx, "example.com/empty:latest"); err != nil {
		t.Fatal(err)
	}
	var dm []struct {
		Config   string
		RepoTags []string
	}
	json.Unmarshal(tarMember(t, src, "manifest.json"), &dm)
	if len(dm) != 2 || len(dm[0].RepoTags) != 0 {
		t.Errorf("manifest.json after untagging the parent: %+v", dm)
	}
	if repos := string(tarMember(t, src, "repositories")); strings.Contains(repos, "latest") {
		t.Errorf("repositories still names it: %s", repos)
	}
	if g, err := s.GC(ctx, true); err != nil || len(g) != 0 {
		t.Errorf("gc would remove %v (%v)", g, err)
	}
	skopeoInspect(t, "docker-archive:"+src+":example.com/empty/but:different")

	if err := s.Tag(ctx, "example.com/empty/but:different", "example.com/again:1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Untag(ctx, "example.com/empty/but:different"); err != nil {
		t.Fatal(err)
	}
	if err := s.Untag(ctx, "example.com/again:1"); err != nil {
		t.Fatal(err)
	}
	g, err := s.GC(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, x := range g {
		paths = append(paths, x.Path)
	}
	want := []string{
		"5a7ef13e1893f2f91d29b3c2b9224e771a57c48ff6fe8d2aee91f3f91062fa2a.json",
		"ae5358a87748d60c757d7a41e7dffefda59d7b043dd4c0fa522ed37eef8cf7d3",
		"ae5358a87748d60c757d7a41e7dffefda59d7b043dd4c0fa522ed37eef8cf7d3/VERSION",
		"ae5358a87748d60c757d7a41e7dffefda59d7b043dd4c0fa522ed37eef8cf7d3/json",
		"ae5358a87748d60c757d7a41e7dffefda59d7b043dd4c0fa522ed37eef8cf7d3/layer.tar",
	}
	if !slices.Equal(paths, want) {
		t.Errorf("gc removed %v\nwant %v", paths, want)
	}
	// The first image is untagged now: tag it again by digest and read it.
	s2, _ := openPath(t, src)
	ms := s2.Manifests()
	if len(ms) != 1 {
		t.Fatalf("%d manifests left", len(ms))
	}
	if err := s2.Tag(ctx, ms[0].Digest.String(), "example.com/empty:back"); err != nil {
		t.Fatal(err)
	}
	skopeoInspect(t, "docker-archive:"+src+":example.com/empty:back")
	s3, _ := openPath(t, src)
	ims, err := s3.Images(s3.Index().Manifests)
	if err != nil || len(ims) != 1 {
		t.Fatalf("images: %v, %v", ims, err)
	}
	for _, l := range ims[0].Manifest.Layers {
		checkBlob(t, s3, l)
	}
}

func skopeoInspect(t *testing.T, ref string) {
	t.Helper()
	if out, err := exec.Command("skopeo", "inspect", ref).CombinedOutput(); err != nil {
		t.Errorf("skopeo inspect %s: %v\n%s", ref, err, out)
	}
}
