package layout

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ErrConflict is returned when another writer changed what a write was
// based on, between the write reading it and taking the lock.
var ErrConflict = errors.New("layout: changed by another writer")

// The compressions of CommitOptions.
const (
	CompressionGzip = "gzip"
	CompressionZstd = "zstd"
	CompressionNone = "none"
)

// The docker schema 2 media type of an uncompressed layer, which only
// commit writes.
const mediaTypeDockerLayerTar = "application/vnd.docker.image.rootfs.diff.tar"

// A buildx attestation is a manifest in an index, annotated with the
// digest of the image it describes.
const (
	annotationRefType   = "vnd.docker.reference.type"
	annotationRefDigest = "vnd.docker.reference.digest"
)

// CommitOptions tune Commit.
type CommitOptions struct {
	// Compression of the new layer: "gzip" ("" too), "zstd" or "none".
	Compression string
	// Message is the comment of the new history entry.
	Message string
	// CreatedBy is the created_by of the new history entry; "" is
	// "layoutfs commit".
	CreatedBy string
	// Created is the time of the new config and history entry; the zero
	// time is SOURCE_DATE_EPOCH when set, else now.
	Created time.Time
	// Tag is the reference name to point at the new image; "" moves the
	// committed reference itself.
	Tag string
	// TempDir is where the layer is staged before it is added to the
	// source; "" is os.TempDir().
	TempDir string
	// Base, when set, is the digest of the manifest the changes were made
	// against: if ref and platform name another image, Commit fails with
	// ErrConflict.
	Base digest.Digest
}

// Commit writes changes as a new layer on top of an image and points a
// reference at the result. The image is the one ref (a reference name, or
// the digest of a manifest or index, which needs o.Tag) reaches under the
// platform directory name platform ("linux_amd64", as in the tree; ""
// when ref reaches a single image), as s sees it.
//
// It writes the layer (reproducible: see WriteLayer), a new config (the
// layer's diff_id appended to rootfs.diff_ids, one history entry appended,
// created set), a new manifest (the layer appended, with the OCI media
// type of its compression, or the docker one when the manifest is docker
// schema 2, which has none for zstd) and, when the image is reached
// through indexes, new indexes along the way with only the old image's
// entries replaced (other platforms stay; buildx attestations of the old
// image go, as they do not describe the new one). Then it points o.Tag, or
// ref, at the new top descriptor (keeping the other descriptors a name
// given to several pointed at) through AddAndTag: one write under the
// source's lock, crash-safe. In a Docker 25+ save, a repo:tag name also
// gets a manifest.json entry for the new image, so docker load sees it.
//
// Everything is read and the layer staged before the lock is taken. If
// ref is moved meanwhile, by another writer, and the commit moves ref
// itself, it fails with ErrConflict rather than drop that writer's change:
// the changes were made against the image ref named before. With o.Tag,
// the new name is simply set (last writer wins for it). If a blob the new
// image shares with the old (a lower layer, another platform's manifest)
// was removed meanwhile, by a gc once nothing named the old image, it
// fails with ErrConflict too.
//
// A legacy docker save (manifest.json and <id>/layer.tar, no index.json)
// cannot hold a new manifest: ErrUnsupported. It returns the new top
// descriptor: what the name now points at.
func (s *Source) Commit(ctx context.Context, ref, platform string, changes []Change, o CommitOptions) (ocispec.Descriptor, error) {
	d, err := s.commit(ctx, ref, platform, changes, o)
	if err != nil {
		what := ref
		if platform != "" {
			what += " " + platform
		}
		return ocispec.Descriptor{}, fmt.Errorf("commit %s in %s: %w", what, s.Path, err)
	}
	return d, nil
}

