package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// mntShapeChecks holds the per-fixture expectations of SPEC.md's tree,
// run on the mount by TestMountRealFixtures. The expected names are
// derived from the fixture's own files where possible.
var mntShapeChecks = map[string]func(t *testing.T, src, mnt string){
	// Full-reference RepoTags become nested directories; one name can be
	// both a directory level (example.com/empty/) and, with a tag, a
	// reference (example.com/empty:latest/).
	"A-podman-docker-two-images.tar": func(t *testing.T, src, mnt string) {
		mntWantNames(t, mnt, "tags", "example.com")
		mntWantNames(t, mnt, "tags/example.com", "empty", "empty:latest")
		mntWantNames(t, mnt, "tags/example.com/empty", "but:different")
		mntWantNames(t, mnt, "tags/example.com/empty:latest", "linux_amd64")
		mntWantNames(t, mnt, "tags/example.com/empty/but:different", "linux_amd64")
		// The second image's layer.tar is a symlink to the first's: both
		// images show the same layer bytes.
		a := mntFileSum(t, filepath.Join(mnt, "tags/example.com/empty:latest/linux_amd64/manifest.json"))
		b := mntFileSum(t, filepath.Join(mnt, "tags/example.com/empty/but:different/linux_amd64/manifest.json"))
		if a == b {
			t.Errorf("the two images show the same manifest")
		}
		var ma, mb mntManifest
		mntReadJSON(t, filepath.Join(mnt, "tags/example.com/empty:latest/linux_amd64/manifest.json"), &ma)
		mntReadJSON(t, filepath.Join(mnt, "tags/example.com/empty/but:different/linux_amd64/manifest.json"), &mb)
		if len(ma.Layers) != 1 || len(mb.Layers) != 1 || ma.Layers[0].Digest != mb.Layers[0].Digest {
			t.Errorf("shared layer: %+v vs %+v", ma.Layers, mb.Layers)
		}
		// The synthesised index.json names both references.
		mntWantRefNames(t, mnt, "example.com/empty/but:different", "example.com/empty:latest")
	},
	// index.json's ref name "docker" plus manifest.json's RepoTags entry.
	"B-buildkit-docker-exporter.tar": func(t *testing.T, src, mnt string) {
		mntWantNames(t, mnt, "tags", "docker", "github.com")
		mntWantNames(t, mnt, "tags/github.com/buildkit", "archive:docker")
		mntWantNames(t, mnt, "tags/docker", "linux_amd64")
		mntWantNames(t, mnt, "tags/github.com/buildkit/archive:docker", "linux_amd64")
		// A zero-layer image: layers/ and rootfs/ exist and are empty.
		mntWantNames(t, mnt, "tags/docker/linux_amd64", "config.json", "layers", "manifest.json", "rootfs")
		mntWantNames(t, mnt, "tags/docker/linux_amd64/layers")
		mntWantNames(t, mnt, "tags/docker/linux_amd64/rootfs")
		if mntFileSum(t, filepath.Join(mnt, "tags/docker/linux_amd64/manifest.json")) != mntFileSum(t, filepath.Join(mnt, "tags/github.com/buildkit/archive:docker/linux_amd64/manifest.json")) {
			t.Errorf("both tags should show the same image")
		}
	},
	// Docker 25 save, untagged, "manifests": null: the image is found
	// through manifest.json and shown under manifests/ only.
	"B-ggcr-hello-world-docker-v25.tar": func(t *testing.T, src, mnt string) {
		mntWantNames(t, mnt, "tags")
		ms := mntNames(t, filepath.Join(mnt, "manifests"))
		if len(ms) != 1 {
			t.Fatalf("manifests/ = %v, want the one image", ms)
		}
		mntWantNames(t, mnt, "manifests/"+ms[0], "linux_arm64")
		raw, _ := mntSourceFile(t, src, "manifest.json")
		var dm []struct {
			Config string
			Layers []string
		}
		if err := json.Unmarshal(raw, &dm); err != nil || len(dm) != 1 {
			t.Fatalf("fixture manifest.json: %v %s", err, raw)
		}
		var m mntManifest
		mntReadJSON(t, filepath.Join(mnt, "manifests", ms[0], "linux_arm64/manifest.json"), &m)
		if "blobs/sha256/"+strings.TrimPrefix(m.Config.Digest, "sha256:") != dm[0].Config {
			t.Errorf("image config %s, manifest.json says %s", m.Config.Digest, dm[0].Config)
		}
		if len(m.Layers) != len(dm[0].Layers) {
			t.Errorf("%d layers, manifest.json has %d", len(m.Layers), len(dm[0].Layers))
		}
		mntWantNames(t, mnt, "manifests/"+ms[0]+"/linux_arm64/layers", "00")
	},
	// index.json -> index -> amd64 + arm64: the ref shows the index it
	// points at, raw, and one directory per platform.
	"C-stereoscope-multiplatform-nested": func(t *testing.T, src, mnt string) {
		mntWantNames(t, mnt, "tags", "latest")
		mntWantNames(t, mnt, "tags/latest", "index.json", "linux_amd64", "linux_arm64")
		var idx struct {
			Manifests []struct {
				Digest      string            `json:"digest"`
				Annotations map[string]string `json:"annotations"`
			} `json:"manifests"`
		}
		b, _ := os.ReadFile(filepath.Join(src, "index.json"))
		if err := json.Unmarshal(b, &idx); err != nil || len(idx.Manifests) != 1 {
			t.Fatalf("fixture index.json: %v", err)
		}
		want, err := os.ReadFile(filepath.Join(src, "blobs/sha256", strings.TrimPrefix(idx.Manifests[0].Digest, "sha256:")))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(mnt, "tags/latest/index.json"))
		if err != nil || string(got) != string(want) {
			t.Errorf("tags/latest/index.json is not the raw index %s (err %v)", idx.Manifests[0].Digest, err)
		}
		// Each platform's config says that platform.
		for _, p := range []string{"linux_amd64", "linux_arm64"} {
			mntWantConfigPlatform(t, filepath.Join(mnt, "tags/latest", p, "config.json"), p)
		}
	},
	// An untagged 9-platform docker manifest list: the list under
	// manifests/ shows one directory per platform, variants included;
	// the expected names come from the list itself.
	"C-ocitools-hello-world-manifest-list": func(t *testing.T, src, mnt string) {
		mntWantNames(t, mnt, "tags")
		var idx struct {
			Manifests []struct {
				Digest string `json:"digest"`
			} `json:"manifests"`
		}
		b, _ := os.ReadFile(filepath.Join(src, "index.json"))
		json.Unmarshal(b, &idx)
		if len(idx.Manifests) != 1 {
			t.Fatalf("fixture index.json: %s", b)
		}
		list := idx.Manifests[0].Digest
		var ml struct {
			Manifests []struct {
				Digest   string `json:"digest"`
				Platform struct {
					OS           string `json:"os"`
					Architecture string `json:"architecture"`
					Variant      string `json:"variant"`
				} `json:"platform"`
			} `json:"manifests"`
		}
		lb, _ := os.ReadFile(filepath.Join(src, "blobs/sha256", strings.TrimPrefix(list, "sha256:")))
		if err := json.Unmarshal(lb, &ml); err != nil || len(ml.Manifests) != 9 {
			t.Fatalf("fixture manifest list: %v, %d entries", err, len(ml.Manifests))
		}
		want := []string{"index.json"}
		allManifests := []string{list}
		for _, m := range ml.Manifests {
			n := m.Platform.OS + "_" + m.Platform.Architecture
			if m.Platform.Variant != "" {
				n += "_" + m.Platform.Variant
			}
			want = append(want, n)
			allManifests = append(allManifests, m.Digest)
		}
		for _, n := range []string{"linux_arm_v7", "linux_arm_v5", "linux_arm64_v8", "linux_amd64"} {
			if !slices.Contains(want, n) {
				t.Fatalf("fixture list lacks %s: %v", n, want)
			}
		}
		mntWantNames(t, mnt, "manifests/"+list, want...)
		// Every manifest reachable from index.json is under manifests/.
		mntWantNames(t, mnt, "manifests", allManifests...)
		mntWantConfigPlatform(t, filepath.Join(mnt, "manifests", list, "linux_arm_v7/config.json"), "linux_arm")
	},
	// 14 gzip layers: layers/00 .. layers/13.
	"A-dive-kaniko-ggcr-tarball.tar": func(t *testing.T, src, mnt string) {
		mntWantNames(t, mnt, "tags", "dive-test:kaniko-latest")
		want := []string{"00", "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12", "13"}
		mntWantNames(t, mnt, "tags/dive-test:kaniko-latest/linux_amd64/layers", want...)
	},
	// Only amd64 of the 10-platform list is present: the rest is left out.
	"B-orasgo-hello-world-containerd-export.tar": func(t *testing.T, src, mnt string) {
		mntWantNames(t, mnt, "tags", "hello-world:latest", "latest")
		mntWantNames(t, mnt, "tags/latest", "index.json", "linux_amd64")
		// The RepoTag hello-world:latest is the index.json entry named
		// docker.io/library/hello-world:latest (io.containerd.image.name):
		// the same index as tags/latest.
		mntWantNames(t, mnt, "tags/hello-world:latest", "index.json", "linux_amd64")
		if a, b := mntFileSum(t, filepath.Join(mnt, "tags/latest/index.json")), mntFileSum(t, filepath.Join(mnt, "tags/hello-world:latest/index.json")); a != b {
			t.Errorf("tags/latest and tags/hello-world:latest show different indexes")
		}
		b, err := os.ReadFile(filepath.Join(mnt, "tags/latest/linux_amd64/rootfs/hello"))
		if err != nil || len(b) == 0 {
			t.Errorf("rootfs/hello: %v (%d bytes)", err, len(b))
		}
	},
	"C-skopeo-oci-archive-name-only.tar.gz": func(t *testing.T, src, mnt string) {
		mntWantNames(t, mnt, "tags", "pretty-empty:latest")
		mntWantNames(t, mnt, "tags/pretty-empty:latest", "linux_amd64")
	},
	// ./.wh.foo.txt in layer 01 deletes foo.txt of layer 00.
	"A-ggcr-rules_docker-whiteout.tar": func(t *testing.T, src, mnt string) {
		im := "tags/bazel/pkg/v1/mutate:whiteout_image/linux_amd64"
		mntWantNames(t, mnt, im+"/layers", "00", "01", "02")
		mntWantNames(t, mnt, im+"/layers/00", "bar.txt", "foo.txt")
		mntWantNames(t, mnt, im+"/layers/01", ".wh.foo.txt")
		mntWantNames(t, mnt, im+"/rootfs", "bar.txt")
	},
	"C-ocitools-whiteout-opaque": func(t *testing.T, src, mnt string) {
		im := mntOnlyImage(t, mnt)
		if filepath.Base(im) != "unknown_unknown" {
			t.Errorf("image dir %s: no platform anywhere should give unknown_unknown", im)
		}
		mntWantNames(t, mnt, im+"/layers/01/a", ".wh..wh..opq", "bar")
		mntWantNames(t, mnt, im+"/rootfs/a", "bar")
	},
	"C-ocitools-whiteout-explicit-dir": func(t *testing.T, src, mnt string) {
		im := mntOnlyImage(t, mnt)
		mntWantNames(t, mnt, im+"/layers/00/a", "b")
		mntWantNames(t, mnt, im+"/layers/01/a", ".wh.b", "bar")
		mntWantNames(t, mnt, im+"/rootfs/a", "bar")
	},
}

