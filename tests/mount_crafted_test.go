package tests

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mntDesc is an OCI descriptor as the crafted layouts write it.
type mntDesc struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int               `json:"size"`
	Platform    map[string]string `json:"platform,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// mntLayout writes OCI layouts by hand, for shapes no tool makes on
// request (odd ref names, platform clashes, artifacts, broken graphs).
type mntLayout struct {
	t   testing.TB
	dir string
}

func mntNewLayout(t testing.TB) *mntLayout {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	os.MkdirAll(filepath.Join(dir, "blobs/sha256"), 0o755)
	os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
	return &mntLayout{t: t, dir: dir}
}

func (l *mntLayout) blob(mediaType string, b []byte) mntDesc {
	return mntDesc{MediaType: mediaType, Digest: "sha256:" + mntWriteBlob(l.t, l.dir, b), Size: len(b)}
}

func (l *mntLayout) json(mediaType string, v any) mntDesc {
	b, err := json.Marshal(v)
	if err != nil {
		l.t.Fatal(err)
	}
	return l.blob(mediaType, b)
}

// tar builds a layer from name -> content (a trailing / makes a dir).
func (l *mntLayout) tar(files map[string]string) mntDesc {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, content := range files {
		h := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg, ModTime: time.Unix(1600000000, 0)}
		if strings.HasSuffix(name, "/") {
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o755, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			l.t.Fatal(err)
		}
		tw.Write([]byte(content))
	}
	tw.Close()
	return l.blob("application/vnd.oci.image.layer.v1.tar", buf.Bytes())
}

// image writes a config and manifest for os/arch[/variant] (empty: no
// platform in the config) and returns the manifest's descriptor.
func (l *mntLayout) image(osArch string, layers ...mntDesc) mntDesc {
	cfg := map[string]any{"rootfs": map[string]any{"type": "layers", "diff_ids": []string{}}}
	if osArch != "" {
		p := strings.Split(osArch, "/")
		cfg["os"], cfg["architecture"] = p[0], p[1]
		if len(p) > 2 {
			cfg["variant"] = p[2]
		}
	}
	c := l.json("application/vnd.oci.image.config.v1+json", cfg)
	if layers == nil {
		layers = []mntDesc{}
	}
	return l.json("application/vnd.oci.image.manifest.v1+json", map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": c, "layers": layers,
	})
}

func (l *mntLayout) index(ms ...mntDesc) mntDesc {
	return l.json("application/vnd.oci.image.index.v1+json", map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": ms,
	})
}

// top writes index.json.
func (l *mntLayout) top(ms ...mntDesc) string {
	b, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": ms})
	if err := os.WriteFile(filepath.Join(l.dir, "index.json"), b, 0o644); err != nil {
		l.t.Fatal(err)
	}
	return l.dir
}

func mntRef(d mntDesc, name string) mntDesc {
	d.Annotations = map[string]string{"org.opencontainers.image.ref.name": name}
	return d
}

func mntPlat(d mntDesc, os, arch, variant, osVersion string) mntDesc {
	d.Platform = map[string]string{"os": os, "architecture": arch}
	if variant != "" {
		d.Platform["variant"] = variant
	}
	if osVersion != "" {
		d.Platform["os.version"] = osVersion
	}
	return d
}

// TestMountUnsafeRefNames: names that are unsafe as paths are skipped,
// never followed; the safe ones beside them are served.
func TestMountUnsafeRefNames(t *testing.T) {
	mntRequireFUSE(t)
	t.Parallel()
	l := mntNewLayout(t)
	im := l.image("linux/amd64", l.tar(map[string]string{"etc/": "", "etc/hostname": "crafted\n"}))
	var ms []mntDesc
	for _, n := range []string{"ok", "../escape", "a/../../up", "a//b", "/abs", "..", ".", "x/./y", "trailing/", "nul\x00byte", "fine/nested:1"} {
		ms = append(ms, mntRef(im, n))
	}
	mnt := mntMount(t, l.top(ms...))
	mntWantNames(t, mnt, "tags", "fine", "ok")
	mntWantNames(t, mnt, "tags/fine", "nested:1")
	mntWantNames(t, mnt, "tags/ok", "linux_amd64")
	if b, err := os.ReadFile(filepath.Join(mnt, "tags/fine/nested:1/linux_amd64/rootfs/etc/hostname")); err != nil || string(b) != "crafted\n" {
		t.Errorf("safe nested ref: %v %q", err, b)
	}
	// Nothing appeared beside the mount or at its top.
	mntWantNames(t, mnt, "", "blobs", "index.json", "manifests", "oci-layout", "tags")
	if ents, _ := os.ReadDir(filepath.Dir(mnt)); len(ents) != 1 {
		t.Errorf("the mount's parent holds %d entries", len(ents))
	}
}

// TestMountPlatformNames: os.version and variants in names, and a clash of
// two manifests with one platform under one ref resolved by digest
// suffixes.
func TestMountPlatformNames(t *testing.T) {
	mntRequireFUSE(t)
	t.Parallel()
	l := mntNewLayout(t)
	a := l.image("linux/amd64", l.tar(map[string]string{"which": "a"}))
	b := l.image("linux/amd64", l.tar(map[string]string{"which": "b"}))
	win := l.image("windows/amd64")
	arm := l.image("linux/arm64/v8")
	none := l.image("")
	clash := l.index(mntPlat(a, "linux", "amd64", "", ""), mntPlat(b, "linux", "amd64", "", ""))
	armEl8 := l.image("linux/arm64/v8", l.tar(map[string]string{"el8": "1"}))
	multi := l.index(mntPlat(win, "windows", "amd64", "", "10.0.20348.2227"), mntPlat(arm, "linux", "arm64", "v8", ""), mntPlat(armEl8, "linux", "arm64", "v8", "el8"))
	mnt := mntMount(t, l.top(mntRef(clash, "clash"), mntRef(multi, "multi"), mntRef(none, "none"), mntRef(arm, "fromconfig")))
	ha, hb := strings.TrimPrefix(a.Digest, "sha256:")[:12], strings.TrimPrefix(b.Digest, "sha256:")[:12]
	mntWantNames(t, mnt, "tags/clash", "index.json", "linux_amd64-"+ha, "linux_amd64-"+hb)
	for dir, want := range map[string]string{"linux_amd64-" + ha: "a", "linux_amd64-" + hb: "b"} {
		if got, err := os.ReadFile(filepath.Join(mnt, "tags/clash", dir, "rootfs/which")); err != nil || string(got) != want {
			t.Errorf("tags/clash/%s/rootfs/which = %q, %v; want %q", dir, got, err, want)
		}
	}
	// os.version after a colon, variant after an underscore.
	mntWantNames(t, mnt, "tags/multi", "index.json", "linux_arm64_v8", "linux_arm64_v8:el8", "windows_amd64:10.0.20348.2227")
	mntWantNames(t, mnt, "tags/none", "unknown_unknown")
	// No descriptor platform: the config's.
	mntWantNames(t, mnt, "tags/fromconfig", "linux_arm64_v8")
}

// TestMountArtifactFiles: layers titled with org.opencontainers.image.title
// are files/<title>; unsafe titles are skipped.
func TestMountArtifactFiles(t *testing.T) {
	mntRequireFUSE(t)
	t.Parallel()
	l := mntNewLayout(t)
	file := func(title, content string) mntDesc {
		d := l.blob("text/plain", []byte(content))
		d.Annotations = map[string]string{"org.opencontainers.image.title": title}
		return d
	}
	art := l.image("", file("hello.txt", "hello artifact\n"), file("../evil.txt", "evil\n"), file("a/same.txt", "first\n"), file("b/same.txt", "second\n"), file("", "empty title\n"), file("..", "dotdot\n"))
	mnt := mntMount(t, l.top(mntRef(art, "v1")))
	plats := mntNames(t, filepath.Join(mnt, "tags/v1"))
	if len(plats) != 1 {
		t.Fatalf("tags/v1 = %v", plats)
	}
	img := filepath.Join("tags/v1", plats[0])
	names := mntNames(t, filepath.Join(mnt, img, "files"))
	if !slices.Contains(names, "hello.txt") {
		t.Errorf("files/ = %q, want hello.txt in it", names)
	}
	// A directory never lists one name twice: two titles that reduce to
	// the same name (a/same.txt, b/same.txt) cannot both be files/same.txt.
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			t.Errorf("files/ lists %q twice: %q", n, names)
		}
		seen[n] = true
		if n == "" || n == "." || n == ".." || strings.Contains(n, "/") {
			t.Errorf("unsafe title served as files/%q", n)
		}
	}
	if b, err := os.ReadFile(filepath.Join(mnt, img, "files/hello.txt")); err != nil || string(b) != "hello artifact\n" {
		t.Errorf("files/hello.txt = %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(mnt, "tags/v1", "evil.txt")); err == nil {
		t.Errorf("evil.txt escaped files/")
	}
}

// TestMountBrokenGraph: an index that names itself (its digest is then
// necessarily wrong), a manifest that is not JSON, and a missing blob:
// the mount comes up, those refs fail with an error instead of hanging,
// and a good ref beside them works.
func TestMountBrokenGraph(t *testing.T) {
	mntRequireFUSE(t)
	t.Parallel()
	l := mntNewLayout(t)
	good := l.image("linux/amd64", l.tar(map[string]string{"ok": "yes"}))
	// A self-referencing index, stored under the digest it names.
	const self = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	selfIdx, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
		"manifests": []mntDesc{{MediaType: "application/vnd.oci.image.index.v1+json", Digest: self, Size: 0}}})
	os.WriteFile(filepath.Join(l.dir, "blobs/sha256", strings.TrimPrefix(self, "sha256:")), selfIdx, 0o644)
	loop := mntDesc{MediaType: "application/vnd.oci.image.index.v1+json", Digest: self, Size: len(selfIdx)}
	junk := l.blob("application/vnd.oci.image.manifest.v1+json", []byte("this is not json"))
	missing := mntDesc{MediaType: "application/vnd.oci.image.manifest.v1+json", Digest: "sha256:2222222222222222222222222222222222222222222222222222222222222222", Size: 10}
	src := l.top(mntRef(good, "good"), mntRef(loop, "loop"), mntRef(junk, "junk"), mntRef(missing, "missing"))

	// The CLI first: it must answer, not hang (mntRun has a time limit).
	r := mntRun(t, "ls", "--cache-dir", t.TempDir(), src, "tags/good/linux_amd64/rootfs")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "ok" {
		t.Errorf("ls of the good ref beside broken ones: %s", r)
	}
	mnt := mntMount(t, src)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, ref := range []string{"loop", "junk"} {
			ents, err := os.ReadDir(filepath.Join(mnt, "tags", ref))
			if err == nil && len(ents) > 0 {
				t.Errorf("tags/%s lists %d entries of a broken graph", ref, len(ents))
			} else if err != nil && !errors.Is(err, syscall.EIO) && !errors.Is(err, syscall.ENOENT) {
				t.Errorf("tags/%s: %v, want EIO or absent", ref, err)
			}
		}
		if b, err := os.ReadFile(filepath.Join(mnt, "tags/good/linux_amd64/rootfs/ok")); err != nil || string(b) != "yes" {
			t.Errorf("good ref: %q %v", b, err)
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("reading broken refs hangs")
	}
	// A ref to a missing manifest is left out (README), not a dead entry.
	if _, err := os.Stat(filepath.Join(mnt, "tags/missing")); err == nil {
		ents, err := os.ReadDir(filepath.Join(mnt, "tags/missing"))
		if err == nil && len(ents) > 0 {
			t.Errorf("tags/missing lists %d entries for a manifest that is not there", len(ents))
		}
	}
}

// TestMountRefNameClashes: nested reference names that collide with what a
// reference directory already shows (its index.json, a platform) do not
// produce a directory listing one name twice.
func TestMountRefNameClashes(t *testing.T) {
	mntRequireFUSE(t)
	t.Parallel()
	l := mntNewLayout(t)
	amd := l.image("linux/amd64", l.tar(map[string]string{"which": "amd"}))
	arm := l.image("linux/arm64", l.tar(map[string]string{"which": "arm"}))
	other := l.image("linux/s390x", l.tar(map[string]string{"which": "other"}))
	idx := l.index(mntPlat(amd, "linux", "amd64", "", ""), mntPlat(arm, "linux", "arm64", "", ""))
	src := l.top(mntRef(idx, "multi"), mntRef(other, "multi/index.json"), mntRef(other, "multi/linux_amd64"), mntRef(other, "multi/sub"))
	mnt := mntMount(t, src)
	names := mntNames(t, filepath.Join(mnt, "tags/multi"))
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			t.Errorf("tags/multi lists %q twice: %q", n, names)
		}
		seen[n] = true
	}
	for _, n := range []string{"index.json", "linux_amd64", "linux_arm64", "sub"} {
		if !seen[n] {
			t.Errorf("tags/multi lacks %s: %q", n, names)
		}
	}
	// index.json is the ref's raw index, a regular file.
	fi, err := os.Lstat(filepath.Join(mnt, "tags/multi/index.json"))
	if err != nil || !fi.Mode().IsRegular() {
		mode := os.FileMode(0)
		if fi != nil {
			mode = fi.Mode()
		}
		t.Errorf("tags/multi/index.json: %v, mode %v; want the raw index file", err, mode)
	} else {
		mntCheckHash(t, filepath.Join(mnt, "tags/multi/index.json"), strings.TrimPrefix(idx.Digest, "sha256:"))
	}
	if b, err := os.ReadFile(filepath.Join(mnt, "tags/multi/linux_amd64/rootfs/which")); err != nil || string(b) != "amd" {
		t.Errorf("tags/multi/linux_amd64 is not the index's amd64 image: %q %v", b, err)
	}
	mntWantNames(t, mnt, "tags/multi/sub", "linux_s390x")
}

// TestMountLargeDirectory: a directory of thousands of entries with long
// names takes many READDIR(PLUS) replies; every entry comes exactly once,
// with its type, in whole and in small batches, and again after a rewind.
func TestMountLargeDirectory(t *testing.T) {
	mntRequireFUSE(t)
	t.Parallel()
	l := mntNewLayout(t)
	files := map[string]string{"big/": ""}
	want := map[string]bool{}
	for i := range 3000 {
		name := fmt.Sprintf("%04d-%s", i, strings.Repeat("long-name-", 5+i%15))
		if i%3 == 0 {
			files["big/"+name+"/"] = ""
		} else {
			files["big/"+name] = strconv.Itoa(i)
		}
		want[name] = true
	}
	im := l.image("linux/amd64", l.tar(files))
	mnt := mntMount(t, l.top(mntRef(im, "v1")))
	dir := filepath.Join(mnt, "tags/v1/linux_amd64/rootfs/big")

	check := func(what string, names []string) {
		t.Helper()
		seen := map[string]bool{}
		for _, n := range names {
			if seen[n] {
				t.Errorf("%s: %q twice", what, n)
			}
			seen[n] = true
			if !want[n] {
				t.Errorf("%s: unexpected %q", what, n)
			}
		}
		if len(seen) != len(want) {
			t.Errorf("%s: %d distinct entries, want %d", what, len(seen), len(want))
		}
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
		i, _ := strconv.Atoi(e.Name()[:4])
		if e.IsDir() != (i%3 == 0) {
			t.Errorf("%s: IsDir %v from readdir", e.Name(), e.IsDir())
		}
	}
	check("ReadDir", names)

	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for round := range 2 {
		names = nil
		for {
			batch, err := f.ReadDir(7)
			for _, e := range batch {
				names = append(names, e.Name())
			}
			if err != nil {
				break
			}
		}
		check(fmt.Sprintf("batches of 7, round %d", round), names)
		if _, err := f.Seek(0, 0); err != nil {
			t.Fatalf("rewinddir: %v", err)
		}
	}
	// The files read back their own content (READDIRPLUS answered the
	// right node for each name).
	for _, n := range []string{names[1], names[len(names)/2], names[len(names)-1]} {
		i, _ := strconv.Atoi(n[:4])
		if i%3 == 0 {
			continue
		}
		if b, err := os.ReadFile(filepath.Join(dir, n)); err != nil || string(b) != strconv.Itoa(i) {
			t.Errorf("%s: %q %v", n, b, err)
		}
	}
}

// TestMountManyLayers: 101 layers are numbered 000..100 (one common
// width), and the rootfs holds every layer's file.
func TestMountManyLayers(t *testing.T) {
	mntRequireFUSE(t)
	t.Parallel()
	l := mntNewLayout(t)
	var layers []mntDesc
	var want, files []string
	for i := range 101 {
		layers = append(layers, l.tar(map[string]string{fmt.Sprintf("f%03d", i): strconv.Itoa(i)}))
		want = append(want, fmt.Sprintf("%03d", i))
		files = append(files, fmt.Sprintf("f%03d", i))
	}
	im := l.image("linux/amd64", layers...)
	mnt := mntMount(t, l.top(mntRef(im, "v1")))
	img := "tags/v1/linux_amd64"
	mntWantNames(t, mnt, img+"/layers", want...)
	mntWantNames(t, mnt, img+"/rootfs", files...)
	mntWantNames(t, mnt, img+"/layers/100", "f100")
	if b, err := os.ReadFile(filepath.Join(mnt, img, "rootfs/f057")); err != nil || string(b) != "57" {
		t.Errorf("rootfs/f057 = %q, %v", b, err)
	}
}

// TestMountStableInodes: inode numbers survive the kernel forgetting the
// inodes (drop_caches makes it send FORGET and look everything up again).
func TestMountStableInodes(t *testing.T) {
	mntRequireFUSE(t)
	t.Parallel()
	mnt := mntMount(t, mntFixture(t, "A-scalibr-symlinks-docker-save.tar"))
	first := mntMountEntries(t, mnt)
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("2"), 0o200); err != nil {
		t.Skipf("cannot drop the kernel's inode cache (%v): inode stability NOT CHECKED", err)
	}
	second := mntMountEntries(t, mnt)
	if len(first) != len(second) || len(first) < 20 {
		t.Fatalf("%d paths, then %d", len(first), len(second))
	}
	for p, e := range first {
		if second[p].ino != e.ino {
			t.Errorf("%s: inode %d, then %d after the kernel forgot it", p, e.ino, second[p].ino)
		}
	}
}

// mntTarDir writes dir as a tar file (regular files and directories,
// sorted), as `docker save` writes its output.
func mntTarDir(t testing.TB, dir, out string) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		h, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(rel)
		if d.IsDir() {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			tw.Write(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	tw.Close()
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestMountDocker25Save: the Docker 25+ save shape, built from its
// definition (moby PR 44598): an OCI layout whose index.json names the
// image "3.20" (and io.containerd.image.name docker.io/library/alpine:3.20)
// plus a manifest.json whose RepoTags say alpine:3.20 and whose Layers are
// blob paths. Both names are refs; manifest.json and repositories are
// shown as found; plain and gzip-compressed.
func TestMountDocker25Save(t *testing.T) {
	mntRequireFUSE(t)
	mntNeed(t, "gzip")
	t.Parallel()
	l := mntNewLayout(t)
	layer := l.tar(map[string]string{"etc/": "", "etc/alpine-release": "3.20.0\n"})
	im := l.image("linux/amd64", layer)
	var m struct {
		Config mntDesc `json:"config"`
	}
	b, _ := os.ReadFile(filepath.Join(l.dir, "blobs/sha256", strings.TrimPrefix(im.Digest, "sha256:")))
	json.Unmarshal(b, &m)
	desc := mntRef(im, "3.20")
	desc.Annotations["io.containerd.image.name"] = "docker.io/library/alpine:3.20"
	l.top(desc)
	dm, _ := json.Marshal([]map[string]any{{
		"Config":   "blobs/sha256/" + strings.TrimPrefix(m.Config.Digest, "sha256:"),
		"RepoTags": []string{"alpine:3.20"},
		"Layers":   []string{"blobs/sha256/" + strings.TrimPrefix(layer.Digest, "sha256:")},
	}})
	os.WriteFile(filepath.Join(l.dir, "manifest.json"), dm, 0o644)
	repos := []byte(`{"alpine":{"3.20":"` + strings.TrimPrefix(layer.Digest, "sha256:") + `"}}`)
	os.WriteFile(filepath.Join(l.dir, "repositories"), repos, 0o644)
	save := filepath.Join(t.TempDir(), "alpine.tar")
	mntTarDir(t, l.dir, save)
	mntExec(t, "gzip", "-k", save)

	for _, src := range []string{save, save + ".gz"} {
		t.Run(filepath.Base(src), func(t *testing.T) {
			t.Parallel()
			mnt := mntMount(t, src)
			mntWantNames(t, mnt, "", "blobs", "index.json", "manifest.json", "manifests", "oci-layout", "repositories", "tags")
			mntWantNames(t, mnt, "tags", "3.20", "alpine:3.20")
			for _, ref := range []string{"3.20", "alpine:3.20"} {
				mntWantNames(t, mnt, "tags/"+ref, "linux_amd64")
				mntCheckHash(t, filepath.Join(mnt, "tags", ref, "linux_amd64/manifest.json"), strings.TrimPrefix(im.Digest, "sha256:"))
				if got, err := os.ReadFile(filepath.Join(mnt, "tags", ref, "linux_amd64/rootfs/etc/alpine-release")); err != nil || string(got) != "3.20.0\n" {
					t.Errorf("tags/%s rootfs/etc/alpine-release = %q, %v", ref, got, err)
				}
			}
			if got, _ := os.ReadFile(filepath.Join(mnt, "manifest.json")); !bytes.Equal(got, dm) {
				t.Errorf("manifest.json not as found")
			}
			if got, _ := os.ReadFile(filepath.Join(mnt, "repositories")); !bytes.Equal(got, repos) {
				t.Errorf("repositories not as found")
			}
			mntWantNames(t, mnt, "manifests", im.Digest)
			// The shorthand has one image under two names: not ambiguous.
			r := mntRunOK(t, "cat", "--cache-dir", t.TempDir(), src, "/etc/alpine-release")
			if r.stdout != "3.20.0\n" {
				t.Errorf("cat /etc/alpine-release = %q", r.stdout)
			}
		})
	}
}
