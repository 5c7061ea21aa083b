package layout

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/layoutfs/layoutfs/tarindex"
	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// dockerEntry is one image of a docker save manifest.json.
type dockerEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// parseDockerManifest parses a docker save manifest.json.
func parseDockerManifest(b []byte) ([]dockerEntry, error) {
	var entries []dockerEntry
	if err := json.Unmarshal(b, &entries); err != nil {
		return nil, err
	}
	return entries, nil
}

// readDockerManifest reads the entries of manifest.json. With synth (a
// legacy save, or a Docker 25+ save whose index.json is malformed) it
// synthesises what an OCI layout would have (manifests, index.json,
// oci-layout), so that the tree is a layout peers can read. Otherwise (a
// Docker 25+ save) it adds the RepoTags as references, and finds the
// manifest of entries that index.json does not list (Docker 25.0 wrote
// "manifests": null for untagged saves). With lookup, an entry's manifest
// is looked for among the blobs before one is made for it.
func (s *Source) readDockerManifest(ctx context.Context, entries []dockerEntry, synth, lookup bool) error {
	var find *manifestFinder
	if lookup {
		known, _ := s.Images(s.index.Manifests)
		find = newManifestFinder(s, known)
	}
	var made []ocispec.Descriptor
	// Entries repeating a config or layer file (or a link to one) are
	// worked out once: a 64 MiB manifest.json of one entry a million times
	// must not read and hash the same blobs a million times.
	type result struct {
		desc      ocispec.Descriptor
		reachable bool
		err       error
	}
	done := map[string]result{}
	s.layerDigests = map[string]digest.Digest{}
	defer func() { s.layerDigests = nil }()
	for i, e := range entries {
		key := s.st.identity(e.Config) + "\x00" + strings.Join(e.Layers, "\x00")
		r, ok := done[key]
		if !ok {
			r.desc, r.reachable, r.err = s.dockerImage(ctx, e, find)
			done[key] = r
		}
		desc, reachable, err := r.desc, r.reachable, r.err
		if err != nil {
			s.warn("manifest.json entry %d (%s): %v", i, e.Config, err)
			continue
		}
		if synth {
			for _, tag := range e.RepoTags {
				d := desc
				d.Annotations = map[string]string{ocispec.AnnotationRefName: tag}
				made = append(made, d)
			}
			if len(e.RepoTags) == 0 {
				made = append(made, desc)
			}
			continue
		}
		for _, tag := range e.RepoTags {
			if _, ok := s.Ref(tag); ok {
				continue
			}
			// The tag names what index.json lists under the same full
			// name (an index, for a multi-platform save), else the image.
			if top, ok := s.indexEntryNamed(tag); ok {
				s.addRef(tag, top)
			} else {
				s.addRef(tag, desc)
			}
		}
		if !reachable {
			s.extra = append(s.extra, desc)
		}
	}
	if synth {
		return s.synthesiseIndex(made)
	}
	return nil
}

func (s *Source) synthesiseIndex(manifests []ocispec.Descriptor) error {
	if manifests == nil {
		manifests = []ocispec.Descriptor{}
	}
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: manifests}
	raw, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	s.index = idx
	s.Files["index.json"] = raw
	s.Files["oci-layout"] = []byte(`{"imageLayoutVersion":"` + ocispec.ImageLayoutVersion + `"}`)
	s.refsFromIndex()
	return nil
}

// dockerImage finds (with find: among what index.json reaches, then among
// the blobs) or makes the manifest of one manifest.json entry. It reports
// whether index.json already reaches that manifest.
func (s *Source) dockerImage(ctx context.Context, e dockerEntry, find *manifestFinder) (ocispec.Descriptor, bool, error) {
	cfgName, err := tarindex.CleanName(e.Config)
	if err != nil {
		return ocispec.Descriptor{}, false, err
	}
	cfgR, cfgSize, err := s.st.file(cfgName)
	if err != nil {
		return ocispec.Descriptor{}, false, err
	}
	cfgRaw, err := readAll(cfgR, cfgSize, maxBlobJSON, cfgName)
	if err != nil {
		return ocispec.Descriptor{}, false, err
	}
	cfgDigest := digest.FromBytes(cfgRaw)
	if find != nil {
		if d, reachable, ok := find.byConfig(ctx, cfgDigest); ok {
			return d, reachable, nil
		}
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(cfgRaw, &cfg); err != nil {
		return ocispec.Descriptor{}, false, fmt.Errorf("%w: config %s: %v", ErrInvalid, cfgName, err)
	}
	s.st.add(cfgDigest, cfgR, cfgSize)
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: cfgDigest, Size: cfgSize},
		Layers:    []ocispec.Descriptor{},
	}
	for i, name := range e.Layers {
		l, err := s.dockerLayer(ctx, name, i, cfg.RootFS.DiffIDs)
		if err != nil {
			return ocispec.Descriptor{}, false, err
		}
		m.Layers = append(m.Layers, l)
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return ocispec.Descriptor{}, false, err
	}
	md := digest.FromBytes(raw)
	s.st.add(md, bytesReader(raw), int64(len(raw)))
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: md, Size: int64(len(raw))}
	if cfg.OS != "" {
		p := cfg.Platform
		desc.Platform = &p
	}
	if find != nil {
		// The manifest made is now among the blobs: a later entry of the
		// same config finds it, as it would a manifest of the save.
		find.made(cfgDigest, ocispec.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size})
	}
	return desc, false, nil
}

