package layout

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// The crash tests re-run this test binary as a child that does one write
// and kills itself with SIGKILL at a given step (crashPoint), then check
// what is on disk with skopeo and umoci: the old source or the new one,
// never a broken one, and the next write clears any temporary left.

const (
	envCrashStep = "LAYOUTFS_TEST_CRASH_STEP"
	envCrashOp   = "LAYOUTFS_TEST_CRASH_OP"
	envCrashSrc  = "LAYOUTFS_TEST_CRASH_SRC"
)

// crashBlob is the blob the putblob crash test adds.
var crashBlob = []byte("a blob added by the crash test\n")

// TestCrashChild is the child: it does nothing unless run by
// runCrashChild.
func TestCrashChild(t *testing.T) {
	step := os.Getenv(envCrashStep)
	if step == "" {
		t.Skip("run as a child of the crash tests only")
	}
	crashPoint = func(s string) {
		if s == step {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
	}
	if err := crashOp(context.Background(), os.Getenv(envCrashOp), os.Getenv(envCrashSrc)); err != nil {
		t.Fatal(err)
	}
	fmt.Println("STEP NOT REACHED")
}

func crashOp(ctx context.Context, op, src string) error {
	s, err := Open(ctx, src, Options{})
	if err != nil {
		return err
	}
	switch op {
	case "tag":
		return s.Tag(ctx, crashFirstTag(s), "example.com/crash:new")
	case "untag":
		return s.Untag(ctx, crashFirstTag(s))
	case "putblob":
		return s.PutBlob(ctx, digest.FromBytes(crashBlob), bytes.NewReader(crashBlob))
	case "gc":
		_, err := s.GC(ctx, false)
		return err
	case "add":
		blobs, desc := crashImage()
		return s.AddAndTag(ctx, blobs, desc, "example.com/crash:new")
	}
	return fmt.Errorf("unknown op %s", op)
}

// crashImage is a new one-layer image for the add crash test.
func crashImage() ([]NewBlob, ocispec.Descriptor) {
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	tw.WriteHeader(&tar.Header{Name: "added", Mode: 0o644, Size: 6, Typeflag: tar.TypeReg})
	tw.Write([]byte("added\n"))
	tw.Close()
	ld := digest.FromBytes(layer.Bytes())
	cfg, _ := json.Marshal(ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"}, RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{ld}}})
	m, _ := json.Marshal(ocispec.Manifest{Versioned: indexVersion, MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(cfg), Size: int64(len(cfg))},
		Layers: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayer, Digest: ld, Size: int64(layer.Len())}}})
	var blobs []NewBlob
	for _, b := range [][]byte{layer.Bytes(), cfg, m} {
		blobs = append(blobs, NewBlob{Digest: digest.FromBytes(b), Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }})
	}
	return blobs, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(m), Size: int64(len(m))}
}

func crashFirstTag(s *Source) string {
	if refs := s.Refs(); len(refs) > 0 {
		return refs[0].Name
	}
	return ""
}

// runCrashChild runs op on src in a child that dies at step; it reports
// whether the child reached the step.
func runCrashChild(t *testing.T, op, step, src string) bool {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), envCrashStep+"="+step, envCrashOp+"="+op, envCrashSrc+"="+src)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return true
		}
		t.Fatalf("child %s at %s: %v\n%s", op, step, err, out.String())
	}
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "STEP NOT REACHED") {
		t.Fatalf("child %s at %s: %s", op, step, out.String())
	}
	return false
}

func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed (.ci/run installs it): %v", tool, err)
		}
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

// crashBase builds with umoci a layout holding one image tagged "t".
func crashBase(t *testing.T) string {
	t.Helper()
	need(t, "umoci", "skopeo", "gzip", "tar")
	dir := t.TempDir()
	l := filepath.Join(dir, "layout")
	run(t, "umoci", "init", "--layout", l)
	run(t, "umoci", "new", "--image", l+":t")
	bundle := filepath.Join(dir, "bundle")
	run(t, "umoci", "unpack", "--image", l+":t", bundle)
	os.WriteFile(filepath.Join(bundle, "rootfs/hello"), []byte("crash test\n"), 0o644)
	run(t, "umoci", "repack", "--image", l+":t", bundle)
	return l
}

type crashShape struct {
	name      string
	transport string
	tag       string // the tag the source starts with
	gz        bool
}

