package layout_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/layoutfs/layoutfs/layout"
)

// TestVerifyFixtures: every good real fixture verifies clean; the partial
// multi-platform layouts get notes, not errors; the broken one reports
// exactly its 2 bad digests and 2 wrong sizes.
func TestVerifyFixtures(t *testing.T) {
	ents, err := os.ReadDir(fixtures)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, "A-") && !strings.HasPrefix(name, "B-") && !strings.HasPrefix(name, "C-") {
			continue
		}
		n++
		t.Run(name, func(t *testing.T) {
			s, _ := openPath(t, filepath.Join(fixtures, name))
			rep := s.Verify(context.Background())
			if !rep.OK() {
				t.Errorf("problems: %v", rep.Problems)
			}
			if rep.Blobs == 0 || rep.Descriptors == 0 {
				t.Errorf("checked %d blobs, %d descriptors", rep.Blobs, rep.Descriptors)
			}
			notes := len(rep.Problems) - rep.Errors()
			if name == "B-orasgo-hello-world-containerd-export.tar" {
				if notes != 9 && notes != 10 {
					t.Errorf("%d notes, want one per absent platform: %v", notes, rep.Problems)
				}
				for _, p := range rep.Problems {
					if !strings.Contains(p.String(), "missing (partial layout)") {
						t.Errorf("note %q does not say missing (partial layout)", p)
					}
				}
			}
		})
	}
	if n < 14 {
		t.Errorf("only %d good fixtures found", n)
	}
}

func TestVerifyBadDigests(t *testing.T) {
	s, _ := openPath(t, filepath.Join(fixtures, "X-ocitools-aufs-whiteouts-BADDIGESTS"))
	rep := s.Verify(context.Background())
	if rep.OK() {
		t.Fatal("verified OK")
	}
	kinds := map[string][]string{}
	for _, p := range rep.Problems {
		kinds[p.Kind] = append(kinds[p.Kind], p.Blob)
	}
	want := map[string][]string{
		"digest": {"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "sha256:da55812559dec81445c289c3832cee4a2f725b15aeb258791640185c3126b2bf"},
		"size":   {"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "sha256:6c9c1b8d1adba535a40046b52c051cccf33d85f60827bd269c978fd95f05c3c9"},
	}
	if len(kinds) != 2 {
		t.Errorf("problems %v, want only digest and size ones", rep.Problems)
	}
	for k, blobs := range want {
		layout.SortProblems(rep.Problems)
		got := strings.Join(kinds[k], " ")
		for _, b := range blobs {
			if !strings.Contains(got, b) {
				t.Errorf("%s problems %v do not name %s", k, kinds[k], b)
			}
		}
		if len(kinds[k]) != 2 {
			t.Errorf("%d %s problems, want 2: %v", len(kinds[k]), k, kinds[k])
		}
	}
}

// TestVerifyCrafted: a missing layer, a wrong size, a layer that does not
// index and an unreachable corrupt blob are each reported, naming the blob.
func TestVerifyCrafted(t *testing.T) {
	l := newLayout(t)
	good := l.image(nil, "etc/", "etc/hostname")
	bad := l.blob("application/vnd.oci.image.layer.v1.tar", []byte("this is not a tar archive, not at all, no"))
	badIm := l.manifest(l.config(nil), bad)
	missing := l.manifest(l.config(nil), l.blob("application/vnd.oci.image.layer.v1.tar", []byte("gone")))
	l.top(ref(good, "good"), ref(badIm, "bad"), ref(missing, "missing"))
	gone := strings.TrimPrefix(missing.Digest.String(), "sha256:")
	_ = gone
	s, _ := l.open()
	// Remove the layer of "missing" and corrupt an unreferenced blob.
	var m struct {
		Layers []struct{ Digest string }
	}
	raw, _ := os.ReadFile(filepath.Join(l.dir, "blobs/sha256", missing.Digest.Encoded()))
	if err := jsonUnmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(l.dir, "blobs/sha256", strings.TrimPrefix(m.Layers[0].Digest, "sha256:")))
	stray := filepath.Join(l.dir, "blobs/sha256", strings.Repeat("ab", 32))
	os.WriteFile(stray, []byte("stray"), 0o644)
	rep := s.Verify(context.Background())
	text := ""
	for _, p := range rep.Problems {
		text += p.String() + "\n"
	}
	for _, want := range []string{
		"error: " + m.Layers[0].Digest + ": ",
		"error: " + bad.Digest.String() + ": tarindex",
		"error: blobs/sha256/" + strings.Repeat("ab", 32) + ": layout: digest mismatch",
		"via tags/bad",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q:\n%s", want, text)
		}
	}
	if rep.OK() {
		t.Error("verified OK")
	}
}
