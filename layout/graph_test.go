package layout_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/layoutfs/layoutfs/layout"
	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

var (
	amd64 = &ocispec.Platform{OS: "linux", Architecture: "amd64"}
	arm64 = &ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
	win   = &ocispec.Platform{OS: "windows", Architecture: "amd64", OSVersion: "10.0.20348.2227"}
)

func platforms(ims []*layout.Image) []string {
	var out []string
	for _, im := range ims {
		out = append(out, im.Platform)
	}
	return out
}

// TestPlatformNames: os_arch[_variant][:osversion], from the index
// descriptor when it has a platform, else from the config;
// unknown_unknown when neither says.
func TestPlatformNames(t *testing.T) {
	l := newLayout(t)
	fromIndex := plat(arm64, l.image(nil, "a"))
	fromConfig := l.image(win, "b")
	nothing := l.image(nil, "c")
	slashes := plat(&ocispec.Platform{OS: "linux/x", Architecture: "arm/64", Variant: "v/8", OSVersion: "1/2"}, l.image(nil, "d"))
	archOnly := plat(&ocispec.Platform{Architecture: "riscv64"}, l.image(&ocispec.Platform{OS: "linux", Architecture: "riscv64"}, "e"))
	l.top(fromIndex, fromConfig, nothing, slashes, archOnly)
	s, _ := l.open()
	for _, tc := range []struct {
		d    ocispec.Descriptor
		want string
	}{
		{fromIndex, "linux_arm64_v8"},
		{fromConfig, "windows_amd64:10.0.20348.2227"},
		{nothing, "unknown_unknown"},
		{slashes, "linux-x_arm-64_v-8:1-2"},
		{archOnly, "linux_riscv64"}, // no os in the index: the config's platform
	} {
		ims, err := s.Images([]ocispec.Descriptor{tc.d})
		if err != nil || len(ims) != 1 {
			t.Fatalf("%s: %v %v", tc.want, ims, err)
		}
		if ims[0].Platform != tc.want {
			t.Errorf("platform %q, want %q", ims[0].Platform, tc.want)
		}
		if strings.Contains(ims[0].Platform, "/") {
			t.Errorf("platform name %q holds a slash", ims[0].Platform)
		}
	}
	// Listed together they come out sorted by name.
	ims, err := s.Images(s.Index().Manifests)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"linux-x_arm-64_v-8:1-2", "linux_arm64_v8", "linux_riscv64", "unknown_unknown", "windows_amd64:10.0.20348.2227"}
	if got := platforms(ims); !reflect.DeepEqual(got, want) {
		t.Errorf("platforms %q, want %q", got, want)
	}
}

