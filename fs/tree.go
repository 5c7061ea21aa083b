package fs

import (
	"archive/tar"
	"path"
	"sort"
	"strings"

	"github.com/layoutfs/layoutfs/tarindex"
)

// ftree is a frozen directory tree over the entries of one or more layer
// archives: a layer's own tree, or the merged rootfs. Node 0 is the root.
// Nodes are immutable once built, so views read them without locks.
type ftree struct {
	nodes  []fnode
	layers []*tarindex.Archive
	// base[l] is the first identity number of layer l's entries; identities
	// past the last layer's entries belong to implied directories.
	base    []uint64
	implied uint64
}

// fnode is one name in the tree. entry < 0 marks a directory no tar entry
// describes (the root, or a parent the archive never listed). A
// directory's children are the nodes first..first+nkids-1, sorted by name;
// nkids is -1 for anything else.
type fnode struct {
	name  string
	layer int32
	entry int32
	first int32
	nkids int32
	nlink uint32
}

// kids returns the range of n's children: for k := first; k < end; k++.
func (n *fnode) kids() (first, end int32) {
	return n.first, n.first + max(n.nkids, 0)
}

func (t *ftree) entry(n *fnode) *tarindex.Entry {
	if n.entry < 0 {
		return nil
	}
	return &t.layers[n.layer].Entries[n.entry]
}

func (t *ftree) isDir(n *fnode) bool {
	e := t.entry(n)
	return e == nil || e.Type == tar.TypeDir
}

// identity numbers a node's inode: entries shared through hard links share
// it; implied directories get numbers past every entry.
func (t *ftree) identity(i int32) uint64 {
	n := &t.nodes[i]
	if n.entry < 0 {
		return t.implied + uint64(i)
	}
	return t.base[n.layer] + uint64(n.entry)
}

// size is how many identity numbers the tree may use.
func (t *ftree) size() uint64 { return t.implied + uint64(len(t.nodes)) }

func (t *ftree) lookup(dir int32, name string) (int32, bool) {
	first, end := t.nodes[dir].kids()
	i := first + int32(sort.Search(int(end-first), func(j int) bool { return t.nodes[first+int32(j)].name >= name }))
	if i < end && t.nodes[i].name == name {
		return i, true
	}
	return 0, false
}

// bnode is a tree node while it is being built.
type bnode struct {
	layer int32
	entry int32
	kids  map[string]*bnode // nil for non-directories
}

func newDirNode(layer, entry int32) *bnode {
	return &bnode{layer: layer, entry: entry, kids: map[string]*bnode{}}
}

// freeze turns a built tree into an ftree, counting hard links and
// subdirectories for link counts. The children of each directory get
// consecutive numbers, so a node needs no list of them.
func freeze(root *bnode, layers []*tarindex.Archive) *ftree {
	t := &ftree{layers: layers}
	var total uint64
	for _, a := range layers {
		t.base = append(t.base, total)
		total += uint64(len(a.Entries))
	}
	t.implied = total
	// links counts the names of each entry, per layer: slices, not a map,
	// since entry numbers are dense (a map here was most of a merge).
	links := make([][]uint32, len(layers))
	for l, a := range layers {
		links[l] = make([]uint32, len(a.Entries))
	}
	var count func(b *bnode) int
	count = func(b *bnode) int {
		n := 1
		for _, k := range b.kids {
			n += count(k)
		}
		return n
	}
	t.nodes = make([]fnode, 1, count(root))
	t.nodes[0] = fnode{layer: root.layer, entry: root.entry, nkids: -1, nlink: 1}
	var names []string // a stack of each level's sorted names
	// fill numbers dir's children (node i is dir), then their subtrees.
	var fill func(i int32, dir *bnode)
	fill = func(i int32, dir *bnode) {
		mark := len(names)
		for n := range dir.kids {
			names = append(names, n)
		}
		own := names[mark:]
		sort.Strings(own)
		first := int32(len(t.nodes))
		subdirs := uint32(0)
		for _, n := range own {
			k := dir.kids[n]
			t.nodes = append(t.nodes, fnode{name: n, layer: k.layer, entry: k.entry, nkids: -1, nlink: 1})
			if k.kids != nil {
				subdirs++
			} else if k.entry >= 0 {
				links[k.layer][k.entry]++
			}
		}
		t.nodes[i].first, t.nodes[i].nkids = first, int32(len(own))
		t.nodes[i].nlink = 2 + subdirs
		for j, n := range own {
			if k := dir.kids[n]; k.kids != nil {
				fill(first+int32(j), k)
			}
		}
		names = names[:mark]
	}
	fill(0, root)
	for i := range t.nodes {
		n := &t.nodes[i]
		if n.nkids < 0 && n.entry >= 0 {
			n.nlink = links[n.layer][n.entry]
		}
	}
	return t
}

