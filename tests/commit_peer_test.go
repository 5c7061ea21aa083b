package tests

// End-to-end tests of layout.Commit with the peers as judges: umoci
// unpacks the committed image, which must be the lower image with the
// changes applied (as the test applies them to umoci's unpack of the
// lower image); skopeo copies it to docker-archive and oci-archive. Helpers
// are prefixed "cmt".

import (
	"archive/tar"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/layoutfs/layoutfs/layout"
	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
)

// cmtBaseLayout builds, with umoci, a layout holding one image tagged "t"
// with something to modify, delete and replace: the write tests' base
// image with a second layer.
func cmtBaseLayout(t *testing.T) string {
	t.Helper()
	l := wrBaseLayout(t)
	bundle := filepath.Join(t.TempDir(), "bundle")
	mntExec(t, "umoci", "unpack", "--image", l+":t", bundle)
	root := filepath.Join(bundle, "rootfs")
	for p, body := range map[string]string{
		"etc/hostname":       "base\n",
		"etc/keep":           "kept\n",
		"var/log/old.log":    "old\n",
		"var/log/keep.log":   "keep\n",
		"opt/tool/bin/run":   "#!/bin/sh\n",
		"opt/tool/README":    "tool\n",
		"srv/www/old.html":   "<p>old</p>\n",
		"srv/www/sub/x.html": "x\n",
		"hello":              "hello from the base\n",
	} {
		p = filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mntExec(t, "umoci", "repack", "--image", l+":t", bundle)
	return l
}

// cmtCopy copies a fixture (file or directory) into a new temporary
// directory: the shared fixtures are never written.
func cmtCopy(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	mntExec(t, "cp", "-a", src, dst)
	return dst
}

func cmtTime(sec int64) time.Time { return time.Unix(sec, 0) }

func cmtFile(p, body string, mode int64, uid, gid int) layout.Change {
	return layout.Change{Path: p, Type: tar.TypeReg, Mode: mode, Uid: uid, Gid: gid, ModTime: cmtTime(1700000000), Size: int64(len(body)),
		Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }}
}

func cmtDir(p string, mode int64) layout.Change {
	return layout.Change{Path: p, Type: tar.TypeDir, Mode: mode, ModTime: cmtTime(1700000000)}
}

// cmtCommon is the part of every change set that needs nothing of the
// lower image: new directories, files of every kind and metadata.
func cmtCommon() []layout.Change {
	motd := cmtFile("etc2/motd", "welcome\n", 0o640, 1000, 1001)
	motd.Xattrs = map[string]string{"user.note": "from layoutfs"}
	su := cmtFile("usr/local/bin/su2", "#!/bin/sh\nexit 0\n", 0o4755, 0, 0)
	su.ModTime = cmtTime(1600000000)
	return []layout.Change{
		cmtDir("etc2", 0o750),
		motd,
		{Path: "etc2/motd.hard", Type: tar.TypeLink, Linkname: "etc2/motd"},
		{Path: "etc2/a-hard", Type: tar.TypeLink, Linkname: "etc2/motd"}, // sorts before the file it links
		{Path: "etc2/link", Type: tar.TypeSymlink, Linkname: "../etc2/motd", ModTime: cmtTime(1650000000)},
		{Path: "etc2/dangling", Type: tar.TypeSymlink, Linkname: "/nowhere/at/all", ModTime: cmtTime(1650000000), Uid: 7, Gid: 8},
		cmtDir("run2", 0o755),
		{Path: "run2/fifo", Type: tar.TypeFifo, Mode: 0o600, Uid: 12, Gid: 34, ModTime: cmtTime(1700000000)},
		cmtDir("usr", 0o755),
		cmtDir("usr/local", 0o755),
		cmtDir("usr/local/bin", 0o755),
		su,
		cmtFile("usr/local/empty", "", 0o600, 5, 5),
		cmtDir("tmp2", 0o1777),
		cmtFile("tmp2/setgid", "g", 0o2750, 0, 50),
	}
}

