package tarindex_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/layoutfs/layoutfs/tarindex"
)

// TestBuildOffsets indexes archives in every format and reads each entry's
// bytes back through Entry.Reader, comparing with what archive/tar reads.
func TestBuildOffsets(t *testing.T) {
	long := strings.Repeat("long-directory-name/", 8) + "file.txt" // > 100 bytes: needs PAX or GNU
	files := []file{
		dir("d/"),
		reg("d/empty", ""),
		reg("d/one", "x"),
		reg("d/511", strings.Repeat("a", 511)),
		reg("d/512", strings.Repeat("b", 512)),
		reg("d/513", strings.Repeat("c", 513)),
		reg("d/big", strings.Repeat("0123456789", 700)),
		symlink("d/link", "one"),
		hardlink("d/hard", "d/one"),
		reg(long, "content of the long name"),
		reg("last", "the end"),
	}
	for _, format := range []tar.Format{tar.FormatUnknown, tar.FormatPAX, tar.FormatGNU} {
		t.Run(format.String(), func(t *testing.T) {
			fs := files
			if format == tar.FormatUnknown {
				fs = fs[:len(fs)-2] // USTAR cannot hold the long name
				fs = append(fs, files[len(files)-1])
			}
			b := writeTar(t, format, true, fs...)
			ix := build(t, b)
			std := readStd(t, b)
			if len(ix.Entries) != len(std) {
				t.Fatalf("%d entries, archive/tar reads %d", len(ix.Entries), len(std))
			}
			if len(ix.Warnings) != 0 {
				t.Errorf("warnings: %q", ix.Warnings)
			}
			for i := range ix.Entries {
				e := &ix.Entries[i]
				s := std[i]
				if want := strings.TrimSuffix(s.hdr.Name, "/"); e.Name != want {
					t.Errorf("entry %d: name %q, want %q", i, e.Name, want)
				}
				if e.Type != s.hdr.Typeflag {
					t.Errorf("%s: type %q, want %q", e.Name, e.Type, s.hdr.Typeflag)
				}
				if e.Mode != s.hdr.Mode || !e.Time().Equal(s.hdr.ModTime) {
					t.Errorf("%s: mode %o mtime %v, want %o %v", e.Name, e.Mode, e.Time(), s.hdr.Mode, s.hdr.ModTime)
				}
				if e.Type == tar.TypeReg {
					if e.Size != int64(len(s.data)) {
						t.Errorf("%s: size %d, want %d", e.Name, e.Size, len(s.data))
					}
					if got := readEntry(t, e, bytes.NewReader(b)); !bytes.Equal(got, s.data) {
						t.Errorf("%s: read %q..., want %q...", e.Name, head(got), head(s.data))
					}
				} else if e.Size != 0 {
					t.Errorf("%s: non-regular entry has size %d", e.Name, e.Size)
				}
				// Header is where the entry's first header block starts:
				// archive/tar reads the same entry from there.
				tr := tar.NewReader(io.NewSectionReader(bytes.NewReader(b), e.Header, int64(len(b))-e.Header))
				h, err := tr.Next()
				if err != nil || h.Name != s.hdr.Name {
					t.Errorf("%s: re-reading from Header %d: %v %v", e.Name, e.Header, h, err)
				}
			}
			if ix.Entries[len(ix.Entries)-1].Name != "last" {
				t.Errorf("last entry is %q", ix.Entries[len(ix.Entries)-1].Name)
			}
			if ix.Size > int64(len(b)) || ix.Size < int64(len(b))-10240 {
				t.Errorf("Size %d for a %d byte archive", ix.Size, len(b))
			}
		})
	}
}

func head(b []byte) []byte { return b[:min(len(b), 20)] }

