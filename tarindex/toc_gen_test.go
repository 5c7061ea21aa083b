package tarindex

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// This file writes eStargz and zstd:chunked layers for the tests, the way
// stargz-snapshotter's estargz writer and containers/storage's chunked
// compressor lay them out (learnt from their formats, written anew).

// tfile is one tar entry to write.
type tfile struct {
	hdr  tar.Header
	body []byte
}

var tocEpoch = time.Unix(1700000000, 0)

func treg(name string, body []byte) tfile {
	return tfile{tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body)), ModTime: tocEpoch, Uid: 1000, Gid: 1000}, body}
}

// tocSample is a layer with every kind of entry a TOC can describe, and
// files of sizes around the tar block, the chunk sizes used below, and
// runs of zeros.
func tocSample() []tfile {
	text := func(n int, seed string) []byte {
		var b bytes.Buffer
		for i := 0; b.Len() < n; i++ {
			fmt.Fprintf(&b, "%s line %d of some text that compresses\n", seed, i)
		}
		return b.Bytes()[:n]
	}
	x := treg("etc/xattr", []byte("with xattrs"))
	x.hdr.PAXRecords = map[string]string{"SCHILY.xattr.user.k": "v", "SCHILY.xattr.security.capability": "\x01\x00\x00\x02\xff"}
	x.hdr.Format = tar.FormatPAX
	suid := treg("usr/bin/su", text(3000, "su"))
	suid.hdr.Mode = 0o4755
	long := treg("usr/share/"+strings.Repeat("very-long-directory-name/", 8)+"file.txt", text(700, "long"))
	zeros := treg("var/holes", append(append(text(5000, "before"), make([]byte, 40000)...), text(3000, "after")...))
	big := treg("opt/big.bin", text(300<<10, "big"))
	dirMode := tfile{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "etc/", Mode: 0o40755, ModTime: tocEpoch}}
	return []tfile{
		{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "./", Mode: 0o755, ModTime: tocEpoch}},
		dirMode,
		treg("etc/os-release", []byte("ID=test\n")),
		x,
		treg("empty", nil),
		treg("b511", text(511, "b")), treg("b512", text(512, "c")), treg("b513", text(513, "d")),
		suid, long, zeros, big,
		{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: "etc/link", Linkname: "../os-release", Mode: 0o777, ModTime: tocEpoch}},
		{hdr: tar.Header{Typeflag: tar.TypeLink, Name: "etc/hard", Linkname: "./etc/os-release", Mode: 0o644, ModTime: tocEpoch}},
		{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3, ModTime: tocEpoch}},
		{hdr: tar.Header{Typeflag: tar.TypeBlock, Name: "dev/sda", Mode: 0o660, Devmajor: 8, Devminor: 0, ModTime: tocEpoch, Gid: 6}},
		{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "run/fifo", Mode: 0o600, ModTime: tocEpoch}},
		{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "etc/.wh.gone", Mode: 0o600, ModTime: tocEpoch}},
		treg("etc/os-release", []byte("ID=again\n")), // a duplicate: the later one wins in the tree
		treg("last", text(2000, "last")),
	}
}

// tocRec is a TOC entry as the writers emit it (omitempty), for both
// formats.
type tocRec struct {
	Name        string            `json:"name,omitempty"`
	Type        string            `json:"type"`
	Size        int64             `json:"size,omitempty"`
	ModTime     string            `json:"modtime,omitempty"`
	LinkName    string            `json:"linkName,omitempty"`
	Mode        int64             `json:"mode,omitempty"`
	UID         int               `json:"uid,omitempty"`
	GID         int               `json:"gid,omitempty"`
	DevMajor    int64             `json:"devMajor,omitempty"`
	DevMinor    int64             `json:"devMinor,omitempty"`
	Xattrs      map[string]string `json:"xattrs,omitempty"`
	Digest      string            `json:"digest,omitempty"`
	Offset      int64             `json:"offset,omitempty"`
	EndOffset   int64             `json:"endOffset,omitempty"`
	InnerOffset int64             `json:"innerOffset,omitempty"`
	ChunkOffset int64             `json:"chunkOffset,omitempty"`
	ChunkSize   int64             `json:"chunkSize,omitempty"`
	ChunkDigest string            `json:"chunkDigest,omitempty"`
	ChunkType   string            `json:"chunkType,omitempty"`
}

type tocDoc struct {
	Version int      `json:"version"`
	Entries []tocRec `json:"entries"`
}

var tarTypeNames = map[byte]string{tar.TypeReg: "reg", tar.TypeDir: "dir", tar.TypeSymlink: "symlink", tar.TypeLink: "hardlink", tar.TypeChar: "char", tar.TypeBlock: "block", tar.TypeFifo: "fifo"}

