package tarindex

import (
	"archive/tar"
	"fmt"
	"reflect"
	"testing"
)

// TestCodecCoversEntry: the cache codec knows every field of Entry; a new
// field must be added to codec.go (and cacheVersion bumped) before this
// passes again.
func TestCodecCoversEntry(t *testing.T) {
	if n := reflect.TypeOf(Entry{}).NumField(); n != entryFields {
		t.Fatalf("Entry has %d fields, the cache codec knows %d: teach codec.go the new ones and bump cacheVersion", n, entryFields)
	}
}

// TestCodecTruncated: every prefix of a body fails to decode, never panics.
func TestCodecTruncated(t *testing.T) {
	body := encodeBody(synthIndex(50))
	for i := range body {
		if _, err := decodeBody(body[:i]); err == nil {
			t.Fatalf("prefix of %d bytes decodes", i)
		}
	}
	ix, err := decodeBody(body)
	if err != nil || !reflect.DeepEqual(ix, synthIndex(50)) {
		t.Fatalf("round trip: %v", err)
	}
}

func synthIndex(n int) *Index {
	ix := &Index{Size: int64(n) * 2048, Entries: make([]Entry, 0, n)}
	for i := range n {
		e := Entry{Name: fmt.Sprintf("usr/share/d%03d/f%07d.txt", i/40, i), Type: tar.TypeReg, Mode: 0o644, Size: int64(i % 5000), ModTime: 1.7e18, Offset: int64(i)*2048 + 512, Header: int64(i) * 2048}
		switch i % 100 {
		case 7:
			e.Type, e.Linkname, e.Size = tar.TypeSymlink, "../x", 0
		case 9:
			e.Xattrs = map[string]string{"user.a": "b"}
		}
		ix.Entries = append(ix.Entries, e)
	}
	return ix
}

// BenchmarkCacheLoad decodes a stored index of 10k, 100k and 1M entries,
// as a warm mount does per layer; gob (cache version 1) for comparison.
func BenchmarkCacheLoad(b *testing.B) {
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		ix := synthIndex(n)
		stored, _ := encodeIndex(ix)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.SetBytes(int64(len(stored)))
			for b.Loop() {
				if _, err := decodeIndex(stored); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(stored))/float64(n), "B/entry")
		})
	}
}

func BenchmarkCacheStore(b *testing.B) {
	ix := synthIndex(100_000)
	for b.Loop() {
		encodeIndex(ix)
	}
}
