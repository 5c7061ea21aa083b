// Package zstdframes gives random access into zstd streams made of several
// frames.
//
// Every zstd frame (RFC 8878) decodes independently of the others, so an
// index of where each frame starts in the compressed stream and in the
// decompressed output is enough to read at any offset by decoding only the
// frames that cover it. Build walks the frame and block headers, which give
// each frame's compressed size without decoding; the decompressed size comes
// from the frame header when it declares Frame_Content_Size, and otherwise
// from decoding that frame once. Skippable frames are indexed and skipped.
//
// A stream of one big frame (the zstd CLI default) gains nothing from the
// index; the reader then decodes that frame as a stream, reusing its position
// for forward reads.
package zstdframes
