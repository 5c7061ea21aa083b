package zstdframes

import (
	"bytes"
	"math/rand"
	"slices"
	"testing"
	"time"
)

// BenchmarkRandomRead4K reads 4 KiB at random offsets of a 64 MiB stream of
// 1 MiB frames, as zstd:chunked-style layers are cut, with a warm index.
func BenchmarkRandomRead4K(b *testing.B) {
	data := genData(64<<20, 1)
	z := framesOf(b, data, 1<<20)
	ix, err := Build(bytes.NewReader(z), int64(len(z)))
	if err != nil {
		b.Fatal(err)
	}
	r := ix.ReaderAt(bytes.NewReader(z))
	defer r.Close()
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
}
