package layout_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/layoutfs/layoutfs/layout"
	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Helpers of the commit tests are prefixed "cm".

func cmFile(p, body string) layout.Change {
	return layout.Change{Path: p, Type: tar.TypeReg, Mode: 0o644, ModTime: time.Unix(1700000000, 0), Size: int64(len(body)),
		Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }}
}

func cmDir(p string) layout.Change {
	return layout.Change{Path: p, Type: tar.TypeDir, Mode: 0o755, ModTime: time.Unix(1700000000, 0)}
}

// cmChanges is a change set with one of each kind.
func cmChanges() []layout.Change {
	exe := cmFile("usr/bin/tool", "#!/bin/sh\necho hi\n")
	exe.Mode, exe.Uid, exe.Gid = 0o4755, 1000, 1001
	exe.ModTime = time.Unix(1700000000, 123456789)
	exe.Xattrs = map[string]string{"user.note": "hello", "security.capability": "\x01\x00\x00\x02"}
	opq := cmDir("var/cache")
	opq.Opaque = true
	return []layout.Change{
		cmDir("etc"),
		cmFile("etc/hostname", "box\n"),
		{Path: "etc/gone", Whiteout: true},
		{Path: "etc/-dash", Type: tar.TypeSymlink, Linkname: "../x", ModTime: time.Unix(1700000000, 0)},
		cmDir("usr"),
		cmDir("usr/bin"),
		exe,
		{Path: "usr/bin/tool-link", Type: tar.TypeLink, Linkname: "usr/bin/tool"},
		{Path: "usr/bin/a-first", Type: tar.TypeLink, Linkname: "usr/bin/tool-link"}, // sorts before its target, through a chain
		opq,
		cmFile("var/cache/new", "fresh"),
		{Path: "run/fifo", Type: tar.TypeFifo, Mode: 0o600},
		{Path: "dev/null2", Type: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3},
		{Path: "opt", Whiteout: true},
		cmFile("a-b", ""),
	}
}

func cmLayer(t *testing.T, changes []layout.Change) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := layout.WriteLayer(&buf, changes); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type cmEntry struct {
	hdr  *tar.Header
	body string
}

func cmRead(t *testing.T, b []byte) []cmEntry {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(b))
	var out []cmEntry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, cmEntry{h, string(body)})
	}
}

// TestWriteLayerOrderAndMarkers: entries come directory by directory, a
// directory before its contents, the opaque marker then the whiteouts
// first among siblings; hard links point at the first path of their group,
// which carries the file; markers are empty files of mtime 0.
func TestWriteLayerOrderAndMarkers(t *testing.T) {
	ents := cmRead(t, cmLayer(t, cmChanges()))
	var names []string
	for _, e := range ents {
		names = append(names, e.hdr.Name)
	}
	want := []string{
		"a-b",
		"dev/null2",
		"etc/",
		"etc/.wh.gone",
		"etc/-dash",
		"etc/hostname",
		".wh.opt",
		"run/fifo",
		"usr/",
		"usr/bin/",
		"usr/bin/a-first",
		"usr/bin/tool",
		"usr/bin/tool-link",
		"var/cache/",
		"var/cache/.wh..wh..opq",
		"var/cache/new",
	}
	// ".wh.opt" is a whiteout at the top: it comes before its siblings.
	want = append([]string{".wh.opt"}, slices.DeleteFunc(want, func(s string) bool { return s == ".wh.opt" })...)
	if !slices.Equal(names, want) {
		t.Fatalf("entries:\n got %q\nwant %q", names, want)
	}
	by := map[string]*cmEntry{}
	for i := range ents {
		by[ents[i].hdr.Name] = &ents[i]
	}
	for _, m := range []string{".wh.opt", "etc/.wh.gone", "var/cache/.wh..wh..opq"} {
		h := by[m].hdr
		if h.Typeflag != tar.TypeReg || h.Size != 0 || !h.ModTime.Equal(time.Unix(0, 0)) || h.Mode != 0 || h.Uid != 0 {
			t.Errorf("marker %s: %+v", m, h)
		}
	}
	first := by["usr/bin/a-first"]
	if first.hdr.Typeflag != tar.TypeReg || first.body != "#!/bin/sh\necho hi\n" || first.hdr.Mode != 0o4755 || first.hdr.Uid != 1000 || first.hdr.Gid != 1001 {
		t.Errorf("first path of the hard-link group does not carry the file: %+v", first.hdr)
	}
	if got := first.hdr.PAXRecords["SCHILY.xattr.user.note"]; got != "hello" {
		t.Errorf("xattr user.note = %q", got)
	}
	if got := first.hdr.PAXRecords["SCHILY.xattr.security.capability"]; got != "\x01\x00\x00\x02" {
		t.Errorf("xattr security.capability = %q", got)
	}
	if !first.hdr.ModTime.Equal(time.Unix(1700000000, 123456789)) {
		t.Errorf("mtime %v: nanoseconds lost", first.hdr.ModTime)
	}
	for _, n := range []string{"usr/bin/tool", "usr/bin/tool-link"} {
		if h := by[n].hdr; h.Typeflag != tar.TypeLink || h.Linkname != "usr/bin/a-first" {
			t.Errorf("%s: type %c -> %q, want a hard link to usr/bin/a-first", n, h.Typeflag, h.Linkname)
		}
	}
	if h := by["etc/-dash"].hdr; h.Typeflag != tar.TypeSymlink || h.Linkname != "../x" {
		t.Errorf("symlink: %+v", h)
	}
	if h := by["run/fifo"].hdr; h.Typeflag != tar.TypeFifo || h.Mode != 0o600 {
		t.Errorf("fifo: %+v", h)
	}
	if h := by["dev/null2"].hdr; h.Typeflag != tar.TypeChar || h.Devmajor != 1 || h.Devminor != 3 {
		t.Errorf("char device: %+v", h)
	}
	if h := by["a-b"].hdr; h.Typeflag != tar.TypeReg || h.Size != 0 {
		t.Errorf("empty file: %+v", h)
	}
	for _, e := range ents {
		h := e.hdr
		if h.Uname != "" || h.Gname != "" || !h.AccessTime.IsZero() || !h.ChangeTime.IsZero() {
			t.Errorf("%s: uname %q gname %q atime %v ctime %v", h.Name, h.Uname, h.Gname, h.AccessTime, h.ChangeTime)
		}
		for k := range h.PAXRecords {
			if !strings.HasPrefix(k, "SCHILY.xattr.") && k != "mtime" {
				t.Errorf("%s: PAX record %s", h.Name, k)
			}
		}
	}
}

