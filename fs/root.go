package fs

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/layoutfs/layoutfs/internal/memo"
	"github.com/layoutfs/layoutfs/layout"
	"github.com/layoutfs/layoutfs/tarindex"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Options tune New.
type Options struct {
	// Warn receives problems met while the tree is served (a broken blob,
	// an unsafe name); the tree goes on without the broken piece.
	Warn func(msg string)
	// UpperDir, for a live tree (NewLive), is where the pending changes to
	// its images' rootfs are kept, one directory per image (see
	// UpperDir): rootfs/ is then writable. Empty leaves it read-only.
	UpperDir string
}

// tree holds what the nodes of one source share.
type tree struct {
	src   *layout.Source
	ino   *inos
	mtime time.Time
	warn  func(string)

	live *Live // the live tree this one is the current state of, if any

	layers memo.Map[digest.Digest, *layerSlot]
	roots  memo.Map[digest.Digest, *ftree] // merged trees, by image
}

// New returns the root directory of the SPEC.md tree of src.
func New(src *layout.Source, o Options) Dir {
	t := newTree(src, o, new(inos))
	return &rootDir{lazyDir: t.dir(t.rootEntries), t: t}
}

// newTree returns the shared state of src's tree, numbering its nodes from
// ino: trees that replace one another in a mount share one numbering, so
// that no node of a new tree takes a number the kernel still knows for a
// node of the old.
func newTree(src *layout.Source, o Options, ino *inos) *tree {
	t := &tree{src: src, warn: o.Warn, ino: ino}
	if t.warn == nil {
		t.warn = func(string) {}
	}
	if st, err := os.Stat(src.Path); err == nil {
		t.mtime = st.ModTime()
	}
	return t
}

func (t *tree) dir(fill func() ([]Dirent, error)) *lazyDir {
	return newLazyDir(t.ino.one(), t.mtime, fill)
}

func (t *tree) bytes(b []byte) *bytesFile { return newBytesFile(t.ino.one(), t.mtime, b) }

func (t *tree) rootEntries() ([]Dirent, error) {
	var ents []Dirent
	for name, b := range t.src.Files {
		ents = append(ents, Dirent{Name: name, Node: t.bytes(b)})
	}
	ents = append(ents,
		Dirent{Name: "blobs", Node: t.dir(t.blobEntries)},
		Dirent{Name: "tags", Node: t.dir(t.tagEntries)},
		Dirent{Name: "manifests", Node: t.dir(t.manifestEntries)},
	)
	return ents, nil
}

func (t *tree) blobEntries() ([]Dirent, error) {
	byAlg := map[string][]Dirent{}
	for _, d := range t.src.Blobs() {
		f, err := t.blobFile(d, "blobs/"+d.Algorithm().String()+"/"+d.Encoded())
		if err != nil {
			t.warn(err.Error())
			continue
		}
		alg := d.Algorithm().String()
		byAlg[alg] = append(byAlg[alg], Dirent{Name: d.Encoded(), Node: f})
	}
	var ents []Dirent
	for alg, files := range byAlg {
		ents = append(ents, Dirent{Name: alg, Node: t.dir(func() ([]Dirent, error) { return files, nil })})
	}
	return ents, nil
}

func (t *tree) blobFile(d digest.Digest, name string) (*blobFile, error) {
	r, size, err := t.src.Blob(d)
	if err != nil {
		return nil, err
	}
	return &blobFile{
		attr:   Attr{Ino: t.ino.one(), Mode: 0o444, Nlink: 1, Size: size, Mtime: t.mtime},
		r:      r,
		name:   fmt.Sprintf("%s (blob %s)", name, d),
		newVer: func() Verifier { return d.Verifier() },
	}, nil
}

