package tarindex

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/layoutfs/layoutfs/internal/binfmt"
)

// openTOC opens a gzip or zstd layer through the table of contents it
// carries (toc.go). It returns a nil archive when the layer has none, or
// one that cannot be used: warn then says why, for the caller to index the
// layer by a full pass and note it. Either outcome is kept in the cache,
// so a warm open reads neither the TOC nor the blob.
func (o Options) openTOC(ctx context.Context, r io.ReaderAt, size int64, key string, comp Compression) (a *Archive, warn string, err error) {
	if comp != Gzip && comp != Zstd {
		return nil, "", nil
	}
	if b, ok := o.Cache.Load("toc", key); ok {
		ix, t, reason, err := decodeTOC(b, size)
		if err == nil {
			if t == nil {
				return nil, reason, nil
			}
			return tocArchive(ix, t, r), "", nil
		}
		o.Cache.Remove("toc", key)
	}
	if o.Cache.has("index", key) {
		// Indexed by a full pass before (by a layoutfs that did not read
		// TOCs, or because this one was unusable): that index holds, and
		// a warm open reads nothing.
		return nil, "", nil
	}
	foot, found, err := readTOCFooter(r, size, comp)
	if !found {
		return nil, "", err
	}
	var (
		ix *Index
		t  *tocTable
	)
	if err == nil {
		ix, t, err = loadTOC(ctx, r, size, foot)
	}
	if err != nil {
		if !errors.Is(err, errBadTOC) {
			return nil, "", err // I/O, cancellation: no verdict on the TOC
		}
		warn = fmt.Sprintf("%s: %v; indexed by a full pass instead", foot.comp, err)
		if err := o.Cache.Store("toc", key, encodeTOC(nil, nil, warn)); err != nil {
			o.Cache.warn(err)
		}
		return nil, warn, nil
	}
	// The TOC is believed: check the blob before what it says is cached
	// under its digest, where it would be served for the genuine blob.
	if o.Verify != nil {
		if err := o.verifyWhole(ctx, r, size); err != nil {
			return nil, "", err
		}
	}
	o.stored(ix, o.Cache.Store("toc", key, encodeTOC(ix, t, "")))
	a = tocArchive(ix, t, r)
	a.Verified = o.Verify != nil
	return a, "", nil
}

func (c *Cache) has(kind, key string) bool {
	if c == nil {
		return false
	}
	_, err := os.Stat(c.path(kind, key))
	return err == nil
}

func tocArchive(ix *Index, t *tocTable, r io.ReaderAt) *Archive {
	return &Archive{Index: ix, Data: newTOCReader(t, r), Compression: t.Comp}
}

// The cache entry "toc/<key>" holds, sealed (magic, version, sha256):
//
//	byte Comp (0: the TOC is unusable, then a uvarint-prefixed reason)
//	uvarint len, the Index body (codec.go)
//	uvarint BlobSize, Size, #frames, #chunks
//	per frame: uvarint Off, End-Off, Need
//	per chunk: uvarint Size, Frame, Inner, byte has digest, [32]byte digest if so
//
// Chunk offsets in the virtual space are the running sum of their sizes.
const tocCacheVersion = 2 // 2: stored only once the blob matched its digest

var tocCacheMagic = []byte("layoutfs-toc\n")