// builder applies layers onto a tree of bnodes.
type builder struct {
	layers []*tarindex.Archive
	root   *bnode
	// parent's last answer: archives list a directory's entries together.
	// Replacing a directory node (set) forgets it.
	lastDir  string
	lastNode *bnode
}

// set makes n the child name of dir.
func (b *builder) set(dir *bnode, name string, n *bnode) {
	if old := dir.kids[name]; old != nil && old.kids != nil && old != n {
		b.lastNode = nil
	}
	dir.kids[name] = n
}

// walk returns the node at p, or nil.
func (b *builder) walk(p string) *bnode {
	n := b.root
	if p == "" {
		return n
	}
	for p != "" {
		var part string
		part, p, _ = strings.Cut(p, "/")
		if n.kids == nil {
			return nil
		}
		if n = n.kids[part]; n == nil {
			return nil
		}
	}
	return n
}

// parent returns the directory that holds p, making missing directories
// on the way (archives need not list parents). A non-directory in the way
// is replaced, as extraction would.
func (b *builder) parent(layer int32, p string) *bnode {
	n := b.root
	slash := strings.LastIndexByte(p, '/')
	if slash < 0 {
		return n
	}
	dir := p[:slash]
	if b.lastNode != nil && dir == b.lastDir {
		return b.lastNode
	}
	for rest := dir; rest != ""; {
		var part string
		part, rest, _ = strings.Cut(rest, "/")
		k := n.kids[part]
		if k == nil || k.kids == nil {
			k = newDirNode(layer, -1)
			n.kids[part] = k
		}
		n = k
	}
	b.lastDir, b.lastNode = dir, n
	return n
}

// layerTree builds the tree of one layer as stored: every entry, whiteout
// files included. The last of duplicate names wins. A hard link to an
// earlier entry of the layer shares that entry's node. A hard link whose
// target the layer does not hold (it is in a lower layer) stays a node of
// its own, an empty file here; the merged rootfs resolves it against the
// layers below. Those links are returned too.
func layerTree(a *tarindex.Archive) (*ftree, []int32) {
	b := &builder{layers: []*tarindex.Archive{a}, root: newDirNode(0, -1)}
	var dangling []int32
	for i := range a.Entries {
		e := &a.Entries[i]
		if e.Name == "" {
			if e.Type == tar.TypeDir {
				b.root.entry = int32(i)
			}
			continue
		}
		if e.Type == tar.TypeLink {
			if target := b.walk(e.Linkname); target != nil && target.kids == nil && !b.isLink(target) {
				b.set(b.parent(0, e.Name), path.Base(e.Name), &bnode{layer: 0, entry: target.entry})
				continue
			}
			dangling = append(dangling, int32(i))
		}
		b.put(0, int32(i), e)
	}
	return freeze(b.root, b.layers), dangling
}

// isLink reports whether n is an unresolved hard link.
func (b *builder) isLink(n *bnode) bool {
	return n.entry >= 0 && b.layers[n.layer].Entries[n.entry].Type == tar.TypeLink
}

// put places entry i of layer at its name, over whatever was there: a
// directory over a directory keeps the children and takes the new
// metadata; anything else replaces the old node whole.
func (b *builder) put(layer, i int32, e *tarindex.Entry) *bnode {
	dir := b.parent(layer, e.Name)
	name := path.Base(e.Name)
	old := dir.kids[name]
	if e.Type == tar.TypeDir {
		if old != nil && old.kids != nil {
			old.layer, old.entry = layer, i
			return old
		}
		n := newDirNode(layer, i)
		b.set(dir, name, n)
		return n
	}
	n := &bnode{layer: layer, entry: i}
	b.set(dir, name, n)
	return n
}
