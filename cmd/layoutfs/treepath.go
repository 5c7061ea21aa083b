package main

import (
	"fmt"
	"path"
	"strings"

	"github.com/layoutfs/layoutfs/layout"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/urfave/cli/v2"
)

// candidate is an image a shorthand path could mean, with where its tree is.
type candidate struct {
	dir      string // tags/<ref>/<platform> or manifests/<digest>/<platform>
	ref      string
	platform string
}

// treePath turns a TREE-PATH argument into a path in the tree. A relative
// path is taken as it is; an absolute one means that path in the rootfs of
// the one image --ref and --platform leave.
func treePath(c *cli.Context, src *layout.Source, arg string) (string, error) {
	if !strings.HasPrefix(arg, "/") {
		return arg, nil
	}
	cands, err := candidates(src, c.String("ref"), c.String("platform"))
	if err != nil {
		return "", err
	}
	switch len(cands) {
	case 0:
		return "", fmt.Errorf("%s: no image matches (ref %q, platform %q)", src.Path, c.String("ref"), c.String("platform"))
	case 1:
		return path.Join(cands[0].dir, "rootfs", arg), nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s is ambiguous; choose with --ref and --platform among:", src.Path, arg)
	for _, c := range cands {
		ref := c.ref
		if ref == "" {
			ref = "(untagged)"
		}
		fmt.Fprintf(&b, "\n  --ref %s --platform %s\t(%s)", ref, platformFlag(c.platform), c.dir)
	}
	return "", fmt.Errorf("%s", b.String())
}

// candidates lists the images of the source, each once, tagged ones under
// their first reference.
func candidates(src *layout.Source, ref, platform string) ([]candidate, error) {
	want := ""
	if platform != "" {
		want = platformDir(platform)
	}
	seen := map[string]bool{}
	var out []candidate
	consider := func(dir, refName string, descs []ocispec.Descriptor) error {
		images, err := src.Images(descs)
		if err != nil {
			return err
		}
		for _, im := range images {
			key := im.Desc.Digest.String()
			if seen[key] || (want != "" && im.Platform != want && !strings.HasPrefix(im.Platform, want+"-")) {
				continue
			}
			seen[key] = true
			out = append(out, candidate{dir: path.Join(dir, im.Platform), ref: refName, platform: im.Platform})
		}
		return nil
	}
	for _, r := range src.Refs() {
		if ref != "" && r.Name != ref {
			continue
		}
		if err := consider("tags/"+r.Name, r.Name, r.Descs); err != nil {
			return nil, err
		}
	}
	if ref == "" {
		for _, d := range src.Manifests() {
			if err := consider("manifests/"+d.Digest.String(), "", []ocispec.Descriptor{d}); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// platformDir turns os/arch[/variant][:osversion] into the directory name.
func platformDir(p string) string {
	p, osv, hasOSV := strings.Cut(p, ":")
	n := strings.ReplaceAll(p, "/", "_")
	if hasOSV {
		n += ":" + osv
	}
	return n
}

// platformFlag is the inverse of platformDir, for messages.
func platformFlag(dir string) string {
	p, osv, hasOSV := strings.Cut(dir, ":")
	n := strings.ReplaceAll(p, "_", "/")
	if hasOSV {
		n += ":" + osv
	}
	return n
}
