package zran

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"testing"
)

func testIndex(t *testing.T) (*Index, []byte) {
	t.Helper()
	gz := goGzip(t, genTar(2<<20, 9), 6)
	ix, err := Build(bytes.NewReader(gz), io.Discard, Options{Span: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	return ix, gz
}

func TestMarshalRoundTrip(t *testing.T) {
	ix, _ := testIndex(t)
	enc, err := ix.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var got Index
	if err := got.UnmarshalBinary(enc); err != nil {
		t.Fatal(err)
	}
	if got.Span != ix.Span || got.Size != ix.Size || got.CompressedSize != ix.CompressedSize || len(got.Checkpoints) != len(ix.Checkpoints) {
		t.Fatalf("header differs: %+v", got)
	}
	for i, c := range ix.Checkpoints {
		g := got.Checkpoints[i]
		w := make([]byte, windowSize)
		n, err := g.inflateWindow(w)
		if g.In != c.In || g.Bits != c.Bits || g.Out != c.Out || err != nil || !bytes.Equal(w[:n], c.Window) {
			t.Fatalf("checkpoint %d differs (window: %v)", i, err)
		}
	}
	var raw int
	for _, c := range ix.Checkpoints {
		raw += len(c.Window)
	}
	t.Logf("%d checkpoints, windows %d bytes raw, index %d bytes (%.3f%% of %d)",
		len(ix.Checkpoints), raw, len(enc), 100*float64(len(enc))/float64(ix.Size), ix.Size)
}

// TestUnmarshalCorrupt flips every bit of an encoded index and truncates it
// at every length: each must be rejected.
func TestUnmarshalCorrupt(t *testing.T) {
	ix, _ := testIndex(t)
	enc, err := ix.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	step := 1 + len(enc)/4000
	for i := 0; i < len(enc); i += step {
		for bit := 0; bit < 8; bit++ {
			b := bytes.Clone(enc)
			b[i] ^= 1 << bit
			var got Index
			if err := got.UnmarshalBinary(b); !errors.Is(err, ErrIndex) {
				t.Fatalf("flip of byte %d bit %d: %v", i, bit, err)
			}
		}
	}
	for n := 0; n < len(enc); n += step {
		var got Index
		if err := got.UnmarshalBinary(enc[:n]); !errors.Is(err, ErrIndex) {
			t.Fatalf("truncation to %d: %v", n, err)
		}
	}
}

// resum replaces the trailing checksum so that the corruption reaches the
// structural checks.
func resum(b []byte) []byte {
	body := b[:len(b)-4]
	return binary.LittleEndian.AppendUint32(bytes.Clone(body), crc32.Checksum(body, castagnoli))
}

// TestUnmarshalInconsistent encodes indexes that break the invariants but
// carry valid checksums.
func TestUnmarshalInconsistent(t *testing.T) {
	base, _ := testIndex(t)
	cases := map[string]func(*Index){
		"no checkpoints":   func(ix *Index) { ix.Checkpoints = nil },
		"first not zero":   func(ix *Index) { ix.Checkpoints[0].Out = 5 },
		"bits":             func(ix *Index) { ix.Checkpoints[1].Bits = 9 },
		"out of order":     func(ix *Index) { ix.Checkpoints[2].Out = ix.Checkpoints[1].Out - 1 },
		"in out of order":  func(ix *Index) { ix.Checkpoints[2].In = ix.Checkpoints[1].In - 1 },
		"past size":        func(ix *Index) { ix.Checkpoints[len(ix.Checkpoints)-1].Out = ix.Size + 1 },
		"past compressed":  func(ix *Index) { ix.Checkpoints[len(ix.Checkpoints)-1].In = ix.CompressedSize + 1 },
		"zero span":        func(ix *Index) { ix.Span = 0 },
		"window too large": func(ix *Index) { ix.Checkpoints[1].Window = make([]byte, windowSize+1) },
	}
	for name, mutate := range cases {
		ix := *base
		ix.Checkpoints = append([]Checkpoint(nil), base.Checkpoints...)
		mutate(&ix)
		if _, err := ix.MarshalBinary(); !errors.Is(err, ErrIndex) {
			t.Errorf("%s: MarshalBinary: %v", name, err)
		}
		if r := ix.ReaderAt(bytes.NewReader(nil)); true {
			if _, err := r.ReadAt(make([]byte, 10), 0); !errors.Is(err, ErrIndex) {
				t.Errorf("%s: ReadAt: %v", name, err)
			}
		}
		enc, err := ix.encode()
		if err != nil {
			t.Fatal(err)
		}
		var got Index
		if err := got.UnmarshalBinary(resum(enc)); !errors.Is(err, ErrIndex) {
			t.Errorf("%s: UnmarshalBinary: %v", name, err)
		}
	}
	var got Index
	enc, _ := base.MarshalBinary()
	enc[len(indexMagic)] = 99
	if err := got.UnmarshalBinary(resum(enc)); !errors.Is(err, ErrIndex) {
		t.Errorf("version 99: %v", err)
	}
}

// TestPackedWindowCorrupt: a window that does not inflate to its recorded
// length, in an index whose checksum holds (so it loads: windows are
// inflated only when a read restarts at them), fails that read with
// ErrIndex, and reads elsewhere still work.
func TestPackedWindowCorrupt(t *testing.T) {
	data := genText(3<<20, 4)
	gz := goGzip(t, data, 6)
	ix, err := Build(bytes.NewReader(gz), io.Discard, Options{Span: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := ix.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var loaded Index
	if err := loaded.UnmarshalBinary(enc); err != nil {
		t.Fatal(err)
	}
	bad := len(loaded.Checkpoints) / 2
	c := &loaded.Checkpoints[bad]
	if c.Window != nil || c.packedLen == 0 {
		t.Fatalf("checkpoint %d: window not packed after loading", bad)
	}
	c.packed = []byte{0x03, 0x00} // an empty raw deflate stream
	enc, err = loaded.encode()
	if err != nil {
		t.Fatal(err)
	}
	var damaged Index
	if err := damaged.UnmarshalBinary(enc); err != nil {
		t.Fatalf("the damaged window is not checked at load, only at use: %v", err)
	}
	r := NewReader(&damaged, bytes.NewReader(gz), ReaderOptions{})
	buf := make([]byte, 100)
	if _, err := r.ReadAt(buf, damaged.Checkpoints[bad].Out+10); !errors.Is(err, ErrIndex) {
		t.Errorf("a read in the span of the damaged window: %v, want ErrIndex", err)
	}
	if _, err := r.ReadAt(buf, 10); err != nil || !bytes.Equal(buf, data[10:110]) {
		t.Errorf("a read elsewhere: %v", err)
	}
}