func (s *Source) commit(ctx context.Context, ref, platform string, changes []Change, o CommitOptions) (ocispec.Descriptor, error) {
	if s.Kind == KindDockerLegacy {
		return ocispec.Descriptor{}, fmt.Errorf("%w: a legacy docker save (manifest.json and <id>/layer.tar, without index.json) has no place for a new manifest or index; convert it first (skopeo copy docker-archive:SRC oci-archive:DST, say)", ErrUnsupported)
	}
	o, err := o.withDefaults(ref)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	name := o.Tag

	// The image to build on.
	tops, byName, err := s.commitTops(ref)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if !byName && name == ref {
		return ocispec.Descriptor{}, fmt.Errorf("%w: %s is a digest, which cannot move: give a tag for the new image", ErrInvalid, ref)
	}
	im, err := s.commitImage(tops, ref, platform)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if o.Base != "" && o.Base != im.Desc.Digest {
		return ocispec.Descriptor{}, fmt.Errorf("%w: the changes were made on %s, and %s is now %s", ErrConflict, o.Base, ref, im.Desc.Digest)
	}
	layerType, err := layerMediaType(o.Compression, manifestMediaType(im) == mediaTypeDockerManifest)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	cfgType := im.Manifest.Config.MediaType
	if cfgType != ocispec.MediaTypeImageConfig && cfgType != mediaTypeDockerConfig {
		return ocispec.Descriptor{}, fmt.Errorf("%w: %s is not a container image (config media type %q)", ErrUnsupported, im.Desc.Digest, cfgType)
	}
	cfgRaw, err := s.Config(im)
	if err != nil {
		return ocispec.Descriptor{}, err
	}

	// The layer, staged in a temporary file, then the config and manifest
	// of the new image, and new indexes on the way to it.
	layer, err := stageLayer(ctx, o.TempDir, changes, o.Compression)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	defer os.Remove(layer.path)
	layerDesc := ocispec.Descriptor{MediaType: layerType, Digest: layer.digest, Size: layer.size}
	hist := ocispec.History{Created: &o.Created, CreatedBy: o.CreatedBy, Comment: o.Message}
	cfg, man, err := newImage(im, cfgRaw, layerDesc, layer.diffID, hist)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	blobs := []NewBlob{
		{Digest: layer.digest, Open: func() (io.ReadCloser, error) { return os.Open(layer.path) }},
		bytesBlob(cfg.raw),
		bytesBlob(man.raw),
	}
	rw := &graphRewrite{s: s, old: im.Desc.Digest, new: man.desc, done: map[digest.Digest]*ocispec.Descriptor{}, path: map[digest.Digest]bool{}}
	newTops, top, err := rw.rewriteTops(tops)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	blobs = append(blobs, rw.blobs...)
	// What the new image shares with the old, as far as the source held
	// it, must still be there when the new image lands: a gc may have run
	// in between, once nothing named the old image.
	var shared []digest.Digest
	for _, l := range im.Manifest.Layers {
		if _, _, err := s.Blob(l.Digest); err == nil {
			shared = append(shared, l.Digest)
		}
	}
	shared = append(shared, rw.kept...)

	// One write: the blobs and the name, plus, under the lock, the checks
	// and the rest of the source's bookkeeping.
	edit := func(e *editor) error {
		if byName && name == ref {
			if err := sameRef(e.src, ref, tops); err != nil {
				return err
			}
		}
		for _, d := range shared {
			if _, _, err := e.src.Blob(d); err != nil {
				return fmt.Errorf("%w: %s, which the new image shares with the old, is no longer in the source (removed by gc?)", ErrConflict, d)
			}
		}
		for i, d := range newTops {
			if i != top {
				e.addIndexName(descObject(d), name)
			}
		}
		if e.src.Kind == KindDockerSave && e.dock != nil && dockerTagged(name) {
			e.addDockerEntry(name, cfg.desc, append(slices.Clone(im.Manifest.Layers), layerDesc))
		}
		return nil
	}
	if err := s.addAndTag(ctx, blobs, newTops[top], name, edit); err != nil {
		return ocispec.Descriptor{}, err
	}
	return newTops[top], nil
}

