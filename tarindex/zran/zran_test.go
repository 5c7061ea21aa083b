package zran

import (
	"bytes"
	"compress/flate"
	"errors"
	"io"
	"math/rand"
	"sync"
	"testing"
)

// gunzip is the reference decoder: compress/gzip in multistream mode.
func gunzip(tb testing.TB, gz []byte) []byte {
	tb.Helper()
	zr := mustGzip(tb, bytes.NewReader(gz))
	want, err := io.ReadAll(zr)
	if err != nil {
		tb.Fatalf("compress/gzip: %v", err)
	}
	return want
}

// checkStream builds an index of gz and compares the Build output and
// random ranges read through checkpoints with the compress/gzip output.
func checkStream(t *testing.T, gz []byte, span int64, seed int64) *Index {
	t.Helper()
	want := gunzip(t, gz)
	var got bytes.Buffer
	ix, err := Build(bytes.NewReader(gz), &got, Options{Span: span})
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("Build output differs from compress/gzip (%d vs %d bytes)", got.Len(), len(want))
	}
	if ix.Size != int64(len(want)) || ix.CompressedSize != int64(len(gz)) {
		t.Fatalf("Size %d CompressedSize %d, want %d %d", ix.Size, ix.CompressedSize, len(want), len(gz))
	}
	if err := ix.validate(); err != nil {
		t.Fatal(err)
	}
	checkCheckpoints(t, ix, gz, want)
	checkReads(t, ix, gz, want, seed)

	// The same reads through a serialized and reloaded index.
	enc, err := ix.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var ix2 Index
	if err := ix2.UnmarshalBinary(enc); err != nil {
		t.Fatalf("UnmarshalBinary: %v", err)
	}
	checkReads(t, &ix2, gz, want, seed+1)
	return ix
}

func checkReads(t *testing.T, ix *Index, gz, want []byte, seed int64) {
	t.Helper()
	r := NewReader(ix, bytes.NewReader(gz), ReaderOptions{CacheSpans: 2})
	rng := rand.New(rand.NewSource(seed))
	check := func(off int64, n int) {
		t.Helper()
		p := make([]byte, n)
		got, err := r.ReadAt(p, off)
		end := min(off+int64(n), int64(len(want)))
		wantN := int(max(end-off, 0))
		if got != wantN {
			t.Fatalf("ReadAt(%d, %d) = %d bytes, want %d (err %v)", n, off, got, wantN, err)
		}
		if wantN < n && err != io.EOF {
			t.Fatalf("ReadAt(%d, %d) short read with err %v, want io.EOF", n, off, err)
		}
		if wantN == n && err != nil {
			t.Fatalf("ReadAt(%d, %d): %v", n, off, err)
		}
		if wantN > 0 && !bytes.Equal(p[:got], want[off:end]) {
			t.Fatalf("ReadAt(%d, %d): bytes differ", n, off)
		}
	}
	size := int64(len(want))
	// Around every checkpoint, including reads that straddle it.
	for _, c := range ix.Checkpoints {
		for _, d := range []int64{-3, 0, 1} {
			if off := c.Out + d; off >= 0 && off <= size {
				check(off, 1+rng.Intn(5000))
			}
		}
	}
	for i := 0; i < 60; i++ {
		var n int
		switch i % 3 {
		case 0:
			n = 1 + rng.Intn(16)
		case 1:
			n = 4096
		default:
			n = rng.Intn(300000)
		}
		off := int64(0)
		if size > 0 {
			off = rng.Int63n(size)
		}
		check(off, n)
	}
	check(0, len(want))
	check(size, 10)
	check(max(size-5, 0), 10)
	if _, err := r.ReadAt(make([]byte, 1), -1); !errors.Is(err, ErrOffset) {
		t.Fatalf("negative offset: %v", err)
	}
}

func TestStreams(t *testing.T) {
	const size = 3 << 20
	for _, shape := range shapes {
		data := shape.gen(size, 7)
		for _, c := range compressors {
			t.Run(shape.name+"/"+c.name, func(t *testing.T) {
				gz := c.gz(t, data)
				ix := checkStream(t, gz, 256<<10, 11)
				if len(ix.Checkpoints) < 4 && shape.name != "zeros" {
					t.Errorf("only %d checkpoints for %d bytes at 256 KiB span", len(ix.Checkpoints), size)
				}
			})
		}
	}
}

