package zran

import "encoding/binary"

// huffmanBlock decodes symbols of the current Huffman block until its
// end-of-block code (true) or until the output reaches limit (false).
//
// This is the hot loop. The decoder state lives in locals so that it stays in
// registers; every symbol starts with a branch-free refill that leaves at
// least 56 bits in the bit buffer, enough for the longest length code with
// its extra bits plus the longest distance code with its extra bits
// (15+5+15+13 = 48). Table indexes are masked to the power-of-two table
// sizes so they need no bounds checks.
func (d *inflater) huffmanBlock(limit int) (bool, error) {
	bits, nbits := d.bits, d.nbits
	in, inPos, inEnd := d.in, d.inPos, d.inEnd
	out, o, histLo := d.out, d.o, d.histLo
	lit, dist := d.lit, d.dist
	done := false
	var err error
	bad := "" // set when the data is corrupt; reported after state is saved

	for o < limit {
		if inPos+8 <= inEnd {
			bits |= binary.LittleEndian.Uint64(in[inPos:]) << (nbits & 63)
			inPos += int((63 - nbits) >> 3)
			nbits |= 56
		} else {
			d.bits, d.nbits, d.inPos = bits, nbits, inPos
			if err = d.refillSlow(); err != nil {
				break
			}
			bits, nbits, in, inPos, inEnd = d.bits, d.nbits, d.in, d.inPos, d.inEnd
		}

		e := lit[bits&(1<<litRootBits-1)]
		if e&flagLiteral != 0 {
			// Literals come in runs: after one root-level literal at least
			// 46 bits remain, enough to peek at the next code and emit it
			// too if it is a literal.
			n := e & 15
			out[o] = byte(e >> 16)
			o++
			bits >>= n & 63
			nbits -= uint(n)
			e = lit[bits&(1<<litRootBits-1)]
			if e&flagLiteral == 0 {
				continue
			}
			n = e & 15
			out[o] = byte(e >> 16)
			o++
			bits >>= n & 63
			nbits -= uint(n)
			continue
		}
		if e&flagSub != 0 {
			bits >>= litRootBits
			nbits -= litRootBits
			e = lit[(e>>16+uint32(bits)&(1<<(e>>4&15)-1))&(litTableSize-1)]
		}
		n := e & 15
		if e&flagLiteral != 0 {
			out[o] = byte(e >> 16)
			o++
			bits >>= n & 63
			nbits -= uint(n)
			continue
		}
		if e&(flagEOB|flagInvalid) != 0 {
			if e&flagInvalid != 0 {
				bad = "invalid literal/length code"
				break
			}
			bits >>= n & 63
			nbits -= uint(n)
			done = true
			break
		}
		extra := e >> 4 & 15
		length := int(e>>16) + int(bits>>(n&63)&(1<<(extra&63)-1))
		n += extra
		bits >>= n & 63
		nbits -= uint(n)

		e = dist[bits&(1<<distRootBits-1)]
		if e&flagSub != 0 {
			bits >>= distRootBits
			nbits -= distRootBits
			e = dist[(e>>16+uint32(bits)&(1<<(e>>4&15)-1))&(distTableSize-1)]
		}
		if e&flagInvalid != 0 {
			bad = "invalid distance code"
			break
		}
		n = e & 15
		extra = e >> 4 & 15
		distance := int(e>>16) + int(bits>>(n&63)&(1<<(extra&63)-1))
		n += extra
		bits >>= n & 63
		nbits -= uint(n)

		if distance > o-histLo {
			bad = "distance too far back"
			break
		}
		src := o - distance
		if length > 32 && distance >= length {
			// Long matches that do not overlap: memmove beats the loop.
			copy(out[o:o+length], out[src:src+length])
		} else if distance >= 8 {
			// Copy eight bytes at a time; each word read lies wholly before
			// the word written, so overlapping matches still repeat
			// correctly. The overshoot lands in the slack past limit.
			for i := 0; i < length; i += 8 {
				binary.LittleEndian.PutUint64(out[o+i:], binary.LittleEndian.Uint64(out[src+i:]))
			}
		} else {
			for i := 0; i < length; i++ {
				out[o+i] = out[src+i]
			}
		}
		o += length
	}

	d.bits, d.nbits, d.inPos = bits, nbits, inPos
	d.o = o
	if bad != "" {
		return false, d.corrupt(bad)
	}
	if err != nil {
		return false, err
	}
	return done, d.checkPhantom()
}
