package layout

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/layoutfs/layoutfs/internal/memo"
	"github.com/layoutfs/layoutfs/tarindex"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Kind is the shape a source was found to have.
type Kind int

// The shapes of SPEC.md's table of sources.
const (
	KindLayoutDir    Kind = iota // OCI image layout directory
	KindOCIArchive               // tarball of an OCI layout
	KindDockerSave               // Docker 25+ save: OCI layout plus manifest.json
	KindDockerLegacy             // legacy docker save, skopeo docker-archive, ggcr tarball
)

func (k Kind) String() string {
	return [...]string{"oci-layout directory", "oci-archive", "docker save (OCI)", "docker save (legacy)"}[k]
}

// Options tune Open.
type Options struct {
	// CacheDir keeps indexes between mounts; "" keeps none.
	CacheDir string
	// Progress reports long work (indexing an archive or a layer: reading it
	// whole to check its digest, decompressing it).
	Progress func(what string, done, total int64)
	// Warn receives problems that do not stop the source from being served.
	Warn func(msg string)
	// MaxLayerSize bounds the uncompressed size of a layer (and of a
	// compressed outer archive); 0 means DefaultMaxLayerSize.
	MaxLayerSize int64
	// MaxExpansion bounds how many times its compressed size a stream may
	// expand to, once past 256 MiB; 0 means DefaultMaxExpansion, < 0 none.
	// A descriptor's size bounds only the compressed bytes: this is what
	// stops a tiny gzip from expanding to terabytes.
	MaxExpansion int64
	// Strict makes a malformed index.json or manifest.json fail the open
	// (ErrInvalid) even when the source holds the other one to serve from
	// (a Docker 25+ save), instead of being warned about and served around.
	// It is for a caller that keeps its last good view of a source that
	// changes on disk (a live mount reopening it): a peer rewriting
	// index.json in place leaves it truncated for a moment, and such a
	// caller would rather get ErrInvalid, and keep what it had, than swap
	// to a view served around the damaged file, short of what that file
	// lists, until the next change.
	Strict bool
}

// Defaults of the limits of Options.
const (
	DefaultMaxLayerSize = 64 << 30
	DefaultMaxExpansion = 1000 // deflate tops out near 1032:1, on nothing but zeros
	expansionFloor      = 256 << 20
)

// limit is how far the uncompressed stream of size compressed bytes may go.
func (o Options) limit(size int64) int64 {
	n := o.MaxLayerSize
	if n <= 0 {
		n = DefaultMaxLayerSize
	}
	ratio := o.MaxExpansion
	if ratio == 0 {
		ratio = DefaultMaxExpansion
	}
	if ratio > 0 && size < n/ratio {
		n = max(size*ratio, expansionFloor)
	}
	return n
}

// Limits on what is parsed whole.
const (
	maxJSON     = 64 << 20 // index.json, manifest.json
	maxBlobJSON = 16 << 20 // a manifest, index or config blob
	maxNesting  = 32       // index -> index -> ... depth
)

// Source is an opened image source. It is safe for concurrent use.
type Source struct {
	Path string
	Kind Kind

	// Files holds the top-level files as served: oci-layout and index.json
	// (synthesised for a legacy docker save), manifest.json and repositories
	// as found.
	Files map[string][]byte
	index ocispec.Index

	refs  []Ref
	extra []ocispec.Descriptor // manifests known only from manifest.json

	// broken lists the top-level files found malformed and served around
	// (one of index.json and manifest.json, the other standing in), for
	// Verify to report.
	broken []brokenFile

	st    *store
	opts  Options
	cache *tarindex.Cache
	// archiveKey identifies the unchanged outer tarball (path, size, mtime,
	// inode), for stamps of what was verified in it; "" for directories.
	archiveKey string

	// layerDigests memoizes the digests of docker save layer files, by
	// store identity, while manifest.json is read.
	layerDigests map[string]digest.Digest
	// manifestScans counts the scans of the blobs for manifests by config
	// (see manifestFinder), for tests: one per open at most.
	manifestScans int

	mu     sync.Mutex
	blobs  map[digest.Digest][]byte // parsed JSON blobs, by digest
	layers memo.Map[digest.Digest, *tarindex.Archive]
	warned map[string]bool
}

// Open detects what path holds, by content, and opens it. Of a source that
// holds both index.json and manifest.json (a Docker 25+ save), one being
// malformed is warned about and served around from the other, and Verify
// reports it; unless o.Strict, under which it is an ErrInvalid error.
func Open(ctx context.Context, path string, o Options) (*Source, error) {
	s, err := openPath(ctx, path, o)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return s, nil
}

