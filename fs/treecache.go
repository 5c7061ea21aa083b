package fs

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/layoutfs/layoutfs/internal/binfmt"
	"unsafe"

	"github.com/layoutfs/layoutfs/tarindex"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// The merged rootfs of an image depends only on its layers, so it is kept
// in the index cache beside their indexes: a warm mount then loads it
// instead of merging again (the merge is most of a warm mount's work).
// The stored form is the frozen node array; every field is checked against
// the layers on load, so a stale or corrupt entry is rebuilt, never
// trusted. Bump treeCacheVersion with any change to what merge.go or
// freeze produce: the key knows only the layers.
//
//	magic, version byte, body, sha256 of the body
//	body: uvarint #layers, per layer uvarint #entries and archive size; uvarint #nodes,
//	      uvarint total name bytes; per node: uvarint name length, name,
//	      varint layer, entry, first, nkids, uvarint nlink
const treeCacheVersion = 1

var treeMagic = []byte("layoutfs-rootfs\n")

// treeKey names a merged tree by its layers, bottom first.
func treeKey(layers []ocispec.Descriptor) string {
	h := sha256.New()
	for _, l := range layers {
		h.Write([]byte(l.Digest.String()))
		h.Write([]byte{0})
	}
	return fmt.Sprintf("v%d-%x", treeCacheVersion, h.Sum(nil)[:16])
}

func storeTree(t *ftree, key string) error {
	if len(t.layers) == 0 || t.layers[0].Cache == nil {
		return nil
	}
	c := t.layers[0].Cache
	total := 0
	for i := range t.nodes {
		total += len(t.nodes[i].name)
	}
	b := make([]byte, 0, total+len(t.nodes)*10+64)
	b = binary.AppendUvarint(b, uint64(len(t.layers)))
	for _, a := range t.layers {
		b = binary.AppendUvarint(b, uint64(len(a.Entries)))
		b = binary.AppendUvarint(b, uint64(a.Size))
	}
	b = binary.AppendUvarint(b, uint64(len(t.nodes)))
	b = binary.AppendUvarint(b, uint64(total))
	for i := range t.nodes {
		n := &t.nodes[i]
		b = binary.AppendUvarint(b, uint64(len(n.name)))
		b = append(b, n.name...)
		b = binary.AppendVarint(b, int64(n.layer))
		b = binary.AppendVarint(b, int64(n.entry))
		b = binary.AppendVarint(b, int64(n.first))
		b = binary.AppendVarint(b, int64(n.nkids))
		b = binary.AppendUvarint(b, uint64(n.nlink))
	}
	return c.Store("rootfs", key, binfmt.Seal(treeMagic, treeCacheVersion, b))
}

func loadTree(layers []*tarindex.Archive, key string) (*ftree, bool) {
	if len(layers) == 0 || layers[0].Cache == nil {
		return nil, false
	}
	c := layers[0].Cache
	b, ok := c.Load("rootfs", key)
	if !ok {
		return nil, false
	}
	t, err := decodeTree(b, layers)
	if err != nil {
		c.Remove("rootfs", key)
		return nil, false
	}
	return t, true
}

var errTree = errors.New("bad rootfs cache entry")

func decodeTree(b []byte, layers []*tarindex.Archive) (*ftree, error) {
	body, ok := binfmt.Unseal(treeMagic, treeCacheVersion, b)
	if !ok {
		return nil, errTree
	}
	d := &binfmt.Decoder{B: body}
	if d.Uvarint() != uint64(len(layers)) {
		return nil, errTree
	}
	for _, a := range layers {
		if d.Uvarint() != uint64(len(a.Entries)) || d.Uvarint() != uint64(a.Size) {
			return nil, errTree
		}
	}
	nn, total := d.Uvarint(), d.Uvarint()
	if d.Err != nil || nn == 0 || nn > uint64(len(d.B)) || total > uint64(len(d.B)) {
		return nil, errTree
	}
	t := &ftree{layers: layers, nodes: make([]fnode, nn)}
	var sum64 uint64
	for _, a := range layers {
		t.base = append(t.base, sum64)
		sum64 += uint64(len(a.Entries))
	}
	t.implied = sum64
	// Names share one buffer that is not written again once filled.
	names := make([]byte, 0, total)
	for i := range t.nodes {
		n := &t.nodes[i]
		l := d.Uvarint()
		if d.Err != nil || l > uint64(len(d.B)) || uint64(len(names))+l > total {
			return nil, errTree
		}
		if l > 0 {
			start := len(names)
			names = append(names, d.B[:l]...)
			n.name = unsafe.String(&names[start], int(l))
			d.B = d.B[l:]
		}
		n.layer, n.entry = int32(d.Varint()), int32(d.Varint())
		n.first, n.nkids = int32(d.Varint()), int32(d.Varint())
		n.nlink = uint32(d.Uvarint())
		if d.Err != nil {
			return nil, d.Err
		}
		// Everything a view will index with must be in range.
		if n.layer < 0 || int(n.layer) >= len(layers) || n.entry < -1 || int64(n.entry) >= int64(len(layers[n.layer].Entries)) ||
			n.nkids < -1 || n.first < 0 || int64(n.first)+int64(max(n.nkids, 0)) > int64(nn) {
			return nil, errTree
		}
		if n.nkids > 0 && n.first <= int32(i) {
			return nil, errTree // children come after their directory: no cycles
		}
	}
	if len(d.B) != 0 || t.nodes[0].nkids < 0 {
		return nil, errTree
	}
	return t, nil
}
