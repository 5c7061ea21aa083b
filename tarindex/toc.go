package tarindex

import (
	"archive/tar"
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Layers in the eStargz and zstd:chunked formats carry their own table of
// contents (TOC): every entry's metadata, and for each regular file the
// compressed offsets of its chunks, each of which starts a gzip member
// (eStargz) or a zstd frame (zstd:chunked) of its own and so decompresses
// without the bytes before it. For such a layer Open builds the index from
// the TOC instead of a pass over the whole stream: the first mount reads the
// footer and the TOC, plus at most one chunk for eStargz (estargzTail).
//
// The archive is then served through a virtual address space: the regular
// files' contents laid end to end, in TOC order, with Entry.Offset (and
// Header) pointing into it. Archive.Data maps a range of it to the chunks
// that hold it. That space is not a tar stream: Archive.File reports no file
// and Archive.Compression is EStargz or ZstdChunked, so code that would copy
// raw tar ranges (rewriting a tarball) can tell and refuse.
//
// Trust: the TOC is believed, as stargz-snapshotter and containers/storage
// believe it. The blob's digest (checked by the caller: an archive built
// from a TOC says Verified false, so the caller hashes the compressed bytes,
// which is cheap next to inflating them) binds the TOC to the layer, but not
// to the tar stream inside it: a blob made to deceive can carry a TOC whose
// names, metadata or sizes differ from its tar headers, so that layoutfs
// shows another tree than a tool that extracts the tar (and than the diffID
// in the image config describes). What layoutfs does check: every chunk's
// digest (chunkDigest, or the file's digest for a file in one chunk) when the
// TOC gives one, on the first read of that chunk, failing the read with
// ErrTOCMismatch on a mismatch; chunks that decompress short; and the shape
// of the TOC itself (below). A TOC that is not well formed (bad JSON, offsets
// outside the blob, chunks that do not tile their file, unsafe names, sizes
// past the limits) is not used: the layer is indexed by a full pass instead,
// with a warning.
//
// eStargz TOCs keep modification times to the second (rounded), so an entry
// whose tar header has a finer one shows it rounded.

// The compressions of layers read through their table of contents; Detect
// never returns them, Open sets them on an Archive built from a TOC.
const (
	EStargz     Compression = Zstd + 1 + iota // gzip members with a stargz.index.json TOC
	ZstdChunked                               // zstd frames with a TOC in a skippable frame
)

// ErrTOCMismatch means the bytes of a layer read through its table of
// contents are not what the TOC says: a chunk does not match its digest, or
// its frame decompresses short or not at all.
var ErrTOCMismatch = errors.New("tarindex: layer data does not match its table of contents")

// errBadTOC marks a table of contents that cannot be used; Open then
// indexes the layer by a full pass.
var errBadTOC = errors.New("unusable table of contents")

// readFullAt fills p from off, as io.ReadFull does for a stream.
func readFullAt(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

func badTOC(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errBadTOC, fmt.Sprintf(format, args...))
}

// Bounds on what a TOC may make layoutfs do.
const (
	maxTOCCompressed = 256 << 20 // compressed TOC bytes read into memory
	maxTOCJSON       = 512 << 20 // uncompressed TOC JSON
	maxTOCEntries    = 8 << 20   // entries, chunks included
	maxTOCSize       = 1 << 50   // a file's size, a chunk's inner offset
	// gzip (deflate) expands at most 1032 to 1; zstd's raw RLE blocks,
	// a 4-byte block for up to 128 KiB, reach about 32768 to 1.
	gzipMaxRatio = 1032
	zstdMaxRatio = 32768
)

// Footers.
const (
	estargzFooterSize = 51 // gzip member with extra subfield 'S','G': "%016xSTARGZ"
	stargzFooterSize  = 47 // legacy stargz: the extra field is "%016xSTARGZ" alone
	zstdFooterOld     = 40 // zstd:chunked footer data before tar-split was added
	zstdFooterNew     = 64 // with the tar-split position
	skippableHeader   = 8  // zstd skippable frame: magic, uint32 LE length
	stargzTOCName     = "stargz.index.json"
)

var (
	skippableMagic = []byte{0x50, 0x2a, 0x4d, 0x18}
	// The footer magic; containers/storage writes "GNUlInUx", earlier
	// writers (skopeo 1.9, stargz-snapshotter) "GnUlInUx".
	zstdChunkedMagics = [][]byte{[]byte("GNUlInUx"), []byte("GnUlInUx")}
)

// tocFooter is what a footer says: where the TOC lies and where the
// compressed payload (the chunks) ends.
type tocFooter struct {
	comp       Compression // EStargz or ZstdChunked
	tocOff     int64       // the TOC's compressed bytes
	tocLen     int64
	tocRawLen  int64 // zstd:chunked: the uncompressed length; 0 unknown
	payloadEnd int64 // chunks lie before this
}

// readTOCFooter looks for an eStargz or zstd:chunked footer at the end of
// the blob. ok is false when there is none (an ordinary gzip or zstd
// stream); an error means one was found but is malformed.
func readTOCFooter(r io.ReaderAt, size int64, comp Compression) (f tocFooter, ok bool, err error) {
	const tailLen = zstdFooterNew + skippableHeader
	n := min(size, tailLen)
	tail := make([]byte, n)
	if err := readFullAt(r, tail, size-n); err != nil {
		return f, false, fmt.Errorf("read footer: %w", err)
	}
	switch comp {
	case Gzip:
		return estargzFooter(tail, size)
	case Zstd:
		return zstdChunkedFooter(tail, size)
	}
	return f, false, nil
}

func estargzFooter(tail []byte, size int64) (f tocFooter, ok bool, err error) {
	// The footer is an empty gzip member whose header carries the TOC's
	// offset in its extra field.
	parse := func(footerSize int) (string, bool) {
		if len(tail) < footerSize {
			return "", false
		}
		p := tail[len(tail)-footerSize:]
		if p[0] != 0x1f || p[1] != 0x8b || p[2] != 8 || p[3]&4 == 0 {
			return "", false
		}
		xlen := int(binary.LittleEndian.Uint16(p[10:12]))
		if 12+xlen > len(p) {
			return "", false
		}
		extra := p[12 : 12+xlen]
		switch footerSize {
		case estargzFooterSize:
			if xlen != 26 || extra[0] != 'S' || extra[1] != 'G' || binary.LittleEndian.Uint16(extra[2:4]) != 22 {
				return "", false
			}
			extra = extra[4:]
		case stargzFooterSize:
			if xlen != 22 {
				return "", false
			}
		}
		if string(extra[16:]) != "STARGZ" {
			return "", false
		}
		return string(extra[:16]), true
	}
	footerSize := estargzFooterSize
	hexOff, found := parse(estargzFooterSize)
	if !found {
		footerSize = stargzFooterSize
		hexOff, found = parse(stargzFooterSize)
	}
	if !found {
		return f, false, nil
	}
	off, perr := strconv.ParseInt(hexOff, 16, 64)
	end := size - int64(footerSize)
	if perr != nil || off < 0 || off >= end {
		return tocFooter{comp: EStargz}, true, badTOC("eStargz footer: TOC offset %q outside the %d-byte blob", hexOff, size)
	}
	return tocFooter{comp: EStargz, tocOff: off, tocLen: end - off, payloadEnd: off}, true, nil
}

func zstdChunkedFooter(tail []byte, size int64) (f tocFooter, ok bool, err error) {
	f.comp = ZstdChunked
	if len(tail) < zstdFooterOld || !slices.ContainsFunc(zstdChunkedMagics, func(m []byte) bool { return bytes.HasSuffix(tail, m) }) {
		return f, false, nil
	}
	// The footer data sits in a skippable frame of its own; which length
	// that frame declares tells the two layouts apart.
	var data []byte
	for _, n := range []int{zstdFooterNew, zstdFooterOld} {
		if len(tail) < n+skippableHeader {
			continue
		}
		h := tail[len(tail)-n-skippableHeader:]
		if bytes.Equal(h[:4], skippableMagic) && binary.LittleEndian.Uint32(h[4:8]) == uint32(n) {
			data = h[skippableHeader:]
			break
		}
	}
	if data == nil {
		return f, true, badTOC("zstd:chunked footer: no skippable frame around it")
	}
	u := func(i int) uint64 { return binary.LittleEndian.Uint64(data[8*i:]) }
	off, clen, rawLen, typ := u(0), u(1), u(2), u(3)
	footerStart := uint64(size) - uint64(len(data)) - skippableHeader
	switch {
	case typ != 1:
		return f, true, badTOC("zstd:chunked footer: manifest type %d", typ)
	case off < skippableHeader || off > footerStart || clen > footerStart-off:
		return f, true, badTOC("zstd:chunked footer: TOC at %d+%d outside the %d-byte blob", off, clen, size)
	case clen > maxTOCCompressed || rawLen > maxTOCJSON:
		return f, true, badTOC("zstd:chunked footer: TOC of %d bytes (%d uncompressed) is past the limit", clen, rawLen)
	}
	end := int64(off) - skippableHeader
	if len(data) == zstdFooterNew {
		// The tar-split frame follows the TOC; should a writer put it
		// first, the chunks end before it.
		if ts := u(4); ts >= skippableHeader && ts < off {
			end = int64(ts) - skippableHeader
		}
	}
	return tocFooter{comp: ZstdChunked, tocOff: int64(off), tocLen: int64(clen), tocRawLen: int64(rawLen), payloadEnd: end}, true, nil
}

// tocJSON is the TOC of both formats: containers/storage took the eStargz
// (CRFS) entry for zstd:chunked and added endOffset and chunkType.
type tocJSON struct {
	Version int         `json:"version"`
	Entries []tocRecord `json:"entries"`
}

type tocRecord struct {
	Name        string            `json:"name"`
	Type        string            `json:"type"`
	Size        int64             `json:"size"`
	ModTime     string            `json:"modtime"`
	LinkName    string            `json:"linkName"`
	Mode        int64             `json:"mode"`
	UID         int               `json:"uid"`
	GID         int               `json:"gid"`
	DevMajor    int64             `json:"devMajor"`
	DevMinor    int64             `json:"devMinor"`
	Xattrs      map[string]string `json:"xattrs"` // values base64
	Digest      string            `json:"digest"`
	Offset      int64             `json:"offset"`
	EndOffset   int64             `json:"endOffset"`
	InnerOffset int64             `json:"innerOffset"`
	ChunkOffset int64             `json:"chunkOffset"`
	ChunkSize   int64             `json:"chunkSize"`
	ChunkDigest string            `json:"chunkDigest"`
	ChunkType   string            `json:"chunkType"`
}

// tocTable maps the virtual address space of a TOC-built archive to the
// compressed blob. Chunks tile [0, Size) in order.
type tocTable struct {
	Comp     Compression // EStargz or ZstdChunked
	BlobSize int64       // the blob it was built for
	Size     int64       // of the virtual space
	Frames   []tocFrame
	Chunks   []tocChunk
}

// tocFrame is a unit that decompresses on its own: a gzip member, or a zstd
// frame (a few, should a writer have split one chunk).
type tocFrame struct {
	Off, End int64 // compressed bytes
	Need     int64 // uncompressed bytes its chunks need from its start
}

type tocChunk struct {
	VOff      int64 // in the virtual space
	Size      int64
	Frame     int32
	Inner     int64 // offset in the frame's uncompressed bytes
	HasDigest bool
	Digest    [sha256.Size]byte
}

// tocFile is the regular file whose chunks are being read.
type tocFile struct {
	name    string
	size    int64
	covered int64
	endHint int64 // zstd:chunked endOffset: where its last chunk ends
}

// tocBuilder turns TOC records into an Index and a tocTable.
type tocBuilder struct {
	foot    tocFooter
	ix      *Index
	t       *tocTable
	frames  map[int64]int32
	endHint map[int32]int64
	file    *tocFile
	limit   int64
	// tail: the chunk ending last in the frame at the highest offset, and
	// the tar padding after it, for tocTail.
	lastChunk int
	lastPad   int64
}

// tocTail is where, in the last frame of the payload, the tar headers after
// the last chunk start: frame Off, and the offset in its uncompressed bytes.
type tocTail struct {
	Off, Headers int64
}

// buildTOC checks the TOC and builds the index and the table from it.
func buildTOC(ctx context.Context, toc *tocJSON, foot tocFooter, blobSize int64) (*Index, *tocTable, tocTail, error) {
	var tail tocTail
	if toc.Version != 1 {
		return nil, nil, tail, badTOC("version %d", toc.Version)
	}
	if len(toc.Entries) > maxTOCEntries {
		return nil, nil, tail, badTOC("%d entries", len(toc.Entries))
	}
	b := &tocBuilder{
		foot:      foot,
		ix:        &Index{},
		t:         &tocTable{Comp: foot.comp, BlobSize: blobSize},
		frames:    map[int64]int32{},
		endHint:   map[int32]int64{},
		limit:     limitOf(ctx),
		lastChunk: -1,
	}
	for i := range toc.Entries {
		if i%4096 == 0 && ctx.Err() != nil {
			return nil, nil, tail, ctx.Err()
		}
		if err := b.add(&toc.Entries[i]); err != nil {
			return nil, nil, tail, fmt.Errorf("entry %d: %w", i, err)
		}
	}
	if err := b.finishFile(); err != nil {
		return nil, nil, tail, err
	}
	if err := b.bound(); err != nil {
		return nil, nil, tail, err
	}
	b.ix.Size = b.t.Size
	if b.lastChunk >= 0 {
		c := &b.t.Chunks[b.lastChunk]
		tail = tocTail{Off: b.t.Frames[c.Frame].Off, Headers: c.Inner + c.Size + b.lastPad}
	}
	return b.ix, b.t, tail, nil
}

var tocTypes = map[string]byte{
	"reg": tar.TypeReg, "dir": tar.TypeDir, "symlink": tar.TypeSymlink, "hardlink": tar.TypeLink,
	"char": tar.TypeChar, "block": tar.TypeBlock, "fifo": tar.TypeFifo,
}

func (b *tocBuilder) add(r *tocRecord) error {
	if r.Type == "chunk" {
		if b.file == nil {
			return badTOC("chunk of no regular file")
		}
		if r.Name != "" {
			if name, err := CleanName(r.Name); err != nil || name != b.file.name {
				return badTOC("chunk of %q follows %q", r.Name, b.file.name)
			}
		}
		return b.chunk(r)
	}
	if err := b.finishFile(); err != nil {
		return err
	}
	typ, ok := tocTypes[r.Type]
	if !ok {
		return badTOC("%q has type %q", r.Name, r.Type)
	}
	name, err := CleanName(r.Name)
	if err != nil {
		return badTOC("%v", err)
	}
	e := Entry{Name: name, Type: typ, Mode: r.Mode, Uid: r.UID, Gid: r.GID, Devmajor: r.DevMajor, Devminor: r.DevMinor, Linkname: r.LinkName}
	if e.ModTime, err = tocTime(r.ModTime); err != nil {
		return badTOC("%q: modtime %q", r.Name, r.ModTime)
	}
	if typ == tar.TypeLink {
		target, err := CleanName(r.LinkName)
		if err != nil || target == "" {
			return badTOC("hard link %q -> %q", r.Name, r.LinkName)
		}
		e.Linkname = target
	}
	for k, v := range r.Xattrs {
		val, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			return badTOC("%q: xattr %q is not base64", r.Name, k)
		}
		if e.Xattrs == nil {
			e.Xattrs = make(map[string]string, len(r.Xattrs))
		}
		e.Xattrs[k] = string(val)
	}
	e.Offset = b.t.Size
	e.Header = e.Offset
	if typ == tar.TypeReg {
		if r.Size < 0 || r.Size > maxTOCSize {
			return badTOC("%q has size %d", r.Name, r.Size)
		}
		e.Size = r.Size
		if bound := cmp.Or(b.limit, maxTOCSize); e.Size > bound-b.t.Size {
			return badTOC("files add up past %d bytes", bound)
		}
		b.t.Size += e.Size
		if e.Size > 0 {
			b.file = &tocFile{name: name, size: e.Size, endHint: r.EndOffset}
			if r.ChunkOffset != 0 {
				return badTOC("%q starts at chunk offset %d", r.Name, r.ChunkOffset)
			}
			if err := b.chunk(r); err != nil {
				return err
			}
		}
	}
	b.ix.Entries = append(b.ix.Entries, e)
	return nil
}

