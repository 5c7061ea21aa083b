package zstdframes

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"
)

func genData(n int, seed int64) []byte {
	rng := rand.New(rand.NewSource(seed))
	words := []string{"layer ", "tar ", "zstd ", "frame ", "index\n", "offset ", "0123 "}
	var b bytes.Buffer
	for b.Len() < n {
		if rng.Intn(40) == 0 {
			r := make([]byte, rng.Intn(2000))
			rng.Read(r)
			b.Write(r)
			continue
		}
		b.WriteString(words[rng.Intn(len(words))])
	}
	return b.Bytes()[:n]
}

// framesOf encodes data in chunks of the given size, one frame each, with
// the content size in every header (EncodeAll writes it).
func framesOf(t testing.TB, data []byte, chunk int) []byte {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	var out []byte
	for len(data) > 0 {
		n := min(chunk, len(data))
		out = enc.EncodeAll(data[:n], out)
		data = data[n:]
	}
	return out
}

// streamFrame encodes data as one frame through the stream writer, which
// does not know the content size in advance and so leaves it out.
func streamFrame(t testing.TB, data []byte, opts ...zstd.EOption) []byte {
	var b bytes.Buffer
	enc, err := zstd.NewWriter(&b, append([]zstd.EOption{zstd.WithEncoderConcurrency(1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	enc.Write(data)
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func skippable(payload []byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, skippableMagic+3)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(payload)))
	return append(b, payload...)
}

func zstdCLI(t *testing.T, data []byte, args ...string) []byte {
	path, err := exec.LookPath("zstd")
	if err != nil {
		t.Skipf("SKIP: zstd not installed: %v", err)
	}
	cmd := exec.Command(path, append(args, "-c", "-q")...)
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func decodeAll(t testing.TB, z []byte) []byte {
	dec, err := zstd.NewReader(bytes.NewReader(z))
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	out, err := io.ReadAll(dec)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func checkStream(t *testing.T, z []byte, opts ReaderOptions) *Index {
	t.Helper()
	want := decodeAll(t, z)
	ix, err := Build(bytes.NewReader(z), int64(len(z)))
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	if ix.Size != int64(len(want)) {
		t.Fatalf("Size %d, want %d", ix.Size, len(want))
	}
	enc, err := ix.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var ix2 Index
	if err := ix2.UnmarshalBinary(enc); err != nil {
		t.Fatal(err)
	}
	for _, idx := range []*Index{ix, &ix2} {
		r := NewReader(idx, bytes.NewReader(z), opts)
		rng := rand.New(rand.NewSource(int64(len(z))))
		check := func(off int64, n int) {
			t.Helper()
			p := make([]byte, n)
			got, err := r.ReadAt(p, off)
			end := min(off+int64(n), int64(len(want)))
			if got != int(end-off) || (got < n && err != io.EOF) || (got == n && err != nil) {
				t.Fatalf("ReadAt(%d at %d) = %d, %v", n, off, got, err)
			}
			if !bytes.Equal(p[:got], want[off:end]) {
				t.Fatalf("ReadAt(%d at %d): bytes differ", n, off)
			}
		}
		for _, f := range idx.Frames {
			if f.Out > 0 && f.Out < idx.Size {
				check(f.Out-2, 5)
			}
		}
		for i := 0; i < 50; i++ {
			check(rng.Int63n(int64(len(want))), 1+rng.Intn(100000))
		}
		// Backwards within one frame forces streamed frames to restart.
		check(int64(len(want))-10, 10)
		check(0, len(want))
		check(int64(len(want)), 1)
		r.Close()
	}
	return ix
}

func TestFrames(t *testing.T) {
	data := genData(3<<20, 1)
	cases := map[string][]byte{
		"many-frames":      framesOf(t, data, 100<<10),
		"one-frame-fcs":    framesOf(t, data, len(data)),
		"stream-no-fcs":    streamFrame(t, data),
		"stream-no-crc":    streamFrame(t, data, zstd.WithEncoderCRC(false)),
		"cat-with-skip":    append(append(append(skippable([]byte("meta")), streamFrame(t, data[:1<<20])...), skippable(nil)...), framesOf(t, data[1<<20:], 300<<10)...),
		"empty-frame":      append(framesOf(t, data[:1000], 1000), streamFrame(t, nil)...),
		"uncompressible":   framesOf(t, randomBytes(1<<20), 64<<10),
		"zstd-cli":         zstdCLI(t, data, "-3"),
		"zstd-cli-nocheck": zstdCLI(t, data, "--no-check", "-1"),
	}
	for name, z := range cases {
		t.Run(name, func(t *testing.T) {
			ix := checkStream(t, z, ReaderOptions{})
			// Again streaming every frame through a tiny whole-frame limit.
			checkStream(t, z, ReaderOptions{MaxWholeFrame: 1, CacheFrames: 1})
			t.Logf("%d frames", len(ix.Frames))
		})
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(9)).Read(b)
	return b
}

// TestFixtureZstdLayer reads the zstd layer blob of a real OCI archive.
func TestFixtureZstdLayer(t *testing.T) {
	f, err := os.Open("/work/shared/fixtures/real/C-dive-oci-zstd.tar")
	if err != nil {
		t.Skipf("SKIP: fixture unavailable: %v", err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	found := 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		if h.Typeflag == tar.TypeReg && len(b) >= 4 && binary.LittleEndian.Uint32(b) == frameMagic {
			found++
			checkStream(t, b, ReaderOptions{})
		}
	}
	if found == 0 {
		t.Fatal("no zstd blob in fixture")
	}
}

func TestBuildErrors(t *testing.T) {
	data := genData(300<<10, 2)
	z := framesOf(t, data, 100<<10)
	for n := 0; n < len(z); n += 1 + n/200 {
		if _, err := Build(bytes.NewReader(z[:n]), int64(n)); err == nil {
			// A cut exactly between frames leaves a valid stream.
			ok := false
			ix, _ := Build(bytes.NewReader(z), int64(len(z)))
			for _, f := range ix.Frames {
				if f.Offset == int64(n) {
					ok = true
				}
			}
			if !ok {
				t.Fatalf("cut at %d accepted", n)
			}
		} else if n > 0 && !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrFormat) {
			t.Fatalf("cut at %d: %v", n, err)
		}
	}
	bad := bytes.Clone(z)
	bad[0] ^= 1
	if _, err := Build(bytes.NewReader(bad), int64(len(bad))); !errors.Is(err, ErrFormat) {
		t.Fatalf("bad magic: %v", err)
	}
	bad = bytes.Clone(z)
	bad[4] |= fhdReservedBit
	if _, err := Build(bytes.NewReader(bad), int64(len(bad))); !errors.Is(err, ErrFormat) {
		t.Fatalf("reserved bit: %v", err)
	}
	withDict := bytes.Clone(z[:4])
	withDict = append(withDict, 0x01|fhdSingleSegmentBit, 7, 10) // 1-byte dictionary ID 7, 1-byte FCS
	withDict = append(withDict, 0x01, 0x00, 0x00)                // last raw block of size 0
	if _, err := Build(bytes.NewReader(withDict), int64(len(withDict))); !errors.Is(err, ErrDictionary) {
		t.Fatalf("dictionary: %v", err)
	}
	if _, err := Build(bytes.NewReader(nil), 0); !errors.Is(err, ErrFormat) {
		t.Fatalf("empty: %v", err)
	}
}

// TestCorruptFrames flips bytes: Build and reads must fail cleanly or
// return bytes, never panic.
func TestCorruptFrames(t *testing.T) {
	data := genData(400<<10, 3)
	rng := rand.New(rand.NewSource(3))
	for _, z := range [][]byte{framesOf(t, data, 50<<10), streamFrame(t, data)} {
		for i := 0; i < 300; i++ {
			b := bytes.Clone(z)
			b[rng.Intn(len(b))] ^= byte(1 + rng.Intn(255))
			ix, err := Build(bytes.NewReader(b), int64(len(b)))
			if err != nil {
				continue
			}
			r := NewReader(ix, bytes.NewReader(b), ReaderOptions{MaxWholeFrame: 64 << 10})
			r.ReadAt(make([]byte, 70000), rng.Int63n(ix.Size+1))
			r.Close()
		}
	}
}

func TestUnmarshalCorrupt(t *testing.T) {
	z := append(skippable([]byte("x")), framesOf(t, genData(1<<20, 4), 64<<10)...)
	ix, err := Build(bytes.NewReader(z), int64(len(z)))
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := ix.MarshalBinary()
	for i := range enc {
		for bit := 0; bit < 8; bit++ {
			b := bytes.Clone(enc)
			b[i] ^= 1 << bit
			var got Index
			if err := got.UnmarshalBinary(b); !errors.Is(err, ErrIndex) {
				t.Fatalf("flip %d/%d: %v", i, bit, err)
			}
		}
	}
	for n := range enc {
		var got Index
		if err := got.UnmarshalBinary(enc[:n]); !errors.Is(err, ErrIndex) {
			t.Fatalf("cut %d: %v", n, err)
		}
	}
	// An index whose sizes do not match the stream is caught when read.
	lie := *ix
	lie.Frames = append([]Frame(nil), ix.Frames...)
	lie.Frames[1].Size++
	lie.Size++
	for i := 2; i < len(lie.Frames); i++ {
		lie.Frames[i].Out++
	}
	r := NewReader(&lie, bytes.NewReader(z), ReaderOptions{})
	if _, err := r.ReadAt(make([]byte, 10), 0); !errors.Is(err, ErrIndex) {
		t.Fatalf("lying index: %v", err)
	}
	r = NewReader(&lie, bytes.NewReader(z), ReaderOptions{MaxWholeFrame: 1})
	if _, err := r.ReadAt(make([]byte, 10), lie.Frames[1].Size-1); !errors.Is(err, ErrIndex) {
		t.Fatalf("lying index, streamed: %v", err)
	}
}

func TestConcurrent(t *testing.T) {
	data := genData(4<<20, 5)
	z := append(framesOf(t, data[:2<<20], 256<<10), streamFrame(t, data[2<<20:])...)
	ix, err := Build(bytes.NewReader(z), int64(len(z)))
	if err != nil {
		t.Fatal(err)
	}
	r := NewReader(ix, bytes.NewReader(z), ReaderOptions{CacheFrames: 2})
	defer r.Close()
	var wg sync.WaitGroup
	for g := 0; g < 6; g++ {
		wg.Add(1)
		go func(seed int64) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(seed))
			p := make([]byte, 5000)
			for i := 0; i < 40; i++ {
				off := rng.Int63n(int64(len(data) - len(p)))
				if _, err := r.ReadAt(p, off); err != nil {
					t.Error(err)
					return
				}
				if !bytes.Equal(p, data[off:off+int64(len(p))]) {
					t.Error("bytes differ")
					return
				}
			}
		}(int64(g))
	}
	wg.Wait()
}

type countingReaderAt struct {
	r      io.ReaderAt
	starts int // reads at offset 0: restarts of the first frame
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off == 0 {
		c.starts++
	}
	return c.r.ReadAt(p, off)
}

// TestStreamOutOfOrder reads a big single frame the way kernel readahead
// does, slightly out of order; the tail must absorb that without restarts.
func TestStreamOutOfOrder(t *testing.T) {
	data := genData(6<<20, 6)
	z := streamFrame(t, data)
	ix, err := Build(bytes.NewReader(z), int64(len(z)))
	if err != nil {
		t.Fatal(err)
	}
	src := &countingReaderAt{r: bytes.NewReader(z)}
	r := NewReader(ix, src, ReaderOptions{MaxWholeFrame: 1 << 20})
	defer r.Close()
	const chunk = 128 << 10
	p := make([]byte, chunk)
	for base := int64(0); base+2*chunk <= int64(len(data)); base += 2 * chunk {
		for _, off := range []int64{base + chunk, base} {
			if _, err := r.ReadAt(p, off); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(p, data[off:off+chunk]) {
				t.Fatalf("bytes differ at %d", off)
			}
		}
	}
	if src.starts != 1 {
		t.Fatalf("frame restarted %d times", src.starts)
	}
}