// OpenReaderAt opens an archive (any of the tarball sources, compressed or
// not) held in the size bytes of r; name is its Path, for messages. Nothing
// is cached. Every read stays within the size bytes. A malformed
// index.json or manifest.json is handled as Open does.
func OpenReaderAt(ctx context.Context, r io.ReaderAt, size int64, name string, o Options) (*Source, error) {
	o.CacheDir = ""
	s := newSource(name, o)
	if err := s.openArchive(ctx, r, size, ""); err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	if err := s.openShape(ctx); err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	return s, nil
}

func newSource(path string, o Options) *Source {
	s := &Source{Path: path, opts: o, Files: map[string][]byte{}, blobs: map[digest.Digest][]byte{}, warned: map[string]bool{}}
	if o.CacheDir != "" {
		s.cache = &tarindex.Cache{Dir: o.CacheDir, Warn: func(m string) { s.warn("%s", m) }}
	}
	return s
}

// openArchive indexes the outer tarball of a source.
func (s *Source) openArchive(ctx context.Context, r io.ReaderAt, size int64, key string) error {
	// The limit is on expansion: an uncompressed tarball, which cannot run
	// past its own size, is never refused by it, however large it is.
	ctx = tarindex.WithLimit(ctx, max(s.opts.limit(size), size))
	a, err := tarindex.Open(ctx, r, size, key, tarindex.Options{Cache: s.cache, Progress: s.progress(filepath.Base(s.Path))})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnknownShape, err)
	}
	if len(a.Entries) == 0 {
		return fmt.Errorf("%w: empty or not a tar archive", ErrUnknownShape)
	}
	for _, w := range a.Warnings {
		s.warn("%s", w)
	}
	s.Kind = KindOCIArchive
	s.st = newTarStore(a)
	s.archiveKey = key
	return nil
}

// open opens path strictly, for a write: a malformed index.json or
// manifest.json is an error (ErrInvalid, which openFresh waits out), never
// served around, so that no write builds on what a damaged file hid.
func open(ctx context.Context, path string, o Options) (*Source, error) {
	o.Strict = true
	return openPath(ctx, path, o)
}

// openPath opens path; unless o.Strict, one malformed file of a source
// that holds both index.json and manifest.json is served around (see
// openShape).
func openPath(ctx context.Context, path string, o Options) (*Source, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	s := newSource(path, o)
	if st.IsDir() {
		s.Kind = KindLayoutDir
		s.st = newDirStore(path)
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		if err := s.openArchive(ctx, f, st.Size(), fileKey(path, st)); err != nil {
			f.Close()
			return nil, err
		}
	}
	return s, s.openShape(ctx)
}

// brokenFile is a top-level file open found malformed and served around.
type brokenFile struct {
	name string
	err  error  // what is wrong with it
	how  string // what was served instead
}

// openShape reads the top-level files and tells the kind of source.
//
// A Docker 25+ save holds both index.json and manifest.json, each enough
// to serve the images from. Unless s.opts.Strict, one of them being
// malformed is warned about, recorded for Verify, and served around from
// the other:
//   - manifest.json malformed: served from index.json alone (no RepoTags
//     refs); manifest.json itself is served as found, the tree being an
//     OCI layout without it.
//   - index.json malformed: manifest.json is read as a legacy save is, and
//     the index.json served is synthesised from it, not the damaged bytes:
//     index.json is what makes the tree an OCI layout, and peers reading
//     the mount as one (skopeo, umoci) must find one that parses and lists
//     the images served. The damage is in the warning and in Verify, and
//     the archive itself still holds the bytes as found.
//
// Both malformed, or the only one there malformed, is an ErrInvalid error.
func (s *Source) openShape(ctx context.Context) error {
	lenient := !s.opts.Strict
	for _, name := range []string{"oci-layout", "index.json", "manifest.json", "repositories"} {
		if !s.st.has(name) {
			continue
		}
		b, err := s.st.readFile(name, maxJSON)
		if err != nil {
			return err
		}
		s.Files[name] = b
	}
	rawIndex, hasIndex := s.Files["index.json"]
	rawDocker, hasDocker := s.Files["manifest.json"]
	if !hasIndex && !hasDocker {
		return fmt.Errorf("%w: no index.json or manifest.json", ErrUnknownShape)
	}
	var indexErr, dockerErr error
	if hasIndex {
		if err := json.Unmarshal(rawIndex, &s.index); err != nil {
			s.index = ocispec.Index{}
			indexErr = err
		}
	}
	var entries []dockerEntry
	if hasDocker {
		entries, dockerErr = parseDockerManifest(rawDocker)
	}
	switch {
	case indexErr != nil && dockerErr != nil:
		return fmt.Errorf("%w: index.json: %v; manifest.json: %v", ErrInvalid, indexErr, dockerErr)
	case indexErr != nil && (!hasDocker || !lenient):
		return fmt.Errorf("%w: index.json: %v", ErrInvalid, indexErr)
	case dockerErr != nil && (!hasIndex || !lenient):
		return fmt.Errorf("%w: manifest.json: %v", ErrInvalid, dockerErr)
	}
	if hasIndex && hasDocker && s.Kind == KindLayoutDir {
		s.warn("manifest.json beside index.json in a layout directory: read as a docker save")
	}
	switch {
	case hasIndex && indexErr == nil:
		s.refsFromIndex()
		if hasDocker {
			s.Kind = KindDockerSave
			if dockerErr != nil {
				s.served("manifest.json", dockerErr, "served from index.json alone, without the RepoTags and images only manifest.json names")
				return nil
			}
			return s.readDockerManifest(ctx, entries, false, true)
		}
	case hasIndex: // index.json malformed, manifest.json sound
		layoutFile, hasLayout := s.Files["oci-layout"]
		s.Kind = KindDockerLegacy
		if hasLayout {
			s.Kind = KindDockerSave // a Docker 25+ save whose index.json is damaged
		}
		s.served("index.json", indexErr, "served from manifest.json, as a legacy docker save is: index.json is synthesised from it")
		if err := s.readDockerManifest(ctx, entries, true, true); err != nil {
			return err
		}
		if hasLayout { // the save's own, not the synthesised one
			s.Files["oci-layout"] = layoutFile
		}
	default:
		s.Kind = KindDockerLegacy
		return s.readDockerManifest(ctx, entries, true, false)
	}
	return nil
}