// tocTime parses a TOC modtime: RFC 3339, to the second (eStargz) or the
// nanosecond (zstd:chunked); empty or the zero time means the epoch, as a
// tar header of mtime 0 reads.
func tocTime(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return 0, err
	}
	if t.IsZero() {
		return 0, nil
	}
	return t.UnixNano(), nil
}

// chunk adds the next chunk of the current file.
func (b *tocBuilder) chunk(r *tocRecord) error {
	f := b.file
	size := r.ChunkSize
	if size == 0 {
		size = f.size - r.ChunkOffset // "to the end of the file"
	}
	switch {
	case r.ChunkOffset != f.covered:
		return badTOC("%q: chunk at %d, expected %d", f.name, r.ChunkOffset, f.covered)
	case size <= 0 || size > f.size-f.covered:
		return badTOC("%q: chunk of %d bytes at %d in a file of %d", f.name, size, r.ChunkOffset, f.size)
	case r.Offset < 0 || r.Offset >= b.foot.payloadEnd:
		return badTOC("%q: chunk at compressed offset %d, outside [0, %d)", f.name, r.Offset, b.foot.payloadEnd)
	case r.InnerOffset < 0 || r.InnerOffset > maxTOCSize:
		return badTOC("%q: inner offset %d", f.name, r.InnerOffset)
	case b.foot.comp == ZstdChunked && r.InnerOffset != 0:
		return badTOC("%q: inner offset in a zstd:chunked layer", f.name)
	}
	c := tocChunk{VOff: b.t.Size - f.size + r.ChunkOffset, Size: size, Inner: r.InnerOffset}
	d := r.ChunkDigest
	if d == "" && size == f.size {
		d = r.Digest // one chunk: the file's digest is the chunk's
	}
	if d != "" {
		sum, err := parseSHA256(d)
		if err != nil {
			return badTOC("%q: %v", f.name, err)
		}
		c.HasDigest, c.Digest = true, sum
	}
	fi, ok := b.frames[r.Offset]
	if !ok {
		if len(b.t.Frames) >= maxTOCEntries {
			return badTOC("too many frames")
		}
		fi = int32(len(b.t.Frames))
		b.frames[r.Offset] = fi
		b.t.Frames = append(b.t.Frames, tocFrame{Off: r.Offset})
	}
	c.Frame = fi
	fr := &b.t.Frames[fi]
	end := c.Inner + c.Size
	fr.Need = max(fr.Need, end)
	f.covered += size
	if f.covered == f.size && f.endHint > r.Offset {
		b.endHint[fi] = f.endHint
	}
	b.t.Chunks = append(b.t.Chunks, c)
	// Remember the chunk ending last in the frame at the highest offset:
	// what follows it in that frame is tar padding and headers.
	if last := b.lastChunk; last < 0 || fr.Off > b.t.Frames[b.t.Chunks[last].Frame].Off ||
		(fr.Off == b.t.Frames[b.t.Chunks[last].Frame].Off && end >= b.t.Chunks[last].Inner+b.t.Chunks[last].Size) {
		b.lastChunk = len(b.t.Chunks) - 1
		b.lastPad = 0
		if f.covered == f.size {
			b.lastPad = blockAlign(f.size) - f.size
		}
	}
	return nil
}

