package tarindex

import (
	"crypto/sha256"
	"fmt"
)

// SetOnePassChunk makes onePass read n bytes at a time until the returned
// function is called: small inputs then cross chunk boundaries.
func SetOnePassChunk(n int) (restore func()) {
	old := onePassChunk
	onePassChunk = n
	return func() { onePassChunk = old }
}

// NewSumCheck returns a Verifier of the sha256 sum want, as go-digest's
// verifier of a sha256 digest is.
func NewSumCheck(want [32]byte) Verifier {
	return &sumCheck{h: sha256.New(), want: want}
}

// SetChecksum writes the checksum of header block b (the sum of its bytes,
// the field itself taken as spaces) as six octal digits, NUL and space.
func SetChecksum(b []byte) {
	copy(b[148:156], "        ")
	var sum int64
	for _, c := range b[:blockSize] {
		sum += int64(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
}
