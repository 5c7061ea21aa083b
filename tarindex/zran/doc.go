// Package zran gives random access into gzip streams.
//
// A gzip stream can only be inflated from its start, because every deflate
// block may refer back to the 32 KiB of output before it. Build inflates the
// stream once and records checkpoints at deflate block boundaries roughly
// every Span bytes of output: the bit position of the boundary in the
// compressed stream and the 32 KiB of output preceding it. A read at any
// uncompressed offset then restarts the inflater at the last checkpoint at or
// before that offset, primed with the saved window, instead of at byte zero.
// This is the technique of zlib's examples/zran.c and of the SOCI zTOC.
//
// The package carries its own inflater (RFC 1951) and gzip framing
// (RFC 1952), because compress/flate can neither report block boundaries nor
// resume at an arbitrary bit offset.
package zran