func recOf(h *tar.Header, nanos bool) tocRec {
	r := tocRec{Name: h.Name, Type: tarTypeNames[h.Typeflag], Mode: h.Mode, UID: h.Uid, GID: h.Gid, LinkName: h.Linkname}
	if h.Typeflag == tar.TypeReg {
		r.Size = h.Size
	}
	if h.Typeflag == tar.TypeChar || h.Typeflag == tar.TypeBlock {
		r.DevMajor, r.DevMinor = h.Devmajor, h.Devminor
	}
	switch {
	case nanos:
		r.ModTime = h.ModTime.UTC().Format(time.RFC3339Nano)
	case !h.ModTime.IsZero() && h.ModTime.Unix() != 0:
		r.ModTime = h.ModTime.UTC().Round(time.Second).Format(time.RFC3339)
	}
	for k, v := range h.PAXRecords {
		if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
			if r.Xattrs == nil {
				r.Xattrs = map[string]string{}
			}
			r.Xattrs[name] = base64.StdEncoding.EncodeToString([]byte(v))
		}
	}
	return r
}

func sha(b []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(b)) }

func splitChunks(b []byte, size int) [][]byte {
	var out [][]byte
	for len(b) > size {
		out = append(out, b[:size])
		b = b[size:]
	}
	return append(out, b)
}

// switchWriter sends what a tar.Writer writes wherever w points now.
type switchWriter struct{ w io.Writer }

func (s *switchWriter) Write(p []byte) (int, error) { return s.w.Write(p) }

type estargzOpts struct {
	chunk  int   // file data per gzip member, at most; 0: 4 MiB
	group  int64 // start a new member for data only once the current one holds this much
	eof    bool  // end-of-archive blocks before the TOC, as estargz writes today
	legacy bool  // the 47-byte stargz footer
	// edit, when set, may change the TOC before it is written; json, when
	// set, replaces the TOC JSON.
	edit func(*tocDoc)
	json []byte
}

// makeEstargz writes files as an eStargz blob.
func makeEstargz(t testing.TB, files []tfile, o estargzOpts) []byte {
	t.Helper()
	if o.chunk == 0 {
		o.chunk = 4 << 20
	}
	var out bytes.Buffer
	var zw *gzip.Writer
	var memberStart, memberLen int64
	newMember := func() {
		if zw != nil {
			must(t, zw.Close())
		}
		zw, _ = gzip.NewWriterLevel(&out, gzip.BestSpeed)
		memberStart, memberLen = int64(out.Len()), 0
	}
	tw := tar.NewWriter(writerFunc(func(p []byte) (int, error) {
		memberLen += int64(len(p))
		return zw.Write(p)
	}))
	newMember()
	doc := tocDoc{Version: 1}
	for _, f := range files {
		h := f.hdr
		must(t, tw.WriteHeader(&h))
		r := recOf(&h, false)
		if h.Typeflag != tar.TypeReg || len(f.body) == 0 {
			doc.Entries = append(doc.Entries, r)
			continue
		}
		r.Digest = sha(f.body)
		var written int64
		for i, c := range splitChunks(f.body, o.chunk) {
			if i > 0 {
				r = tocRec{Name: h.Name, Type: "chunk", ChunkOffset: written}
			}
			if o.group == 0 || memberLen >= o.group {
				newMember()
			}
			r.Offset, r.InnerOffset = memberStart, memberLen
			if written+int64(len(c)) < int64(len(f.body)) {
				r.ChunkSize = int64(len(c)) // the last chunk runs to the end
			}
			r.ChunkDigest = sha(c)
			_, err := tw.Write(c)
			must(t, err)
			written += int64(len(c))
			doc.Entries = append(doc.Entries, r)
		}
	}
	if o.eof {
		must(t, tw.Close())
	} else {
		must(t, tw.Flush())
	}
	must(t, zw.Close())
	if o.edit != nil {
		o.edit(&doc)
	}
	js := o.json
	if js == nil {
		var err error
		js, err = json.MarshalIndent(doc, "", "\t")
		must(t, err)
	}
	return estargzWithTOC(t, out.Bytes(), js, o.legacy)
}

// estargzWithTOC appends the TOC member holding js, and the footer, to an
// eStargz payload.
func estargzWithTOC(t testing.TB, payload, js []byte, legacy bool) []byte {
	out := bytes.NewBuffer(bytes.Clone(payload))
	zw, _ := gzipWriters.Get().(*gzip.Writer)
	if zw == nil {
		zw, _ = gzip.NewWriterLevel(out, gzip.BestSpeed)
	} else {
		zw.Reset(out)
	}
	defer gzipWriters.Put(zw)
	ttw := tar.NewWriter(zw)
	must(t, ttw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: stargzTOCName, Size: int64(len(js))}))
	_, err := ttw.Write(js)
	must(t, err)
	must(t, ttw.Close())
	must(t, zw.Close())
	out.Write(estargzFooterBytes(t, int64(len(payload)), legacy))
	return out.Bytes()
}

type footerKey struct {
	off    int64
	legacy bool
}

var footers sync.Map // footerKey -> []byte, for FuzzTOC's speed