// TestBuildLongNames: PAX and GNU long names and link targets are folded
// into the entry.
func TestBuildLongNames(t *testing.T) {
	longName := strings.Repeat("n", 150) + "/" + strings.Repeat("m", 120)
	longTarget := strings.Repeat("t", 200)
	for _, format := range []tar.Format{tar.FormatPAX, tar.FormatGNU} {
		t.Run(format.String(), func(t *testing.T) {
			b := writeTar(t, format, true,
				reg(longName, "long"),
				symlink("sym", longTarget),
				hardlink("./"+longName+"-hard", "./"+longName),
			)
			ix := build(t, b)
			if len(ix.Entries) != 3 {
				t.Fatalf("entries: %+v", ix.Entries)
			}
			if e := ix.Entries[0]; e.Name != longName || string(readEntry(t, &e, bytes.NewReader(b))) != "long" {
				t.Errorf("long name: %q", e.Name)
			}
			if e := ix.Entries[1]; e.Linkname != longTarget || e.Type != tar.TypeSymlink {
				t.Errorf("long link: %q %q", e.Linkname, e.Type)
			}
			if e := ix.Entries[2]; e.Name != longName+"-hard" || e.Linkname != longName {
				t.Errorf("long hard link: %q -> %q", e.Name, e.Linkname)
			}
		})
	}
}

// TestBuildXattrs: PAX SCHILY.xattr.* records become Xattrs, other PAX
// records do not.
func TestBuildXattrs(t *testing.T) {
	f := reg("f", "data")
	f.hdr.PAXRecords = map[string]string{
		"SCHILY.xattr.user.foo":            "bar",
		"SCHILY.xattr.security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00",
		"LIBARCHIVE.creationtime":          "1700000000",
	}
	g := reg("g", "no xattrs")
	b := writeTar(t, tar.FormatPAX, true, f, g)
	ix := build(t, b)
	want := map[string]string{"user.foo": "bar", "security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00"}
	if !reflect.DeepEqual(ix.Entries[0].Xattrs, want) {
		t.Errorf("xattrs %q, want %q", ix.Entries[0].Xattrs, want)
	}
	if ix.Entries[1].Xattrs != nil {
		t.Errorf("g has xattrs %q", ix.Entries[1].Xattrs)
	}
	if got := readEntry(t, &ix.Entries[0], bytes.NewReader(b)); string(got) != "data" {
		t.Errorf("data after PAX header: %q", got)
	}
}

// TestBuildNames: ./ and / prefixes and trailing slashes are cleaned;
// climbing names are skipped with a warning and the rest is indexed.
func TestBuildNames(t *testing.T) {
	b := writeTar(t, tar.FormatPAX, true,
		dir("./"),
		dir("./etc/"),
		reg("./etc/passwd", "root"),
		reg("/abs/file", "abs"),
		dir("usr//lib/"),
		reg("usr/./lib/x", "x"),
		reg("../escape", "bad"),
		reg("a/../../escape2", "bad"),
		reg("a/../inside", "bad too: refused though it stays inside"),
		hardlink("./etc/hard", "/etc/passwd"),
		hardlink("etc/hard2", "./etc/./passwd"),
		hardlink("evil", "../../etc/shadow"),
		hardlink("self", "."),
		symlink("sym", "../../anything"), // symlink targets are kept verbatim
		reg("tail", "still indexed"),
	)
	ix := build(t, b)
	var names []string
	for _, e := range ix.Entries {
		names = append(names, e.Name+"->"+e.Linkname)
	}
	want := []string{"->", "etc->", "etc/passwd->", "abs/file->", "usr/lib->", "usr/lib/x->",
		"etc/hard->etc/passwd", "etc/hard2->etc/passwd", "sym->../../anything", "tail->"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("names\n got %q\nwant %q", names, want)
	}
	if len(ix.Warnings) != 5 {
		t.Errorf("want 5 warnings, got %q", ix.Warnings)
	}
	for _, w := range ix.Warnings {
		if !strings.Contains(w, "unsafe path") {
			t.Errorf("warning %q", w)
		}
	}
	for i := range ix.Entries {
		if e := &ix.Entries[i]; e.Name == "tail" && string(readEntry(t, e, bytes.NewReader(b))) != "still indexed" {
			t.Errorf("tail reads wrong")
		}
	}
}

