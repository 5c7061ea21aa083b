package tarindex

// SetOnePassChunk makes onePass read n bytes at a time until the returned
// function is called: small inputs then cross chunk boundaries.
func SetOnePassChunk(n int) (restore func()) {
	old := onePassChunk
	onePassChunk = n
	return func() { onePassChunk = old }
}