// TestPlatformCollision: two manifests of one platform under one list each
// get "-<first 12 hex digits>".
func TestPlatformCollision(t *testing.T) {
	l := newLayout(t)
	a := plat(amd64, l.image(nil, "a"))
	b := plat(amd64, l.image(nil, "b"))
	c := plat(arm64, l.image(nil, "c"))
	l.top(ref(l.index(a, b, c), "multi"))
	s, _ := l.open()
	r, ok := s.Ref("multi")
	if !ok {
		t.Fatal("no ref")
	}
	ims, err := s.Images(r.Descs)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{
		"linux_amd64-" + a.Digest.Encoded()[:12]: true,
		"linux_amd64-" + b.Digest.Encoded()[:12]: true,
		"linux_arm64_v8":                         true,
	}
	got := map[string]bool{}
	for _, im := range ims {
		got[im.Platform] = true
		if strings.HasPrefix(im.Platform, "linux_amd64-") && !strings.HasSuffix(im.Platform, im.Desc.Digest.Encoded()[:12]) {
			t.Errorf("%s named %q", im.Desc.Digest, im.Platform)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("platforms %v, want %v", got, want)
	}
	// The same manifest listed twice is one image, no suffix.
	ims, err = s.Images([]ocispec.Descriptor{c, c})
	if err != nil || len(ims) != 1 || ims[0].Platform != "linux_arm64_v8" {
		t.Errorf("duplicate: %v %v", platforms(ims), err)
	}
}

// TestRefs: ref names of index.json, sorted; a name on several
// descriptors points at all of them; unsafe names are skipped with a
// warning.
func TestRefs(t *testing.T) {
	l := newLayout(t)
	a := l.image(amd64, "a")
	b := l.image(arm64, "b")
	l.top(
		ref(a, "docker.io/library/alpine:3.11"),
		ref(plat(amd64, a), "multi"), ref(plat(arm64, b), "multi"),
		ref(a, "3.11"),
		ref(a, "../escape"), ref(a, "a//b"), ref(a, "/abs"), ref(a, "."), ref(a, "bad\x00nul"), ref(a, ""), ref(a, "trailing/"),
		a, // no name: not a ref
	)
	s, w := l.open()
	var names []string
	for _, r := range s.Refs() {
		names = append(names, r.Name)
	}
	if want := []string{"3.11", "docker.io/library/alpine:3.11", "multi"}; !reflect.DeepEqual(names, want) {
		t.Errorf("refs %q, want %q", names, want)
	}
	m, _ := s.Ref("multi")
	if len(m.Descs) != 2 {
		t.Fatalf("multi: %v", m)
	}
	ims, err := s.Images(m.Descs)
	if err != nil || !reflect.DeepEqual(platforms(ims), []string{"linux_amd64", "linux_arm64_v8"}) {
		t.Errorf("multi images %q %v", platforms(ims), err)
	}
	for _, bad := range []string{"../escape", "a//b", "/abs"} {
		if !w.has(bad) {
			t.Errorf("no warning about %q: %q", bad, w.msgs)
		}
	}
}

func TestSafeRefName(t *testing.T) {
	for name, want := range map[string]bool{
		"latest": true, "3.11": true, "alpine:3.20": true, "docker.io/library/alpine:3.11": true,
		"localhost:5000/a/b@sha256": true, "...": true, "a..b": true, ".hidden": true,
		"": false, ".": false, "..": false, "../a": false, "a/..": false, "a/../b": false, "a/./b": false,
		"/a": false, "a/": false, "a//b": false, "a\x00b": false, "/": false,
	} {
		if got := layout.SafeRefName(name); got != want {
			t.Errorf("SafeRefName(%q) = %v, want %v", name, got, want)
		}
	}
}

// TestForgedCycle: an index that lists itself (possible only with forged
// digests) is an error, not a hang, in Images and Manifests.
func TestForgedCycle(t *testing.T) {
	l := newLayout(t)
	// Blob A lists B, blob B lists A: the digests cannot both be right.
	da := digest.FromString("A")
	db := digest.FromString("B")
	ia := indexOf(ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: db, Size: 100})
	ib := indexOf(ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: da, Size: 100})
	l.write("blobs/sha256/"+da.Encoded(), mustJSON(t, ia))
	l.write("blobs/sha256/"+db.Encoded(), mustJSON(t, ib))
	l.top(ref(ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: da, Size: 100}, "loop"))
	s, _ := l.open()
	done := make(chan struct{})
	go func() {
		defer close(done)
		r, _ := s.Ref("loop")
		_, err := s.Images(r.Descs)
		if !errors.Is(err, layout.ErrCycle) && !errors.Is(err, layout.ErrDigest) {
			t.Errorf("Images: %v, want ErrCycle or ErrDigest", err)
		}
		s.Manifests()
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("hang")
	}
}

// chain stores n indexes, each listing the one below, over one image.
func chain(l *dirLayout, n int) (top, image ocispec.Descriptor) {
	image = plat(amd64, l.image(nil, "deep"))
	d := image
	for i := 0; i < n; i++ {
		d = l.index(d)
	}
	return d, image
}

// TestNestingLimit: nested indexes are followed to a depth, and past it
// are an error.
func TestNestingLimit(t *testing.T) {
	l := newLayout(t)
	ok, image := chain(l, 20)
	tooDeep, _ := chain(l, 40)
	l.top(ref(ok, "ok"), ref(tooDeep, "deep"))
	s, _ := l.open()
	r, _ := s.Ref("ok")
	ims, err := s.Images(r.Descs)
	if err != nil || len(ims) != 1 || ims[0].Desc.Digest != image.Digest {
		t.Fatalf("20 levels: %v %v", ims, err)
	}
	r, _ = s.Ref("deep")
	done := make(chan error, 1)
	go func() { _, err := s.Images(r.Descs); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, layout.ErrInvalid) || !strings.Contains(err.Error(), "nested") {
			t.Errorf("40 levels: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("hang")
	}
	// Manifests stops at the limit without failing.
	if n := len(s.Manifests()); n < 21 {
		t.Errorf("Manifests() = %d", n)
	}
}

// TestMissingBlobs: a descriptor at the top that names an absent blob is
// an error; one inside an index is left out with a warning.
func TestMissingBlobs(t *testing.T) {
	l := newLayout(t)
	present := plat(amd64, l.image(nil, "here"))
	absent := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("absent"), Size: 10, Platform: arm64}
	list := l.index(present, absent)
	l.top(ref(list, "partial"), ref(absent, "gone"))
	s, w := l.open()
	r, _ := s.Ref("partial")
	ims, err := s.Images(r.Descs)
	if err != nil || len(ims) != 1 || ims[0].Desc.Digest != present.Digest {
		t.Errorf("partial: %v %v", ims, err)
	}
	if !w.has(absent.Digest.String()) {
		t.Errorf("no warning about the absent manifest: %q", w.msgs)
	}
	r, _ = s.Ref("gone")
	if _, err := s.Images(r.Descs); !layout.IsNotFound(err) {
		t.Errorf("gone: %v, want not found", err)
	}
	if _, _, err := s.Blob(absent.Digest); !layout.IsNotFound(err) {
		t.Errorf("Blob: %v", err)
	}
	got := map[digest.Digest]bool{}
	for _, d := range s.Manifests() {
		got[d.Digest] = true
	}
	if !reflect.DeepEqual(got, map[digest.Digest]bool{list.Digest: true, present.Digest: true}) {
		t.Errorf("Manifests() = %v", got)
	}
	// An image whose layer blob is absent lists, but its layer fails.
	lay := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromString("no layer"), Size: 5}
	m := l.manifest(l.config(amd64), lay)
	ims, err = s.Images([]ocispec.Descriptor{m})
	if err != nil || len(ims) != 1 {
		t.Fatalf("%v %v", ims, err)
	}
	if _, err := s.Layer(context.Background(), lay); !layout.IsNotFound(err) {
		t.Errorf("Layer: %v", err)
	}
}

