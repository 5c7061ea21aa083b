package zran

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"math/rand"
	"testing"
)

func buildErr(gz []byte) error {
	_, err := Build(bytes.NewReader(gz), io.Discard, Options{Span: 1})
	return err
}

func TestTruncated(t *testing.T) {
	data := genText(40000, 3)
	for name, gz := range map[string][]byte{
		"go-6":   goGzip(t, data, 6),
		"stored": goGzip(t, data, 0),
		"gzip-9": toolGzip(t, data, "gzip", "-9"),
	} {
		for n := 0; n < len(gz); n += 1 + n/500 {
			if err := buildErr(gz[:n]); !errors.Is(err, ErrTruncated) {
				t.Fatalf("%s cut at %d of %d: %v, want ErrTruncated", name, n, len(gz), err)
			}
		}
	}
}

func TestTrailerMismatch(t *testing.T) {
	gz := goGzip(t, genText(5000, 1), 6)
	bad := bytes.Clone(gz)
	bad[len(bad)-8] ^= 1
	if err := buildErr(bad); !errors.Is(err, ErrChecksum) {
		t.Fatalf("bad CRC: %v", err)
	}
	bad = bytes.Clone(gz)
	bad[len(bad)-4] ^= 1
	if err := buildErr(bad); !errors.Is(err, ErrSize) {
		t.Fatalf("bad ISIZE: %v", err)
	}
}

func TestBadHeaders(t *testing.T) {
	gz := goGzip(t, []byte("hello, world\n"), 6)
	for i, mutate := range []func([]byte){
		func(b []byte) { b[0] = 0x1e },
		func(b []byte) { b[1] = 0 },
		func(b []byte) { b[2] = 7 },
		func(b []byte) { b[3] |= 0x80 },
	} {
		b := bytes.Clone(gz)
		mutate(b)
		if err := buildErr(b); !errors.Is(err, ErrHeader) {
			t.Errorf("mutation %d: %v, want ErrHeader", i, err)
		}
	}
	if err := buildErr(append(bytes.Clone(gz), "garbage"...)); !errors.Is(err, ErrHeader) {
		t.Errorf("trailing garbage: %v, want ErrHeader", err)
	}
	if err := buildErr(append(bytes.Clone(gz), make([]byte, 100)...)); err != nil {
		t.Errorf("trailing zeros: %v", err)
	}
	if err := buildErr(nil); err == nil {
		t.Error("empty input accepted")
	}
}

// TestHeaderCRC checks the optional header checksum (FHCRC), which
// compress/gzip never writes.
func TestHeaderCRC(t *testing.T) {
	// A header with no optional fields: 10 fixed bytes, then deflate data.
	var plain bytes.Buffer
	newPlainGzip(&plain, []byte("hello, world\n"))
	hdr, body := bytes.Clone(plain.Bytes()[:10]), plain.Bytes()[10:]
	hdr[3] |= flagHCRC
	sum := uint16(crc32.ChecksumIEEE(hdr))
	good := append(binary.LittleEndian.AppendUint16(bytes.Clone(hdr), sum), body...)
	if err := buildErr(good); err != nil {
		t.Fatalf("valid FHCRC: %v", err)
	}
	bad := append(binary.LittleEndian.AppendUint16(bytes.Clone(hdr), sum+1), body...)
	if err := buildErr(bad); !errors.Is(err, ErrHeader) {
		t.Fatalf("bad FHCRC: %v", err)
	}
}

func TestInvalidDeflate(t *testing.T) {
	gz := goGzip(t, nil, 6)
	b := append(bytes.Clone(gz[:10]), 0x07) // final block of reserved type 3
	b = append(b, make([]byte, 20)...)
	if err := buildErr(b); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("block type 3: %v", err)
	}
}

// TestCorruptStreams flips bytes of valid streams: Build must fail cleanly
// or agree with compress/gzip.
func TestCorruptStreams(t *testing.T) {
	data := genTar(200000, 5)
	rng := rand.New(rand.NewSource(5))
	for _, gz := range [][]byte{goGzip(t, data, 6), goGzip(t, data, 1), toolGzip(t, data, "pigz", "-i", "-b", "32")} {
		for i := 0; i < 300; i++ {
			b := bytes.Clone(gz)
			for k := rng.Intn(3); k >= 0; k-- {
				b[rng.Intn(len(b))] ^= byte(1 + rng.Intn(255))
			}
			var got bytes.Buffer
			_, err := Build(bytes.NewReader(b), &got, Options{Span: 1 << 14})
			want, werr := io.ReadAll(mustGzipOrNil(b))
			if err == nil && (werr != nil || !bytes.Equal(got.Bytes(), want)) {
				t.Fatalf("accepted a stream compress/gzip rejects or decodes differently (%v)", werr)
			}
		}
	}
}

// TestReaderWrongStream reads through an index of one stream over another:
// this must fail or return bytes, never panic.
func TestReaderWrongStream(t *testing.T) {
	a := goGzip(t, genTar(2<<20, 1), 6)
	b := goGzip(t, genTar(2<<20, 2), 6)
	ix, err := Build(bytes.NewReader(a), io.Discard, Options{Span: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	r := ix.ReaderAt(bytes.NewReader(b))
	rng := rand.New(rand.NewSource(1))
	p := make([]byte, 10000)
	fails := 0
	for i := 0; i < 200; i++ {
		if _, err := r.ReadAt(p, rng.Int63n(ix.Size)); err != nil {
			fails++
		}
	}
	t.Logf("%d of 200 reads failed", fails)
}

type flakyReaderAt struct {
	r    io.ReaderAt
	fail bool
}

var errFlaky = errors.New("flaky")

func (f *flakyReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if f.fail {
		return 0, errFlaky
	}
	return f.r.ReadAt(p, off)
}

// TestReaderTransientError checks that an I/O error is reported and that
// the reader recovers once the source works again.
func TestReaderTransientError(t *testing.T) {
	data := genTar(1<<20, 3)
	gz := goGzip(t, data, 6)
	ix, err := Build(bytes.NewReader(gz), io.Discard, Options{Span: 128 << 10})
	if err != nil {
		t.Fatal(err)
	}
	src := &flakyReaderAt{r: bytes.NewReader(gz), fail: true}
	r := ix.ReaderAt(src)
	p := make([]byte, 5000)
	if _, err := r.ReadAt(p, 500000); !errors.Is(err, errFlaky) {
		t.Fatalf("got %v, want the source error", err)
	}
	src.fail = false
	if _, err := r.ReadAt(p, 500000); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p, data[500000:505000]) {
		t.Fatal("bytes differ after recovery")
	}
}

// TestSlidingSpan reads a stream with a single checkpoint through a buffer
// smaller than the span, forcing slides and restarts.
func TestSlidingSpan(t *testing.T) {
	defer func(v int64) { maxSpanBuf = v }(maxSpanBuf)
	maxSpanBuf = 200 << 10
	data := genTar(3<<20, 6)
	gz := goGzip(t, data, 6)
	ix := checkStream(t, gz, 1<<40, 3)
	if len(ix.Checkpoints) != 1 {
		t.Fatalf("%d checkpoints", len(ix.Checkpoints))
	}
}
