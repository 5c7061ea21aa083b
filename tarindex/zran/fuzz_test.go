package zran

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"strings"
	"testing"
)

// inflateRaw decodes a raw deflate stream with the package's inflater,
// giving up with errTooBig past maxOut bytes of output.
func inflateRaw(data []byte, maxOut int) ([]byte, error) {
	d := newInflater(4096)
	d.out = make([]byte, windowSize+8192+outSlack)
	d.reset(bytes.NewReader(data), 0)
	// Output always starts at windowSize, after the history.
	d.o = windowSize
	d.startStream()
	var res []byte
	limit := len(d.out) - outSlack
	for {
		ev, err := d.run(limit)
		res = append(res, d.out[windowSize:d.o]...)
		if err != nil {
			return res, err
		}
		if len(res) > maxOut {
			return res, errTooBig
		}
		if ev == evStreamEnd {
			return res, nil
		}
		drop := d.o - windowSize
		copy(d.out, d.out[drop:d.o])
		d.o = windowSize
		d.histLo = max(d.histLo-drop, 0)
	}
}

var errTooBig = errors.New("output too big")

func FuzzInflate(f *testing.F) {
	text := genText(50000, 1)
	for _, lvl := range []int{0, 1, 6, 9, -2} {
		var b bytes.Buffer
		fw, _ := flate.NewWriter(&b, lvl)
		fw.Write(text[:1000*(lvl+3)])
		fw.Close()
		f.Add(b.Bytes())
	}
	f.Add([]byte{})
	f.Add([]byte{0x03, 0x00})
	f.Add([]byte{0x01, 0x00, 0x00, 0xff, 0xff})
	f.Fuzz(compareWithFlate)
}

// compareWithFlate inflates data with the package's inflater and with
// compress/flate and fails if they disagree.
func compareWithFlate(t *testing.T, data []byte) {
	const maxOut = 1 << 20
	got, err := inflateRaw(data, maxOut)
	if errors.Is(err, errTooBig) {
		return
	}
	want, werr := io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(data)), maxOut+1))
	if len(want) > maxOut {
		return
	}
	if werr == nil && err != nil {
		t.Fatalf("compress/flate accepts %q, we fail: %v", data, err)
	}
	if werr != nil && err == nil {
		t.Fatalf("we accept %q, compress/flate fails: %v", data, werr)
	}
	if err == nil && !bytes.Equal(got, want) {
		t.Fatalf("output differs for %q: %d vs %d bytes", data, len(got), len(want))
	}
}

// TestMutatedDeflate runs the fuzz comparison over deterministic mutations
// (bit flips, byte changes, truncations) of valid streams.
func TestMutatedDeflate(t *testing.T) {
	text := genText(20000, 1)
	var seeds [][]byte
	for _, lvl := range []int{0, 1, 6, 9, -2} {
		var b bytes.Buffer
		fw, _ := flate.NewWriter(&b, lvl)
		fw.Write(text[:1000*(lvl+3)])
		fw.Close()
		seeds = append(seeds, b.Bytes())
	}
	rng := rand.New(rand.NewSource(1))
	n := 20000
	if testing.Short() {
		n = 2000
	}
	for i := 0; i < n; i++ {
		s := append([]byte(nil), seeds[rng.Intn(len(seeds))]...)
		for k := rng.Intn(4); k >= 0; k-- {
			switch rng.Intn(3) {
			case 0:
				s[rng.Intn(len(s))] ^= byte(1 << rng.Intn(8))
			case 1:
				s = s[:rng.Intn(len(s))+1]
			default:
				s[rng.Intn(len(s))] = byte(rng.Intn(256))
			}
		}
		compareWithFlate(t, s)
	}
}

// FuzzBuild feeds arbitrary bytes to Build and to a reader over the
// resulting index; it must never panic or hang, and must agree with
// compress/gzip whenever that accepts the input.
func FuzzBuild(f *testing.F) {
	f.Add(goGzip(f, genText(3000, 2), 6))
	f.Add(goGzip(f, nil, 6))
	f.Add(append(goGzip(f, []byte("ab"), 1), goGzip(f, []byte("cd"), 9)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		var got bytes.Buffer
		ix, err := Build(bytes.NewReader(data), &got, Options{Span: 1})
		zr, zerr := newStdGzip(data)
		var want []byte
		if zerr == nil {
			want, zerr = io.ReadAll(io.LimitReader(zr, 1<<20))
		}
		if zerr == nil && err != nil && !reservedFlags(data, err) {
			t.Fatalf("compress/gzip accepts, we fail: %v", err)
		}
		if err != nil {
			return
		}
		if zerr == nil && !bytes.Equal(got.Bytes(), want) {
			t.Fatal("output differs")
		}
		r := ix.ReaderAt(bytes.NewReader(data))
		back, err := io.ReadAll(io.NewSectionReader(r, 0, ix.Size))
		if err != nil || !bytes.Equal(back, got.Bytes()) {
			t.Fatalf("reader: %v", err)
		}
	})
}

// reservedFlags reports whether err is Build refusing a member header whose
// flags byte has a reserved bit set, and the input's byte there has one.
// compress/gzip ignores those bits; RFC 1952 (2.3.1.2) requires an error,
// and zlib and GNU gzip give one.
func reservedFlags(data []byte, err error) bool {
	var at int
	i := strings.Index(err.Error(), "reserved flags set in member at compressed offset ")
	if !errors.Is(err, ErrHeader) || i < 0 {
		return false
	}
	if _, e := fmt.Sscanf(err.Error()[i:], "reserved flags set in member at compressed offset %d", &at); e != nil {
		return false
	}
	return at >= 0 && at+3 < len(data) && data[at+3]&flagReserved != 0
}