// withDefaults fills in the defaults of o and checks it: Compression,
// CreatedBy, Created and Tag (ref, when not set) are all set after it.
func (o CommitOptions) withDefaults(ref string) (CommitOptions, error) {
	switch o.Compression {
	case "":
		o.Compression = CompressionGzip
	case CompressionGzip, CompressionZstd, CompressionNone:
	default:
		return o, fmt.Errorf("%w: compression %q: want gzip, zstd or none", ErrInvalid, o.Compression)
	}
	if o.CreatedBy == "" {
		o.CreatedBy = "layoutfs commit"
	}
	if o.Tag == "" {
		o.Tag = ref
	}
	if !SafeRefName(o.Tag) {
		return o, fmt.Errorf("%w: reference name %q is unsafe as a path", ErrInvalid, o.Tag)
	}
	var err error
	o.Created, err = commitTime(o.Created)
	return o, err
}

// newBlob is a JSON blob made by a commit.
type newBlob struct {
	desc ocispec.Descriptor
	raw  []byte
}

// newImage makes the config and manifest of im with layer on top.
func newImage(im *Image, cfgRaw []byte, layer ocispec.Descriptor, diffID digest.Digest, hist ocispec.History) (cfg, man newBlob, err error) {
	cfg.raw, err = commitConfig(cfgRaw, len(im.Manifest.Layers), diffID, hist)
	if err != nil {
		return cfg, man, fmt.Errorf("config %s: %w", im.Manifest.Config.Digest, err)
	}
	cfg.desc = ocispec.Descriptor{MediaType: im.Manifest.Config.MediaType, Digest: digest.FromBytes(cfg.raw), Size: int64(len(cfg.raw))}
	man.raw, err = commitManifest(im.Raw, cfg.desc, layer)
	if err != nil {
		return cfg, man, fmt.Errorf("manifest %s: %w", im.Desc.Digest, err)
	}
	mt := manifestMediaType(im)
	if mt == "" {
		mt = ocispec.MediaTypeImageManifest
	}
	man.desc = ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(man.raw), Size: int64(len(man.raw))}
	return cfg, man, nil
}

// commitTime is the time of a commit: t, else SOURCE_DATE_EPOCH, else now.
func commitTime(t time.Time) (time.Time, error) {
	if !t.IsZero() {
		return t.UTC(), nil
	}
	if v, ok := os.LookupEnv("SOURCE_DATE_EPOCH"); ok && v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("%w: SOURCE_DATE_EPOCH=%q is not a number of seconds", ErrInvalid, v)
		}
		return time.Unix(n, 0).UTC(), nil
	}
	return time.Now().UTC(), nil
}

// commitTops returns the descriptors ref names, and whether ref is a name
// (else it is a digest).
func (s *Source) commitTops(ref string) ([]ocispec.Descriptor, bool, error) {
	if r, ok := s.Ref(ref); ok {
		return slices.Clone(r.Descs), true, nil
	}
	if d, err := digest.Parse(ref); err == nil {
		for _, m := range s.Manifests() {
			if m.Digest == d {
				m.Annotations = nil
				return []ocispec.Descriptor{m}, false, nil
			}
		}
		return nil, false, fmt.Errorf("manifest %s: %w", d, ErrNotFound)
	}
	return nil, false, fmt.Errorf("reference %q: %w", ref, ErrNotFound)
}

// commitImage picks the image called platform among those tops reach.
func (s *Source) commitImage(tops []ocispec.Descriptor, ref, platform string) (*Image, error) {
	ims, err := s.Images(tops)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, im := range ims {
		if im.Platform == platform || (platform == "" && len(ims) == 1) {
			return im, nil
		}
		names = append(names, im.Platform)
	}
	if len(ims) == 0 {
		return nil, fmt.Errorf("%s reaches no image: %w", ref, ErrNotFound)
	}
	if platform == "" {
		return nil, fmt.Errorf("%w: %s has %d images (%s): name a platform", ErrInvalid, ref, len(ims), strings.Join(names, ", "))
	}
	return nil, fmt.Errorf("platform %q under %s (it has %s): %w", platform, ref, strings.Join(names, ", "), ErrNotFound)
}