func estargzFooterBytes(t testing.TB, tocOff int64, legacy bool) []byte {
	if b, ok := footers.Load(footerKey{tocOff, legacy}); ok {
		return b.([]byte)
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.NoCompression)
	sub := fmt.Sprintf("%016xSTARGZ", tocOff)
	if legacy {
		zw.Header.Extra = []byte(sub)
	} else {
		zw.Header.Extra = append([]byte{'S', 'G', byte(len(sub)), 0}, sub...)
	}
	must(t, zw.Close())
	want := estargzFooterSize
	if legacy {
		want = stargzFooterSize
	}
	if buf.Len() != want {
		t.Fatalf("footer of %d bytes, want %d", buf.Len(), want)
	}
	footers.Store(footerKey{tocOff, legacy}, buf.Bytes())
	return buf.Bytes()
}

// Writers reused across calls, so that FuzzTOC spends its time on the TOC.
var (
	gzipWriters sync.Pool
	testZstd, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
)

type zstdChunkedOpts struct {
	chunk int  // file data per frame, at most
	old   bool // the 40-byte footer and "GnUlInUx" of skopeo 1.9, times to the second
	edit  func(*tocDoc)
	json  []byte
}

// makeZstdChunked writes files as a zstd:chunked blob: tar headers in
// frames of their own, each file's data in frames of at most o.chunk bytes
// (runs of zeros marked as such), then the TOC, a tar-split stand-in and
// the footer in skippable frames.
func makeZstdChunked(t testing.TB, files []tfile, o zstdChunkedOpts) []byte {
	t.Helper()
	enc := testZstd
	var err error
	var out, pending bytes.Buffer
	flush := func() {
		if pending.Len() > 0 {
			out.Write(enc.EncodeAll(pending.Bytes(), nil))
			pending.Reset()
		}
	}
	sw := &switchWriter{w: &pending}
	tw := tar.NewWriter(sw)
	doc := tocDoc{Version: 1}
	for _, f := range files {
		h := f.hdr
		must(t, tw.WriteHeader(&h))
		r := recOf(&h, !o.old)
		if h.Typeflag != tar.TypeReg || len(f.body) == 0 {
			doc.Entries = append(doc.Entries, r)
			continue
		}
		flush()
		r.Digest = sha(f.body)
		chunks := splitChunks(f.body, o.chunk)
		var recs []tocRec
		var written int64
		for i, c := range chunks {
			cr := r
			if i > 0 {
				cr = tocRec{Name: h.Name, Type: "chunk", ChunkOffset: written}
			}
			cr.Offset = int64(out.Len())
			if len(chunks) > 1 {
				cr.ChunkSize, cr.ChunkDigest = int64(len(c)), sha(c)
				if allZero(c) {
					cr.ChunkType = "zeros"
				}
			}
			var frame bytes.Buffer
			sw.w = &frame
			_, err := tw.Write(c)
			must(t, err)
			sw.w = &pending
			out.Write(enc.EncodeAll(frame.Bytes(), nil))
			written += int64(len(c))
			recs = append(recs, cr)
		}
		recs[0].EndOffset = int64(out.Len())
		doc.Entries = append(doc.Entries, recs...)
	}
	must(t, tw.Close())
	flush()
	if o.edit != nil {
		o.edit(&doc)
	}
	js := o.json
	if js == nil {
		js, err = json.Marshal(doc)
		must(t, err)
	}
	return zstdChunkedWithTOC(t, out.Bytes(), js, o.old)
}

// zstdChunkedWithTOC appends the TOC holding js, a tar-split stand-in and
// the footer, in skippable frames, to a zstd:chunked payload.
func zstdChunkedWithTOC(t testing.TB, payload, js []byte, old bool) []byte {
	enc := testZstd
	out := bytes.NewBuffer(bytes.Clone(payload))
	manifest := enc.EncodeAll(js, nil)
	skippable := func(b []byte) {
		out.Write(skippableMagic)
		out.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(b))))
		out.Write(b)
	}
	manifestOff := uint64(out.Len() + skippableHeader)
	skippable(manifest)
	footer := binary.LittleEndian.AppendUint64(nil, manifestOff)
	footer = binary.LittleEndian.AppendUint64(footer, uint64(len(manifest)))
	footer = binary.LittleEndian.AppendUint64(footer, uint64(len(js)))
	footer = binary.LittleEndian.AppendUint64(footer, 1)
	if old {
		footer = append(footer, "GnUlInUx"...)
	} else {
		tarSplit := enc.EncodeAll([]byte(`{"type":1}`), nil)
		tsOff := uint64(out.Len() + skippableHeader)
		skippable(tarSplit)
		footer = binary.LittleEndian.AppendUint64(footer, tsOff)
		footer = binary.LittleEndian.AppendUint64(footer, uint64(len(tarSplit)))
		footer = binary.LittleEndian.AppendUint64(footer, 10)
		footer = append(footer, "GNUlInUx"...)
	}
	skippable(footer)
	return out.Bytes()
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