func (b *tocBuilder) finishFile() error {
	if f := b.file; f != nil {
		b.file = nil
		if f.covered != f.size {
			return badTOC("%q: chunks cover %d of %d bytes", f.name, f.covered, f.size)
		}
	}
	return nil
}

// bound sets each frame's compressed end: the next frame's start, or the
// end of the payload (or, in zstd:chunked, the file's endOffset), and
// checks that a frame can hold what its chunks claim.
func (b *tocBuilder) bound() error {
	order := make([]int32, len(b.t.Frames))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(x, y int32) int { return int(b.t.Frames[x].Off - b.t.Frames[y].Off) })
	ratio := int64(gzipMaxRatio)
	if b.foot.comp == ZstdChunked {
		ratio = zstdMaxRatio
	}
	for k, fi := range order {
		fr := &b.t.Frames[fi]
		fr.End = b.foot.payloadEnd
		if k+1 < len(order) {
			fr.End = b.t.Frames[order[k+1]].Off
		}
		if h, ok := b.endHint[fi]; ok && h < fr.End {
			fr.End = h
		}
		if n := fr.End - fr.Off; n < maxTOCSize/ratio && fr.Need > n*ratio+1<<17 {
			return badTOC("%d bytes claimed from a %d-byte frame at %d", fr.Need, n, fr.Off)
		}
	}
	return nil
}