func TestCleanName(t *testing.T) {
	for in, want := range map[string]string{
		"":             "",
		".":            "",
		"./":           "",
		"/":            "",
		"a":            "a",
		"./a/b/":       "a/b",
		"/a//b/./c":    "a/b/c",
		"...":          "...",
		"a/..b/c..":    "a/..b/c..",
		".wh..wh..opq": ".wh..wh..opq",
	} {
		got, err := tarindex.CleanName(in)
		if err != nil || got != want {
			t.Errorf("CleanName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"..", "../a", "a/..", "a/../b", "/..", "a\x00b", "\x00"} {
		if got, err := tarindex.CleanName(in); !errors.Is(err, tarindex.ErrUnsafePath) {
			t.Errorf("CleanName(%q) = %q, %v; want ErrUnsafePath", in, got, err)
		}
	}
}

// TestBuildNULName: a PAX path holding NUL is refused by archive/tar: an
// error, never a panic or a name with NUL in it.
func TestBuildNULName(t *testing.T) {
	// archive/tar's writer refuses such a record, so build one by hand.
	rec := "path=a\x00b\n"
	rec = itoa(len(rec)+3) + " " + rec
	pax := ustarBlock("PaxHeaders/a", 'x', int64(len(rec)))
	var b bytes.Buffer
	b.Write(pax)
	b.WriteString(rec)
	b.Write(make([]byte, 512-len(rec)))
	b.Write(ustarBlock("a", '0', 0))
	b.Write(make([]byte, 1024))
	ix, err := tarindex.Build(context.Background(), bytes.NewReader(b.Bytes()))
	if err == nil {
		for _, e := range ix.Entries {
			if strings.IndexByte(e.Name, 0) >= 0 {
				t.Fatalf("entry with NUL in name: %q", e.Name)
			}
		}
		return
	}
	mustErrIs(t, err, tarindex.ErrHeader)
}

func itoa(n int) string { return strconv.Itoa(n) }

// ustarBlock is a hand-made USTAR header block with a valid checksum.
func ustarBlock(name string, typ byte, size int64) []byte {
	b := make([]byte, 512)
	copy(b[0:100], name)
	copy(b[100:108], "0000644\x00")
	copy(b[108:116], "0000000\x00")
	copy(b[116:124], "0000000\x00")
	copy(b[124:136], octal(size, 12))
	copy(b[136:148], "14400000000\x00")
	b[156] = typ
	copy(b[257:263], "ustar\x00")
	copy(b[263:265], "00")
	tarindex.SetChecksum(b)
	return b
}

func octal(n int64, width int) string { return fmt.Sprintf("%0*o\x00", width-1, n) }

// TestBuildNoEOFBlocks: an archive that just stops after its last entry's
// data is read whole.
func TestBuildNoEOFBlocks(t *testing.T) {
	files := []file{reg("a", "alpha"), dir("d/"), reg("d/b", strings.Repeat("b", 1000))}
	full := writeTar(t, tar.FormatUnknown, true, files...)
	cut := writeTar(t, tar.FormatUnknown, false, files...)
	if len(cut) >= len(full) || len(cut)%512 != 0 {
		t.Fatalf("cut %d full %d", len(cut), len(full))
	}
	a, b := build(t, full), build(t, cut)
	if !reflect.DeepEqual(a.Entries, b.Entries) {
		t.Errorf("entries differ:\n%+v\n%+v", a.Entries, b.Entries)
	}
	if b.Size != int64(len(cut)) {
		t.Errorf("Size %d, want %d", b.Size, len(cut))
	}
	if got := readEntry(t, &b.Entries[2], bytes.NewReader(cut)); string(got) != strings.Repeat("b", 1000) {
		t.Errorf("last entry reads %q", head(got))
	}
}

// TestBuildTruncated: an archive cut inside a header or inside an entry's
// data is an error wrapping ErrHeader, through a seeker or a plain stream.
func TestBuildTruncated(t *testing.T) {
	full := writeTar(t, tar.FormatUnknown, true, reg("a", "alpha"), reg("b", strings.Repeat("b", 3000)), reg("c", "c"))
	for _, cut := range []int{100, 512 + 3, 1536 + 1000, 1536 + 2999, 4608 + 100} {
		b := full[:cut]
		for name, r := range map[string]io.Reader{
			"seeker": io.NewSectionReader(bytes.NewReader(b), 0, int64(len(b))),
			"stream": io.MultiReader(bytes.NewReader(b)),
		} {
			ix, err := tarindex.Build(context.Background(), r)
			if err == nil {
				t.Errorf("cut at %d (%s): no error, %d entries", cut, name, len(ix.Entries))
				continue
			}
			mustErrIs(t, err, tarindex.ErrHeader)
		}
	}
}

func TestBuildEmpty(t *testing.T) {
	for name, b := range map[string][]byte{
		"nothing":    nil,
		"eof blocks": make([]byte, 1024),
		"tar -cf":    make([]byte, 10240),
	} {
		ix, err := tarindex.Build(context.Background(), bytes.NewReader(b))
		if err != nil || len(ix.Entries) != 0 || len(ix.Warnings) != 0 {
			t.Errorf("%s: %+v %v", name, ix, err)
		}
	}
}

// TestBuildGarbage: input that is not a tar is an error, never a panic.
func TestBuildGarbage(t *testing.T) {
	rnd := rand.New(rand.NewSource(1))
	inputs := [][]byte{
		[]byte("not a tar at all"),
		[]byte(strings.Repeat("{\"json\": true}\n", 100)),
		bytes.Repeat([]byte{0xff}, 2048),
	}
	for i := 0; i < 50; i++ {
		b := make([]byte, 512*(1+rnd.Intn(8)))
		rnd.Read(b)
		inputs = append(inputs, b)
	}
	// A valid header followed by a corrupted one.
	good := writeTar(t, tar.FormatUnknown, true, reg("a", "a"), reg("b", "b"))
	bad := bytes.Clone(good)
	bad[1024+10] ^= 0x55
	inputs = append(inputs, bad)
	for i, b := range inputs {
		_, err := tarindex.Build(context.Background(), bytes.NewReader(b))
		if err == nil {
			t.Errorf("input %d: no error", i)
			continue
		}
		mustErrIs(t, err, tarindex.ErrHeader)
	}
}

// TestBuildFuzzedHeaders flips bytes of a valid archive: Build may fail
// but must not panic, and what it returns must be within the archive.
func TestBuildFuzzedHeaders(t *testing.T) {
	good := writeTar(t, tar.FormatPAX, true, reg("a", "alpha"), reg(strings.Repeat("x", 120), "long"), symlink("l", "a"), reg("b", "beta"))
	rnd := rand.New(rand.NewSource(2))
	for i := 0; i < 500; i++ {
		b := bytes.Clone(good)
		for j := 0; j < 3; j++ {
			b[rnd.Intn(len(b))] = byte(rnd.Intn(256))
		}
		ix, err := tarindex.Build(context.Background(), bytes.NewReader(b))
		if err != nil {
			continue
		}
		for _, e := range ix.Entries {
			if e.Offset < 0 || (!e.Sparse && e.Offset+e.Size > ix.Size) {
				t.Errorf("entry %q at %d+%d beyond %d", e.Name, e.Offset, e.Size, ix.Size)
			}
		}
	}
}

// TestBuildStreamEqualsSeeker: a reader that cannot seek gives the same
// index as a SectionReader.
func TestBuildStreamEqualsSeeker(t *testing.T) {
	for _, format := range []tar.Format{tar.FormatPAX, tar.FormatGNU} {
		f := reg("x", "xattr")
		if format == tar.FormatPAX {
			f.hdr.PAXRecords = map[string]string{"SCHILY.xattr.user.a": "1"}
		}
		b := writeTar(t, format, true, dir("d"), reg("d/a", strings.Repeat("a", 5000)), f,
			reg(strings.Repeat("long/", 30)+"name", "n"), hardlink("h", "d/a"), reg("../bad", "b"), reg("z", ""))
		seek, err := tarindex.Build(context.Background(), io.NewSectionReader(bytes.NewReader(b), 0, int64(len(b))))
		if err != nil {
			t.Fatal(err)
		}
		stream, err := tarindex.Build(context.Background(), io.MultiReader(bytes.NewReader(b)))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(seek, stream) {
			t.Errorf("%v: seeker and stream differ:\n%+v\n%+v", format, seek, stream)
		}
	}
}

// cancelAfter cancels a context once n bytes were read through it.
type cancelAfter struct {
	r      io.Reader
	n      int
	cancel func()
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n -= n
	if c.n <= 0 {
		c.cancel()
	}
	return n, err
}

func TestBuildCancel(t *testing.T) {
	var files []file
	for i := 0; i < 5000; i++ {
		files = append(files, reg("f"+itoa(i%1000)+"/x"+strings.Repeat("x", i%7), "d"))
	}
	b := writeTar(t, tar.FormatUnknown, true, files...)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := tarindex.Build(ctx, bytes.NewReader(b)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled before: %v", err)
	}

	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	_, err := tarindex.Build(ctx, &cancelAfter{r: bytes.NewReader(b), n: len(b) / 4, cancel: cancel})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled during: %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("slow to stop")
	}
}

// TestBuildSparse: GNU tar's old-GNU and PAX sparse files read back equal
// to the file they were made from, holes and all.
func TestBuildSparse(t *testing.T) {
	for _, format := range []string{"gnu", "posix"} {
		t.Run(format, func(t *testing.T) {
			d := t.TempDir()
			sparseFile(t, filepath.Join(d, "s"), 500000, "hello in the middle")
			writeTestFile(t, filepath.Join(d, "after"), "after the sparse file")
			gnuTar(t, d, "--sparse", "--format="+format, "-cf", "a.tar", "s", "after")
			b := readFile(t, filepath.Join(d, "a.tar"))
			want := readFile(t, filepath.Join(d, "s"))
			ix := build(t, b)
			if len(ix.Entries) != 2 {
				t.Fatalf("entries %+v warnings %q", ix.Entries, ix.Warnings)
			}
			s := &ix.Entries[0]
			if !s.Sparse || s.Name != "s" || s.Size != 1<<20 || s.Type != tar.TypeReg {
				t.Fatalf("sparse entry %+v", s)
			}
			if got := readEntry(t, s, bytes.NewReader(b)); !bytes.Equal(got, want) {
				t.Errorf("sparse content differs")
			}
			// Reads at an offset, across the data, and at the end.
			r := s.Reader(bytes.NewReader(b))
			p := make([]byte, 30)
			if n, err := r.ReadAt(p, 499995); n != 30 || err != nil || string(p) != "\x00\x00\x00\x00\x00hello in the middle\x00\x00\x00\x00\x00\x00" {
				t.Errorf("ReadAt middle: %d %v %q", n, err, p)
			}
			if n, err := r.ReadAt(p, 1<<20-10); n != 10 || err != io.EOF {
				t.Errorf("ReadAt end: %d %v", n, err)
			}
			if n, err := r.ReadAt(p, 1<<20); n != 0 || err != io.EOF {
				t.Errorf("ReadAt past end: %d %v", n, err)
			}
			if got := readEntry(t, &ix.Entries[1], bytes.NewReader(b)); string(got) != "after the sparse file" {
				t.Errorf("entry after a sparse one: %q", got)
			}
		})
	}
}

// TestOpenSparseGzip: a sparse file inside a gzip archive, indexed while
// streaming, reads back through the checkpoints.
func TestOpenSparseGzip(t *testing.T) {
	d := t.TempDir()
	sparseFile(t, filepath.Join(d, "s"), 300000, "sparse data")
	writeTestFile(t, filepath.Join(d, "a"), "plain file")
	gnuTar(t, d, "--sparse", "--format=posix", "-cf", "a.tar", "a", "s")
	plain := readFile(t, filepath.Join(d, "a.tar"))
	gz := gzipped(t, plain)
	a, err := tarindex.Open(context.Background(), bytes.NewReader(gz), int64(len(gz)), "k", tarindex.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Entries) != 2 || !a.Entries[1].Sparse {
		t.Fatalf("entries %+v", a.Entries)
	}
	if got := readEntry(t, &a.Entries[1], a.Data); !bytes.Equal(got, readFile(t, filepath.Join(d, "s"))) {
		t.Error("sparse content differs")
	}
	if got := readEntry(t, &a.Entries[0], a.Data); string(got) != "plain file" {
		t.Errorf("plain file %q", got)
	}
}