// TestDefaultSpan reads a larger stream through default-sized spans.
func TestDefaultSpan(t *testing.T) {
	data := genTar(20<<20, 3)
	gz := goGzip(t, data, 6)
	ix := checkStream(t, gz, 0, 5)
	if ix.Span != DefaultSpan {
		t.Fatalf("Span %d", ix.Span)
	}
	// A checkpoint every DefaultSpan, give or take the block they wait for.
	if n, want := len(ix.Checkpoints), int(20<<20/DefaultSpan); n < want-1 || n > want+1 {
		t.Fatalf("%d checkpoints for 20 MiB at a %d-byte span, want %d±1", n, DefaultSpan, want)
	}
}

// TestSpanGrowth: past spansBeforeGrowth checkpoints the distance grows
// with the stream, so the windows kept stay few, and reads stay right.
func TestSpanGrowth(t *testing.T) {
	data := genTar(8<<20, 5)
	gz := goGzip(t, data, 1)
	fixed := checkStream(t, gz, 1, 11) // a checkpoint at every block boundary
	defer func(n int64) { spansBeforeGrowth = n }(spansBeforeGrowth)
	spansBeforeGrowth = 16
	grown := checkStream(t, gz, 1, 12)
	if len(grown.Checkpoints) >= len(fixed.Checkpoints)/2 {
		t.Errorf("%d checkpoints with growth past 16, %d without", len(grown.Checkpoints), len(fixed.Checkpoints))
	}
	for i := 1; i < len(grown.Checkpoints); i++ {
		prev, c := grown.Checkpoints[i-1].Out, grown.Checkpoints[i].Out
		if c-prev < c/spansBeforeGrowth {
			t.Fatalf("checkpoint %d at %d, %d after the one before: closer than 1/%d of the output", i, c, c-prev, spansBeforeGrowth)
		}
	}
}

// TestTinySpan puts a checkpoint at every block boundary.
func TestTinySpan(t *testing.T) {
	data := genText(1<<20, 9)
	for _, gz := range [][]byte{goGzip(t, data, 9), compressors[9].gz(t, data)} {
		ix := checkStream(t, gz, 1, 2)
		t.Logf("%d checkpoints", len(ix.Checkpoints))
	}
}

func TestEmptyAndSmall(t *testing.T) {
	for _, n := range []int{0, 1, 2, 100, 32 << 10, 32<<10 + 1} {
		data := genText(n, int64(n))
		for _, lvl := range []int{0, 1, 9, -2} {
			checkStream(t, goGzip(t, data, lvl), 1, 1)
		}
		if n > 0 {
			checkStream(t, toolGzip(t, data, "gzip", "-9"), 1, 1)
		}
	}
}

func TestConcurrentReads(t *testing.T) {
	data := genTar(8<<20, 4)
	gz := goGzip(t, data, 6)
	ix, err := Build(bytes.NewReader(gz), io.Discard, Options{Span: 512 << 10})
	if err != nil {
		t.Fatal(err)
	}
	r := NewReader(ix, bytes.NewReader(gz), ReaderOptions{CacheSpans: 3})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(seed int64) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(seed))
			p := make([]byte, 8192)
			for i := 0; i < 100; i++ {
				off := rng.Int63n(int64(len(data) - len(p)))
				if _, err := r.ReadAt(p, off); err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(p, data[off:off+int64(len(p))]) {
					errs <- errors.New("bytes differ")
					return
				}
			}
		}(int64(g))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestSequentialReads reads a stream front to back in small pieces, the
