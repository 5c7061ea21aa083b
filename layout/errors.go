// Package layout is the OCI model of an image source: it opens any of the
// sources of SPEC.md (OCI layout directory, oci-archive, docker save in both
// shapes, compressed or not), resolves references, nested indexes and
// platforms, and serves blobs as io.ReaderAt read in place.
package layout

import "errors"

// Errors returned by this package, wrapped with the file, ref or digest they
// concern.
var (
	ErrNotFound     = errors.New("layout: not found")
	ErrUnknownShape = errors.New("layout: not an image archive or layout")
	ErrInvalid      = errors.New("layout: invalid")
	ErrDigest       = errors.New("layout: digest mismatch")
	ErrCycle        = errors.New("layout: index cycle")
)
