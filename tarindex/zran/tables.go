package zran

// Deflate alphabet limits (RFC 1951 section 3.2.5 and 3.2.7).
const (
	maxCodeLen   = 15  // longest Huffman code
	numLitSyms   = 288 // literal/length alphabet including the two unused codes
	maxLitCodes  = 286 // HLIT may declare at most this many
	numDistSyms  = 32  // distance alphabet including the two unused codes
	maxDistCodes = 30  // HDIST may declare at most this many
	numClenSyms  = 19
	endOfBlock   = 256
	maxMatch     = 258
	windowSize   = 32 << 10
)

// Lookup-table geometry. A table is a root table indexed by the next rootBits
// input bits, followed by subtables for longer codes. The sizes bound the
// worst case for complete codes (zlib's "enough" utility gives 1332 for
// 10-bit litlen roots and 592 for 9-bit distance roots); rounding up to a
// power of two lets the hot loop mask indexes instead of bounds-checking.
const (
	litRootBits   = 10
	litTableSize  = 2048
	distRootBits  = 9
	distTableSize = 1024
	clenRootBits  = 7
	clenTableSize = 128
)

// A table entry packs everything the decoder needs into a uint32:
//
//	bits 0-3   code length in bits (for a subtable link: the root bits)
//	bits 4-7   extra bits that follow the code (for a link: subtable bits)
//	bits 8-11  kind flags below; none set means a length or distance code
//	bits 16-31 literal byte, length or distance base, or subtable offset
const (
	flagLiteral = 1 << 8
	flagEOB     = 1 << 9
	flagSub     = 1 << 10
	flagInvalid = 1 << 11
)

// clenOrder is the order in which code length code lengths are stored.
var clenOrder = [numClenSyms]uint8{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}

// Per-symbol entry payloads without the code length, filled by init.
var (
	litPayload  [numLitSyms]uint32
	distPayload [numDistSyms]uint32
	clenPayload [numClenSyms]uint32
)

func init() {
	for s := 0; s < 256; s++ {
		litPayload[s] = uint32(s)<<16 | flagLiteral
	}
	litPayload[endOfBlock] = flagEOB
	base := uint32(3)
	for i := uint32(0); i < 28; i++ {
		extra := uint32(0)
		if i >= 8 {
			extra = (i - 4) / 4
		}
		litPayload[257+i] = base<<16 | extra<<4
		base += 1 << extra
	}
	litPayload[285] = 258 << 16
	litPayload[286] = flagInvalid
	litPayload[287] = flagInvalid

	base = 1
	for i := uint32(0); i < maxDistCodes; i++ {
		extra := uint32(0)
		if i >= 4 {
			extra = (i - 2) / 2
		}
		distPayload[i] = base<<16 | extra<<4
		base += 1 << extra
	}
	distPayload[30] = flagInvalid
	distPayload[31] = flagInvalid

	for s := range clenPayload {
		clenPayload[s] = uint32(s) << 16
	}
	initFixed()
}
