package mount

import lfs "github.com/layoutfs/layoutfs/fs"

// rawNode is a node the kernel holds. Its name is not kept: log messages
// find it in the parent's listing (see rawFS.path).
type rawNode struct {
	n       lfs.Node
	parent  uint64 // node ID of the directory it was first found in
	lookups uint64 // the kernel's count: LOOKUP and READDIRPLUS replies less FORGETs
}

// pageBits sizes a page of the node table: 512 nodes, 16 KiB.
const pageBits = 9

// nodeTable holds the nodes the kernel holds, by node ID. Node IDs are
// inode numbers, which trees hand out densely (the entries of a layer in
// archive order, the children of a directory mostly in a row), so the
// table is a map of pages rather than of nodes: a listing's entries land
// in a page or two, where a map of 100k nodes costs a cache miss per
// entry and twice its size while it grows. A page goes with its last
// node. Not safe for concurrent use.
type nodeTable struct {
	pages map[uint64]*nodePage
	// The page last used: listings and lookups come in runs.
	lastKey uint64
	last    *nodePage
	// Pages emptied, kept for the next ones needed: a lookup and its
	// forget in a page of their own would allocate and drop it each time.
	spare []*nodePage
}

// maxSpare bounds the pages kept empty: a listing spans a page or two.
const maxSpare = 4

type nodePage struct {
	used  int
	nodes [1 << pageBits]rawNode
}

// get returns the node with ID id, or nil.
func (t *nodeTable) get(id uint64) *rawNode {
	p := t.page(id >> pageBits)
	if p == nil {
		return nil
	}
	e := &p.nodes[id&(1<<pageBits-1)]
	if e.n == nil {
		return nil
	}
	return e
}

// add returns the slot for id, making it (with a zero rawNode, n nil) if
// it is free; the caller fills a new slot in.
func (t *nodeTable) add(id uint64) *rawNode {
	key := id >> pageBits
	p := t.page(key)
	if p == nil {
		if t.pages == nil {
			t.pages = map[uint64]*nodePage{}
		}
		if n := len(t.spare); n > 0 {
			p, t.spare = t.spare[n-1], t.spare[:n-1]
		} else {
			p = new(nodePage)
		}
		t.pages[key] = p
		t.lastKey, t.last = key, p
	}
	e := &p.nodes[id&(1<<pageBits-1)]
	if e.n == nil {
		p.used++
	}
	return e
}

// remove frees the slot of id.
func (t *nodeTable) remove(id uint64) {
	key := id >> pageBits
	p := t.page(key)
	if p == nil || p.nodes[id&(1<<pageBits-1)].n == nil {
		return
	}
	p.nodes[id&(1<<pageBits-1)] = rawNode{}
	if p.used--; p.used == 0 {
		delete(t.pages, key)
		if t.last == p {
			t.last = nil
		}
		if len(t.spare) < maxSpare {
			t.spare = append(t.spare, p) // every slot is zero again
		}
	}
}

func (t *nodeTable) page(key uint64) *nodePage {
	if t.last != nil && t.lastKey == key {
		return t.last
	}
	p := t.pages[key]
	if p != nil {
		t.lastKey, t.last = key, p
	}
	return p
}