// dockerLayer registers a layer file of a docker save as a blob. An
// uncompressed layer's digest is its diff_id, which the config already
// holds, so a large save is not read whole to open it; the digest is still
// checked when the layer is indexed.
func (s *Source) dockerLayer(ctx context.Context, name string, i int, diffIDs []digest.Digest) (ocispec.Descriptor, error) {
	clean, err := tarindex.CleanName(name)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	r, size, err := s.st.file(clean)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	comp, err := tarindex.Detect(r)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("layer %s: %w", clean, err)
	}
	desc := ocispec.Descriptor{Size: size}
	switch comp {
	case tarindex.Gzip:
		desc.MediaType = ocispec.MediaTypeImageLayerGzip
	case tarindex.Zstd:
		desc.MediaType = ocispec.MediaTypeImageLayerZstd
	default:
		desc.MediaType = ocispec.MediaTypeImageLayer
	}
	if comp == tarindex.None && i < len(diffIDs) && diffIDs[i].Validate() == nil {
		desc.Digest = diffIDs[i]
	} else if d, ok := s.layerDigests[s.st.identity(clean)]; ok {
		desc.Digest = d
	} else {
		d, err := digest.FromReader(io.NewSectionReader(r, 0, size))
		if err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("layer %s: %w", clean, err)
		}
		desc.Digest = d
		if s.layerDigests != nil {
			s.layerDigests[s.st.identity(clean)] = d
		}
	}
	s.st.add(desc.Digest, r, size)
	return desc, nil
}

// annotationImageName is the full image name containerd and Docker 25+
// write beside the short ref.name.
const annotationImageName = "io.containerd.image.name"

// indexEntryNamed finds the index.json entry whose full image name is the
// docker reference tag.
func (s *Source) indexEntryNamed(tag string) (ocispec.Descriptor, bool) {
	full := normalizeDockerRef(tag)
	for _, d := range s.index.Manifests {
		if name, ok := d.Annotations[annotationImageName]; ok && normalizeDockerRef(name) == full {
			return d, true
		}
	}
	return ocispec.Descriptor{}, false
}

// normalizeDockerRef spells a docker reference in full, as docker does:
// "alpine:3.20" is "docker.io/library/alpine:3.20".
func normalizeDockerRef(ref string) string {
	first, _, hasSlash := strings.Cut(ref, "/")
	if !hasSlash {
		return "docker.io/library/" + ref
	}
	if !strings.ContainsAny(first, ".:") && first != "localhost" {
		return "docker.io/" + ref
	}
	return ref
}

// maxScannedManifest bounds the blobs read when looking for a manifest by
// its config: an image manifest is a few KiB.
const maxScannedManifest = 1 << 20

// manifestFinder finds the manifest of a manifest.json entry by its
// config: among the images index.json reaches, else among the small blobs
// of the source. The blobs are scanned at most once per open, on the first
// config index.json does not reach, into a map of config to manifest: a
// scan per entry would be entries × blobs reads, parses and (for blobs
// that do not parse, which nothing caches) hashes, a hang on a save of
// thousands of entries and thousands of small blobs.
type manifestFinder struct {
	s       *Source
	known   map[digest.Digest]ocispec.Descriptor // config -> manifest index.json reaches
	blobs   map[digest.Digest]ocispec.Descriptor // config -> manifest blob, once scanned
	scanned bool
}

func newManifestFinder(s *Source, known []*Image) *manifestFinder {
	f := &manifestFinder{s: s, known: map[digest.Digest]ocispec.Descriptor{}}
	for _, im := range known {
		if _, ok := f.known[im.Manifest.Config.Digest]; !ok {
			f.known[im.Manifest.Config.Digest] = im.Desc
		}
	}
	return f
}

// byConfig finds the manifest whose config is cfg, and reports whether
// index.json reaches it.
func (f *manifestFinder) byConfig(ctx context.Context, cfg digest.Digest) (ocispec.Descriptor, bool, bool) {
	if d, ok := f.known[cfg]; ok {
		return d, true, true
	}
	if !f.scanned {
		f.blobs = f.s.scanManifests(ctx)
		f.scanned = true
		f.s.manifestScans++
	}
	d, ok := f.blobs[cfg]
	return d, false, ok
}

// made records a manifest made for config cfg, found from then on.
func (f *manifestFinder) made(cfg digest.Digest, d ocispec.Descriptor) {
	if !f.scanned { // the scan will find it
		return
	}
	if _, ok := f.blobs[cfg]; !ok {
		f.blobs[cfg] = d
	}
}

// scanManifests reads each blob of the source of at most
// maxScannedManifest bytes once, and maps the config of each that is an
// image manifest (and hashes to its digest) to it; of manifests sharing a
// config, the first in digest order. Only the map is kept: the bytes of
// the blobs read are left for Resolve to read again if they are served,
// not held in s.blobs, which would otherwise hold every small blob of the
// source.
func (s *Source) scanManifests(ctx context.Context) map[digest.Digest]ocispec.Descriptor {
	out := map[digest.Digest]ocispec.Descriptor{}
	for _, d := range s.st.list() {
		if ctx.Err() != nil {
			break
		}
		r, size, err := s.st.blob(d)
		if err != nil || size > maxScannedManifest {
			continue
		}
		raw, err := readAll(r, size, maxScannedManifest, d.String())
		if err != nil {
			continue
		}
		if _, isManifest := sniffKind(raw); !isManifest {
			continue
		}
		var m ocispec.Manifest
		if json.Unmarshal(raw, &m) != nil || m.Config.Digest == "" {
			continue
		}
		if _, ok := out[m.Config.Digest]; ok || verify(d, raw) != nil {
			continue
		}
		mt := m.MediaType
		if mt == "" {
			mt = ocispec.MediaTypeImageManifest
		}
		out[m.Config.Digest] = ocispec.Descriptor{MediaType: mt, Digest: d, Size: size}
	}
	return out
}
