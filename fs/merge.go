package fs

import (
	"archive/tar"
	"path"
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
		b.apply(int32(l), t, 0, b.root, "", links)
	}
	return freeze(b.root, layers)
}

// apply lays directory src of layer l's tree onto dst, found at path dir
// (symlinks resolved). links maps the layer's hard links to lower layers
// to their targets.
func (b *builder) apply(l int32, t *ftree, src int32, dst *bnode, dir string, links map[int32]*bnode) {
	n := &t.nodes[src]
	if n.entry >= 0 {
		dst.layer, dst.entry = l, n.entry
	}
	// Whiteouts hide lower layers only, never entries of their own layer.
	first, end := n.kids()
	for k := first; k < end; k++ {
		name := t.nodes[k].name
		switch {
		case name == opaqueMarker:
			clear(dst.kids)
		case strings.HasPrefix(name, whiteoutMeta):
		case strings.HasPrefix(name, whiteoutPrefix):
			delete(dst.kids, name[len(whiteoutPrefix):])
		}
	}
	for k := first; k < end; k++ {
		kn := &t.nodes[k]
		if strings.HasPrefix(kn.name, whiteoutPrefix) {
			continue
		}
		if t.isDir(kn) {
			old := dst.kids[kn.name]
			if kn.entry < 0 && b.isSymlink(old) {
				// A parent the layer does not list, where a lower layer
				// has a symlink (merged /usr: lib -> usr/lib): extraction
				// writes through the symlink, resolved inside the rootfs.
				hops := 0
				if target, p := b.follow(dir, b.linkname(old), &hops); target != nil {
					b.apply(l, t, k, target, p, links)
					continue
				}
			}
			if old == nil || old.kids == nil {
				old = newDirNode(l, -1)
				dst.kids[kn.name] = old
			}
			b.apply(l, t, k, old, path.Join(dir, kn.name), links)
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

func (b *builder) isSymlink(n *bnode) bool {
	return n != nil && n.kids == nil && n.entry >= 0 && b.layers[n.layer].Entries[n.entry].Type == tar.TypeSymlink
}

func (b *builder) linkname(n *bnode) string { return b.layers[n.layer].Entries[n.entry].Linkname }

// maxHops bounds symlink resolution, as the kernel's ELOOP does.
const maxHops = 40

// follow resolves symlink target, found in directory dir, inside the tree
// one component at a time as securejoin does: absolute targets start at
// the root and ".." stops there. It returns the directory named and its
// resolved path, or nil when the target is not a directory.
// hops counts every link followed in one resolution, nested ones included,
// as the kernel's limit does: chains that branch cannot multiply the work.
func (b *builder) follow(dir, target string, hops *int) (*bnode, string) {
	if *hops++; *hops > maxHops {
		return nil, ""
	}
	var stack []string
	if !path.IsAbs(target) && dir != "" {
		stack = strings.Split(dir, "/")
	}
	for _, part := range strings.Split(target, "/") {
		switch part {
		case "", ".":
			continue
		case "..":
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			continue
		}
		cur := strings.Join(stack, "/")
		n := b.walk(cur)
		if n == nil || n.kids == nil {
			return nil, ""
		}
		k := n.kids[part]
		switch {
		case k == nil:
			return nil, ""
		case b.isSymlink(k):
			kn, kp := b.follow(cur, b.linkname(k), hops)
			if kn == nil {
				return nil, ""
			}
			stack = nil
			if kp != "" {
				stack = strings.Split(kp, "/")
			}
		case k.kids == nil:
			return nil, ""
		default:
			stack = append(stack, part)
		}
	}
	p := strings.Join(stack, "/")
	if n := b.walk(p); n != nil && n.kids != nil {
		return n, p
	}
	return nil, ""
}
