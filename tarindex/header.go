package tarindex

import (
	"archive/tar"
	"bytes"
	"math"
	"strconv"
	"strings"
	"time"
)

// plainHeader parses the common header block by itself: one block, USTAR
// or GNU magic, a regular file, directory, symlink or hard link, octal
// numbers, a valid checksum. It reports false for anything else (an
// extended header, a long name, a sparse file, a device, base-256 numbers,
// a zero block, V7 or star headers, a bad field), which Build then hands
// to archive/tar. The result is the tar.Header archive/tar would return
// for the same block, in the fields entryOf reads; FuzzPlainHeader holds
// the two to that.
//
// archive/tar's Next costs about 2.4 us and six allocations a header
// (Uname, Gname and the Header among them, and a rune-by-rune ASCII scan of
// the block); on 100k-entry layers that was a fifth of a cold mount's CPU
// on a machine whose two cores are busy hashing.
func plainHeader(b *[blockSize]byte) (tar.Header, bool) {
	switch b[156] { // typeflag
	case tar.TypeReg, tar.TypeRegA, tar.TypeDir, tar.TypeSymlink, tar.TypeLink:
	default:
		return tar.Header{}, false
	}
	gnu := false
	switch {
	case string(b[257:263]) == "ustar\x00" && string(b[263:265]) == "00":
		if string(b[508:512]) == "tar\x00" {
			return tar.Header{}, false // star: its prefix field is shorter
		}
	case string(b[257:263]) == "ustar " && string(b[263:265]) == " \x00":
		gnu = true
	default:
		return tar.Header{}, false
	}
	if !checksumOK(b) {
		return tar.Header{}, false
	}
	var p octalFields
	h := tar.Header{
		Mode:     p.parse(b[100:108]),
		Uid:      int(p.parse(b[108:116])),
		Gid:      int(p.parse(b[116:124])),
		Size:     p.parse(b[124:136]),
		ModTime:  time.Unix(p.parse(b[136:148]), 0),
		Devmajor: p.parse(b[329:337]),
		Devminor: p.parse(b[337:345]),
	}
	if p.bad {
		return tar.Header{}, false
	}
	if gnu && (b[345] != 0 || b[357] != 0) {
		// GNU access and change times: archive/tar parses them, and falls
		// back to reading them as a USTAR prefix when they do not parse.
		return tar.Header{}, false
	}
	h.Typeflag = b[156]
	h.Name = cstring(b[0:100])
	h.Linkname = cstring(b[157:257])
	if !gnu {
		if prefix := cstring(b[345:500]); prefix != "" {
			h.Name = prefix + "/" + h.Name
		}
	}
	if h.Typeflag == tar.TypeRegA {
		// As archive/tar: old archives mark directories by a slash.
		h.Typeflag = tar.TypeReg
		if strings.HasSuffix(h.Name, "/") {
			h.Typeflag = tar.TypeDir
		}
	}
	return h, true
}

// checksumOK reports whether the block's checksum field matches the sum of
// its bytes with the field taken as spaces, unsigned or signed (old tars
// summed signed chars; archive/tar accepts both).
func checksumOK(b *[blockSize]byte) bool {
	want, ok := octal(b[148:156])
	if !ok {
		return false
	}
	var unsigned, signed int64
	for _, c := range b {
		unsigned += int64(c)
		signed += int64(int8(c))
	}
	for _, c := range b[148:156] {
		unsigned += ' ' - int64(c)
		signed += ' ' - int64(int8(c))
	}
	return want == unsigned || want == signed
}

// octalFields parses numeric fields one after another and remembers
// whether any was not plain octal.
type octalFields struct{ bad bool }

func (p *octalFields) parse(f []byte) int64 {
	n, ok := octal(f)
	p.bad = p.bad || !ok
	return n
}

// octal parses a numeric field as archive/tar does for octal ones: spaces
// and NULs trimmed from both ends, the rest up to the first NUL. A field
// in base-256 (high bit set) or that archive/tar would refuse is not ok.
func octal(f []byte) (int64, bool) {
	if len(f) > 0 && f[0]&0x80 != 0 {
		return 0, false
	}
	s := cstring(bytes.Trim(f, " \x00"))
	if s == "" {
		return 0, true
	}
	x, err := strconv.ParseUint(s, 8, 64)
	if err != nil || x > math.MaxInt64 {
		return 0, false
	}
	return int64(x), true
}

// cstring is the bytes up to the first NUL, as a string.
func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// blockSize is the size of a tar block.
const blockSize = 512