func encodeTOC(ix *Index, t *tocTable, reason string) []byte {
	if t == nil {
		return binfmt.Seal(tocCacheMagic, tocCacheVersion, appendString([]byte{0}, reason))
	}
	body := encodeBody(ix)
	b := make([]byte, 0, 64+len(body)+len(t.Frames)*12+len(t.Chunks)*44)
	b = append(b, byte(t.Comp))
	b = appendString(b, string(body))
	for _, v := range []int64{t.BlobSize, t.Size, int64(len(t.Frames)), int64(len(t.Chunks))} {
		b = binary.AppendUvarint(b, uint64(v))
	}
	for _, f := range t.Frames {
		b = binary.AppendUvarint(b, uint64(f.Off))
		b = binary.AppendUvarint(b, uint64(f.End-f.Off))
		b = binary.AppendUvarint(b, uint64(f.Need))
	}
	for _, c := range t.Chunks {
		b = binary.AppendUvarint(b, uint64(c.Size))
		b = binary.AppendUvarint(b, uint64(c.Frame))
		b = binary.AppendUvarint(b, uint64(c.Inner))
		if c.HasDigest {
			b = append(b, 1)
			b = append(b, c.Digest[:]...)
		} else {
			b = append(b, 0)
		}
	}
	return binfmt.Seal(tocCacheMagic, tocCacheVersion, b)
}

// decodeTOC reads what encodeTOC wrote, for a blob of blobSize bytes. A
// nil table with a nil error is a stored verdict that the TOC is
// unusable, with its reason. Everything the reader relies on is checked
// again: a cache entry is never trusted.
func decodeTOC(b []byte, blobSize int64) (*Index, *tocTable, string, error) {
	body, ok := binfmt.Unseal(tocCacheMagic, tocCacheVersion, b)
	if !ok || len(body) == 0 {
		return nil, nil, "", errBadCache
	}
	d := &decoder{binfmt.Decoder{B: body[1:]}}
	comp := Compression(body[0])
	if comp == 0 {
		reason := d.string()
		if d.Err != nil || len(d.B) != 0 {
			return nil, nil, "", errBadCache
		}
		return nil, nil, reason, nil
	}
	if comp != EStargz && comp != ZstdChunked {
		return nil, nil, "", errBadCache
	}
	ix, err := decodeBody(d.Bytes(d.count(1)))
	if d.Err != nil || err != nil {
		return nil, nil, "", errBadCache
	}
	t := &tocTable{Comp: comp, BlobSize: int64(d.Uvarint()), Size: int64(d.Uvarint())}
	nf, nc := d.count(3), d.count(4)
	if d.Err != nil || t.BlobSize != blobSize || t.Size < 0 || t.Size > maxTOCSize {
		return nil, nil, "", errBadCache
	}
	if nf > 0 {
		t.Frames = make([]tocFrame, nf)
	}
	for i := range t.Frames {
		f := &t.Frames[i]
		f.Off = int64(d.Uvarint())
		n := int64(d.Uvarint())
		f.End = f.Off + n
		f.Need = int64(d.Uvarint())
		if f.Off < 0 || n <= 0 || n > blobSize-f.Off || f.Need < 0 || f.Need > maxTOCSize {
			return nil, nil, "", errBadCache
		}
	}
	if nc > 0 {
		t.Chunks = make([]tocChunk, nc)
	}
	var voff int64
	for i := range t.Chunks {
		c := &t.Chunks[i]
		c.VOff = voff
		c.Size = int64(d.Uvarint())
		fi := d.Uvarint()
		c.Inner = int64(d.Uvarint())
		if has := d.byte1(); has == 1 {
			c.HasDigest = true
			copy(c.Digest[:], d.Bytes(sha256.Size))
		} else if has != 0 {
			return nil, nil, "", errBadCache
		}
		if d.Err != nil || fi >= uint64(nf) || c.Size <= 0 || c.Size > t.Size-voff ||
			c.Inner < 0 || c.Inner > t.Frames[fi].Need-c.Size {
			return nil, nil, "", errBadCache
		}
		c.Frame = int32(fi)
		voff += c.Size
	}
	if d.Err != nil || len(d.B) != 0 || voff != t.Size || ix.Size != t.Size {
		return nil, nil, "", errBadCache
	}
	for i := range ix.Entries {
		e := &ix.Entries[i]
		if e.Sparse || e.Offset < 0 || e.Size < 0 || e.Offset > t.Size || e.Size > t.Size-e.Offset {
			return nil, nil, "", errBadCache
		}
	}
	return ix, t, "", nil
}
