package tarindex

import (
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/layoutfs/layoutfs/internal/binfmt"
	"maps"
	"slices"
	"unsafe"
)

// The cache's body encoding of an Index: compact, and fast to load, since
// a warm mount is mostly this. Integers are varints; each name is stored
// as the length of the prefix it shares with the previous name plus the
// rest; offsets are deltas from the previous entry's. Decoded names all
// share one backing string, so a loaded index costs one allocation for
// names and none per entry beyond its slot.
//
//	uvarint Size, uvarint total name bytes, uvarint #warnings+1 (0: nil), warnings
//	uvarint #entries+1 (0: nil), then per entry:
//	  uvarint shared prefix, uvarint suffix length, suffix
//	  byte Type, byte flags (1 sparse, 2 linkname, 4 device, 8 xattrs)
//	  varint Mode, Uid, Gid, Size, ModTime, Offset-previous Offset, Header-Offset
//	  [uvarint len, Linkname] [varint Devmajor, Devminor]
//	  [uvarint #xattrs, then key and value strings, keys sorted]
const (
	flagSparse = 1 << iota
	flagLink
	flagDev
	flagXattrs
)

// entryFields is how many fields Entry has; TestCodecCoversEntry fails when
// one is added, so that the codec learns of it.
const entryFields = 14

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func encodeBody(ix *Index) []byte {
	total := 0
	for i := range ix.Entries {
		total += len(ix.Entries[i].Name)
	}
	b := make([]byte, 0, 64+len(ix.Entries)*24)
	b = binary.AppendUvarint(b, uint64(ix.Size))
	b = binary.AppendUvarint(b, uint64(total))
	b = appendLen(b, ix.Warnings == nil, len(ix.Warnings))
	for _, w := range ix.Warnings {
		b = appendString(b, w)
	}
	b = appendLen(b, ix.Entries == nil, len(ix.Entries))
	prev, prevOff := "", int64(0)
	for i := range ix.Entries {
		e := &ix.Entries[i]
		shared := 0
		for shared < len(prev) && shared < len(e.Name) && prev[shared] == e.Name[shared] {
			shared++
		}
		b = binary.AppendUvarint(b, uint64(shared))
		b = appendString(b, e.Name[shared:])
		prev = e.Name
		var flags byte
		if e.Sparse {
			flags |= flagSparse
		}
		if e.Linkname != "" {
			flags |= flagLink
		}
		if e.Devmajor != 0 || e.Devminor != 0 {
			flags |= flagDev
		}
		if len(e.Xattrs) > 0 {
			flags |= flagXattrs
		}
		b = append(b, e.Type, flags)
		b = binary.AppendVarint(b, e.Mode)
		b = binary.AppendVarint(b, int64(e.Uid))
		b = binary.AppendVarint(b, int64(e.Gid))
		b = binary.AppendVarint(b, e.Size)
		b = binary.AppendVarint(b, e.ModTime)
		b = binary.AppendVarint(b, e.Offset-prevOff)
		b = binary.AppendVarint(b, e.Header-e.Offset)
		prevOff = e.Offset
		if flags&flagLink != 0 {
			b = appendString(b, e.Linkname)
		}
		if flags&flagDev != 0 {
			b = binary.AppendVarint(b, e.Devmajor)
			b = binary.AppendVarint(b, e.Devminor)
		}
		if flags&flagXattrs != 0 {
			b = binary.AppendUvarint(b, uint64(len(e.Xattrs)))
			for _, k := range slices.Sorted(maps.Keys(e.Xattrs)) {
				b = appendString(b, k)
				b = appendString(b, e.Xattrs[k])
			}
		}
	}
	return b
}

// appendLen writes a slice's length, +1 so that 0 can mean nil: a loaded
// index is then DeepEqual to the stored one.
func appendLen(b []byte, isNil bool, n int) []byte {
	if isNil {
		return append(b, 0)
	}
	return binary.AppendUvarint(b, uint64(n)+1)
}

var errShort = binfmt.ErrShort

// decoder reads the body; binfmt.Decoder gives it its sticky error.
type decoder struct{ binfmt.Decoder }

// count reads a length that must fit in what is left, at min bytes each.
func (d *decoder) count(min int) int {
	v := d.Uvarint()
	if v > uint64(len(d.B)/min) {
		d.Err = errShort
		return 0
	}
	return int(v)
}

// length reads what appendLen wrote: ok is false for nil.
func (d *decoder) length(min int) (int, bool) {
	v := d.Uvarint()
	if v == 0 {
		return 0, false
	}
	if v-1 > uint64(len(d.B)/min) {
		d.Err = errShort
		return 0, false
	}
	return int(v - 1), true
}

func (d *decoder) byte1() byte {
	p := d.Bytes(1)
	if p == nil {
		return 0
	}
	return p[0]
}

func (d *decoder) string() string { return string(d.Bytes(d.count(1))) }

func decodeBody(body []byte) (*Index, error) {
	d := &decoder{binfmt.Decoder{B: body}}
	ix := &Index{Size: int64(d.Uvarint())}
	total := d.Uvarint()
	if total > 1<<40 {
		return nil, errShort
	}
	if n, ok := d.length(1); ok {
		ix.Warnings = make([]string, n)
		for i := range ix.Warnings {
			ix.Warnings[i] = d.string()
		}
	}
	n, ok := d.length(11)
	if d.Err != nil {
		return nil, d.Err
	}
	if ok {
		ix.Entries = make([]Entry, n)
	}
	// Every name goes into one buffer that is never written again once
	// a name is in it, so names can be strings over it without copies.
	names := make([]byte, 0, total)
	prevStart, prevLen, prevOff := 0, 0, int64(0)
	for i := range ix.Entries {
		e := &ix.Entries[i]
		shared := int(d.Uvarint())
		suffix := d.Bytes(d.count(1))
		if d.Err != nil {
			return nil, d.Err
		}
		if shared > prevLen || len(names)+shared+len(suffix) > cap(names) {
			return nil, fmt.Errorf("name of entry %d: %w", i, errShort)
		}
		start := len(names)
		names = append(names, names[prevStart:prevStart+shared]...)
		names = append(names, suffix...)
		if l := len(names) - start; l > 0 {
			e.Name = unsafe.String(&names[start], l)
		}
		prevStart, prevLen = start, len(names)-start
		e.Type = d.byte1()
		flags := d.byte1()
		e.Mode = d.Varint()
		e.Uid = int(d.Varint())
		e.Gid = int(d.Varint())
		e.Size = d.Varint()
		e.ModTime = d.Varint()
		e.Offset = prevOff + d.Varint()
		e.Header = e.Offset + d.Varint()
		prevOff = e.Offset
		e.Sparse = flags&flagSparse != 0
		if flags&flagLink != 0 {
			e.Linkname = d.string()
		}
		if flags&flagDev != 0 {
			e.Devmajor = d.Varint()
			e.Devminor = d.Varint()
		}
		if flags&flagXattrs != 0 {
			nx := d.count(2)
			e.Xattrs = make(map[string]string, nx)
			for range nx {
				k := d.string()
				e.Xattrs[k] = d.string()
			}
		}
		if d.Err != nil {
			return nil, d.Err
		}
	}
	if len(d.B) != 0 {
		return nil, errors.New("trailing bytes")
	}
	return ix, nil
}
