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

// decoders are the two ways to read a serialized index back: whole, from
// memory, and from a file that keeps the windows.
var decoders = map[string]func([]byte) (*Index, error){
	"UnmarshalBinary": func(b []byte) (*Index, error) {
		var ix Index
		return &ix, ix.UnmarshalBinary(b)
	},
	"Load": func(b []byte) (*Index, error) { return Load(bytes.NewReader(b), int64(len(b))) },
}

func TestMarshalRoundTrip(t *testing.T) {
	for name, dec := range decoders {
		t.Run(name, func(t *testing.T) { testRoundTrip(t, dec) })
	}
}

func testRoundTrip(t *testing.T, dec func([]byte) (*Index, error)) {
	ix, _ := testIndex(t)
	enc, err := ix.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	got, err := dec(enc)
	if err != nil {
		t.Fatal(err)
	}
	if got.Span != ix.Span || got.Size != ix.Size || got.CompressedSize != ix.CompressedSize || len(got.Checkpoints) != len(ix.Checkpoints) {
		t.Fatalf("header differs: %+v", got)
	}
	for i, c := range ix.Checkpoints {
		g := got.Checkpoints[i]
		w := make([]byte, windowSize)
		n, err := got.window(i, w)
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
			for name, dec := range decoders {
				if _, err := dec(b); !errors.Is(err, ErrIndex) {
					t.Fatalf("%s: flip of byte %d bit %d: %v", name, i, bit, err)
				}
			}
		}
	}
	for n := 0; n < len(enc); n += step {
		for name, dec := range decoders {
			if _, err := dec(enc[:n]); !errors.Is(err, ErrIndex) {
				t.Fatalf("%s: truncation to %d: %v", name, n, err)
			}
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
		for dname, dec := range decoders {
			if _, err := dec(resum(enc)); !errors.Is(err, ErrIndex) {
				t.Errorf("%s: %s: %v", name, dname, err)
			}
		}
	}
	enc, _ := base.MarshalBinary()
	enc[len(indexMagic)] = 99
	for name, dec := range decoders {
		if _, err := dec(resum(enc)); !errors.Is(err, ErrIndex) {
			t.Errorf("%s: version 99: %v", name, err)
		}
	}
}