// TestNullManifests: index.json with "manifests": null is an empty layout.
func TestNullManifests(t *testing.T) {
	l := newLayout(t)
	l.write("index.json", []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":null}`))
	s, _ := l.open()
	if len(s.Refs()) != 0 || len(s.Manifests()) != 0 || len(s.Blobs()) != 0 {
		t.Errorf("refs %v manifests %v blobs %v", s.Refs(), s.Manifests(), s.Blobs())
	}
	if ims, err := s.Images(s.Index().Manifests); err != nil || len(ims) != 0 {
		t.Errorf("Images: %v %v", ims, err)
	}
	if s.Kind != layout.KindLayoutDir {
		t.Errorf("kind %v", s.Kind)
	}
}

// TestMalformedJSON: broken JSON is an error naming the file.
func TestMalformedJSON(t *testing.T) {
	l := newLayout(t)
	l.write("index.json", []byte(`{"manifests": [`))
	_, err := layout.Open(context.Background(), l.dir, layout.Options{})
	if !errors.Is(err, layout.ErrInvalid) || !strings.Contains(err.Error(), "index.json") {
		t.Errorf("index.json: %v", err)
	}

	l = newLayout(t)
	l.write("manifest.json", []byte(`[{"Config": 1}`))
	_, err = layout.Open(context.Background(), l.dir, layout.Options{})
	if !errors.Is(err, layout.ErrInvalid) || !strings.Contains(err.Error(), "manifest.json") {
		t.Errorf("manifest.json: %v", err)
	}

	l = newLayout(t)
	bad := l.blob(ocispec.MediaTypeImageManifest, []byte(`{"config": {`))
	l.top(ref(bad, "bad"))
	s, _ := l.open()
	_, err = s.Images([]ocispec.Descriptor{bad})
	if !errors.Is(err, layout.ErrInvalid) || !strings.Contains(err.Error(), bad.Digest.String()) {
		t.Errorf("manifest blob: %v", err)
	}
	// Neither index.json nor manifest.json: not a layout at all.
	empty := t.TempDir()
	if _, err := layout.Open(context.Background(), empty, layout.Options{}); !errors.Is(err, layout.ErrUnknownShape) {
		t.Errorf("empty dir: %v", err)
	}
	garbage := filepath.Join(t.TempDir(), "garbage")
	os.WriteFile(garbage, []byte(strings.Repeat("not a tar ", 200)), 0o644)
	if _, err := layout.Open(context.Background(), garbage, layout.Options{}); !errors.Is(err, layout.ErrUnknownShape) {
		t.Errorf("garbage file: %v", err)
	}
	emptyFile := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(emptyFile, nil, 0o644)
	if _, err := layout.Open(context.Background(), emptyFile, layout.Options{}); !errors.Is(err, layout.ErrUnknownShape) {
		t.Errorf("empty file: %v", err)
	}
}

// TestDigestTraversal: a digest that is a path is refused; nothing outside
// blobs/ is read.
func TestDigestTraversal(t *testing.T) {
	l := newLayout(t)
	m := l.image(amd64, "x")
	raw, _ := os.ReadFile(filepath.Join(l.dir, "blobs/sha256", m.Digest.Encoded()))
	// A valid manifest two levels up, where the path would lead.
	l.write("passwd", raw)
	for _, d := range []digest.Digest{"sha256:../../passwd", "sha256:../../../etc/passwd", "../../passwd", "sha256:/etc/passwd", "sha256:" + digest.Digest(strings.Repeat("0", 63)+"/")} {
		evil := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: d, Size: int64(len(raw))}
		l.top(ref(evil, "evil"))
		s, _ := l.open()
		r, ok := s.Ref("evil")
		if !ok {
			t.Fatalf("%s: no ref", d)
		}
		if ims, err := s.Images(r.Descs); err == nil {
			t.Errorf("%s: Images gave %v", d, ims)
		} else if !errors.Is(err, layout.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", d, err)
		}
		if _, _, err := s.Blob(d); err == nil {
			t.Errorf("%s: Blob read", d)
		}
		if len(s.Manifests()) != 0 {
			t.Errorf("%s: Manifests() = %v", d, s.Manifests())
		}
	}
}

