package zran

import (
	"bytes"
	"compress/gzip"
	"math/rand"
	"testing"
)

func TestQuick(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	var src bytes.Buffer
	words := []string{"alpha ", "beta ", "gamma\n", "delta ", "0123456789"}
	for src.Len() < 3<<20 {
		src.WriteString(words[rng.Intn(len(words))])
		if rng.Intn(50) == 0 {
			b := make([]byte, rng.Intn(300))
			rng.Read(b)
			src.Write(b)
		}
	}
	for _, lvl := range []int{0, 1, 6, 9, -2} {
		var z bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&z, lvl)
		zw.Write(src.Bytes())
		zw.Close()
		var out bytes.Buffer
		ix, err := Build(bytes.NewReader(z.Bytes()), &out, Options{Span: 1 << 20})
		if err != nil {
			t.Fatalf("level %d: %v", lvl, err)
		}
		if !bytes.Equal(out.Bytes(), src.Bytes()) {
			t.Fatalf("level %d: mismatch", lvl)
		}
		t.Logf("level %d: %d checkpoints size %d", lvl, len(ix.Checkpoints), ix.Size)
	}
}
