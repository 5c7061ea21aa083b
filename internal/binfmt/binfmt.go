// Package binfmt holds what the cache formats of layoutfs share: the
// sealed frame every cache entry is written in (magic, version, body,
// sha256 of the body), and a varint reader with a sticky error, in the
// manner of archive/tar's parser.
package binfmt

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
)

// Seal frames body as magic, version, body, sha256 of the body.
func Seal(magic []byte, version byte, body []byte) []byte {
	out := make([]byte, 0, len(magic)+1+len(body)+sha256.Size)
	out = append(append(append(out, magic...), version), body...)
	sum := sha256.Sum256(body)
	return append(out, sum[:]...)
}

// Unseal returns the body of a frame Seal made with the same magic and
// version, or false when b is not one or its checksum does not match.
func Unseal(magic []byte, version byte, b []byte) ([]byte, bool) {
	if !bytes.HasPrefix(b, magic) || len(b) < len(magic)+1+sha256.Size || b[len(magic)] != version {
		return nil, false
	}
	body, sum := b[len(magic)+1:len(b)-sha256.Size], b[len(b)-sha256.Size:]
	if got := sha256.Sum256(body); !bytes.Equal(got[:], sum) {
		return nil, false
	}
	return body, true
}

// ErrShort means a field ran past the end of the input or was malformed.
var ErrShort = errors.New("truncated or malformed field")

// Decoder reads fields from B. The first failure sticks in Err and every
// later read returns zero, so callers check once after a run of reads.
type Decoder struct {
	B   []byte
	Err error
}

// Uvarint reads an unsigned varint.
func (d *Decoder) Uvarint() uint64 {
	if d.Err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.B)
	if n <= 0 {
		d.Err = ErrShort
		return 0
	}
	d.B = d.B[n:]
	return v
}

// Varint reads a signed varint.
func (d *Decoder) Varint() int64 {
	if d.Err != nil {
		return 0
	}
	v, n := binary.Varint(d.B)
	if n <= 0 {
		d.Err = ErrShort
		return 0
	}
	d.B = d.B[n:]
	return v
}

// Bytes reads n bytes, sharing B's memory.
func (d *Decoder) Bytes(n int) []byte {
	if d.Err != nil || n < 0 || n > len(d.B) {
		d.Err = ErrShort
		return nil
	}
	p := d.B[:n:n]
	d.B = d.B[n:]
	return p
}