// TestWriteLayerReproducible: the order of the changes does not matter;
// the bytes are the same every time.
func TestWriteLayerReproducible(t *testing.T) {
	want := cmLayer(t, cmChanges())
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 20; i++ {
		c := cmChanges()
		rng.Shuffle(len(c), func(a, b int) { c[a], c[b] = c[b], c[a] })
		if got := cmLayer(t, c); !bytes.Equal(got, want) {
			t.Fatalf("shuffle %d gave other bytes", i)
		}
	}
}

// TestWriteLayerInvalid: every malformed change set is an ErrInvalid
// error that names the change, before anything is written.
func TestWriteLayerInvalid(t *testing.T) {
	link := func(p, target string) layout.Change {
		return layout.Change{Path: p, Type: tar.TypeLink, Linkname: target}
	}
	opqFile := cmFile("f", "")
	opqFile.Opaque = true
	cases := map[string][]layout.Change{
		"empty path":           {cmFile("", "")},
		"dot":                  {cmDir(".")},
		"absolute":             {cmFile("/etc/x", "")},
		"dotdot":               {cmFile("a/../../x", "")},
		"dotdot clean":         {cmFile("../x", "")},
		"unclean":              {cmFile("a//b", "")},
		"trailing slash":       {cmDir("a/")},
		"nul":                  {cmFile("a\x00b", "")},
		"whiteout name":        {cmFile("a/.wh.b", "")},
		"opaque name":          {cmFile(".wh..wh..opq", "")},
		"whiteout of wh":       {{Path: "a/.wh.b", Whiteout: true}},
		"twice":                {cmFile("a", ""), cmDir("a")},
		"whiteout and file":    {cmFile("a", ""), {Path: "a", Whiteout: true}},
		"below whiteout":       {{Path: "a", Whiteout: true}, cmFile("a/b", "")},
		"below file":           {cmFile("a", "x"), cmFile("a/b", "")},
		"below symlink":        {{Path: "a", Type: tar.TypeSymlink, Linkname: "b"}, cmFile("a/b", "")},
		"link target absent":   {link("a", "b")},
		"link to whiteout":     {link("a", "b"), {Path: "b", Whiteout: true}},
		"link to dir":          {link("a", "d"), cmDir("d")},
		"link to itself":       {link("a", "a")},
		"link cycle":           {link("a", "b"), link("b", "a")},
		"bad type":             {{Path: "a", Type: tar.TypeXGlobalHeader}},
		"gnu type":             {{Path: "a", Type: tar.TypeGNULongName}},
		"mode type bits":       {{Path: "a", Type: tar.TypeReg, Mode: int64(os.ModeDir | 0o755)}},
		"negative uid":         {{Path: "a", Type: tar.TypeReg, Uid: -1}},
		"negative size":        {{Path: "a", Type: tar.TypeReg, Size: -1}},
		"size without content": {{Path: "a", Type: tar.TypeReg, Size: 3}},
		"symlink no target":    {{Path: "a", Type: tar.TypeSymlink}},
		"opaque file":          {opqFile},
		"opaque whiteout":      {{Path: "a", Whiteout: true, Opaque: true}},
		"xattr name":           {{Path: "a", Type: tar.TypeDir, Xattrs: map[string]string{"user.a=b": "x"}}},
		"device negative":      {{Path: "a", Type: tar.TypeChar, Devmajor: -1}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			err := layout.WriteLayer(&buf, c)
			if !errors.Is(err, layout.ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), "change ") {
				t.Errorf("the error does not name the change: %v", err)
			}
			if buf.Len() != 0 {
				t.Errorf("%d bytes written before the error", buf.Len())
			}
		})
	}
}

