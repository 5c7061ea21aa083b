package layout_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/layoutfs/layoutfs/layout"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// rawIndex reads index.json as ordered raw members.
func rawIndex(t *testing.T, dir string) (keys []string, ents []json.RawMessage) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.Token()
	for dec.More() {
		k, _ := dec.Token()
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k.(string))
		if k == "manifests" {
			json.Unmarshal(v, &ents)
		}
	}
	return keys, ents
}

func entryOf(t *testing.T, raw json.RawMessage) ocispec.Descriptor {
	t.Helper()
	var d ocispec.Descriptor
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

func names(t *testing.T, ents []json.RawMessage) []string {
	var out []string
	for _, e := range ents {
		d := entryOf(t, e)
		out = append(out, d.Digest.Encoded()[:4]+"="+d.Annotations[ocispec.AnnotationRefName])
	}
	return out
}

// TestTagKeepsIndex: tag, move, rename and untag change only the entries
// they concern; unknown fields, the order of members and of entries stay;
// an untagged entry takes a name in place; a second name of a tagged
// descriptor is a new entry. The writes go through one Source opened at
// the start: each reads the current index.json, never the stale one.
func TestTagKeepsIndex(t *testing.T) {
	ctx := context.Background()
	l := newLayout(t)
	a := l.image(&ocispec.Platform{OS: "linux", Architecture: "amd64"}, "a")
	b := l.image(&ocispec.Platform{OS: "linux", Architecture: "arm64"}, "b")
	entA := fmt.Sprintf(`{"mediaType":%q,"digest":%q,"size":%d,"annotations":{"com.example.note":"n","org.opencontainers.image.ref.name":"a"},"x-extra":1}`, a.MediaType, a.Digest, a.Size)
	entB := fmt.Sprintf(`{"mediaType":%q,"digest":%q,"size":%d}`, b.MediaType, b.Digest, b.Size)
	l.write("index.json", []byte(`{"schemaVersion":2,"x-first":"keep me","manifests":[`+entA+`,`+entB+`],"annotations":{"org.example":"top"}}`))
	s, _ := l.open()
	A, B := a.Digest.Encoded()[:4], b.Digest.Encoded()[:4]

	if err := s.Tag(ctx, "a", "b"); err != nil {
		t.Fatal(err)
	}
	keys, ents := rawIndex(t, l.dir)
	if strings.Join(keys, ",") != "schemaVersion,x-first,manifests,annotations" {
		t.Errorf("members of index.json now %v", keys)
	}
	if string(ents[0]) != entA || string(ents[1]) != entB {
		t.Errorf("untouched entries changed:\n%s\n%s", ents[0], ents[1])
	}
	if got := names(t, ents); strings.Join(got, " ") != A+"=a "+B+"= "+A+"=b" {
		t.Errorf("after tag a b: %v", got)
	}
	if d := entryOf(t, ents[2]); d.Annotations["com.example.note"] != "n" || !strings.Contains(string(ents[2]), `"x-extra":1`) {
		t.Errorf("the new entry is not a copy of the one it names: %s", ents[2])
	}

	if err := s.Tag(ctx, b.Digest.String(), "c"); err != nil { // untagged: named in place
		t.Fatal(err)
	}
	_, ents = rawIndex(t, l.dir)
	if got := names(t, ents); strings.Join(got, " ") != A+"=a "+B+"=c "+A+"=b" {
		t.Errorf("after tag <digest> c: %v", got)
	}
	if err := s.Tag(ctx, "c", "a"); err != nil { // a moves to b's image
		t.Fatal(err)
	}
	_, ents = rawIndex(t, l.dir)
	if got := names(t, ents); strings.Join(got, " ") != B+"=c "+A+"=b "+B+"=a" {
		t.Errorf("after moving a: %v", got)
	}
	if err := s.Rename(ctx, "b", "d"); err != nil {
		t.Fatal(err)
	}
	_, ents = rawIndex(t, l.dir)
	if got := names(t, ents); strings.Join(got, " ") != B+"=c "+B+"=a "+A+"=d" {
		t.Errorf("after rename b d: %v", got)
	}
	if err := s.Untag(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(l.dir, "index.json"))
	for _, tc := range []struct {
		err  error
		call func() error
	}{
		{layout.ErrNotFound, func() error { return s.Untag(ctx, "a") }},
		{layout.ErrNotFound, func() error { return s.Tag(ctx, "nope", "x") }},
		{layout.ErrNotFound, func() error { return s.Tag(ctx, digest.FromString("nothing").String(), "x") }},
		{layout.ErrInvalid, func() error { return s.Tag(ctx, "c", "../escape") }},
		{layout.ErrNotFound, func() error { return s.Rename(ctx, "nope", "x") }},
	} {
		if err := tc.call(); !errors.Is(err, tc.err) {
			t.Errorf("got %v, want %v", err, tc.err)
		}
	}
	after, _ := os.ReadFile(filepath.Join(l.dir, "index.json"))
	if !bytes.Equal(before, after) {
		t.Errorf("a failed write changed index.json")
	}
	s2, _ := l.open()
	var refs []string
	for _, r := range s2.Refs() {
		refs = append(refs, r.Name)
	}
	if strings.Join(refs, " ") != "c d" {
		t.Errorf("refs now %v", refs)
	}
	if left, _ := filepath.Glob(filepath.Join(l.dir, ".*tmp*")); len(left) > 0 {
		t.Errorf("temporaries left: %v", left)
	}
}

// TestPutBlob: bytes that do not hash to the digest are refused and leave
// nothing behind; good ones land in blobs/<alg>/ read-only.
func TestPutBlob(t *testing.T) {
	ctx := context.Background()
	l := newLayout(t)
	l.top(ref(l.image(nil, "x"), "x"))
	s, _ := l.open()
	good := []byte("good bytes")
	d := digest.FromBytes(good)
	if err := s.PutBlob(ctx, d, bytes.NewReader([]byte("other bytes"))); !errors.Is(err, layout.ErrDigest) {
		t.Errorf("wrong bytes: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(l.dir, "blobs/sha256")); len(ents) != 3 {
		t.Errorf("blobs/sha256 holds %d files after a refused blob, want 3", len(ents))
	}
	if err := s.PutBlob(ctx, d, bytes.NewReader(good)); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(l.dir, "blobs/sha256", d.Encoded()))
	if err != nil || !bytes.Equal(b, good) {
		t.Errorf("blob: %q, %v", b, err)
	}
}

// TestGCGraph: gc keeps what index.json reaches through nested indexes,
// the subject of a kept manifest and referrers of a kept manifest that
// index.json does not list; it removes the rest, and --dry-run removes
// nothing.
func TestGCGraph(t *testing.T) {
	ctx := context.Background()
	l := newLayout(t)
	amd := plat(&ocispec.Platform{OS: "linux", Architecture: "amd64"}, l.image(nil, "amd"))
	arm := plat(&ocispec.Platform{OS: "linux", Architecture: "arm64"}, l.image(nil, "arm"))
	top := l.index(amd, arm)
	subjectOnly := l.image(nil, "subject") // reached only as a subject
	emptyCfg := l.blob("application/vnd.oci.empty.v1+json", []byte("{}"))
	sig := l.blob("application/vnd.example.sig", []byte("signature"))
	withSubject := l.blob(ocispec.MediaTypeImageManifest, mustJSON(t, ocispec.Manifest{
		Versioned: indexOf().Versioned, MediaType: ocispec.MediaTypeImageManifest,
		Config: emptyCfg, Layers: []ocispec.Descriptor{sig}, Subject: &subjectOnly,
	}))
	refLayer := l.blob("application/vnd.example.sbom", []byte("sbom of amd"))
	referrer := l.blob(ocispec.MediaTypeImageManifest, mustJSON(t, ocispec.Manifest{
		Versioned: indexOf().Versioned, MediaType: ocispec.MediaTypeImageManifest,
		Config: emptyCfg, Layers: []ocispec.Descriptor{refLayer}, Subject: &amd,
	}))
	orphan := l.image(nil, "orphan")
	l.top(ref(top, "multi"), ref(withSubject, "signed"))
	s, _ := l.open()
	g, err := s.GC(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	var removed []digest.Digest
	for _, x := range g {
		removed = append(removed, x.Digest)
	}
	// The orphan image: manifest, config, layer.
	if len(removed) != 3 {
		t.Fatalf("dry run lists %v, want the orphan image's 3 blobs", g)
	}
	for _, d := range []digest.Digest{top.Digest, amd.Digest, arm.Digest, subjectOnly.Digest, withSubject.Digest, sig.Digest, referrer.Digest, refLayer.Digest} {
		for _, r := range removed {
			if r == d {
				t.Errorf("%s would be removed", d)
			}
		}
	}
	found := false
	for _, r := range removed {
		found = found || r == orphan.Digest
	}
	if !found {
		t.Errorf("the orphan manifest is not garbage: %v", removed)
	}
	if _, err := os.Stat(filepath.Join(l.dir, "blobs/sha256", orphan.Digest.Encoded())); err != nil {
		t.Errorf("dry run removed: %v", err)
	}
	if _, err := s.GC(ctx, false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(l.dir, "blobs/sha256", orphan.Digest.Encoded())); !os.IsNotExist(err) {
		t.Errorf("orphan still there: %v", err)
	}
	if g, _ := s.GC(ctx, true); len(g) != 0 {
		t.Errorf("garbage after gc: %v", g)
	}
}

// TestGCRefusesUnreadable: a manifest that does not parse could reference
// anything, so gc removes nothing.
func TestGCRefusesUnreadable(t *testing.T) {
	l := newLayout(t)
	bad := l.blob(ocispec.MediaTypeImageManifest, []byte("{not json"))
	l.blob("application/octet-stream", []byte("maybe referenced"))
	l.top(ref(bad, "bad"))
	s, _ := l.open()
	if _, err := s.GC(context.Background(), false); err == nil {
		t.Fatal("gc went ahead past an unreadable manifest")
	}
}

// TestConcurrentTagsInProcess: goroutines tagging one layout through
// Sources of their own lose no tag.
func TestConcurrentTagsInProcess(t *testing.T) {
	ctx := context.Background()
	l := newLayout(t)
	l.top(ref(l.image(nil, "x"), "x"))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := layout.Open(ctx, l.dir, layout.Options{})
			if err != nil {
				t.Error(err)
				return
			}
			for i := range 10 {
				if err := s.Tag(ctx, "x", fmt.Sprintf("g%d-%d", g, i)); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	s, _ := l.open()
	if n := len(s.Refs()); n != 81 {
		t.Errorf("%d refs, want 81", n)
	}
}

// TestGCDryRunWritesNothing: a dry run only reads, not even a lock file
// is made beside the source (fixtures and read-only layouts stay as they
// are).
func TestGCDryRunWritesNothing(t *testing.T) {
	l := newLayout(t)
	l.top(ref(l.image(nil, "x"), "x"))
	l.image(nil, "orphan")
	list := func() []string {
		var out []string
		filepath.Walk(l.dir, func(p string, fi os.FileInfo, err error) error {
			out = append(out, p)
			return nil
		})
		return out
	}
	before := list()
	g, err := layout.OpenForWrite(l.dir, layout.Options{}).GC(context.Background(), true)
	if err != nil || len(g) != 3 {
		t.Fatalf("dry run: %v, %v", g, err)
	}
	if after := list(); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Errorf("a dry run changed the layout:\n%v\n%v", before, after)
	}
}

// TestWriteThroughSymlink: a tarball reached through a symbolic link is
// rewritten where the link points; the link stays a link.
func TestWriteThroughSymlink(t *testing.T) {
	l := newLayout(t)
	l.top(ref(l.image(nil, "x"), "x"))
	dir := t.TempDir()
	real := filepath.Join(dir, "real.tar")
	tarDir(t, l.dir, real)
	link := filepath.Join(dir, "link.tar")
	if err := os.Symlink("real.tar", link); err != nil {
		t.Fatal(err)
	}
	if err := layout.OpenForWrite(link, layout.Options{}).Tag(context.Background(), "x", "y"); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the link is gone: %v %v", fi, err)
	}
	s, _ := openPath(t, real)
	if _, ok := s.Ref("y"); !ok {
		t.Errorf("real.tar has no tag y: %v", s.Refs())
	}
}

// TestVersion: the version of a source changes with every write, and only
// then.
func TestVersion(t *testing.T) {
	l := newLayout(t)
	l.top(ref(l.image(nil, "x"), "x"))
	tarball := filepath.Join(t.TempDir(), "x.tar")
	tarDir(t, l.dir, tarball)
	for _, src := range []string{l.dir, tarball} {
		v1, err := layout.Version(src)
		if err != nil {
			t.Fatal(err)
		}
		if v2, _ := layout.Version(src); v2 != v1 {
			t.Errorf("%s: version moved without a write", src)
		}
		if err := layout.OpenForWrite(src, layout.Options{}).Tag(context.Background(), "x", "y"); err != nil {
			t.Fatal(err)
		}
		if v3, _ := layout.Version(src); v3 == v1 {
			t.Errorf("%s: same version after a write: %s", src, v3)
		}
	}
}

// TestTagIdempotent: tagging a name onto what it already names changes
// nothing, not even the order of index.json.
func TestTagIdempotent(t *testing.T) {
	l := newLayout(t)
	x := l.image(nil, "x")
	l.top(ref(x, "a"), ref(x, "b"))
	before, _ := os.ReadFile(filepath.Join(l.dir, "index.json"))
	s := layout.OpenForWrite(l.dir, layout.Options{})
	for _, target := range []string{"b", x.Digest.String()} {
		if err := s.Tag(context.Background(), target, "a"); err != nil {
			t.Fatal(err)
		}
	}
	if after, _ := os.ReadFile(filepath.Join(l.dir, "index.json")); !bytes.Equal(before, after) {
		t.Errorf("index.json changed:\n%s\n%s", before, after)
	}
}

// TestGCKeepsLinkTargets: in a tarball whose kept blob is a hard link to
// another member, gc keeps the member it links to.
func TestGCKeepsLinkTargets(t *testing.T) {
	l := newLayout(t)
	x := l.image(nil, "x")
	l.top(ref(x, "x"))
	// Move the manifest's bytes to an unreferenced name and make the
	// manifest's own path a hard link to it.
	orphanName := "blobs/sha256/" + strings.Repeat("0", 64)
	b, _ := os.ReadFile(filepath.Join(l.dir, "blobs/sha256", x.Digest.Encoded()))
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range []string{"oci-layout", "index.json"} {
		c, _ := os.ReadFile(filepath.Join(l.dir, name))
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(c)), Typeflag: tar.TypeReg})
		tw.Write(c)
	}
	ents, _ := os.ReadDir(filepath.Join(l.dir, "blobs/sha256"))
	for _, e := range ents {
		if e.Name() == x.Digest.Encoded() {
			continue
		}
		c, _ := os.ReadFile(filepath.Join(l.dir, "blobs/sha256", e.Name()))
		tw.WriteHeader(&tar.Header{Name: "blobs/sha256/" + e.Name(), Mode: 0o644, Size: int64(len(c)), Typeflag: tar.TypeReg})
		tw.Write(c)
	}
	tw.WriteHeader(&tar.Header{Name: orphanName, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg})
	tw.Write(b)
	tw.WriteHeader(&tar.Header{Name: "blobs/sha256/" + x.Digest.Encoded(), Linkname: orphanName, Typeflag: tar.TypeLink})
	tw.Close()
	src := filepath.Join(t.TempDir(), "linked.tar")
	os.WriteFile(src, buf.Bytes(), 0o644)
	g, err := layout.OpenForWrite(src, layout.Options{}).GC(context.Background(), false)
	if err != nil || len(g) != 0 {
		t.Fatalf("gc removed %v, %v", g, err)
	}
	s, _ := openPath(t, src)
	ims, err := s.Images(s.Index().Manifests)
	if err != nil || len(ims) != 1 {
		t.Fatalf("images after gc: %v, %v", ims, err)
	}
}