// cmtApply applies changes to an unpacked rootfs the way a layer applies:
// the oracle's expectation of what the committed image unpacks to.
func cmtApply(t *testing.T, root string, changes []layout.Change) {
	t.Helper()
	sorted := slices.Clone(changes)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Path < sorted[j].Path })
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	meta := func(p string, c layout.Change) {
		t.Helper()
		must(os.Lchown(p, c.Uid, c.Gid))
		if c.Type != tar.TypeSymlink {
			mode := os.FileMode(c.Mode & 0o777)
			if c.Mode&0o4000 != 0 {
				mode |= os.ModeSetuid
			}
			if c.Mode&0o2000 != 0 {
				mode |= os.ModeSetgid
			}
			if c.Mode&0o1000 != 0 {
				mode |= os.ModeSticky
			}
			must(os.Chmod(p, mode))
		}
		for k, v := range c.Xattrs {
			must(unix.Lsetxattr(p, k, []byte(v), 0))
		}
		ts := []unix.Timespec{unix.NsecToTimespec(c.ModTime.UnixNano()), unix.NsecToTimespec(c.ModTime.UnixNano())}
		must(unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW))
	}
	for _, c := range sorted {
		if c.Whiteout {
			must(os.RemoveAll(filepath.Join(root, c.Path)))
		}
	}
	var links []layout.Change
	for _, c := range sorted {
		p := filepath.Join(root, c.Path)
		switch {
		case c.Whiteout:
			continue
		case c.Type == tar.TypeDir:
			if st, err := os.Lstat(p); err == nil && !st.IsDir() {
				must(os.Remove(p))
			}
			if c.Opaque {
				ents, _ := os.ReadDir(p)
				for _, e := range ents {
					must(os.RemoveAll(filepath.Join(p, e.Name())))
				}
			}
			if err := os.Mkdir(p, 0o755); err != nil && !os.IsExist(err) {
				t.Fatal(err)
			}
			meta(p, c)
			continue
		case c.Type == tar.TypeLink:
			links = append(links, c)
			continue
		}
		if err := os.RemoveAll(p); err != nil {
			t.Fatal(err)
		}
		switch c.Type {
		case tar.TypeReg:
			rc, err := c.Open()
			must(err)
			b, err := io.ReadAll(rc)
			must(err)
			must(os.WriteFile(p, b, 0o600))
		case tar.TypeSymlink:
			must(os.Symlink(c.Linkname, p))
		case tar.TypeFifo:
			must(unix.Mkfifo(p, 0o600))
		default:
			t.Fatalf("cmtApply: type %c", c.Type)
		}
		meta(p, c)
	}
	for _, c := range links {
		p := filepath.Join(root, c.Path)
		os.RemoveAll(p)
		must(os.Link(filepath.Join(root, c.Linkname), p))
	}
}

// cmtCase is one source and what to commit on it.
type cmtCase struct {
	name     string
	src      func(t *testing.T) string // a writable copy
	ref      string                    // what to commit on (tagged first when untagged is set)
	untagged bool                      // the source names no image: tag its only top descriptor ref first
	platform string
	tag      string // CommitOptions.Tag
	comp     string
	changes  []layout.Change // besides cmtCommon
	// skopeo's name of the result, given the source path (its peer
	// view) and the name committed to.
	peer func(src, name string) string
	// noDockerArchive says why skopeo cannot copy the result to
	// docker-archive, when it cannot.
	noDockerArchive string
}

func cmtCases(t *testing.T) []cmtCase {
	base := cmtBaseLayout(t)
	hw := mntFixture(t, "C-ocitools-hello-world-manifest-list")
	opq := mntFixture(t, "C-ocitools-whiteout-opaque")
	bk := mntFixture(t, "B-buildkit-docker-exporter.tar")
	replaced := cmtDir("srv/www", 0o711)
	replaced.Opaque = true
	opaqueA := cmtDir("a", 0o755)
	opaqueA.Opaque = true
	return []cmtCase{{
		name: "umoci-layout", ref: "t", tag: "t2",
		src: func(t *testing.T) string { return cmtCopy(t, base) },
		changes: []layout.Change{
			cmtFile("etc/hostname", "patched\n", 0o600, 0, 0),
			{Path: "var/log/old.log", Whiteout: true},
			{Path: "opt/tool", Whiteout: true},
			replaced,
			cmtFile("srv/www/index.html", "<p>new</p>\n", 0o644, 33, 33),
			cmtFile("hello", "hello, patched\n", 0o755, 0, 0),
		},
		peer: func(src, name string) string { return "oci:" + src + ":" + name },
	}, {
		name: "oci-archive-zstd", ref: "t", comp: "zstd",
		noDockerArchive: "skopeo 1.9 converts no OCI manifest with zstd layers to docker schema 2",
		src: func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "image.tar")
			mntExec(t, "skopeo", "copy", "-q", "oci:"+base+":t", "oci-archive:"+p+":t")
			return p
		},
		changes: []layout.Change{
			{Path: "srv/www/sub", Whiteout: true},
			cmtFile("etc/keep", "changed\n", 0o644, 0, 0),
		},
		peer: func(src, name string) string { return "oci-archive:" + src + ":" + name },
	}, {
		name: "manifest-list", ref: "hello", untagged: true, platform: "linux_amd64",
		src:     func(t *testing.T) string { return cmtCopy(t, hw) },
		changes: []layout.Change{{Path: "hello", Whiteout: true}},
		peer:    func(src, name string) string { return "oci:" + src + ":" + name },
	}, {
		name: "whiteout-opaque", ref: "w", untagged: true, comp: "none",
		src: func(t *testing.T) string { return cmtCopy(t, opq) },
		changes: []layout.Change{
			opaqueA,
			cmtFile("a/only", "only this\n", 0o644, 0, 0),
		},
		peer: func(src, name string) string { return "oci:" + src + ":" + name },
	}, {
		name: "docker25-save", ref: "github.com/buildkit/archive:docker",
		src:  func(t *testing.T) string { return cmtCopy(t, bk) },
		peer: func(src, name string) string { return "docker-archive:" + src + ":" + name },
	}}
}