func manifestMediaType(im *Image) string {
	if im.Manifest.MediaType != "" {
		return im.Manifest.MediaType
	}
	return im.Desc.MediaType
}

// layerMediaType is the media type of a layer of compression comp in an
// OCI or a docker schema 2 manifest.
func layerMediaType(comp string, docker bool) (string, error) {
	switch {
	case docker && comp == CompressionGzip:
		return mediaTypeDockerLayer, nil
	case docker && comp == CompressionNone:
		return mediaTypeDockerLayerTar, nil
	case docker:
		return "", fmt.Errorf("%w: a docker schema 2 manifest has no media type for %s layers: use gzip or none", ErrUnsupported, comp)
	case comp == CompressionGzip:
		return ocispec.MediaTypeImageLayerGzip, nil
	case comp == CompressionZstd:
		return ocispec.MediaTypeImageLayerZstd, nil
	}
	return ocispec.MediaTypeImageLayer, nil
}

// sameRef fails with ErrConflict unless ref, in the source as it is now,
// still names the descriptors it named when the commit read it.
func sameRef(now *Source, ref string, before []ocispec.Descriptor) error {
	r, ok := now.Ref(ref)
	if !ok {
		return fmt.Errorf("%w: reference %q was removed since the commit read it", ErrConflict, ref)
	}
	digests := func(ds []ocispec.Descriptor) []string {
		var out []string
		for _, d := range ds {
			out = append(out, d.Digest.String())
		}
		slices.Sort(out)
		return out
	}
	was, is := digests(before), digests(r.Descs)
	if !slices.Equal(was, is) {
		return fmt.Errorf("%w: reference %q moved from %s to %s since the commit read it; the changes were made against the former: commit again", ErrConflict, ref, strings.Join(was, ","), strings.Join(is, ","))
	}
	return nil
}

// commitConfig appends diffID and hist to a config, sets its created
// time, and keeps the rest as it was (unknown fields and their order).
func commitConfig(raw []byte, layers int, diffID digest.Digest, hist ocispec.History) ([]byte, error) {
	var cfg object
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	var rootfs object
	if _, err := cfg.get("rootfs", &rootfs); err != nil {
		return nil, fmt.Errorf("%w: rootfs: %v", ErrInvalid, err)
	}
	if rootfs.str("type") == "" {
		rootfs.set("type", "layers")
	}
	var ids []digest.Digest
	if _, err := rootfs.get("diff_ids", &ids); err != nil {
		return nil, fmt.Errorf("%w: rootfs.diff_ids: %v", ErrInvalid, err)
	}
	if len(ids) != layers {
		return nil, fmt.Errorf("%w: %d diff_ids for %d layers", ErrInvalid, len(ids), layers)
	}
	rootfs.set("diff_ids", append(ids, diffID))
	var history []json.RawMessage
	if _, err := cfg.get("history", &history); err != nil {
		return nil, fmt.Errorf("%w: history: %v", ErrInvalid, err)
	}
	h, err := json.Marshal(hist)
	if err != nil {
		return nil, err
	}
	cfg.set("created", hist.Created)
	cfg.set("rootfs", rootfs)
	cfg.set("history", append(history, h))
	return json.Marshal(cfg)
}

// commitManifest points a manifest at a new config and appends a layer,
// keeping the rest as it was.
func commitManifest(raw []byte, cfg, layer ocispec.Descriptor) ([]byte, error) {
	var m object
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	var c object
	if _, err := m.get("config", &c); err != nil {
		return nil, fmt.Errorf("%w: config: %v", ErrInvalid, err)
	}
	c.set("digest", cfg.Digest)
	c.set("size", cfg.Size)
	var layers []json.RawMessage
	if _, err := m.get("layers", &layers); err != nil {
		return nil, fmt.Errorf("%w: layers: %v", ErrInvalid, err)
	}
	l, err := json.Marshal(descObject(layer))
	if err != nil {
		return nil, err
	}
	m.set("config", c)
	m.set("layers", append(layers, l))
	return json.Marshal(m)
}