func parseSHA256(d string) ([sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	hexSum, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(hexSum) != 2*sha256.Size {
		return sum, fmt.Errorf("digest %q is not sha256", d)
	}
	if _, err := hex.Decode(sum[:], []byte(hexSum)); err != nil {
		return sum, fmt.Errorf("digest %q: %v", d, err)
	}
	return sum, nil
}

// parseTOCJSON decodes TOC JSON, refusing trailing data.
func parseTOCJSON(b []byte) (*tocJSON, error) {
	var toc tocJSON
	if err := json.Unmarshal(b, &toc); err != nil {
		return nil, badTOC("JSON: %v", err)
	}
	return &toc, nil
}

// loadTOC reads and checks the TOC of a blob with footer foot, and builds
// the archive's index and table from it.
func loadTOC(ctx context.Context, r io.ReaderAt, size int64, foot tocFooter) (*Index, *tocTable, error) {
	if foot.tocLen > maxTOCCompressed {
		return nil, nil, badTOC("TOC of %d compressed bytes is past the limit", foot.tocLen)
	}
	raw := make([]byte, foot.tocLen)
	if err := readFullAt(r, raw, foot.tocOff); err != nil {
		return nil, nil, fmt.Errorf("read TOC: %w", err)
	}
	var (
		toc  *tocJSON
		hdr  *tar.Header
		data int64 // where the TOC JSON starts in the TOC's tar (eStargz)
		sum  [sha256.Size]byte
		err  error
	)
	switch foot.comp {
	case EStargz:
		toc, hdr, data, sum, err = estargzTOC(raw)
	case ZstdChunked:
		toc, err = zstdChunkedTOC(raw, foot.tocRawLen)
	}
	if err != nil {
		return nil, nil, err
	}
	ix, t, tail, err := buildTOC(ctx, toc, foot, size)
	if err != nil {
		return nil, nil, err
	}
	if foot.comp == EStargz {
		visible, err := estargzTail(ctx, r, foot, tail)
		if err != nil {
			return nil, nil, err
		}
		if visible {
			// The tar stream does not end before the TOC's own tar, so a
			// full pass (and docker, and containerd) sees stargz.index.json
			// as the layer's last file: so does the index.
			if err := addTOCEntry(ix, t, hdr, foot, data, sum); err != nil {
				return nil, nil, err
			}
		}
	}
	return ix, t, nil
}

// estargzTOC reads the TOC's gzip member: a tar holding stargz.index.json.
func estargzTOC(raw []byte) (toc *tocJSON, hdr *tar.Header, data int64, sum [sha256.Size]byte, err error) {
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, nil, 0, sum, badTOC("eStargz TOC: %v", err)
	}
	zr.Multistream(false)
	c := &counter{r: zr}
	tr := tar.NewReader(c)
	hdr, err = tr.Next()
	if err != nil {
		return nil, nil, 0, sum, badTOC("eStargz TOC: %v", err)
	}
	if hdr.Name != stargzTOCName || hdr.Typeflag != tar.TypeReg {
		return nil, nil, 0, sum, badTOC("eStargz TOC: first entry is %q", hdr.Name)
	}
	if hdr.Size > maxTOCJSON {
		return nil, nil, 0, sum, badTOC("eStargz TOC: %d bytes of JSON is past the limit", hdr.Size)
	}
	data = c.pos
	b := make([]byte, hdr.Size)
	if _, err := io.ReadFull(tr, b); err != nil {
		return nil, nil, 0, sum, badTOC("eStargz TOC: %v", err)
	}
	toc, err = parseTOCJSON(b)
	return toc, hdr, data, sha256.Sum256(b), err
}

