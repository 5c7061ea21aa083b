package fs

import (
	"reflect"
	"testing"

	"github.com/layoutfs/layoutfs/tarindex"
)

// TestTreeCacheRoundTrip: a stored rootfs loads back equal; against other
// layers, or corrupt, it does not load (and is removed).
func TestTreeCacheRoundTrip(t *testing.T) {
	layers := synthLayers(3000)
	c := &tarindex.Cache{Dir: t.TempDir()}
	for _, a := range layers {
		a.Cache = c
	}
	trees := make([]*ftree, len(layers))
	dangling := make([][]int32, len(layers))
	for i, a := range layers {
		trees[i], dangling[i] = layerTree(a)
	}
	want := mergeLayers(layers, trees, dangling)
	if err := storeTree(want, "k"); err != nil {
		t.Fatal(err)
	}
	got, ok := loadTree(layers, "k")
	if !ok {
		t.Fatal("stored tree does not load")
	}
	if !reflect.DeepEqual(got.nodes, want.nodes) || !reflect.DeepEqual(got.base, want.base) || got.implied != want.implied {
		t.Fatal("round trip differs")
	}
	if _, ok := loadTree(layers[:2], "k"); ok {
		t.Error("loads against other layers")
	}
	storeTree(want, "k")
	b, _ := c.Load("rootfs", "k")
	for _, i := range []int{len(b) / 2, len(b) - 1, 20} {
		bad := append([]byte(nil), b...)
		bad[i] ^= 1
		c.Store("rootfs", "k", bad)
		if _, ok := loadTree(layers, "k"); ok {
			t.Errorf("loads with byte %d flipped", i)
		}
	}
	for i := range b {
		if _, err := decodeTree(b[:i], layers); err == nil {
			t.Fatalf("prefix of %d bytes decodes", i)
		}
	}
}
