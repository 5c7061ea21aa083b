package zstdframes

import "errors"

// Sentinel errors; returned errors wrap one of these with the offset at
// which the problem was found.
var (
	// ErrFormat reports input that is not a well-formed zstd stream.
	ErrFormat = errors.New("zstdframes: invalid zstd stream")
	// ErrTruncated reports a stream that ends inside a frame.
	ErrTruncated = errors.New("zstdframes: unexpected end of compressed input")
	// ErrDictionary reports a frame that needs a dictionary.
	ErrDictionary = errors.New("zstdframes: frame needs a dictionary")
	// ErrIndex reports a malformed, corrupt or mismatched index.
	ErrIndex = errors.New("zstdframes: invalid index")
	// ErrOffset reports a negative read offset.
	ErrOffset = errors.New("zstdframes: negative offset")
	// ErrTooLarge means the stream expands past the limit it was given.
	ErrTooLarge = errors.New("zstdframes: stream too large")
)
