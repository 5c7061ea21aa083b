package zran

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"
)

// BenchmarkBuild measures Build on the corpus and, in the same run, times
// gzip -dc on the same file. The two alternate, one run each per iteration,
// so that load from elsewhere hits both alike; x-gzip is the ratio of their
// best times (above 1: Build is faster).
func BenchmarkBuild(b *testing.B) {
	path := benchCorpus(b)
	size := corpusSize(b, path)
	b.SetBytes(size)
	bestBuild, bestGzip := time.Duration(1<<63-1), time.Duration(1<<63-1)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Build(f, io.Discard, Options{}); err != nil {
			b.Fatal(err)
		}
		f.Close()
		bestBuild = min(bestBuild, time.Since(start))
		b.StopTimer()
		bestGzip = min(bestGzip, timeGzipDC(b, path))
		b.StartTimer()
	}
	b.ReportMetric(float64(size)/bestBuild.Seconds()/1e6, "best-MB/s")
	b.ReportMetric(float64(size)/bestGzip.Seconds()/1e6, "gzip-best-MB/s")
	b.ReportMetric(bestGzip.Seconds()/bestBuild.Seconds(), "x-gzip")
}

// BenchmarkStdlibGzip is the compress/gzip reference on the same corpus.
func BenchmarkStdlibGzip(b *testing.B) {
	path := benchCorpus(b)
	b.SetBytes(corpusSize(b, path))
	for i := 0; i < b.N; i++ {
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		zr, err := gzip.NewReader(bufio.NewReaderSize(f, 256<<10))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, zr); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}

// timeGzipDC times gzip -dc path > /dev/null.
func timeGzipDC(b *testing.B, path string) time.Duration {
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer devnull.Close()
	cmd := exec.Command("gzip", "-dc", path)
	cmd.Stdout = devnull
	start := time.Now()
	if err := cmd.Run(); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

var corpusSizes = map[string]int64{}

// corpusSize is the uncompressed size of a gzip file, from a Build pass.
func corpusSize(tb testing.TB, path string) int64 {
	if n, ok := corpusSizes[path]; ok {
		return n
	}
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	n, err := io.Copy(io.Discard, mustGzip(tb, f))
	if err != nil {
		tb.Fatal(err)
	}
	corpusSizes[path] = n
	return n
}

func mustGzip(tb testing.TB, r io.Reader) *gzip.Reader {
	zr, err := gzip.NewReader(bufio.NewReader(r))
	if err != nil {
		tb.Fatal(err)
	}
	return zr
}

// BenchmarkRandomRead4K reads 4 KiB at random offsets of the corpus through
// a warm index at the default span and reports the median latency and the
// index size relative to the uncompressed size.
func BenchmarkRandomRead4K(b *testing.B) {
	path := benchCorpus(b)
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	ix, err := Build(f, io.Discard, Options{})
	if err != nil {
		b.Fatal(err)
	}
	enc, err := ix.MarshalBinary()
	if err != nil {
		b.Fatal(err)
	}
	r := ix.ReaderAt(f)
	rng := rand.New(rand.NewSource(1))
	p := make([]byte, 4096)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		off := rng.Int63n(ix.Size - int64(len(p)))
		start := time.Now()
		if _, err := r.ReadAt(p, off); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "median-ms")
	b.ReportMetric(float64(lat[len(lat)*9/10].Microseconds())/1000, "p90-ms")
	b.ReportMetric(100*float64(len(enc))/float64(ix.Size), "index-%")
}

// BenchmarkInflateMemory measures Build on the corpus held in memory, which
// isolates the inflater from file I/O for profiling.
func BenchmarkInflateMemory(b *testing.B) {
	gz, err := os.ReadFile(benchCorpus(b))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(corpusSize(b, benchCorpus(b)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Build(bytes.NewReader(gz), io.Discard, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSequentialRead reads the corpus front to back in 128 KiB reads,
// as cat through the mount does, with a warm index.
func BenchmarkSequentialRead(b *testing.B) {
	path := benchCorpus(b)
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	ix, err := Build(f, io.Discard, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(ix.Size)
	p := make([]byte, 128<<10)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := ix.ReaderAt(f)
		for off := int64(0); off < ix.Size; off += int64(len(p)) {
			if _, err := r.ReadAt(p, off); err != nil && err != io.EOF {
				b.Fatal(err)
			}
		}
	}
}