func (sh crashShape) make(t *testing.T, base string) string {
	t.Helper()
	dir := t.TempDir()
	switch sh.transport {
	case "oci":
		p := filepath.Join(dir, "layout")
		run(t, "skopeo", "copy", "-q", "oci:"+base+":t", "oci:"+p+":"+sh.tag)
		return p
	case "oci-archive":
		p := filepath.Join(dir, "image.tar")
		run(t, "skopeo", "copy", "-q", "oci:"+base+":t", "oci-archive:"+p+":"+sh.tag)
		return p
	default:
		p := filepath.Join(dir, "save.tar")
		run(t, "skopeo", "copy", "-q", "oci:"+base+":t", "docker-archive:"+p+":"+sh.tag)
		if sh.gz {
			run(t, "gzip", p)
			p += ".gz"
		}
		return p
	}
}

// snapshot is the bytes of a source: the archive, or index.json and the
// blob names of a directory.
func snapshot(t *testing.T, src string) string {
	t.Helper()
	st, err := os.Stat(src)
	if err != nil {
		t.Fatal(err)
	}
	if !st.IsDir() {
		b, _ := os.ReadFile(src)
		h := sha256.Sum256(b)
		return hex.EncodeToString(h[:])
	}
	b, _ := os.ReadFile(filepath.Join(src, "index.json"))
	ents, _ := os.ReadDir(filepath.Join(src, "blobs/sha256"))
	var names []string
	for _, e := range ents {
		if !strings.Contains(e.Name(), tempMark) { // a temporary is not part of the layout
			names = append(names, e.Name())
		}
	}
	return string(b) + "\n" + strings.Join(names, "\n")
}

// checkValid has the peers read src: skopeo inspect of each tag, umoci
// ls and unpack (of the layout, or of a skopeo copy), and every blob must
// hash to its digest.
func checkValid(t *testing.T, sh crashShape, src string, tags []string) {
	t.Helper()
	p := src
	if sh.gz {
		p = filepath.Join(t.TempDir(), "plain.tar")
		f, _ := os.Create(p)
		cmd := exec.Command("gzip", "-dc", src)
		cmd.Stdout = f
		if err := cmd.Run(); err != nil {
			t.Fatalf("gzip -dc %s: %v (a broken archive)", src, err)
		}
		f.Close()
	}
	for _, tag := range tags {
		ref := sh.transport + ":" + p + ":" + tag
		run(t, "skopeo", "inspect", ref)
		fresh := filepath.Join(t.TempDir(), "copy")
		run(t, "skopeo", "copy", "-q", ref, "oci:"+fresh+":x")
		run(t, "umoci", "unpack", "--image", fresh+":x", filepath.Join(t.TempDir(), "b"))
	}
	if sh.transport == "oci" {
		ls := run(t, "umoci", "ls", "--layout", src)
		for _, tag := range tags {
			if !strings.Contains(ls, tag) {
				t.Errorf("umoci ls: %q without %s", ls, tag)
			}
		}
	}
	s, err := Open(context.Background(), src, Options{})
	if err != nil {
		t.Fatalf("open %s: %v", src, err)
	}
	for _, d := range s.Blobs() {
		r, size, err := s.Blob(d)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := digest.FromReader(io.NewSectionReader(r, 0, size)); got != d {
			t.Errorf("blob %s hashes to %s", d, got)
		}
	}
}

