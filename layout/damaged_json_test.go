package layout_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/layoutfs/layoutfs/internal/tartest"
	"github.com/layoutfs/layoutfs/layout"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// The Docker 25 fixture's image manifest, which its index.json does not
// list ("manifests": null) and its manifest.json reaches by config.
const v25Manifest = digest.Digest("sha256:411caf340c828657e915a83ed561a79d2b8150dabad4dc079d881cbfe6f86afe")

// A Docker 25.0.2+ index.json for the same save, which lists the image.
const v25TaggedIndex = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[` +
	`{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + string(v25Manifest) + `","size":447,` +
	`"annotations":{"io.containerd.image.name":"docker.io/library/hello-world:latest","org.opencontainers.image.ref.name":"latest"}}]}`

// rewriteFixture copies the real fixture name into a temporary tar,
// with the members of repl (a name to its new bytes) replaced.
func rewriteFixture(t *testing.T, name string, repl map[string][]byte) string {
	t.Helper()
	in, err := os.ReadFile(filepath.Join(fixtures, name))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(out, tartest.Replace(t, in, repl), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// truncated cuts a JSON file short, as a writer killed midway leaves it.
func truncated(t *testing.T, name, member string) []byte {
	t.Helper()
	b := fixtureMember(t, name, member)
	return b[:len(b)/2]
}

func fixtureMember(t *testing.T, name, member string) []byte {
	t.Helper()
	f, err := os.Open(filepath.Join(fixtures, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s: no %s: %v", name, member, err)
		}
		if h.Name == member {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
}

// checkServed: every ref and manifest resolves to images whose config
// reads and whose layers index.
func checkServed(t *testing.T, s *layout.Source) {
	t.Helper()
	var descs []ocispec.Descriptor
	for _, r := range s.Refs() {
		descs = append(descs, r.Descs...)
	}
	descs = append(descs, s.Manifests()...)
	for _, d := range descs {
		ims, err := s.Images([]ocispec.Descriptor{d})
		if err != nil || len(ims) == 0 {
			t.Errorf("images of %s: %v %v", d.Digest, ims, err)
			continue
		}
		for _, im := range ims {
			if _, err := s.Config(im); err != nil {
				t.Errorf("config of %s: %v", im.Desc.Digest, err)
			}
			for _, l := range im.Manifest.Layers {
				if _, err := s.Layer(context.Background(), l); err != nil {
					t.Errorf("layer %s of %s: %v", l.Digest, im.Desc.Digest, err)
				}
			}
		}
	}
}

// wantDamageReported: open warned about file (saying what is wrong), and
// Verify reports it as the one error.
func wantDamageReported(t *testing.T, s *layout.Source, w *warnings, file string) {
	t.Helper()
	if !w.has(file + " is malformed (unexpected end of JSON input)") {
		t.Errorf("no warning naming %s and what is wrong with it: %q", file, w.msgs)
	}
	rep := s.Verify(context.Background())
	if rep.OK() {
		t.Fatalf("Verify passes an archive whose %s is malformed: %+v", file, rep.Problems)
	}
	var errs []layout.Problem
	for _, p := range rep.Problems {
		if !p.Note {
			errs = append(errs, p)
		}
	}
	if len(errs) != 1 || errs[0].Blob != file || errs[0].Kind != "invalid" || !strings.Contains(errs[0].Message, "unexpected end of JSON input") {
		t.Errorf("Verify errors %+v, want one invalid %s", errs, file)
	}
}

func refNames(s *layout.Source) []string {
	var names []string
	for _, r := range s.Refs() {
		names = append(names, r.Name)
	}
	return names
}

// TestDocker25BadManifestJSON: a Docker 25+ save whose manifest.json is
// malformed opens from index.json, with a warning naming manifest.json,
// which is still served as found; Verify reports it.
func TestDocker25BadManifestJSON(t *testing.T) {
	for _, tc := range []struct {
		label  string
		name   string
		repl   map[string][]byte // besides the truncated manifest.json
		refs   []string
		images int // manifests reached
	}{
		{"docker 25.0.2 tagged", "B-ggcr-hello-world-docker-v25.tar", map[string][]byte{"index.json": []byte(v25TaggedIndex)}, []string{"latest"}, 1},
		// As Docker 25.0 wrote it: index.json reaches nothing, and
		// only the blobs are left to serve.
		{"docker 25.0 manifests null", "B-ggcr-hello-world-docker-v25.tar", nil, nil, 0},
		{"buildkit", "B-buildkit-docker-exporter.tar", nil, []string{"docker"}, 1},
		{"containerd index", "B-orasgo-hello-world-containerd-export.tar", nil, []string{"latest"}, 2},
	} {
		t.Run(tc.label, func(t *testing.T) {
			s, w, bad := openDamaged(t, tc.name, "manifest.json", tc.repl, tc.refs)
			if got := len(s.Manifests()); got != tc.images {
				t.Errorf("%d manifests, want %d", got, tc.images)
			}
			if !bytes.Equal(s.Files["manifest.json"], bad) {
				t.Errorf("manifest.json served as %q, want it as found", s.Files["manifest.json"])
			}
			if tc.repl == nil && !bytes.Equal(s.Files["index.json"], fixtureMember(t, tc.name, "index.json")) {
				t.Errorf("index.json served as %q, want it as found", s.Files["index.json"])
			}
			if len(s.Blobs()) == 0 {
				t.Error("no blobs served")
			}
			checkServed(t, s)
			wantDamageReported(t, s, w, "manifest.json")
		})
	}
}

// openDamaged opens the fixture name rewritten with its member truncated
// (and the members of extra replaced), as a Docker 25+ save whose refs are
// refs; bad is the truncated member as written.
func openDamaged(t *testing.T, name, member string, extra map[string][]byte, refs []string) (s *layout.Source, w *warnings, bad []byte) {
	t.Helper()
	bad = truncated(t, name, member)
	repl := map[string][]byte{member: bad}
	for k, v := range extra {
		repl[k] = v
	}
	s, w = openPath(t, rewriteFixture(t, name, repl))
	if s.Kind != layout.KindDockerSave {
		t.Errorf("kind %v", s.Kind)
	}
	if got := refNames(s); !reflect.DeepEqual(got, refs) {
		t.Errorf("refs %q, want %q", got, refs)
	}
	return s, w, bad
}

// TestDocker25BadIndexJSON: a Docker 25+ save whose index.json is
// malformed opens from manifest.json, as a legacy save does, with a
// warning naming index.json; the images are the save's own manifests,
// found by config, not ones made up. Verify reports index.json.
func TestDocker25BadIndexJSON(t *testing.T) {
	tagged := []byte(strings.Replace(string(fixtureMember(t, "B-ggcr-hello-world-docker-v25.tar", "manifest.json")), `"RepoTags":null`, `"RepoTags":["hello-world:latest"]`, 1))
	for _, tc := range []struct {
		label string
		name  string
		repl  map[string][]byte // besides the truncated index.json
		refs  []string
		image digest.Digest // what manifest.json's first entry is
	}{
		{"docker 25 untagged", "B-ggcr-hello-world-docker-v25.tar", nil, nil, v25Manifest},
		{"docker 25 tagged", "B-ggcr-hello-world-docker-v25.tar", map[string][]byte{"manifest.json": tagged}, []string{"hello-world:latest"}, v25Manifest},
		{"buildkit", "B-buildkit-docker-exporter.tar", nil, []string{"github.com/buildkit/archive:docker"}, "sha256:bc79dee9c249163d7dd55e3697ef90d0772220fda30e2f3fc4d007f60a368b11"},
		// The platform's manifest, not the list index.json named.
		{"containerd index", "B-orasgo-hello-world-containerd-export.tar", nil, []string{"hello-world:latest"}, "sha256:f54a58bc1aac5ea1a25d796ae155dc228b3f0e11d046ae276b39c4bf2f13d8c4"},
	} {
		t.Run(tc.label, func(t *testing.T) {
			s, w, _ := openDamaged(t, tc.name, "index.json", tc.repl, tc.refs)
			// index.json as served is synthesised from manifest.json, and
			// parses; oci-layout is the save's own.
			var idx ocispec.Index
			if err := jsonUnmarshal(s.Files["index.json"], &idx); err != nil || len(idx.Manifests) != 1 || idx.Manifests[0].Digest != tc.image {
				t.Errorf("index.json served: %s (%v), want it to list %s", s.Files["index.json"], err, tc.image)
			}
			if !reflect.DeepEqual(s.Index().Manifests, idx.Manifests) {
				t.Errorf("Index() %v, served index.json %v", s.Index().Manifests, idx.Manifests)
			}
			if !bytes.Equal(s.Files["oci-layout"], fixtureMember(t, tc.name, "oci-layout")) {
				t.Errorf("oci-layout served as %q", s.Files["oci-layout"])
			}
			var got []digest.Digest
			for _, d := range s.Manifests() {
				got = append(got, d.Digest)
			}
			if !slices.Contains(got, tc.image) {
				t.Errorf("Manifests() = %v, want it to hold %s", got, tc.image)
			}
			if _, _, err := s.Blob(tc.image); err != nil {
				t.Errorf("the save's own manifest: %v", err)
			}
			for _, r := range tc.refs {
				ref, _ := s.Ref(r)
				if len(ref.Descs) != 1 || ref.Descs[0].Digest != tc.image {
					t.Errorf("ref %q -> %v, want %s", r, ref.Descs, tc.image)
				}
			}
			checkServed(t, s)
			wantDamageReported(t, s, w, "index.json")
		})
	}
}

// TestDocker25BadIndexJSONDir: the same, unpacked into a directory.
func TestDocker25BadIndexJSONDir(t *testing.T) {
	dir := t.TempDir()
	f, err := os.Open(filepath.Join(fixtures, "B-orasgo-hello-world-containerd-export.tar"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		if h.Typeflag == tar.TypeDir {
			os.MkdirAll(p, 0o755)
			continue
		}
		b, _ := io.ReadAll(tr)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "index.json"), []byte(`{"schemaVersion":2,"manifests":[{"digest":`), 0o644); err != nil {
		t.Fatal(err)
	}
	s, w := openPath(t, dir)
	if got, want := refNames(s), []string{"hello-world:latest"}; !reflect.DeepEqual(got, want) {
		t.Errorf("refs %q, want %q", got, want)
	}
	checkServed(t, s)
	wantDamageReported(t, s, w, "index.json")
}

// TestDocker25BothJSONBad: with both files malformed there is nothing to
// serve from: the error names both.
func TestDocker25BothJSONBad(t *testing.T) {
	name := "B-orasgo-hello-world-containerd-export.tar"
	p := rewriteFixture(t, name, map[string][]byte{
		"index.json":    truncated(t, name, "index.json"),
		"manifest.json": []byte(`{"not":"a list"}`),
	})
	_, err := layout.Open(context.Background(), p, layout.Options{})
	if err == nil || !errors.Is(err, layout.ErrInvalid) {
		t.Fatalf("Open: %v, want ErrInvalid", err)
	}
	for _, sub := range []string{"index.json: unexpected end of JSON input", "manifest.json: json: cannot unmarshal object"} {
		if !strings.Contains(err.Error(), sub) {
			t.Errorf("error %q does not say %q", err, sub)
		}
	}
}

// TestOneJSONFileBad: a source with only one of index.json and
// manifest.json, malformed, still fails to open, naming it.
func TestOneJSONFileBad(t *testing.T) {
	for _, tc := range []struct{ name, member string }{
		{"A-containers-image-almostempty.tar", "manifest.json"},
		{"C-dive-oci-zstd.tar", "index.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := rewriteFixture(t, tc.name, map[string][]byte{tc.member: truncated(t, tc.name, tc.member)})
			_, err := layout.Open(context.Background(), p, layout.Options{})
			if !errors.Is(err, layout.ErrInvalid) || !strings.Contains(err.Error(), tc.member+": unexpected end of JSON input") {
				t.Errorf("Open: %v, want ErrInvalid naming %s", err, tc.member)
			}
		})
	}
}

// TestDocker25BadJSONRefusesWrites: what open served around is damage a
// write must not build on: a write (or GC's look at what it would remove)
// opens the source strictly, and fails naming the file, leaving the
// archive byte for byte as it is. The same writes on the save undamaged
// succeed, so it is the damage they refuse.
func TestDocker25BadJSONRefusesWrites(t *testing.T) {
	name := "B-ggcr-hello-world-docker-v25.tar"
	tagged := []byte(strings.Replace(string(fixtureMember(t, name, "manifest.json")), `"RepoTags":null`, `"RepoTags":["hello-world:latest"]`, 1))
	ctx := context.Background()
	ops := []struct {
		label string
		do    func(s *layout.Source) error
	}{
		{"tag", func(s *layout.Source) error { return s.Tag(ctx, string(v25Manifest), "new") }},
		{"untag", func(s *layout.Source) error { return s.Untag(ctx, "latest") }},
		{"gc", func(s *layout.Source) error { _, err := s.GC(ctx, false); return err }},
		{"gc dry run", func(s *layout.Source) error { _, err := s.GC(ctx, true); return err }},
	}
	for _, op := range ops {
		t.Run("undamaged/"+op.label, func(t *testing.T) {
			t.Parallel()
			p := rewriteFixture(t, name, map[string][]byte{"index.json": []byte(v25TaggedIndex), "manifest.json": tagged})
			s, _ := openPath(t, p)
			if err := op.do(s); err != nil {
				t.Errorf("%s on the undamaged save: %v", op.label, err)
			}
		})
	}
	var wg sync.WaitGroup
	for _, bad := range []struct {
		file string
		repl map[string][]byte
	}{
		{"index.json", map[string][]byte{"index.json": truncated(t, name, "index.json"), "manifest.json": tagged}},
		{"manifest.json", map[string][]byte{"index.json": []byte(v25TaggedIndex), "manifest.json": tagged[:len(tagged)/2]}},
	} {
		for _, op := range ops {
			// Each waits out the damage as it would a peer's rewrite in
			// place (2 s): all at once, however few CPUs -parallel allows.
			wg.Add(1)
			go t.Run(bad.file+"/"+op.label, func(t *testing.T) {
				defer wg.Done()
				p := rewriteFixture(t, name, bad.repl)
				before, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				s, _ := openPath(t, p) // served around the damage
				err = op.do(s)
				if !errors.Is(err, layout.ErrInvalid) || !strings.Contains(err.Error(), bad.file+": unexpected end of JSON input") {
					t.Errorf("%s: %v, want ErrInvalid naming %s", op.label, err, bad.file)
				}
				if after, _ := os.ReadFile(p); !bytes.Equal(before, after) {
					t.Error("the archive changed")
				}
				if ents, _ := os.ReadDir(filepath.Dir(p)); len(ents) != 1 {
					t.Errorf("left beside the archive: %v", ents)
				}
			})
		}
	}
	wg.Wait()
}

// TestDocker25StrictOpen: under Options.Strict, a Docker 25+ save with one
// malformed JSON file fails to open (ErrInvalid, naming it), where the
// default open serves it around the damage: what a caller that keeps its
// last good view (a live mount) needs while a peer rewrites index.json in
// place. A sound save opens the same either way.
func TestDocker25StrictOpen(t *testing.T) {
	name := "B-ggcr-hello-world-docker-v25.tar"
	ctx := context.Background()
	tagged := []byte(strings.Replace(string(fixtureMember(t, name, "manifest.json")), `"RepoTags":null`, `"RepoTags":["hello-world:latest"]`, 1))
	for _, tc := range []struct {
		file string
		repl map[string][]byte
	}{
		{"index.json", map[string][]byte{"index.json": truncated(t, name, "index.json"), "manifest.json": tagged}},
		{"manifest.json", map[string][]byte{"index.json": []byte(v25TaggedIndex), "manifest.json": tagged[:len(tagged)/2]}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			p := rewriteFixture(t, name, tc.repl)
			w := &warnings{}
			s, err := layout.Open(ctx, p, layout.Options{Warn: w.warn})
			if err != nil {
				t.Fatalf("Open: %v, want it served around %s", err, tc.file)
			}
			if len(s.Refs()) == 0 || !w.has(tc.file+" is malformed") {
				t.Errorf("lenient open: refs %q, warnings %q", refNames(s), w.msgs)
			}
			raw, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			for label, open := range map[string]func() (*layout.Source, error){
				"Open": func() (*layout.Source, error) {
					return layout.Open(ctx, p, layout.Options{Strict: true})
				},
				"OpenReaderAt": func() (*layout.Source, error) {
					return layout.OpenReaderAt(ctx, bytes.NewReader(raw), int64(len(raw)), p, layout.Options{Strict: true})
				},
			} {
				s, err := open()
				if s != nil || !errors.Is(err, layout.ErrInvalid) || !strings.Contains(err.Error(), tc.file+": unexpected end of JSON input") {
					t.Errorf("strict %s: %v, %v; want ErrInvalid naming %s", label, s, err, tc.file)
				}
			}
		})
	}
	p := rewriteFixture(t, name, map[string][]byte{"index.json": []byte(v25TaggedIndex), "manifest.json": tagged})
	s, err := layout.Open(ctx, p, layout.Options{Strict: true})
	if err != nil {
		t.Fatalf("strict Open of a sound save: %v", err)
	}
	if got, want := refNames(s), []string{"hello-world:latest", "latest"}; !reflect.DeepEqual(got, want) {
		t.Errorf("refs %q, want %q", got, want)
	}
}