func bytesBlob(b []byte) NewBlob {
	return NewBlob{Digest: digest.FromBytes(b), Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }}
}

// graphRewrite replaces one image manifest by another wherever an index
// under a reference lists it, making new indexes along each path.
type graphRewrite struct {
	s     *Source
	old   digest.Digest
	new   ocispec.Descriptor // digest and size of the replacement
	blobs []NewBlob          // the new indexes, innermost first
	kept  []digest.Digest    // what the new descriptors share with the old, present in s
	done  map[digest.Digest]*ocispec.Descriptor
	path  map[digest.Digest]bool
}

// rewriteTops rewrites the descriptors a name points at. It returns them
// all, without annotations, and which one is the first that changed; the
// unchanged ones the source holds join kept.
func (g *graphRewrite) rewriteTops(tops []ocispec.Descriptor) ([]ocispec.Descriptor, int, error) {
	var out []ocispec.Descriptor
	top := -1
	for _, d := range tops {
		nd, changed, err := g.rewrite(d, 0)
		if err != nil {
			return nil, 0, err
		}
		if changed && top < 0 {
			top = len(out)
		}
		if _, _, err := g.s.Blob(d.Digest); err == nil && !changed {
			g.kept = append(g.kept, d.Digest)
		}
		nd.Annotations = nil
		out = append(out, nd)
	}
	if top < 0 {
		// Images found the image under tops: rewriting must too.
		return nil, 0, fmt.Errorf("%w: image %s not found again", ErrNotFound, g.old)
	}
	return out, top, nil
}

// rewrite returns d with what it reaches rewritten, and whether anything
// changed. Descriptors keep their media type, platform and annotations.
func (g *graphRewrite) rewrite(d ocispec.Descriptor, depth int) (ocispec.Descriptor, bool, error) {
	if d.Digest == g.old {
		d.Digest, d.Size = g.new.Digest, g.new.Size
		if d.MediaType == "" {
			d.MediaType = g.new.MediaType
		}
		return d, true, nil
	}
	if nd, ok := g.done[d.Digest]; ok {
		if nd == nil {
			return d, false, nil
		}
		d.Digest, d.Size = nd.Digest, nd.Size
		if d.MediaType == "" {
			d.MediaType = nd.MediaType
		}
		return d, true, nil
	}
	if g.path[d.Digest] {
		return d, false, fmt.Errorf("%w: %s includes itself", ErrCycle, d.Digest)
	}
	if depth > maxNesting {
		return d, false, fmt.Errorf("%w: indexes nested deeper than %d", ErrInvalid, maxNesting)
	}
	n, err := g.s.Resolve(d)
	if err != nil {
		if IsNotFound(err) && depth > 0 {
			g.done[d.Digest] = nil // a manifest left out of a partial layout
			return d, false, nil
		}
		return d, false, err
	}
	if n.Index == nil {
		g.done[d.Digest] = nil
		return d, false, nil
	}
	g.path[d.Digest] = true
	defer delete(g.path, d.Digest)
	var idx object
	if err := json.Unmarshal(n.Raw, &idx); err != nil {
		return d, false, fmt.Errorf("%w: index %s: %v", ErrInvalid, d.Digest, err)
	}
	var ents []object
	if _, err := idx.get("manifests", &ents); err != nil {
		return d, false, fmt.Errorf("%w: index %s manifests: %v", ErrInvalid, d.Digest, err)
	}
	changed := false
	out := make([]object, 0, len(ents))
	for _, ent := range ents {
		a := annotations(ent)
		if a.str(annotationRefType) == "attestation-manifest" && digest.Digest(a.str(annotationRefDigest)) == g.old {
			changed = true // it describes the old image, not the new
			continue
		}
		cd := objectDesc(ent)
		nd, ch, err := g.rewrite(cd, depth+1)
		if err != nil {
			return d, false, err
		}
		if ch {
			ent = ent.clone()
			ent.set("digest", nd.Digest)
			ent.set("size", nd.Size)
			if cd.MediaType == "" {
				ent.set("mediaType", nd.MediaType)
			}
			changed = true
		} else if _, _, err := g.s.Blob(cd.Digest); err == nil {
			g.kept = append(g.kept, cd.Digest)
		}
		out = append(out, ent)
	}
	if !changed {
		g.done[d.Digest] = nil
		return d, false, nil
	}
	idx.set("manifests", out)
	raw, err := json.Marshal(idx)
	if err != nil {
		return d, false, err
	}
	b := bytesBlob(raw)
	g.blobs = append(g.blobs, b)
	mt := n.Index.MediaType
	if mt == "" {
		mt = ocispec.MediaTypeImageIndex
	}
	nd := ocispec.Descriptor{MediaType: mt, Digest: b.Digest, Size: int64(len(raw))}
	g.done[d.Digest] = &nd
	d.Digest, d.Size = nd.Digest, nd.Size
	if d.MediaType == "" {
		d.MediaType = mt
	}
	return d, true, nil
}