// pattern of cat and cp.
func TestSequentialReads(t *testing.T) {
	data := genTar(6<<20, 8)
	gz := goGzip(t, data, 6)
	ix, err := Build(bytes.NewReader(gz), io.Discard, Options{Span: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	r := ix.ReaderAt(bytes.NewReader(gz))
	got, err := io.ReadAll(io.NewSectionReader(r, 0, r.Size()))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("bytes differ")
	}
}

// TestSharedCache reads several streams concurrently through one small
// cache.
func TestSharedCache(t *testing.T) {
	cache := NewCache(600 << 10)
	type stream struct {
		data []byte
		r    *Reader
	}
	var streams []stream
	for i := 0; i < 3; i++ {
		data := genTar(3<<20, int64(20+i))
		gz := goGzip(t, data, 6)
		ix, err := Build(bytes.NewReader(gz), io.Discard, Options{Span: 256 << 10})
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, stream{data, NewReader(ix, bytes.NewReader(gz), ReaderOptions{Cache: cache})})
	}
	var wg sync.WaitGroup
	for g := 0; g < 6; g++ {
		wg.Add(1)
		go func(seed int64) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(seed))
			p := make([]byte, 3000)
			for i := 0; i < 60; i++ {
				s := streams[rng.Intn(len(streams))]
				off := rng.Int63n(int64(len(s.data) - len(p)))
				if _, err := s.r.ReadAt(p, off); err != nil {
					t.Error(err)
					return
				}
				if !bytes.Equal(p, s.data[off:off+int64(len(p))]) {
					t.Error("bytes differ")
					return
				}
			}
		}(int64(g))
	}
	wg.Wait()
	if cache.used > cache.budget && cache.lru.Len() > 1 {
		t.Fatalf("cache holds %d bytes in %d spans, budget %d", cache.used, cache.lru.Len(), cache.budget)
	}
	for _, s := range streams {
		s.r.Close()
	}
	if cache.lru.Len() != 0 || cache.used != 0 || len(cache.byKey) != 0 {
		t.Fatalf("cache not empty after Close: %d entries, %d bytes", cache.lru.Len(), cache.used)
	}
}

// checkCheckpoints resumes compress/flate at every checkpoint, primed the
// way zlib's zran.c primes inflate (the Bits high bits of byte In-1, then
// byte In onwards), with the checkpoint's window as dictionary. This checks
// the position convention against an independent decoder.
func checkCheckpoints(t *testing.T, ix *Index, gz, want []byte) {
	t.Helper()
	for i, c := range ix.Checkpoints {
		rest := gz[c.In:]
		if c.Bits > 0 {
			// Shift the stream so the block's first bit is bit 0 of byte 0.
			prev := gz[c.In-1]
			shifted := make([]byte, len(rest)+1)
			shifted[0] = prev >> (8 - c.Bits)
			for k, b := range rest {
				shifted[k] |= b << c.Bits
				shifted[k+1] = b >> (8 - c.Bits)
			}
			rest = shifted
			// Shifting moves the byte boundaries that stored blocks align
			// to, so the shifted stream is only good for the first block,
			// and not at all if that is a stored one.
			if rest[0]>>1&3 == 0 {
				continue
			}
		}
		n := min(int64(len(want))-c.Out, 64<<10, ix.spanEnd(i)-c.Out)
		if c.Bits > 0 {
			n = min(n, firstBlockSize(t, gz, c))
		}
		got := make([]byte, n)
		fr := flate.NewReaderDict(bytes.NewReader(rest), c.Window)
		m, err := io.ReadFull(fr, got)
		// A short read is the end of the member, which may be empty.
		if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
			t.Fatalf("checkpoint %d (in %d bits %d out %d): compress/flate: %v", i, c.In, c.Bits, c.Out, err)
		}
		if !bytes.Equal(got[:m], want[c.Out:c.Out+int64(m)]) {
			t.Fatalf("checkpoint %d (in %d bits %d out %d): compress/flate resumes with different bytes (%d of %d read, err %v, first diff at %d)", i, c.In, c.Bits, c.Out, m, n, err, firstDiff(got[:m], want[c.Out:]))
		}
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// firstBlockSize is the output size of the block at checkpoint c, or a
// huge number if that is over 64 KiB (more than the checks compare).
func firstBlockSize(t *testing.T, gz []byte, c Checkpoint) int64 {
	d := newInflater(4096)
	d.out = make([]byte, windowSize+(64<<10)+1+outSlack)
	d.o = copy(d.out, c.Window)
	d.reset(bytes.NewReader(gz[c.In-1:]), c.In-1)
	b, _ := d.readByte()
	d.bits, d.nbits = uint64(b>>(8-c.Bits)), uint(c.Bits)
	ev, err := d.run(len(d.out) - outSlack)
	if err != nil {
		t.Fatal(err)
	}
	if ev == evLimit {
		return 1 << 62
	}
	return int64(d.o - len(c.Window))
}