func tempsLeft(src string) []string {
	dir := filepath.Dir(src)
	if st, err := os.Stat(src); err == nil && st.IsDir() {
		dir = src
	}
	var out []string
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && strings.Contains(filepath.Base(p), tempMark) {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// TestCrashSafety kills a writer at every step of every kind of write, on
// a layout directory and on tarballs, and checks the source after each
// crash: the old one or the new one, readable by skopeo and umoci; then a
// second write succeeds and leaves no temporary file.
func TestCrashSafety(t *testing.T) {
	if os.Getenv(envCrashStep) != "" {
		t.Skip("child")
	}
	base := crashBase(t)
	dirSteps := []string{"locked", "index.json:temp-written", "index.json:temp-synced", "index.json:renamed", "index.json:dir-synced"}
	tarSteps := []string{"locked", "tar:half-written", "tar:temp-written", "tar:temp-synced", "tar:renamed", "tar:dir-synced"}
	cases := []struct {
		shape crashShape
		op    string
		steps []string
	}{
		{crashShape{"dir", "oci", "t", false}, "tag", dirSteps},
		{crashShape{"dir", "oci", "t", false}, "untag", dirSteps},
		{crashShape{"dir", "oci", "t", false}, "putblob", []string{"locked", "blob:temp-written", "blob:renamed"}},
		{crashShape{"oci-archive", "oci-archive", "t", false}, "tag", tarSteps},
		{crashShape{"oci-archive", "oci-archive", "t", false}, "putblob", append([]string{"blob:temp-written"}, tarSteps...)},
		{crashShape{"docker-legacy", "docker-archive", "example.com/base:1", false}, "tag", tarSteps},
		{crashShape{"dir", "oci", "t", false}, "gc", []string{"locked", "gc:removed-one"}},
		{crashShape{"oci-archive", "oci-archive", "t", false}, "gc", tarSteps},
		{crashShape{"dir", "oci", "t", false}, "add", append([]string{"blob:temp-written", "blob:renamed"}, dirSteps...)},
		{crashShape{"oci-archive", "oci-archive", "t", false}, "add", append([]string{"blob:temp-written"}, tarSteps...)},
		{crashShape{"docker-legacy-gz", "docker-archive", "example.com/base:1", true}, "tag", tarSteps},
	}
	for _, c := range cases {
		for _, step := range c.steps {
			t.Run(c.shape.name+"/"+c.op+"/"+step, func(t *testing.T) {
				t.Parallel()
				src := c.shape.make(t, base)
				if c.op == "gc" { // something to collect: a blob nothing references
					if err := crashOp(context.Background(), "putblob", src); err != nil {
						t.Fatal(err)
					}
				}
				before := snapshot(t, src)
				if !runCrashChild(t, c.op, step, src) {
					t.Fatalf("the write never reached step %s", step)
				}
				after := snapshot(t, src)
				s, err := Open(context.Background(), src, Options{})
				if err != nil {
					t.Fatalf("after a crash at %s: %v", step, err)
				}
				_, hasNew := s.Ref("example.com/crash:new")
				_, hasOld := s.Ref(c.shape.tag)
				_, _, blobErr := s.Blob(digest.FromBytes(crashBlob))
				changed := after != before
				switch c.op {
				case "tag":
					if changed != hasNew || !hasOld {
						t.Errorf("crash at %s: changed=%v, new tag %v, old tag %v", step, changed, hasNew, hasOld)
					}
				case "add":
					// In a directory the new blobs land before index.json
					// names them: "changed" may be true without the tag.
					if !hasOld || (changed != hasNew && c.shape.transport != "oci") || (hasNew && !changed) {
						t.Errorf("crash at %s: changed=%v, new tag %v, old tag %v", step, changed, hasNew, hasOld)
					}
				case "gc":
					if changed == (blobErr == nil) {
						t.Errorf("crash at %s: changed=%v, garbage blob: %v", step, changed, blobErr)
					}
				case "untag":
					if changed == hasOld {
						t.Errorf("crash at %s: changed=%v, old tag %v", step, changed, hasOld)
					}
				case "putblob":
					if changed != (blobErr == nil) {
						t.Errorf("crash at %s: changed=%v, blob: %v", step, changed, blobErr)
					}
				}
				var tags []string
				if hasOld {
					tags = append(tags, c.shape.tag)
				}
				if hasNew {
					tags = append(tags, "example.com/crash:new")
				}
				checkValid(t, c.shape, src, tags)
				t.Logf("crash at %s: %s; temporaries left: %v", step, map[bool]string{true: "new source", false: "old source"}[changed], tempsLeft(src))

				// A second write, whole this time, finishes the job and
				// clears what the crash left.
				if err := crashOp(context.Background(), c.op, src); err != nil && !(c.op == "untag" && IsNotFound(err)) {
					t.Fatalf("write after the crash: %v", err)
				}
				if left := tempsLeft(src); len(left) > 0 {
					t.Errorf("temporaries left after a whole write: %v", left)
				}
				s, err = Open(context.Background(), src, Options{})
				if err != nil {
					t.Fatal(err)
				}
				tags = nil
				if c.op != "untag" {
					tags = append(tags, c.shape.tag)
				}
				if _, _, err := s.Blob(digest.FromBytes(crashBlob)); (err == nil) != (c.op == "putblob") {
					t.Errorf("after the whole %s, the added blob: %v", c.op, err)
				}
				if c.op == "tag" || c.op == "add" {
					tags = append(tags, "example.com/crash:new")
				}
				checkValid(t, c.shape, src, tags)
			})
		}
	}
}
