package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/layoutfs/layoutfs/layout"
)

// TestWriteRealFixtures tags every real archive (a copy) and removes the
// tag again: layoutfs's own reader sees the tag come and go with every
// other reference and blob intact, and whatever skopeo could read in the
// original it still reads after each write (the new tag included).
func TestWriteRealFixtures(t *testing.T) {
	mntNeed(t, "skopeo", "gzip")
	ents, err := os.ReadDir(mntFixtures)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, "X-") || (!strings.HasPrefix(name, "A-") && !strings.HasPrefix(name, "B-") && !strings.HasPrefix(name, "C-")) {
			continue
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			src := filepath.Join(t.TempDir(), name)
			mntExec(t, "cp", "-r", mntFixture(t, name), src)
			mntExec(t, "chmod", "-R", "u+w", src)
			s, err := layout.Open(t.Context(), src, layout.Options{})
			if err != nil {
				t.Fatal(err)
			}
			var before []string
			for _, r := range s.Refs() {
				before = append(before, r.Name)
			}
			transport := "docker-archive"
			switch {
			case s.Kind == layout.KindLayoutDir:
				transport = "oci"
			case s.Kind == layout.KindOCIArchive:
				transport = "oci-archive"
			}
			peer := func(ref string) bool {
				p := src
				if strings.HasSuffix(name, ".gz") {
					p = filepath.Join(t.TempDir(), "plain.tar")
					out, err := exec.Command("gzip", "-dc", src).Output()
					if err != nil {
						t.Fatalf("gzip -dc: %v (a broken archive)", err)
					}
					os.WriteFile(p, out, 0o644)
				}
				return exec.Command("skopeo", "inspect", transport+":"+p+":"+ref).Run() == nil
			}
			target := ""
			if len(before) > 0 {
				target = before[0]
			} else {
				ms := s.Manifests()
				if len(ms) == 0 {
					t.Skip("no manifest to tag")
				}
				target = ms[0].Digest.String()
			}
			peerBefore := len(before) > 0 && peer(before[0])
			const tag = "example.com/written:1"
			mntRunOK(t, "tag", "--cache-dir", t.TempDir(), src, target, tag)
			after := wrRefNames(t, src)
			if want := slices.Sorted(slices.Values(append(slices.Clone(before), tag))); !slices.Equal(after, slices.Compact(want)) {
				t.Errorf("refs after tag: %v, want %v", after, want)
			}
			wrCheckBlobs(t, src, after)
			if peerBefore && (!peer(before[0]) || !peer(tag)) {
				t.Errorf("skopeo read %s before the write, not after", before[0])
			}
			mntRunOK(t, "untag", "--cache-dir", t.TempDir(), src, tag)
			if got := wrRefNames(t, src); !slices.Equal(got, before) {
				t.Errorf("refs after untag: %v, want %v", got, before)
			}
			wrCheckBlobs(t, src, before)
			if peerBefore && !peer(before[0]) {
				t.Errorf("skopeo read %s before the writes, not after", before[0])
			}
			t.Logf("%s: refs %v, skopeo reads it: %v", s.Kind, before, peerBefore)
		})
	}
}

func wrRefNames(t *testing.T, src string) []string {
	t.Helper()
	s, err := layout.Open(t.Context(), src, layout.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range s.Refs() {
		out = append(out, r.Name)
	}
	return out
}