// served records that the top-level file name is malformed (err) and was
// served around as how says: a warning now, a problem for Verify.
func (s *Source) served(name string, err error, how string) {
	s.broken = append(s.broken, brokenFile{name: name, err: err, how: how})
	s.warn("%s is malformed (%v): %s", name, err, how)
}

// isBroken reports whether open found the top-level file name malformed.
func (s *Source) isBroken(name string) bool {
	for _, b := range s.broken {
		if b.name == name {
			return true
		}
	}
	return false
}

// fileKey identifies an outer archive for the index cache: the same path,
// size, modification time and inode mean the same bytes.
func fileKey(path string, st os.FileInfo) string {
	abs, _ := filepath.Abs(path)
	var ino uint64
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		ino = sys.Ino
	}
	h := sha256.Sum256(fmt.Appendf(nil, "%s\x00%d\x00%d\x00%d", abs, st.Size(), st.ModTime().UnixNano(), ino))
	return fmt.Sprintf("file-%x", h[:16])
}

// warn reports a problem once, however often the tree meets it.
func (s *Source) warn(format string, args ...any) {
	if s.opts.Warn == nil {
		return
	}
	msg := fmt.Sprintf("%s: %s", s.Path, fmt.Sprintf(format, args...))
	s.mu.Lock()
	seen := s.warned[msg]
	s.warned[msg] = true
	s.mu.Unlock()
	if !seen {
		s.opts.Warn(msg)
	}
}

func (s *Source) progress(what string) func(done, total int64) {
	if s.opts.Progress == nil {
		return nil
	}
	return func(done, total int64) { s.opts.Progress(what, done, total) }
}

// Index returns the parsed index.json as served.
func (s *Source) Index() ocispec.Index { return s.index }

// Blob returns the bytes of blob d, read in place.
func (s *Source) Blob(d digest.Digest) (io.ReaderAt, int64, error) {
	return s.st.blob(d)
}

// Blobs lists the digests of every blob the source holds, sorted.
func (s *Source) Blobs() []digest.Digest { return s.st.list() }

// readJSONBlob reads a manifest, index or config blob whole, checks its
// digest and remembers it.
func (s *Source) readJSONBlob(desc ocispec.Descriptor) ([]byte, error) {
	s.mu.Lock()
	b, ok := s.blobs[desc.Digest]
	s.mu.Unlock()
	if ok {
		return b, nil
	}
	r, size, err := s.st.blob(desc.Digest)
	if err != nil {
		return nil, err
	}
	b, err = readAll(r, size, maxBlobJSON, desc.Digest.String())
	if err != nil {
		return nil, err
	}
	if err := verify(desc.Digest, b); err != nil {
		return nil, err
	}
	if desc.Size != 0 && desc.Size != int64(len(b)) {
		s.warn("blob %s: descriptor says %d bytes, blob has %d (digest matches)", desc.Digest, desc.Size, len(b))
	}
	s.mu.Lock()
	s.blobs[desc.Digest] = b
	s.mu.Unlock()
	return b, nil
}

func verify(d digest.Digest, b []byte) error {
	if !d.Algorithm().Available() {
		return nil
	}
	if got := d.Algorithm().FromBytes(b); got != d {
		return fmt.Errorf("%w: blob %s hashes to %s", ErrDigest, d, got)
	}
	return nil
}

// IsNotFound reports whether err means something is absent.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) || errors.Is(err, os.ErrNotExist) }
