package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

const realDir = "../../shared/fixtures/real"

// oracleFixtures pairs each real fixture with the skopeo reference that
// reads the same image and the tree path of its rootfs in layoutfs.
var oracleFixtures = []struct {
	file, skopeo, rootfs string
	arch, variant        string
}{
	{"A-containers-image-almostempty.tar", "docker-archive:", "tags/emptyimage:latest/linux_amd64/rootfs", "", ""},
	{"A-scalibr-symlinks-docker-save.tar", "docker-archive:", "tags/symlinks:latest/linux_amd64/rootfs", "", ""},
	{"A-podman-docker-two-images.tar", "docker-archive:%s:example.com/empty/but:different", "tags/example.com/empty/but:different/linux_amd64/rootfs", "", ""},
	{"A-ggcr-rules_docker-whiteout.tar", "docker-archive:", "tags/bazel/pkg/v1/mutate:whiteout_image/linux_amd64/rootfs", "", ""},
	{"A-dive-kaniko-ggcr-tarball.tar", "docker-archive:", "tags/dive-test:kaniko-latest/linux_amd64/rootfs", "", ""},
	{"B-ggcr-hello-world-docker-v25.tar", "docker-archive:", "manifests/sha256:411caf340c828657e915a83ed561a79d2b8150dabad4dc079d881cbfe6f86afe/linux_arm64/rootfs", "", ""},
	{"B-orasgo-hello-world-containerd-export.tar", "docker-archive:", "tags/latest/linux_amd64/rootfs", "", ""},
	{"C-dive-oci-zstd.tar", "oci-archive:", "manifests/sha256:f5e3515f39a16543547c03d03ec34faf9276742e6ce7c7dd6e467a14e90b29fc/linux_arm64/rootfs", "", ""},
	{"C-dive-oci-estargz.tar", "oci-archive:", "manifests/sha256:2e75eb783d1a845ce3846d1a7da4453f825886aab5b3ad03afcec7730a208c4d/linux_arm64/rootfs", "", ""},
	{"C-stereoscope-multiplatform-nested", "oci:%s:latest", "tags/latest/linux_arm64/rootfs", "arm64", ""},
	{"C-ocitools-whiteout-opaque", "oci:", "manifests/sha256:2cdfd3e1d50422e605b6256bfd7059504aa53194ffa8c07806b8f4c76b0b0e63/unknown_unknown/rootfs", "", ""},
	{"C-ocitools-whiteout-explicit-dir", "oci:", "manifests/sha256:f79caaccbff85dadc4f638985af54679c3e56f563c0e1fd1ec6a95e6a61dbad1/unknown_unknown/rootfs", "", ""},
	{"C-ocitools-hello-world-manifest-list", "oci:", "manifests/sha256:00e1ee7c898a2c393ea2fe7680938f8dcbe55e51fbf08032cf37326a677f92ed/linux_arm_v7/rootfs", "arm", "v7"},
	{"C-skopeo-oci-archive-name-only.tar.gz", "oci-archive:", "tags/pretty-empty:latest/linux_amd64/rootfs", "", ""},
}

// TestOracleRealFixtures compares the merged rootfs of every real fixture
// with what umoci unpacks from the same image (converted by skopeo),
// file by file: type, mode, owner, size, content, link target, hard links.
func TestOracleRealFixtures(t *testing.T) {
	needTools(t, "skopeo", "umoci", "gzip")
	for _, fx := range oracleFixtures {
		t.Run(fx.file, func(t *testing.T) {
			t.Parallel()
			source := filepath.Join(realDir, fx.file)
			peerSource := source
			if filepath.Ext(fx.file) == ".gz" {
				// skopeo reads no compressed archives; layoutfs does.
				peerSource = gunzip(t, source)
			}
			ref := fx.skopeo + peerSource
			if n := len(fx.skopeo); fx.skopeo[n-1] != ':' {
				ref = sprintfRef(fx.skopeo, peerSource)
			}
			oci := filepath.Join(t.TempDir(), "oci")
			args := []string{"copy", "-q", "--format", "oci", "--dest-compress-format", "gzip"}
			if fx.arch != "" {
				args = append(args, "--override-arch", fx.arch)
			}
			if fx.variant != "" {
				args = append(args, "--override-variant", fx.variant)
			}
			run(t, "skopeo", append(args, ref, "oci:"+oci+":t")...)
			want := dirTree(t, umociRootfs(t, oci, "t"))
			got := nodeTree(t, openDir(t, source, fx.rootfs))
			compareTrees(t, got, want)
		})
	}
}

func gunzip(t *testing.T, src string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "plain.tar")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command("gzip", "-dc", src)
	cmd.Stdout = f
	if err := cmd.Run(); err != nil {
		t.Fatalf("gzip -dc %s: %v", src, err)
	}
	return out
}