// TestArtifact: an ORAS-style artifact (empty config, titled file layers)
// resolves like an image.
func TestArtifact(t *testing.T) {
	l := newLayout(t)
	cfg := l.blob("application/vnd.oci.empty.v1+json", []byte("{}"))
	f1 := l.blob("application/vnd.oci.image.layer.v1.tar", []byte("hello artifact\n"))
	f1.Annotations = map[string]string{ocispec.AnnotationTitle: "hello.txt"}
	f2 := l.blob("application/x-custom", []byte(`{"k":"v"}`))
	f2.Annotations = map[string]string{ocispec.AnnotationTitle: "data.json"}
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		ArtifactType: "application/vnd.example+type", Config: cfg, Layers: []ocispec.Descriptor{f1, f2}}
	md := l.blob(ocispec.MediaTypeImageManifest, mustJSON(t, m))
	md.ArtifactType = m.ArtifactType
	l.top(ref(md, "v1"))
	s, _ := l.open()
	r, _ := s.Ref("v1")
	ims, err := s.Images(r.Descs)
	if err != nil || len(ims) != 1 {
		t.Fatalf("Images: %v %v", ims, err)
	}
	im := ims[0]
	if im.Platform != "unknown_unknown" || im.Manifest.ArtifactType != m.ArtifactType {
		t.Errorf("platform %q artifactType %q", im.Platform, im.Manifest.ArtifactType)
	}
	if b, err := s.Config(im); err != nil || string(b) != "{}" {
		t.Errorf("Config: %q %v", b, err)
	}
	for _, f := range im.Manifest.Layers {
		ra, size, err := s.Blob(f.Digest)
		if err != nil || size != f.Size {
			t.Fatalf("%s: %v", f.Annotations[ocispec.AnnotationTitle], err)
		}
		readAt(t, ra, size)
	}
	if layout.IsTarLayer(f2) {
		t.Errorf("application/x-custom taken for a tar layer")
	}
}

// TestOCIArchive: the same layout packed as a tarball (and as a gzip'd
// one) reads like the directory.
func TestOCIArchive(t *testing.T) {
	l := newLayout(t)
	a := plat(amd64, l.image(nil, "etc/", "etc/a"))
	b := plat(arm64, l.image(nil, "b"))
	l.top(ref(l.index(a, b), "multi"), ref(a, "amd"))
	dirSrc, _ := l.open()
	out := filepath.Join(t.TempDir(), "archive.tar")
	tarDir(t, l.dir, out)
	tarSrc, _ := openPath(t, out)
	if tarSrc.Kind != layout.KindOCIArchive {
		t.Errorf("kind %v", tarSrc.Kind)
	}
	if !reflect.DeepEqual(dirSrc.Refs(), tarSrc.Refs()) || !reflect.DeepEqual(dirSrc.Manifests(), tarSrc.Manifests()) || !reflect.DeepEqual(dirSrc.Blobs(), tarSrc.Blobs()) {
		t.Errorf("tarball differs from the directory")
	}
	r, _ := tarSrc.Ref("multi")
	ims, err := tarSrc.Images(r.Descs)
	if err != nil || !reflect.DeepEqual(platforms(ims), []string{"linux_amd64", "linux_arm64_v8"}) {
		t.Fatalf("images %v %v", platforms(ims), err)
	}
	arch, err := tarSrc.Layer(context.Background(), ims[0].Manifest.Layers[0])
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range arch.Entries {
		names = append(names, e.Name)
	}
	if !reflect.DeepEqual(names, []string{"etc", "etc/a"}) {
		t.Errorf("layer entries %q", names)
	}
	// A digest traversal inside a tarball is refused too.
	var idx ocispec.Index
	json.Unmarshal(tarSrc.Files["index.json"], &idx)
	if _, _, err := tarSrc.Blob("sha256:../../index.json"); err == nil {
		t.Error("traversal read in a tarball")
	}
}
