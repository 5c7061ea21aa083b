package layout

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Node is a manifest or an index, read and parsed.
type Node struct {
	Desc ocispec.Descriptor
	Raw  []byte
	// Exactly one of these is set.
	Index    *ocispec.Index
	Manifest *ocispec.Manifest
}

// Resolve reads the manifest or index desc points at.
func (s *Source) Resolve(desc ocispec.Descriptor) (*Node, error) {
	raw, err := s.readJSONBlob(desc)
	if err != nil {
		return nil, err
	}
	n := &Node{Desc: desc, Raw: raw}
	isIndex, isManifest := isIndexType(desc.MediaType), isManifestType(desc.MediaType)
	if !isIndex && !isManifest {
		isIndex, isManifest = sniffKind(raw)
	}
	switch {
	case isIndex:
		n.Index = new(ocispec.Index)
		err = json.Unmarshal(raw, n.Index)
	case isManifest:
		n.Manifest = new(ocispec.Manifest)
		err = json.Unmarshal(raw, n.Manifest)
	default:
		return nil, fmt.Errorf("%w: %s: media type %q is neither a manifest nor an index", ErrInvalid, desc.Digest, desc.MediaType)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalid, desc.Digest, err)
	}
	return n, nil
}

// Image is one image manifest reachable from a reference, with the name of
// its platform directory.
type Image struct {
	Desc     ocispec.Descriptor // with the platform of the index that lists it, if any
	Platform string
	Manifest *ocispec.Manifest
	Raw      []byte
}

// Images returns every image manifest reachable from descs, following
// nested indexes, each named by platform. Manifests whose blobs are absent
// (a partial multi-platform layout) are left out with a warning.
func (s *Source) Images(descs []ocispec.Descriptor) ([]*Image, error) {
	var out []*Image
	// walked holds the indexes already walked whole: an index listing
	// the same index twice, 30 levels deep, must not cost 2^30 walks.
	walked := map[digest.Digest]bool{}
	var walk func(d ocispec.Descriptor, path map[digest.Digest]bool, depth int) error
	walk = func(d ocispec.Descriptor, path map[digest.Digest]bool, depth int) error {
		if walked[d.Digest] {
			return nil
		}
		if path[d.Digest] {
			return fmt.Errorf("%w: %s includes itself", ErrCycle, d.Digest)
		}
		if depth > maxNesting {
			return fmt.Errorf("%w: indexes nested deeper than %d", ErrInvalid, maxNesting)
		}
		n, err := s.Resolve(d)
		if err != nil {
			if IsNotFound(err) && depth > 0 {
				s.warn("manifest %s (%s) is not in the source: left out", d.Digest, platformName(d.Platform))
				return nil
			}
			return err
		}
		if n.Manifest != nil {
			out = append(out, &Image{Desc: d, Manifest: n.Manifest, Raw: n.Raw})
			return nil
		}
		path[d.Digest] = true
		defer delete(path, d.Digest)
		for _, child := range n.Index.Manifests {
			if err := walk(child, path, depth+1); err != nil {
				return err
			}
		}
		walked[d.Digest] = true
		return nil
	}
	for _, d := range descs {
		if err := walk(d, map[digest.Digest]bool{}, 0); err != nil {
			return nil, err
		}
	}
	out = dedupImages(out)
	s.namePlatforms(out)
	return out, nil
}

func dedupImages(in []*Image) []*Image {
	seen := map[digest.Digest]bool{}
	out := in[:0]
	for _, im := range in {
		if !seen[im.Desc.Digest] {
			seen[im.Desc.Digest] = true
			out = append(out, im)
		}
	}
	return out
}

// namePlatforms names each image by the platform of its descriptor, else of
// its config; names that collide get the digest's first 12 hex digits.
func (s *Source) namePlatforms(ims []*Image) {
	count := map[string]int{}
	for _, im := range ims {
		p := im.Desc.Platform
		if p == nil || p.OS == "" {
			p = s.configPlatform(im.Manifest.Config)
		}
		im.Platform = platformName(p)
		count[im.Platform]++
	}
	for _, im := range ims {
		if count[im.Platform] > 1 {
			im.Platform += "-" + im.Desc.Digest.Encoded()[:min(12, len(im.Desc.Digest.Encoded()))]
		}
	}
	sort.SliceStable(ims, func(i, j int) bool { return ims[i].Platform < ims[j].Platform })
}

func (s *Source) configPlatform(cfg ocispec.Descriptor) *ocispec.Platform {
	raw, err := s.readJSONBlob(cfg)
	if err != nil {
		return nil
	}
	var c ocispec.Image
	if json.Unmarshal(raw, &c) != nil {
		return nil
	}
	return &c.Platform
}

// platformName is buildx's local-exporter naming with ORAS's :os.version:
// os_arch[_variant][:osversion], unknown_unknown when nothing is known.
func platformName(p *ocispec.Platform) string {
	if p == nil {
		return "unknown_unknown"
	}
	part := func(s string) string {
		if s == "" {
			return "unknown"
		}
		return strings.NewReplacer("/", "-", "\x00", "").Replace(s)
	}
	n := part(p.OS) + "_" + part(p.Architecture)
	if p.Variant != "" {
		n += "_" + part(p.Variant)
	}
	if p.OSVersion != "" {
		n += ":" + part(p.OSVersion)
	}
	return n
}

// Config reads the raw config blob of an image.
func (s *Source) Config(im *Image) ([]byte, error) {
	return s.readJSONBlob(im.Manifest.Config)
}

// Manifests returns every manifest and index reachable from index.json,
// tagged or not, plus those known only from a docker manifest.json, each
// once, sorted by digest. Unreadable ones are warned about and left out.
func (s *Source) Manifests() []ocispec.Descriptor {
	seen := map[digest.Digest]bool{}
	var out []ocispec.Descriptor
	var walk func(d ocispec.Descriptor, depth int)
	walk = func(d ocispec.Descriptor, depth int) {
		if seen[d.Digest] || depth > maxNesting {
			return
		}
		n, err := s.Resolve(d)
		if err != nil {
			if !IsNotFound(err) {
				s.warn("%v", err)
			}
			return
		}
		seen[d.Digest] = true
		out = append(out, d)
		if n.Index != nil {
			for _, c := range n.Index.Manifests {
				walk(c, depth+1)
			}
		}
	}
	for _, d := range s.index.Manifests {
		walk(d, 0)
	}
	for _, d := range s.extra {
		walk(d, 0)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Digest < out[j].Digest })
	return out
}