// addDockerEntry adds a manifest.json entry for a new image of a Docker
// 25+ save, named name (a repo:tag), as docker save writes it: config and
// layers by their blob paths.
func (e *editor) addDockerEntry(name string, cfg ocispec.Descriptor, layers []ocispec.Descriptor) {
	var ent object
	ent.set("Config", blobPath(cfg.Digest))
	ent.set("RepoTags", []string{name})
	paths := make([]string, 0, len(layers))
	for _, l := range layers {
		paths = append(paths, blobPath(l.Digest))
	}
	ent.set("Layers", paths)
	e.dock = append(e.dock, ent)
	e.dockDirty = true
	e.addRepository(len(e.dock)-1, name)
}

// stagedLayer is a layer written to a temporary file.
type stagedLayer struct {
	path   string
	digest digest.Digest // of the bytes in the file
	diffID digest.Digest // of the uncompressed tar
	size   int64
}

// stageLayer writes the layer of changes, compressed by comp, to a new
// temporary file in dir, hashing both the blob and the tar on the way.
func stageLayer(ctx context.Context, dir string, changes []Change, comp string) (l stagedLayer, err error) {
	f, err := os.CreateTemp(dir, "layoutfs-commit-*.layer")
	if err != nil {
		return l, err
	}
	l.path = f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(l.path)
		}
	}()
	blobHash, diffHash := digest.SHA256.Digester(), digest.SHA256.Digester()
	fw := bufio.NewWriterSize(f, 1<<20)
	out := &countWriter{w: io.MultiWriter(fw, blobHash.Hash())}
	var zw io.WriteCloser
	switch comp {
	case CompressionGzip:
		// No name and no mtime in the header: the same tar gives the
		// same bytes.
		zw, err = gzip.NewWriterLevel(out, gzip.DefaultCompression)
	case CompressionZstd:
		zw, err = zstd.NewWriter(out, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	default:
		zw = nopWriteCloser{out}
	}
	if err != nil {
		return l, err
	}
	if err := writeLayer(ctx, io.MultiWriter(zw, diffHash.Hash()), changes); err != nil {
		zw.Close()
		return l, err
	}
	if err := zw.Close(); err != nil {
		return l, err
	}
	if err := fw.Flush(); err != nil {
		return l, err
	}
	if err := f.Close(); err != nil {
		os.Remove(l.path)
		return l, err
	}
	l.digest, l.diffID, l.size = blobHash.Digest(), diffHash.Digest(), out.n
	return l, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
