package fs

import (
	"sync"
	"sync/atomic"

	"github.com/layoutfs/layoutfs/layout"
	"github.com/layoutfs/layoutfs/tarindex"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// What a server may ask of a tree, beyond Node and Dir, to serve it with
// less work: optional, found by type assertion.

// ListerAt is a directory that reads its entries by position, so that a
// server resuming a listing at an offset need not list (and make a node
// for) every entry again. The order is ReadDir's.
type ListerAt interface {
	// NumEntries is how many entries ReadDir returns.
	NumEntries() (int, error)
	// EntryAt returns entry i, 0 <= i < NumEntries().
	EntryAt(i int) Dirent
}

// XattrFree is implemented by the root of a read-only tree. NoXattrs
// reports whether no node of the whole tree has extended attributes. It
// answers false while that is not known without loading more of the tree
// (some image's layers not indexed yet), and once it answers true it always
// will, so a server may stop asking nodes for their attributes for good.
type XattrFree interface {
	NoXattrs() bool
}

// rootDir is the root of a read-only tree (New).
type rootDir struct {
	*lazyDir
	t *tree

	yes   atomic.Bool
	mu    sync.Mutex
	known bool            // layers is filled in
	dirty bool            // a layer has extended attributes: never true
	tars  []digest.Digest // every tar layer of every image in the source
	clean int             // tars[:clean] are indexed and have none
}

var _ XattrFree = (*rootDir)(nil)

// NoXattrs is true once every tar layer of every image in the source is
// indexed (layers are indexed when their image's rootfs or layers/ are
// first looked into) and none has an entry with extended attributes.
// Nothing else in the tree has any.
func (r *rootDir) NoXattrs() bool {
	if r.yes.Load() {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dirty {
		return false
	}
	if !r.known {
		r.tars = r.t.tarLayers()
		r.known = true
	}
	for ; r.clean < len(r.tars); r.clean++ {
		s, err, ok := r.t.layers.Peek(r.tars[r.clean])
		if !ok {
			return false
		}
		// A layer that failed to index shows no entries at all.
		if err == nil && hasXattrs(s.archive) {
			r.dirty = true
			return false
		}
	}
	r.yes.Store(true)
	return true
}

func hasXattrs(a *tarindex.Archive) bool {
	for i := range a.Entries {
		if len(a.Entries[i].Xattrs) > 0 {
			return true
		}
	}
	return false
}

// tarLayers lists the tar layers of every image reachable from the
// source's index and references, as imageDir would show them. Manifests
// that cannot be read show no layers and are skipped.
func (t *tree) tarLayers() []digest.Digest {
	seen := map[digest.Digest]bool{}
	var tars []digest.Digest
	var walk func(d ocispec.Descriptor, depth int)
	walk = func(d ocispec.Descriptor, depth int) {
		if seen[d.Digest] || depth > 64 {
			return
		}
		seen[d.Digest] = true
		n, err := t.src.Resolve(d)
		if err != nil {
			return
		}
		if n.Index != nil {
			for _, c := range n.Index.Manifests {
				walk(c, depth+1)
			}
			return
		}
		for _, l := range n.Manifest.Layers {
			if _, titled := l.Annotations[layout.AnnotationTitle]; titled || !layout.IsTarLayer(l) || seen[l.Digest] {
				continue
			}
			seen[l.Digest] = true
			tars = append(tars, l.Digest)
		}
	}
	for _, d := range t.src.Manifests() {
		walk(d, 0)
	}
	for _, ref := range t.src.Refs() {
		for _, d := range ref.Descs {
			walk(d, 0)
		}
	}
	return tars
}