var tocZstd = func() *zstd.Decoder {
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(128<<20), zstd.WithDecoderMaxMemory(maxTOCJSON))
	if err != nil {
		panic(err)
	}
	return d
}()

// zstdChunkedTOC decompresses the TOC of a zstd:chunked layer.
func zstdChunkedTOC(raw []byte, rawLen int64) (*tocJSON, error) {
	b, err := tocZstd.DecodeAll(raw, make([]byte, 0, min(rawLen, maxTOCJSON)))
	if err != nil {
		return nil, badTOC("zstd:chunked TOC: %v", err)
	}
	if rawLen != 0 && int64(len(b)) != rawLen {
		return nil, badTOC("zstd:chunked TOC: %d bytes, the footer says %d", len(b), rawLen)
	}
	return parseTOCJSON(b)
}

// estargzTail tells whether the tar stream before the TOC's member goes on
// into the TOC's tar (no end-of-archive blocks before it, as older stargz
// writers leave it) so that stargz.index.json is an entry of the layer.
// It decompresses the last frame of the payload, which holds the end of the
// last chunk and the headers after it: a chunk at most.
func estargzTail(ctx context.Context, r io.ReaderAt, foot tocFooter, tail tocTail) (bool, error) {
	start, headers := tail.Off, tail.Headers
	limit := limitOf(ctx)
	zr, err := gzip.NewReader(io.NewSectionReader(r, start, foot.tocOff-start))
	if err != nil {
		return false, badTOC("eStargz: last member at %d: %v", start, err)
	}
	// The last 1024 bytes, for the end-of-archive blocks.
	last := make([]byte, 0, 2048)
	var n int64
	buf := make([]byte, 64<<10)
	for {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		m, err := zr.Read(buf)
		n += int64(m)
		if limit > 0 && n > limit {
			return false, badTOC("eStargz: the last member at %d expands past %d bytes", start, limit)
		}
		last = append(last, buf[max(0, m-1024):m]...)
		if len(last) > 1024 {
			last = append(last[:0], last[len(last)-1024:]...)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return false, badTOC("eStargz: last member at %d: %v", start, err)
		}
	}
	if n < headers {
		return false, badTOC("eStargz: last member at %d holds %d bytes, its chunks need %d", start, n, headers)
	}
	if n-headers < 1024 {
		return true, nil
	}
	return !allZero(last), nil
}

// addTOCEntry adds stargz.index.json as the last entry, read from the TOC's
// own member.
func addTOCEntry(ix *Index, t *tocTable, hdr *tar.Header, foot tocFooter, data int64, sum [sha256.Size]byte) error {
	e, err := entryOf(hdr)
	if err != nil {
		return badTOC("%v", err)
	}
	e.Offset, e.Header = t.Size, t.Size
	if e.Size > 0 {
		t.Frames = append(t.Frames, tocFrame{Off: foot.tocOff, End: foot.tocOff + foot.tocLen, Need: data + e.Size})
		t.Chunks = append(t.Chunks, tocChunk{VOff: t.Size, Size: e.Size, Frame: int32(len(t.Frames) - 1), Inner: data, HasDigest: true, Digest: sum})
		t.Size += e.Size
	}
	ix.Entries = append(ix.Entries, e)
	ix.Size = t.Size
	return nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
