package zran

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Gzip member framing (RFC 1952).
const (
	gzipID1     = 0x1f
	gzipID2     = 0x8b
	gzipDeflate = 8

	flagHCRC     = 1 << 1
	flagExtra    = 1 << 2
	flagName     = 1 << 3
	flagComment  = 1 << 4
	flagReserved = 0xe0
)

// memberHeader reads a gzip member header; the bit buffer must be empty.
func (d *inflater) memberHeader() error {
	start := d.inBase + int64(d.inPos)
	bad := func(what string) error {
		return fmt.Errorf("%w: %s in member at compressed offset %d", ErrHeader, what, start)
	}
	var crc uint32
	next := func() (byte, error) {
		b, err := d.readByte()
		crc = crc32.Update(crc, crc32.IEEETable, []byte{b})
		return b, err
	}
	// Check the magic before reading on, so that trailing garbage is
	// reported as such rather than as a truncated header.
	var fixed [10]byte
	for i := range fixed {
		b, err := next()
		if err != nil {
			return err
		}
		fixed[i] = b
		if i == 1 && (fixed[0] != gzipID1 || fixed[1] != gzipID2) {
			return bad("bad magic")
		}
	}
	if fixed[2] != gzipDeflate {
		return bad("unknown compression method")
	}
	flags := fixed[3]
	if flags&flagReserved != 0 {
		return bad("reserved flags set")
	}
	if flags&flagExtra != 0 {
		lo, err := next()
		if err != nil {
			return err
		}
		hi, err := next()
		if err != nil {
			return err
		}
		for n := int(lo) | int(hi)<<8; n > 0; n-- {
			if _, err := next(); err != nil {
				return err
			}
		}
	}
	for _, f := range []byte{flagName, flagComment} {
		if flags&f == 0 {
			continue
		}
		for {
			b, err := next()
			if err != nil {
				return err
			}
			if b == 0 {
				break
			}
		}
	}
	if flags&flagHCRC != 0 {
		want := crc & 0xffff
		lo, err := d.readByte()
		if err != nil {
			return err
		}
		hi, err := d.readByte()
		if err != nil {
			return err
		}
		if uint32(lo)|uint32(hi)<<8 != want {
			return bad("header checksum mismatch")
		}
	}
	return nil
}

// memberTrailer reads the CRC-32 and ISIZE fields after a member's deflate
// data; the bit buffer must be empty.
func (d *inflater) memberTrailer() (crc, size uint32, err error) {
	var t [8]byte
	for i := range t {
		if t[i], err = d.readByte(); err != nil {
			return 0, 0, err
		}
	}
	return binary.LittleEndian.Uint32(t[:4]), binary.LittleEndian.Uint32(t[4:]), nil
}

// memberEnd reads the trailer of the member whose final block has just
// ended, returning its fields and its offset.
func (d *inflater) memberEnd() (crc, size uint32, at int64, err error) {
	if err = d.toBytes(); err != nil {
		return
	}
	at = d.inBase + int64(d.inPos)
	crc, size, err = d.memberTrailer()
	return
}

// nextMember reads the header of the member after the current one and
// starts its deflate stream. It returns false at the end of the input;
// zero bytes after the last member are ignored, as gzip(1) does.
func (d *inflater) nextMember() (bool, error) {
	for {
		eof, err := d.atEOF()
		if err != nil || eof {
			return false, err
		}
		if d.in[d.inPos] != 0 {
			break
		}
		d.inPos++
	}
	if err := d.memberHeader(); err != nil {
		return false, err
	}
	d.startStream()
	return true, nil
}