// encodedText returns text, its gzip, and the serialized index of that,
// with a checkpoint every 256 KiB.
func encodedText(t *testing.T) (data, gz, enc []byte) {
	t.Helper()
	data = genText(3<<20, 4)
	gz = goGzip(t, data, 6)
	ix, err := Build(bytes.NewReader(gz), io.Discard, Options{Span: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	enc, err = ix.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return data, gz, enc
}

// TestPackedWindowCorrupt: a window that does not inflate to its recorded
// length, in an index whose checksum holds (so it loads: windows are
// inflated only when a read restarts at them), fails that read with
// ErrIndex, and reads elsewhere still work.
func TestPackedWindowCorrupt(t *testing.T) {
	data, gz, enc := encodedText(t)
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
	enc, err := loaded.encode()
	if err != nil {
		t.Fatal(err)
	}
	for name, dec := range decoders {
		damaged, err := dec(enc)
		if err != nil {
			t.Fatalf("%s: the damaged window is not checked at load, only at use: %v", name, err)
		}
		checkDamagedWindow(t, name, damaged, bad, gz, data)
	}
}

// checkDamagedWindow checks that a read in the span of checkpoint bad of
// ix fails with ErrIndex, and a read elsewhere gives data.
func checkDamagedWindow(t *testing.T, name string, ix *Index, bad int, gz, data []byte) {
	t.Helper()
	r := NewReader(ix, bytes.NewReader(gz), ReaderOptions{})
	buf := make([]byte, 100)
	if _, err := r.ReadAt(buf, ix.Checkpoints[bad].Out+10); !errors.Is(err, ErrIndex) {
		t.Errorf("%s: a read in the span of the damaged window: %v, want ErrIndex", name, err)
	}
	if _, err := r.ReadAt(buf, 10); err != nil || !bytes.Equal(buf, data[10:110]) {
		t.Errorf("%s: a read elsewhere: %v", name, err)
	}
}

// TestLoadWindowChanged: a window Load left in the file, changed there
// after loading (the checksum of the whole was right then), fails the read
// that restarts at it, and only that one.
func TestLoadWindowChanged(t *testing.T) {
	data, gz, enc := encodedText(t)
	loaded, err := Load(bytes.NewReader(enc), int64(len(enc)))
	if err != nil {
		t.Fatal(err)
	}
	bad := len(loaded.Checkpoints) / 2
	c := &loaded.Checkpoints[bad]
	if c.Window != nil || c.packed != nil || c.packedSize == 0 {
		t.Fatalf("checkpoint %d: window kept in memory by Load", bad)
	}
	enc[c.packedAt+int64(c.packedSize)/2] ^= 0x10
	checkDamagedWindow(t, "Load", loaded, bad, gz, data)
}

// FuzzLoad holds Load, which parses a serialized index from a file, to
// UnmarshalBinary, which parses it from memory: on any input both fail,
// or both give the same checkpoints and windows.
func FuzzLoad(f *testing.F) {
	gz := goGzip(f, genText(200<<10, 3), 6)
	ix, err := Build(bytes.NewReader(gz), io.Discard, Options{Span: 32 << 10})
	if err != nil {
		f.Fatal(err)
	}
	enc, err := ix.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(enc)
	f.Add(enc[:len(enc)/2])
	f.Add([]byte(indexMagic + "\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) >= 4 {
			// A right checksum, so that mutations reach the fields.
			b = resum(b)
		}
		var mem Index
		errMem := mem.UnmarshalBinary(b)
		file, errFile := Load(bytes.NewReader(b), int64(len(b)))
		if (errMem == nil) != (errFile == nil) {
			t.Fatalf("UnmarshalBinary: %v; Load: %v", errMem, errFile)
		}
		if errMem != nil {
			if !errors.Is(errMem, ErrIndex) || !errors.Is(errFile, ErrIndex) {
				t.Fatalf("not ErrIndex: %v; %v", errMem, errFile)
			}
			return
		}
		if mem.Span != file.Span || mem.Size != file.Size || mem.CompressedSize != file.CompressedSize || len(mem.Checkpoints) != len(file.Checkpoints) {
			t.Fatalf("headers differ")
		}
		w1, w2 := make([]byte, windowSize), make([]byte, windowSize)
		for i := range mem.Checkpoints {
			a, b := &mem.Checkpoints[i], &file.Checkpoints[i]
			if a.In != b.In || a.Out != b.Out || a.Bits != b.Bits {
				t.Fatalf("checkpoint %d differs", i)
			}
			n1, e1 := mem.window(i, w1)
			n2, e2 := file.window(i, w2)
			if (e1 == nil) != (e2 == nil) || !bytes.Equal(w1[:n1], w2[:n2]) {
				t.Fatalf("window %d differs: %v; %v", i, e1, e2)
			}
		}
	})
}

// TestEncode: Encode writes what MarshalBinary returns, also for an
// index whose windows Load left in its file, and a writer's error stops
// it.
func TestEncode(t *testing.T) {
	_, _, enc := encodedText(t)
	for name, dec := range decoders {
		ix, err := dec(enc)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := ix.Encode(&buf); err != nil || !bytes.Equal(buf.Bytes(), enc) {
			t.Errorf("%s: Encode wrote %d bytes (%v), not the %d it was read from", name, buf.Len(), err, len(enc))
		}
	}
	ix, _ := testIndex(t)
	full := errors.New("disk full")
	if err := ix.Encode(failingWriter{full}); !errors.Is(err, full) {
		t.Errorf("Encode to a failing writer: %v", err)
	}
}

type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }
