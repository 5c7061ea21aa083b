package fs

import (
	"archive/tar"
	"strings"

	"github.com/layoutfs/layoutfs/tarindex"
)

// Whiteout names of the OCI image spec (and AUFS before it).
const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh."
	opaqueMarker   = ".wh..wh..opq"
)

// mergeLayers applies layer trees bottom to top into the rootfs tree:
// .wh.<name> deletes name from lower layers, .wh..wh..opq empties its
// directory of lower-layer content, and whiteout files themselves are not
// shown. A hard link keeps the node of its target as the link was made, so
// a later layer replacing the target leaves the link with the old content.
func mergeLayers(layers []*tarindex.Archive, trees []*ftree, dangling [][]int32) *ftree {
	b := &builder{layers: layers, root: newDirNode(0, -1)}
	for l, t := range trees {
		// A link to a lower layer is made against the tree as it was before
		// this layer, as extraction does: later changes to the target in
		// this same layer do not reach it.
		links := map[int32]*bnode{}
		for _, i := range dangling[l] {
			target := b.walk(layers[l].Entries[i].Linkname)
			if target != nil && target.kids == nil {
				links[i] = &bnode{layer: target.layer, entry: target.entry}
			}
		}
		b.apply(int32(l), t, 0, b.root, links)
	}
	return freeze(b.root, layers)
}

// apply lays directory src of layer l's tree onto dst.
// links maps the layer's hard links to lower layers to their targets.
func (b *builder) apply(l int32, t *ftree, src int32, dst *bnode, links map[int32]*bnode) {
	n := &t.nodes[src]
	if n.entry >= 0 {
		dst.layer, dst.entry = l, n.entry
	}
	// Whiteouts hide lower layers only, never entries of their own layer.
	for _, k := range n.kids {
		name := t.nodes[k].name
		switch {
		case name == opaqueMarker:
			clear(dst.kids)
		case strings.HasPrefix(name, whiteoutMeta):
		case strings.HasPrefix(name, whiteoutPrefix):
			delete(dst.kids, name[len(whiteoutPrefix):])
		}
	}
	for _, k := range n.kids {
		kn := &t.nodes[k]
		if strings.HasPrefix(kn.name, whiteoutPrefix) {
			continue
		}
		if t.isDir(kn) {
			old := dst.kids[kn.name]
			if old == nil || old.kids == nil {
				old = newDirNode(l, -1)
				dst.kids[kn.name] = old
			}
			b.apply(l, t, k, old, links)
			continue
		}
		if t.layers[0].Entries[kn.entry].Type == tar.TypeLink {
			if target, ok := links[kn.entry]; ok {
				dst.kids[kn.name] = target
			} else {
				delete(dst.kids, kn.name) // a link to nothing: extraction fails on it too
			}
			continue
		}
		dst.kids[kn.name] = &bnode{layer: l, entry: kn.entry}
	}
}