// tagEntries lays the reference names out as nested directories: a "/" in a
// name makes a level. A directory can be a reference and hold deeper ones.
func (t *tree) tagEntries() ([]Dirent, error) {
	type level struct {
		descs []ocispec.Descriptor
		kids  map[string]*level
	}
	top := &level{kids: map[string]*level{}}
	for _, ref := range t.src.Refs() {
		l := top
		for _, part := range strings.Split(ref.Name, "/") {
			k := l.kids[part]
			if k == nil {
				k = &level{kids: map[string]*level{}}
				l.kids[part] = k
			}
			l = k
		}
		l.descs = ref.Descs
	}
	var build func(l *level) []Dirent
	build = func(l *level) []Dirent {
		var ents []Dirent
		for name, k := range l.kids {
			nested := build(k)
			var node Node
			if k.descs != nil {
				node = t.refDir(k.descs, nested)
			} else {
				node = t.dir(func() ([]Dirent, error) { return nested, nil })
			}
			ents = append(ents, Dirent{Name: name, Node: node})
		}
		return ents
	}
	return build(top), nil
}

func (t *tree) manifestEntries() ([]Dirent, error) {
	var ents []Dirent
	for _, d := range t.src.Manifests() {
		ents = append(ents, Dirent{Name: d.Digest.String(), Node: t.refDir([]ocispec.Descriptor{d}, nil)})
	}
	return ents, nil
}

// refDir is what a reference (or a manifest digest) shows: the raw index
// when it points at one, and a directory per image, named by platform.
func (t *tree) refDir(descs []ocispec.Descriptor, nested []Dirent) *lazyDir {
	return t.dir(func() ([]Dirent, error) {
		var ents []Dirent
		if len(descs) == 1 {
			n, err := t.src.Resolve(descs[0])
			if err != nil {
				return nil, err
			}
			if n.Index != nil {
				ents = append(ents, Dirent{Name: "index.json", Node: t.bytes(n.Raw)})
			}
		}
		images, err := t.src.Images(descs)
		if err != nil {
			return nil, err
		}
		taken := map[string]bool{}
		for _, e := range ents {
			taken[e.Name] = true
		}
		for _, im := range images {
			taken[im.Platform] = true
			ents = append(ents, Dirent{Name: im.Platform, Node: t.imageDir(im)})
		}
		for _, e := range nested {
			if taken[e.Name] {
				t.warn(fmt.Sprintf("reference under %q hidden by a file or platform of the same name", e.Name))
				continue
			}
			ents = append(ents, e)
		}
		return ents, nil
	})
}

// layerSlot is a layer's index and, built when layers/NN is first looked
// into, its own tree. Every view of the layer shares it.
type layerSlot struct {
	archive *tarindex.Archive

	mu       sync.Mutex
	tree     *ftree // nil until a view asks
	dangling []int32
}

// layerTree returns the layer's own tree and its dangling hard links,
// built once and kept.
func (s *layerSlot) layerTree() (*ftree, []int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tree == nil {
		s.tree, s.dangling = layerTree(s.archive)
	}
	return s.tree, s.dangling
}

// mergeInput is the layer's tree for a merge: the kept one if a view built
// it, else one built for the merge and not kept. A merge needs every
// layer's tree at once, but a daemon serving the merged rootfs needs none
// after it (a warm mount, loading the rootfs from the cache, never builds
// them); keeping them cost a cold mount about 30 bytes an entry for the
// life of the mount.
func (s *layerSlot) mergeInput() (*ftree, []int32) {
	s.mu.Lock()
	t, d := s.tree, s.dangling
	s.mu.Unlock()
	if t != nil {
		return t, d
	}
	return layerTree(s.archive)
}

func (t *tree) layer(desc ocispec.Descriptor) (*layerSlot, error) {
	return t.layers.Get(desc.Digest, func() (*layerSlot, error) {
		a, err := t.src.Layer(context.Background(), desc)
		if err != nil {
			t.warn(err.Error())
			return nil, err
		}
		return &layerSlot{archive: a}, nil
	})
}
