package zran

import "errors"

// Sentinel errors. Errors returned by this package wrap one of these with the
// offset at which the problem was found; test for them with errors.Is.
var (
	// ErrHeader reports a malformed gzip member header or trailing garbage
	// after the last member.
	ErrHeader = errors.New("zran: invalid gzip header")
	// ErrCorrupt reports invalid deflate data.
	ErrCorrupt = errors.New("zran: corrupt deflate data")
	// ErrTruncated reports compressed input that ends inside a member.
	ErrTruncated = errors.New("zran: unexpected end of compressed input")
	// ErrChecksum reports a gzip member whose CRC-32 does not match its data.
	ErrChecksum = errors.New("zran: gzip checksum mismatch")
	// ErrSize reports a gzip member whose ISIZE does not match its data.
	ErrSize = errors.New("zran: gzip size mismatch")
	// ErrIndex reports an index that is malformed, corrupt, or of an
	// unsupported version, or that does not match the compressed stream.
	ErrIndex = errors.New("zran: invalid index")
	// ErrOffset reports a negative read offset.
	ErrOffset = errors.New("zran: negative offset")
)
