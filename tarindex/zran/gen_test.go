package zran

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"math/rand"
	"os/exec"
	"testing"
	"testing/iotest"
)

// Deterministic test inputs of several shapes.

func genRandom(n int, seed int64) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

func genZeros(n int, _ int64) []byte { return make([]byte, n) }

// genText is word salad with the skewed word frequencies of real text, and
// an occasional run of binary so blocks vary.
func genText(n int, seed int64) []byte {
	rng := rand.New(rand.NewSource(seed))
	vocab := make([]string, 2000)
	for i := range vocab {
		w := make([]byte, 2+rng.Intn(9))
		for j := range w {
			w[j] = byte('a' + rng.Intn(26))
		}
		vocab[i] = string(w)
	}
	var b bytes.Buffer
	for b.Len() < n {
		k := int(rng.ExpFloat64() * 150)
		b.WriteString(vocab[k%len(vocab)])
		switch rng.Intn(12) {
		case 0:
			b.WriteString(".\n")
		case 1:
			fmt.Fprintf(&b, " %d ", rng.Intn(100000))
		default:
			b.WriteByte(' ')
		}
		if rng.Intn(5000) == 0 {
			r := make([]byte, rng.Intn(4000))
			rng.Read(r)
			b.Write(r)
		}
	}
	return b.Bytes()[:n]
}

// genTar is a tar of text, random and empty files, like a small layer.
func genTar(n int, seed int64) []byte {
	rng := rand.New(rand.NewSource(seed))
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for i := 0; b.Len() < n; i++ {
		var body []byte
		switch rng.Intn(4) {
		case 0:
			body = genRandom(rng.Intn(100000), seed+int64(i))
		case 1:
			body = nil
		default:
			body = genText(rng.Intn(300000), seed+int64(i))
		}
		tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("dir%d/file%d", i%7, i), Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
		tw.Write(body)
	}
	tw.Close()
	return b.Bytes()
}

var shapes = []struct {
	name string
	gen  func(int, int64) []byte
}{
	{"random", genRandom},
	{"text", genText},
	{"zeros", genZeros},
	{"tar", genTar},
	{"realtar", genRealTar},
}

// genRealTar is a tar of real files: the start of Go's source tree.
func genRealTar(n int, _ int64) []byte {
	var b bytes.Buffer
	if err := writeTarOf(&b, int64(n), runtimeGOROOT()+"/src"); err != nil || b.Len() == 0 {
		return genTar(n, 1) // no Go tree here: fall back to a generated tar
	}
	return b.Bytes()
}

func goGzip(tb testing.TB, data []byte, level int) []byte {
	var b bytes.Buffer
	zw, err := gzip.NewWriterLevel(&b, level)
	if err != nil {
		tb.Fatal(err)
	}
	zw.Name = "name.txt"
	zw.Comment = "a comment"
	zw.Extra = []byte("extra field")
	zw.Write(data)
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

// toolGzip compresses data with an installed binary, skipping loudly if
// the binary is missing.
func toolGzip(tb testing.TB, data []byte, name string, args ...string) []byte {
	tb.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		tb.Skipf("SKIP: %s not installed: %v", name, err)
	}
	cmd := exec.Command(path, append(args, "-c")...)
	cmd.Stdin = bytes.NewReader(data)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		tb.Fatalf("%s %v: %v: %s", name, args, err, errb.Bytes())
	}
	return out.Bytes()
}

// compressors produce gzip streams of data in the ways layers are made.
var compressors = []struct {
	name string
	gz   func(testing.TB, []byte) []byte
}{
	{"go-1", func(tb testing.TB, d []byte) []byte { return goGzip(tb, d, 1) }},
	{"go-6", func(tb testing.TB, d []byte) []byte { return goGzip(tb, d, 6) }},
	{"go-9", func(tb testing.TB, d []byte) []byte { return goGzip(tb, d, 9) }},
	{"go-huffman", func(tb testing.TB, d []byte) []byte { return goGzip(tb, d, gzip.HuffmanOnly) }},
	{"go-stored", func(tb testing.TB, d []byte) []byte { return goGzip(tb, d, gzip.NoCompression) }},
	{"gzip-1", func(tb testing.TB, d []byte) []byte { return toolGzip(tb, d, "gzip", "-1") }},
	{"gzip-9", func(tb testing.TB, d []byte) []byte { return toolGzip(tb, d, "gzip", "-9") }},
	{"pigz", func(tb testing.TB, d []byte) []byte { return toolGzip(tb, d, "pigz", "-6", "-b", "128") }},
	{"pigz-i", func(tb testing.TB, d []byte) []byte { return toolGzip(tb, d, "pigz", "-i", "-b", "128") }},
	{"multi-member", func(tb testing.TB, d []byte) []byte {
		// Members of uneven sizes from different compressors, including an
		// empty one, as cat a.gz b.gz produces.
		var b bytes.Buffer
		cuts := []int{0, len(d) / 7, len(d) / 7, len(d) / 2, len(d) * 5 / 6, len(d)}
		for i := 0; i+1 < len(cuts); i++ {
			part := d[cuts[i]:cuts[i+1]]
			if i%2 == 0 {
				b.Write(goGzip(tb, part, 6))
			} else {
				b.Write(goGzip(tb, part, 1))
			}
		}
		return b.Bytes()
	}},
}

func newStdGzip(data []byte) (*gzip.Reader, error) { return gzip.NewReader(bytes.NewReader(data)) }

// newPlainGzip writes data as a gzip member with no optional header fields.
func newPlainGzip(w *bytes.Buffer, data []byte) {
	zw := gzip.NewWriter(w)
	zw.Write(data)
	zw.Close()
}

// mustGzipOrNil is a compress/gzip reader of data, or a reader that fails.
func mustGzipOrNil(data []byte) io.Reader {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return iotest.ErrReader(err)
	}
	return zr
}