// mntWantNames checks the exact listing of a directory of the mount.
func mntWantNames(t testing.TB, mnt, rel string, want ...string) {
	t.Helper()
	got := mntNames(t, filepath.Join(mnt, rel))
	want = slices.Clone(want)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s/ = %q, want %q", rel, got, want)
	}
}

func mntFileSum(t testing.TB, file string) string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Errorf("%v", err)
		return ""
	}
	defer f.Close()
	s, err := mntSum(f)
	if err != nil {
		t.Errorf("%s: %v", file, err)
	}
	return s
}

// mntWantRefNames checks the ref names of the mount's index.json.
func mntWantRefNames(t testing.TB, mnt string, want ...string) {
	t.Helper()
	var idx struct {
		Manifests []struct {
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	mntReadJSON(t, filepath.Join(mnt, "index.json"), &idx)
	var got []string
	for _, m := range idx.Manifests {
		got = append(got, m.Annotations["org.opencontainers.image.ref.name"])
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("index.json ref names %q, want %q", got, want)
	}
}

// mntWantConfigPlatform checks a config's os_architecture.
func mntWantConfigPlatform(t testing.TB, file, want string) {
	t.Helper()
	var c struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
	}
	mntReadJSON(t, file, &c)
	if got := c.OS + "_" + c.Architecture; got != want {
		t.Errorf("%s says %s, want %s", file, got, want)
	}
}

// mntOnlyImage returns the one image dir of an untagged single-image
// source, relative to mnt.
func mntOnlyImage(t testing.TB, mnt string) string {
	t.Helper()
	ms := mntNames(t, filepath.Join(mnt, "manifests"))
	if len(ms) != 1 {
		t.Fatalf("manifests/ = %v, want one", ms)
	}
	ps := mntNames(t, filepath.Join(mnt, "manifests", ms[0]))
	if len(ps) != 1 {
		t.Fatalf("manifests/%s = %v, want one platform", ms[0], ps)
	}
	return filepath.Join("manifests", ms[0], ps[0])
}