// cmtPeerView returns what skopeo is to read for src: src itself, or for
// a layout directory whose index.json lists docker-typed manifests or
// lists (as the oci-tools fixtures do), a copy that skopeo 1.9 reads.
// Its oci: transport follows only OCI-typed entries of index.json ("no
// descriptor found for reference"), before a commit as after. In the
// copy, a docker manifest list is listed as an OCI index (the same
// shape), and a docker manifest through a new OCI index holding just it,
// with the platform of its config (linux/amd64 when it has none, so that
// skopeo picks it). Every blob the commit wrote is read as it is.
func cmtPeerView(t *testing.T, src string) string {
	t.Helper()
	if st, err := os.Stat(src); err != nil || !st.IsDir() {
		return src
	}
	var idx ocispec.Index
	cmtReadJSON(t, filepath.Join(src, "index.json"), &idx)
	changed := false
	var view string
	for i, d := range idx.Manifests {
		switch d.MediaType {
		case "application/vnd.docker.distribution.manifest.list.v2+json":
			idx.Manifests[i].MediaType = ocispec.MediaTypeImageIndex
		case "application/vnd.docker.distribution.manifest.v2+json":
			if view == "" {
				view = cmtCopy(t, src)
			}
			var m ocispec.Manifest
			cmtReadJSON(t, filepath.Join(src, "blobs", "sha256", d.Digest.Encoded()), &m)
			var cfg ocispec.Image
			cmtReadJSON(t, filepath.Join(src, "blobs", "sha256", m.Config.Digest.Encoded()), &cfg)
			p := cfg.Platform
			if p.OS == "" || p.Architecture == "" {
				p = ocispec.Platform{OS: "linux", Architecture: "amd64"}
			}
			child := ocispec.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size, Platform: &p}
			b, err := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{child}})
			if err != nil {
				t.Fatal(err)
			}
			wd := digest.FromBytes(b)
			if err := os.WriteFile(filepath.Join(view, "blobs", "sha256", wd.Encoded()), b, 0o644); err != nil {
				t.Fatal(err)
			}
			idx.Manifests[i] = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: wd, Size: int64(len(b)), Annotations: d.Annotations}
		default:
			continue
		}
		changed = true
	}
	if !changed {
		return src
	}
	if view == "" {
		view = cmtCopy(t, src)
	}
	b, err := json.Marshal(idx)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(view, "index.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return view
}

func cmtReadJSON(t *testing.T, file string, v any) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

// cmtUnpack has skopeo copy image (a skopeo name) to an archive of the
// given transport, then umoci unpack what that archive holds (through an
// OCI layout) and returns the rootfs. Layers come out as skopeo wrote
// them, so this checks the copy too. umoci 0.4 reads no zstd layers: the
// copy to oci-archive recompresses them to gzip (skopeo decompressing
// ours on the way).
func cmtUnpack(t *testing.T, image, transport string) string {
	t.Helper()
	dir := t.TempDir()
	archive := filepath.Join(dir, "copy.tar")
	layoutDir := filepath.Join(dir, "layout")
	switch transport {
	case "docker-archive":
		mntExec(t, "skopeo", "copy", "-q", image, "docker-archive:"+archive+":example.com/commit:1")
		mntExec(t, "skopeo", "inspect", "docker-archive:"+archive)
		mntExec(t, "skopeo", "copy", "-q", "--format", "oci", "docker-archive:"+archive, "oci:"+layoutDir+":x")
	case "oci-archive":
		mntExec(t, "skopeo", "copy", "-q", "--format", "oci", "--dest-compress-format", "gzip", image, "oci-archive:"+archive+":x")
		mntExec(t, "skopeo", "inspect", "oci-archive:"+archive+":x")
		os.Mkdir(layoutDir, 0o755)
		mntExec(t, "tar", "-xf", archive, "-C", layoutDir)
	}
	return umociRootfs(t, layoutDir, "x")
}

