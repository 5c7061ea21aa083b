package zran

import (
	"fmt"
	"math/bits"
)

// buildTable fills table with the two-level lookup table of the canonical
// Huffman code in which symbol s has code length lens[s] and decodes to
// payload[s]. Like compress/flate it accepts only complete codes, the empty
// code, and the single one-bit code; lookups of unused codes yield
// flagInvalid entries.
func buildTable(table []uint32, rootBits uint, lens []uint8, payload []uint32) error {
	var count [maxCodeLen + 1]int
	for _, l := range lens {
		count[l]++
	}
	count[0] = 0
	maxLen := 0
	codes := 0
	for l := 1; l <= maxCodeLen; l++ {
		if count[l] > 0 {
			maxLen = l
		}
		codes += count[l]
	}

	root := table[:1<<rootBits]
	for i := range root {
		root[i] = flagInvalid
	}
	if maxLen == 0 {
		return nil
	}
	left := 1
	for l := 1; l <= maxCodeLen; l++ {
		left = left<<1 - count[l]
		if left < 0 {
			return fmt.Errorf("%w: over-subscribed Huffman code", ErrCorrupt)
		}
	}
	if left > 0 && !(maxLen == 1 && codes == 1) {
		return fmt.Errorf("%w: incomplete Huffman code", ErrCorrupt)
	}

	// Sort symbols by code length, then by symbol: canonical code order.
	var next [maxCodeLen + 1]int
	for l := 1; l < maxCodeLen; l++ {
		next[l+1] = next[l] + count[l]
	}
	var sorted [numLitSyms]uint16
	for s, l := range lens {
		if l != 0 {
			sorted[next[l]] = uint16(s)
			next[l]++
		}
	}

	remaining := count
	code := 0 // canonical code of the current symbol, first bit most significant
	subOff := 1 << rootBits
	curPrefix, subStart, subBits := -1, 0, uint(0)
	for i := 0; i < codes; i++ {
		s := sorted[i]
		l := uint(lens[s])
		// Deflate sends codes first bit first into the low end of the bit
		// buffer, so tables are indexed by the bit-reversed code.
		rev := int(bits.Reverse16(uint16(code)) >> (16 - l))
		if l <= rootBits {
			e := payload[s] | uint32(l)
			for j := rev; j < len(root); j += 1 << l {
				root[j] = e
			}
		} else {
			prefix := rev & (1<<rootBits - 1)
			if prefix != curPrefix {
				// Size the subtable to hold every remaining code sharing this
				// prefix: grow until the codes of the next lengths fill it.
				sb := l - rootBits
				room := 1 << sb
				for sb+rootBits < uint(maxLen) {
					room -= remaining[sb+rootBits]
					if room <= 0 {
						break
					}
					sb++
					room <<= 1
				}
				if subOff+1<<sb > len(table) {
					return fmt.Errorf("%w: Huffman table overflow", ErrCorrupt)
				}
				sub := table[subOff : subOff+1<<sb]
				for j := range sub {
					sub[j] = flagInvalid
				}
				root[prefix] = uint32(subOff)<<16 | flagSub | uint32(sb)<<4 | uint32(rootBits)
				curPrefix, subStart, subBits = prefix, subOff, sb
				subOff += 1 << sb
			}
			e := payload[s] | uint32(l-rootBits)
			for j := rev >> rootBits; j < 1<<subBits; j += 1 << (l - rootBits) {
				table[subStart+j] = e
			}
		}
		remaining[l]--
		code++
		if i+1 < codes {
			code <<= uint(lens[sorted[i+1]]) - l
		}
	}
	return nil
}

// Tables of the fixed Huffman codes (RFC 1951 section 3.2.6), shared by all
// inflaters and never written after init.
var (
	fixedLit  [litTableSize]uint32
	fixedDist [distTableSize]uint32
)

func initFixed() {
	var lens [numLitSyms]uint8
	for s := range lens {
		switch {
		case s < 144:
			lens[s] = 8
		case s < 256:
			lens[s] = 9
		case s < 280:
			lens[s] = 7
		default:
			lens[s] = 8
		}
	}
	if err := buildTable(fixedLit[:], litRootBits, lens[:], litPayload[:]); err != nil {
		panic(err) // static data: cannot fail
	}
	var dlens [numDistSyms]uint8
	for s := range dlens {
		dlens[s] = 5
	}
	if err := buildTable(fixedDist[:], distRootBits, dlens[:], distPayload[:]); err != nil {
		panic(err)
	}
}