// TestWriteLayerLongNames: names and link targets too long or not ASCII
// for USTAR go in PAX records, and read back as given.
func TestWriteLayerLongNames(t *testing.T) {
	long := strings.Repeat("d/", 80) + "file"
	changes := []layout.Change{
		cmFile(long, "deep"),
		cmFile("日本語/ファイル", "utf-8"),
		{Path: "l", Type: tar.TypeSymlink, Linkname: strings.Repeat("../", 60) + "target"},
		{Path: "big-ids", Type: tar.TypeReg, Uid: 1 << 30, Gid: 1 << 30},
	}
	got := map[string]*tar.Header{}
	for _, e := range cmRead(t, cmLayer(t, changes)) {
		got[e.hdr.Name] = e.hdr
	}
	for _, c := range changes {
		h, ok := got[c.Path]
		if !ok {
			t.Errorf("%s: missing; have %v", c.Path, slices.Collect(maps.Keys(got)))
			continue
		}
		if h.Linkname != c.Linkname || h.Uid != c.Uid || h.Gid != c.Gid {
			t.Errorf("%s: %+v", c.Path, h)
		}
	}
}

// TestWriteLayerContentSize: content shorter or longer than Size, or an
// Open that fails, is an error naming the entry.
func TestWriteLayerContentSize(t *testing.T) {
	short := cmFile("a", "abc")
	short.Size = 4
	long := cmFile("a", "abc")
	long.Size = 2
	failing := cmFile("a", "abc")
	failing.Open = func() (io.ReadCloser, error) { return nil, os.ErrPermission }
	for name, c := range map[string]layout.Change{"short": short, "long": long, "open": failing} {
		err := layout.WriteLayer(io.Discard, []layout.Change{c})
		if err == nil || !strings.Contains(err.Error(), "layer entry a") {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	if err := layout.WriteLayer(io.Discard, []layout.Change{{Path: "empty", Type: 0, Mode: 0o600}}); err != nil {
		t.Errorf("an empty regular file of type 0 without Open: %v", err)
	}
}

// cmImage is what a test reads back of the image a name points at.
type cmImage struct {
	top      ocispec.Descriptor
	index    *ocispec.Index
	manifest ocispec.Manifest
	rawMan   []byte
	config   ocispec.Image
	rawCfg   []byte
}

func cmOpenImage(t *testing.T, src, name, platform string) (*layout.Source, cmImage) {
	t.Helper()
	s, _ := openPath(t, src)
	r, ok := s.Ref(name)
	if !ok {
		t.Fatalf("%s: no reference %s (refs %v)", src, name, s.Refs())
	}
	var out cmImage
	out.top = r.Descs[0]
	if n, err := s.Resolve(r.Descs[0]); err == nil && n.Index != nil {
		out.index = n.Index
	}
	ims, err := s.Images(r.Descs)
	if err != nil {
		t.Fatal(err)
	}
	for _, im := range ims {
		if im.Platform == platform || platform == "" {
			out.manifest, out.rawMan = *im.Manifest, im.Raw
			raw, err := s.Config(im)
			if err != nil {
				t.Fatal(err)
			}
			out.rawCfg = raw
			if err := json.Unmarshal(raw, &out.config); err != nil {
				t.Fatal(err)
			}
			return s, out
		}
	}
	t.Fatalf("%s: no platform %s", name, platform)
	return nil, out
}

// cmLayerTar reads a layer blob and returns its tar bytes.
func cmLayerTar(t *testing.T, s *layout.Source, d ocispec.Descriptor) []byte {
	t.Helper()
	r, size, err := s.Blob(d.Digest)
	if err != nil {
		t.Fatal(err)
	}
	raw := readAt(t, r, size)
	if got := digest.FromBytes(raw); got != d.Digest || int64(len(raw)) != d.Size {
		t.Fatalf("layer blob hashes to %s (%d bytes), descriptor says %s (%d)", got, len(raw), d.Digest, d.Size)
	}
	switch {
	case strings.HasSuffix(d.MediaType, "gzip"):
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		if zr.Name != "" || !zr.ModTime.IsZero() {
			t.Errorf("gzip header has name %q mtime %v", zr.Name, zr.ModTime)
		}
		b, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		return b
	case strings.HasSuffix(d.MediaType, "zstd"):
		zr, err := zstd.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		b, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	return raw
}

// TestCommitLayoutDir: a commit on an OCI layout appends a layer of the
// media type of its compression, its diff_id and a history entry, sets
// created, and moves the reference; the old image stays as it was.
func TestCommitLayoutDir(t *testing.T) {
	created := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	for _, tc := range []struct{ comp, mediaType string }{
		{"", ocispec.MediaTypeImageLayerGzip},
		{"gzip", ocispec.MediaTypeImageLayerGzip},
		{"zstd", ocispec.MediaTypeImageLayerZstd},
		{"none", ocispec.MediaTypeImageLayer},
	} {
		t.Run("comp="+tc.comp, func(t *testing.T) {
			l := newLayout(t)
			old := l.image(amd64, "base")
			l.top(ref(old, "v1"))
			s, _ := l.open()
			d, err := s.Commit(context.Background(), "v1", "", cmChanges(), layout.CommitOptions{Compression: tc.comp, Message: "patch", Created: created})
			if err != nil {
				t.Fatal(err)
			}
			s2, im := cmOpenImage(t, l.dir, "v1", "linux_amd64")
			if im.top.Digest != d.Digest || d.MediaType != ocispec.MediaTypeImageManifest {
				t.Errorf("v1 -> %s, Commit returned %+v", im.top.Digest, d)
			}
			if n := len(im.manifest.Layers); n != 2 {
				t.Fatalf("%d layers", n)
			}
			nl := im.manifest.Layers[1]
			if nl.MediaType != tc.mediaType {
				t.Errorf("layer media type %s, want %s", nl.MediaType, tc.mediaType)
			}
			tarBytes := cmLayerTar(t, s2, nl)
			if !bytes.Equal(tarBytes, cmLayer(t, cmChanges())) {
				t.Errorf("the layer is not WriteLayer's tar")
			}
			ids := im.config.RootFS.DiffIDs
			if len(ids) != 2 || ids[1] != digest.FromBytes(tarBytes) {
				t.Errorf("diff_ids %v, want the old one plus %s", ids, digest.FromBytes(tarBytes))
			}
			if im.config.Created == nil || !im.config.Created.Equal(created) {
				t.Errorf("created %v", im.config.Created)
			}
			if h := im.config.History; len(h) != 1 || h[0].Comment != "patch" || h[0].CreatedBy != "layoutfs commit" || !h[0].Created.Equal(created) {
				t.Errorf("history %+v", h)
			}
			if im.config.Architecture != "amd64" || im.config.OS != "linux" {
				t.Errorf("config lost its platform: %s", im.rawCfg)
			}
			// The old image is untouched and still there.
			if _, _, err := s2.Blob(old.Digest); err != nil {
				t.Errorf("old manifest: %v", err)
			}
		})
	}
}

// TestCommitKeepsUnknownFields: the new config and manifest keep what
// commit does not know, in its order.
func TestCommitKeepsUnknownFields(t *testing.T) {
	l := newLayout(t)
	layer := l.blob(ocispec.MediaTypeImageLayer, tarOf(t, "x"))
	cfg := l.blob(ocispec.MediaTypeImageConfig, []byte(`{"x-first":1,"architecture":"amd64","os":"linux","config":{"Env":["A=b"]},"rootfs":{"type":"layers","diff_ids":["`+layer.Digest.String()+`"]},"history":[{"created_by":"base"}],"x-last":{"k":"v"}}`))
	man := l.blob(ocispec.MediaTypeImageManifest, []byte(`{"schemaVersion":2,"mediaType":"`+ocispec.MediaTypeImageManifest+`","config":{"mediaType":"`+ocispec.MediaTypeImageConfig+`","digest":"`+cfg.Digest.String()+`","size":`+itoa(cfg.Size)+`},"layers":[{"mediaType":"`+layer.MediaType+`","digest":"`+layer.Digest.String()+`","size":`+itoa(layer.Size)+`}],"annotations":{"a":"b"}}`))
	l.top(ref(man, "v1"))
	s, _ := l.open()
	if _, err := s.Commit(context.Background(), "v1", "", []layout.Change{cmFile("f", "x")}, layout.CommitOptions{Created: time.Unix(1, 0)}); err != nil {
		t.Fatal(err)
	}
	_, im := cmOpenImage(t, l.dir, "v1", "")
	var keys []string
	dec := json.NewDecoder(bytes.NewReader(im.rawCfg))
	dec.Token()
	for dec.More() {
		k, _ := dec.Token()
		keys = append(keys, k.(string))
		var v json.RawMessage
		dec.Decode(&v)
	}
	if got := strings.Join(keys, ","); got != "x-first,architecture,os,config,rootfs,history,x-last,created" {
		t.Errorf("config members %s", got)
	}
	if im.config.Config.Env[0] != "A=b" || len(im.config.History) != 2 || im.config.History[0].CreatedBy != "base" {
		t.Errorf("config %s", im.rawCfg)
	}
	if im.manifest.Annotations["a"] != "b" {
		t.Errorf("manifest %s", im.rawMan)
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

// cmDockerImage stores a docker schema 2 image (docker media types) with
// one gzip layer.
func cmDockerImage(t *testing.T, l *dirLayout, p *ocispec.Platform) ocispec.Descriptor {
	t.Helper()
	raw := tarOf(t, "base")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw)
	zw.Close()
	layer := l.blob("application/vnd.docker.image.rootfs.diff.tar.gzip", gz.Bytes())
	cfg := ocispec.Image{Platform: *p, RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromBytes(raw)}}}
	cd := l.blob("application/vnd.docker.container.image.v1+json", mustJSON(t, cfg))
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: "application/vnd.docker.distribution.manifest.v2+json", Config: cd, Layers: []ocispec.Descriptor{layer}}
	return l.blob(m.MediaType, mustJSON(t, m))
}

// TestCommitDockerMediaTypes: a docker schema 2 manifest gets a docker
// layer type; zstd, which docker schema 2 cannot name, is refused.
func TestCommitDockerMediaTypes(t *testing.T) {
	for _, tc := range []struct{ comp, mediaType string }{
		{"gzip", "application/vnd.docker.image.rootfs.diff.tar.gzip"},
		{"none", "application/vnd.docker.image.rootfs.diff.tar"},
		{"zstd", ""},
	} {
		t.Run(tc.comp, func(t *testing.T) {
			l := newLayout(t)
			m := cmDockerImage(t, l, amd64)
			l.top(ref(m, "v1"))
			s, _ := l.open()
			_, err := s.Commit(context.Background(), "v1", "linux_amd64", []layout.Change{cmFile("f", "x")}, layout.CommitOptions{Compression: tc.comp})
			if tc.mediaType == "" {
				if !errors.Is(err, layout.ErrUnsupported) || !strings.Contains(err.Error(), "docker schema 2") {
					t.Fatalf("err = %v, want ErrUnsupported", err)
				}
				if _, im := cmOpenImage(t, l.dir, "v1", ""); len(im.manifest.Layers) != 1 {
					t.Errorf("a refused commit changed the image")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			s2, im := cmOpenImage(t, l.dir, "v1", "")
			if im.manifest.MediaType != "application/vnd.docker.distribution.manifest.v2+json" || im.manifest.Config.MediaType != "application/vnd.docker.container.image.v1+json" {
				t.Errorf("manifest %s", im.rawMan)
			}
			if got := im.manifest.Layers[1].MediaType; got != tc.mediaType {
				t.Errorf("layer media type %s, want %s", got, tc.mediaType)
			}
			cmLayerTar(t, s2, im.manifest.Layers[1])
		})
	}
}

// TestCommitIndexKeepsOtherPlatforms: under a ref that names an index
// (nested, here), only the committed platform's entry is replaced, in
// every index along the way; the other platforms stay byte for byte; an
// attestation of the old image goes, one of another image stays.
func TestCommitIndexKeepsOtherPlatforms(t *testing.T) {
	l := newLayout(t)
	arm := &ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
	a := plat(amd64, l.image(amd64, "a"))
	b := plat(arm, l.image(arm, "b"))
	unknown := &ocispec.Platform{OS: "unknown", Architecture: "unknown"}
	att := func(of ocispec.Descriptor) ocispec.Descriptor {
		d := plat(unknown, l.manifest(l.config(nil)))
		d.Annotations = map[string]string{"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": of.Digest.String()}
		return d
	}
	attA, attB := att(a), att(b)
	inner := l.index(a, b, attA, attB)
	other := l.image(amd64, "other") // a second top entry of the same name
	outer := l.index(inner)
	l.top(ref(outer, "multi"), ref(other, "single"))
	s, _ := l.open()
	before, _ := s.Images([]ocispec.Descriptor{outer})
	var names []string
	for _, im := range before {
		names = append(names, im.Platform)
	}
	if _, err := s.Commit(context.Background(), "multi", "", nil, layout.CommitOptions{}); !errors.Is(err, layout.ErrInvalid) || !strings.Contains(err.Error(), "linux_amd64") {
		t.Errorf("no platform under an index: err = %v (platforms %v)", err, names)
	}
	if _, err := s.Commit(context.Background(), "multi", "linux_s390x", nil, layout.CommitOptions{}); !layout.IsNotFound(err) {
		t.Errorf("an absent platform: err = %v", err)
	}
	d, err := s.Commit(context.Background(), "multi", "linux_arm64_v8", []layout.Change{cmFile("f", "x")}, layout.CommitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := openPath(t, l.dir)
	r, _ := s2.Ref("multi")
	if len(r.Descs) != 1 || r.Descs[0].Digest != d.Digest || d.MediaType != ocispec.MediaTypeImageIndex {
		t.Fatalf("multi -> %+v, Commit returned %+v", r.Descs, d)
	}
	n, err := s2.Resolve(d)
	if err != nil {
		t.Fatal(err)
	}
	if len(n.Index.Manifests) != 1 || n.Index.Manifests[0].Digest == inner.Digest {
		t.Fatalf("outer index %s", n.Raw)
	}
	n2, err := s2.Resolve(n.Index.Manifests[0])
	if err != nil {
		t.Fatal(err)
	}
	got := n2.Index.Manifests
	if len(got) != 3 {
		t.Fatalf("inner index %s", n2.Raw)
	}
	if got[0].Digest != a.Digest || got[2].Digest != attA.Digest {
		t.Errorf("amd64 or its attestation changed: %s", n2.Raw)
	}
	if got[1].Digest == b.Digest || got[1].Platform == nil || got[1].Platform.Architecture != "arm64" || got[1].Platform.Variant != "v8" {
		t.Errorf("arm64 entry not replaced, or lost its platform: %s", n2.Raw)
	}
	ims, _ := s2.Images(r.Descs)
	for _, im := range ims {
		want := 1
		if im.Platform == "linux_arm64_v8" {
			want = 2
		}
		if im.Platform != "unknown_unknown" && len(im.Manifest.Layers) != want {
			t.Errorf("%s: %d layers, want %d", im.Platform, len(im.Manifest.Layers), want)
		}
	}
	if r, _ := s2.Ref("single"); r.Descs[0].Digest != other.Digest {
		t.Errorf("another ref moved")
	}
}

// TestCommitNameOnSeveralDescriptors: a name given to one descriptor per
// platform keeps pointing at all of them, the committed one replaced.
func TestCommitNameOnSeveralDescriptors(t *testing.T) {
	l := newLayout(t)
	arm := &ocispec.Platform{OS: "linux", Architecture: "arm64"}
	a := plat(amd64, l.image(amd64, "a"))
	b := plat(arm, l.image(arm, "b"))
	l.top(ref(a, "v1"), ref(b, "v1"))
	s, _ := l.open()
	d, err := s.Commit(context.Background(), "v1", "linux_amd64", []layout.Change{cmFile("f", "x")}, layout.CommitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := openPath(t, l.dir)
	r, _ := s2.Ref("v1")
	var got []digest.Digest
	for _, x := range r.Descs {
		got = append(got, x.Digest)
	}
	if len(got) != 2 || !slices.Contains(got, d.Digest) || !slices.Contains(got, b.Digest) {
		t.Errorf("v1 -> %v, want %s and %s", got, d.Digest, b.Digest)
	}
	if d.Platform == nil || d.Platform.Architecture != "amd64" {
		t.Errorf("the new descriptor lost its platform: %+v", d)
	}
}

// TestCommitTag: with a Tag the new image gets that name and the ref
// stays; a digest can be committed only with a Tag.
func TestCommitTag(t *testing.T) {
	l := newLayout(t)
	old := l.image(amd64, "base")
	l.top(ref(old, "v1"))
	s, _ := l.open()
	ctx := context.Background()
	d, err := s.Commit(ctx, "v1", "", []layout.Change{cmFile("f", "x")}, layout.CommitOptions{Tag: "v2"})
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := openPath(t, l.dir)
	if r, _ := s2.Ref("v1"); r.Descs[0].Digest != old.Digest {
		t.Errorf("v1 moved")
	}
	if r, _ := s2.Ref("v2"); r.Descs[0].Digest != d.Digest {
		t.Errorf("v2 -> %v", r.Descs)
	}
	if _, err := s2.Commit(ctx, old.Digest.String(), "", nil, layout.CommitOptions{}); !errors.Is(err, layout.ErrInvalid) {
		t.Errorf("commit of a digest without a tag: %v", err)
	}
	if _, err := s2.Commit(ctx, old.Digest.String(), "", nil, layout.CommitOptions{Tag: "v3"}); err != nil {
		t.Errorf("commit of a digest with a tag: %v", err)
	}
	if _, err := s2.Commit(ctx, "absent", "", nil, layout.CommitOptions{}); !layout.IsNotFound(err) {
		t.Errorf("absent ref: %v", err)
	}
	if _, err := s2.Commit(ctx, "v1", "", nil, layout.CommitOptions{Tag: "../x"}); !errors.Is(err, layout.ErrInvalid) {
		t.Errorf("unsafe tag: %v", err)
	}
	if _, err := s2.Commit(ctx, "v1", "", nil, layout.CommitOptions{Compression: "xz"}); !errors.Is(err, layout.ErrInvalid) {
		t.Errorf("compression xz: %v", err)
	}
	if _, err := s2.Commit(ctx, "v1", "", []layout.Change{cmFile("/abs", "")}, layout.CommitOptions{}); !errors.Is(err, layout.ErrInvalid) || !strings.HasPrefix(err.Error(), "commit v1 in ") {
		t.Errorf("invalid change: %v", err)
	}
}

// TestCommitConflict: a ref moved by another writer after the commit
// read it is not overwritten; with a Tag, the commit goes through. A Base
// that is not the image the ref names is a conflict too.
func TestCommitConflict(t *testing.T) {
	l := newLayout(t)
	a := l.image(amd64, "a")
	b := l.image(amd64, "b")
	l.top(ref(a, "v1"), ref(b, "other"))
	s, _ := l.open()
	ctx := context.Background()
	if err := layout.OpenForWrite(l.dir, layout.Options{}).Tag(ctx, "other", "v1"); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(l.dir, "index.json"))
	_, err := s.Commit(ctx, "v1", "", []layout.Change{cmFile("f", "x")}, layout.CommitOptions{})
	if !errors.Is(err, layout.ErrConflict) {
		t.Fatalf("err = %v, want ErrConflict", err)
	}
	after, _ := os.ReadFile(filepath.Join(l.dir, "index.json"))
	if !bytes.Equal(before, after) {
		t.Errorf("a refused commit changed index.json")
	}
	if _, err := s.Commit(ctx, "v1", "", []layout.Change{cmFile("f", "x")}, layout.CommitOptions{Tag: "v1-patched"}); err != nil {
		t.Errorf("with a tag: %v", err)
	}
	// Base: the changes were made on a, and v1 now names b.
	s2, _ := l.open()
	if _, err := s2.Commit(ctx, "v1", "", []layout.Change{cmFile("f", "x")}, layout.CommitOptions{Base: a.Digest}); !errors.Is(err, layout.ErrConflict) {
		t.Errorf("Base %s on v1 -> %s: err = %v", a.Digest, b.Digest, err)
	}
	if _, err := s2.Commit(ctx, "v1", "", []layout.Change{cmFile("f", "x")}, layout.CommitOptions{Base: b.Digest}); err != nil {
		t.Errorf("Base %s on v1 -> %s: %v", b.Digest, b.Digest, err)
	}
}

// TestCommitReproducible: the same changes on two copies, at different
// times, give the same layer (and diff_id); SOURCE_DATE_EPOCH fixes the
// created time, so then the whole image is the same.
func TestCommitReproducible(t *testing.T) {
	build := func() string {
		l := newLayout(t)
		l.top(ref(l.image(amd64, "base"), "v1"))
		return l.dir
	}
	commit := func(dir string, o layout.CommitOptions) (ocispec.Descriptor, cmImage) {
		s, _ := openPath(t, dir)
		d, err := s.Commit(context.Background(), "v1", "", cmChanges(), o)
		if err != nil {
			t.Fatal(err)
		}
		_, im := cmOpenImage(t, dir, "v1", "")
		return d, im
	}
	for _, comp := range []string{"gzip", "zstd", "none"} {
		_, a := commit(build(), layout.CommitOptions{Compression: comp, Created: time.Unix(100, 0)})
		_, b := commit(build(), layout.CommitOptions{Compression: comp, Created: time.Unix(200, 0)})
		if a.manifest.Layers[1].Digest != b.manifest.Layers[1].Digest {
			t.Errorf("%s: layer %s, then %s", comp, a.manifest.Layers[1].Digest, b.manifest.Layers[1].Digest)
		}
		if a.config.RootFS.DiffIDs[1] != b.config.RootFS.DiffIDs[1] {
			t.Errorf("%s: diff_ids differ", comp)
		}
	}
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	da, a := commit(build(), layout.CommitOptions{})
	db, _ := commit(build(), layout.CommitOptions{})
	if da.Digest != db.Digest {
		t.Errorf("with SOURCE_DATE_EPOCH: %s, then %s", da.Digest, db.Digest)
	}
	if !a.config.Created.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("created %v", a.config.Created)
	}
	t.Setenv("SOURCE_DATE_EPOCH", "yesterday")
	s, _ := openPath(t, build())
	if _, err := s.Commit(context.Background(), "v1", "", nil, layout.CommitOptions{}); !errors.Is(err, layout.ErrInvalid) {
		t.Errorf("bad SOURCE_DATE_EPOCH: %v", err)
	}
}

// TestCommitLegacyDockerSave: a legacy docker save cannot take a new
// image; the error says why, and nothing changes.
func TestCommitLegacyDockerSave(t *testing.T) {
	src := copyFixture(t, "A-containers-image-almostempty.tar")
	before, _ := os.ReadFile(src)
	s, _ := openPath(t, src)
	name := s.Refs()[0].Name
	_, err := s.Commit(context.Background(), name, "", []layout.Change{cmFile("f", "x")}, layout.CommitOptions{})
	if !errors.Is(err, layout.ErrUnsupported) || !strings.Contains(err.Error(), "legacy docker save") {
		t.Fatalf("err = %v", err)
	}
	after, _ := os.ReadFile(src)
	if !bytes.Equal(before, after) {
		t.Errorf("the save changed")
	}
}

// TestCommitDocker25Save: a commit in a Docker 25+ save tagged repo:tag
// gets a manifest.json entry, so docker load and skopeo's docker-archive
// see it; the tarball keeps its shape.
func TestCommitDocker25Save(t *testing.T) {
	src := copyFixture(t, "B-buildkit-docker-exporter.tar")
	s, _ := openPath(t, src)
	const name = "github.com/buildkit/archive:docker"
	d, err := s.Commit(context.Background(), name, "", []layout.Change{cmFile("hello", "hi\n")}, layout.CommitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s2, im := cmOpenImage(t, src, name, "")
	if im.top.Digest != d.Digest || len(im.manifest.Layers) != 1 || im.manifest.Layers[0].MediaType != "application/vnd.docker.image.rootfs.diff.tar.gzip" {
		t.Fatalf("%s -> %s: %s", name, im.top.Digest, im.rawMan)
	}
	var entries []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(s2.Files["manifest.json"], &entries); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range entries {
		if slices.Contains(e.RepoTags, name) {
			found = true
			if e.Config != "blobs/sha256/"+im.manifest.Config.Digest.Encoded() || len(e.Layers) != 1 || e.Layers[0] != "blobs/sha256/"+im.manifest.Layers[0].Digest.Encoded() {
				t.Errorf("manifest.json entry %+v", e)
			}
		}
	}
	if !found {
		t.Errorf("manifest.json has no entry tagged %s: %s", name, s2.Files["manifest.json"])
	}
	if r, ok := s2.Ref("docker"); !ok || r.Descs[0].Digest == d.Digest {
		t.Errorf("the bare name docker moved too: %+v", r)
	}
}

// TestCommitDocker25Untagged: the untagged Docker 25.0 save (index.json
// "manifests": null) is committed by digest, under a new repo:tag.
func TestCommitDocker25Untagged(t *testing.T) {
	src := copyFixture(t, "B-ggcr-hello-world-docker-v25.tar")
	s, _ := openPath(t, src)
	ms := s.Manifests()
	if len(ms) != 1 {
		t.Fatalf("%d manifests", len(ms))
	}
	const name = "example.com/hello:patched"
	d, err := s.Commit(context.Background(), ms[0].Digest.String(), "", []layout.Change{cmFile("patched", "yes\n")}, layout.CommitOptions{Tag: name})
	if err != nil {
		t.Fatal(err)
	}
	s2, im := cmOpenImage(t, src, name, "")
	if im.top.Digest != d.Digest || len(im.manifest.Layers) != 2 {
		t.Fatalf("%s -> %s: %s", name, im.top.Digest, im.rawMan)
	}
	if !strings.Contains(string(s2.Files["manifest.json"]), `"RepoTags":["`+name+`"]`) {
		t.Errorf("manifest.json: %s", s2.Files["manifest.json"])
	}
	for _, l := range im.manifest.Layers {
		cmLayerTar(t, s2, l)
	}
}