// TestCommitPeers commits a change set on each shape of source and has
// the peers judge the result: skopeo inspects it and copies it to
// docker-archive and oci-archive; umoci unpacks each copy (and the
// source itself when it is a layout umoci reads), and the rootfs must be
// the lower image's with the changes applied, file by file: type, mode,
// owner, content, mtime, link target, xattrs, hard links. layoutfs's own
// tree of the new image must show the same. Every blob matches its
// digest, and no temporary file is left.
func TestCommitPeers(t *testing.T) {
	for _, tc := range cmtCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			src := tc.src(t)
			tmp := t.TempDir()
			s, err := layout.Open(ctx, src, layout.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if tc.untagged {
				ms := s.Index().Manifests
				if len(ms) != 1 {
					t.Fatalf("%d top descriptors", len(ms))
				}
				if err := s.Tag(ctx, ms[0].Digest.String(), tc.ref); err != nil {
					t.Fatal(err)
				}
				if s, err = layout.Open(ctx, src, layout.Options{}); err != nil {
					t.Fatal(err)
				}
			}
			name := tc.ref
			if tc.tag != "" {
				name = tc.tag
			}
			// The lower image as the peers unpack it, with the changes
			// applied by hand: what the commit must give.
			lower := cmtUnpack(t, tc.peer(cmtPeerView(t, src), tc.ref), "oci-archive")
			changes := append(cmtCommon(), tc.changes...)
			cmtApply(t, lower, changes)
			want := dirTree(t, lower)

			d, err := s.Commit(ctx, tc.ref, tc.platform, changes, layout.CommitOptions{Compression: tc.comp, Message: "e2e", Tag: tc.tag, TempDir: tmp})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s -> %s %s", name, d.MediaType, d.Digest)
			if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
				t.Errorf("commit left %d temporary files", len(ents))
			}
			view := cmtPeerView(t, src)
			peer := tc.peer(view, name)
			mntExec(t, "skopeo", "inspect", peer)
			for _, transport := range []string{"oci-archive", "docker-archive"} {
				t.Run(transport, func(t *testing.T) {
					if transport == "docker-archive" && tc.noDockerArchive != "" {
						t.Skip(tc.noDockerArchive)
					}
					compareTrees(t, dirTree(t, cmtUnpack(t, peer, transport)), want)
				})
			}
			if strings.HasPrefix(peer, "oci:") && tc.platform == "" && view == src {
				// umoci 0.4 reads OCI-typed manifests only.
				t.Run("umoci-on-source", func(t *testing.T) {
					compareTrees(t, dirTree(t, umociRootfs(t, view, name)), want)
				})
			}
			t.Run("layoutfs", func(t *testing.T) {
				s2, err := layout.Open(ctx, src, layout.Options{})
				if err != nil {
					t.Fatal(err)
				}
				r, _ := s2.Ref(name)
				ims, err := s2.Images(r.Descs)
				if err != nil {
					t.Fatal(err)
				}
				plat := tc.platform
				if plat == "" {
					plat = ims[0].Platform
				}
				compareTrees(t, nodeTree(t, openDir(t, src, "tags/"+name+"/"+plat+"/rootfs")), want)
			})
			wrCheckBlobs(t, src, []string{name})
			wrNoTemps(t, src)
		})
	}
}

// TestCommitReproduciblePeers: the same changes committed on two copies
// of a source, at different times, give the same layer blob.
func TestCommitReproduciblePeers(t *testing.T) {
	base := cmtBaseLayout(t)
	var layers []string
	for i := range 2 {
		src := cmtCopy(t, base)
		s, err := layout.Open(t.Context(), src, layout.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Commit(t.Context(), "t", "", cmtCommon(), layout.CommitOptions{Created: cmtTime(int64(1000 + i))}); err != nil {
			t.Fatal(err)
		}
		out := mntExec(t, "skopeo", "inspect", "--format", "{{range .Layers}}{{.}} {{end}}", "oci:"+src+":t")
		layers = append(layers, out)
		f := strings.Fields(out)
		t.Logf("copy %d: top layer %s", i, f[len(f)-1])
	}
	a, b := strings.Fields(layers[0]), strings.Fields(layers[1])
	if a[len(a)-1] != b[len(b)-1] {
		t.Errorf("the same changes gave the layers %s and %s", a[len(a)-1], b[len(b)-1])
	}
}
