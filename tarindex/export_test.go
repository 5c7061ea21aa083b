package tarindex

import "crypto/sha256"

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
