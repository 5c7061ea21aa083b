package layout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/layoutfs/layoutfs/tarindex"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Layer returns the indexed tar of a layer blob. It is built on first use
// (or loaded from the cache) and shared by every image that has the layer.
func (s *Source) Layer(ctx context.Context, desc ocispec.Descriptor) (*tarindex.Archive, error) {
	return s.layers.Get(desc.Digest, func() (*tarindex.Archive, error) {
		// The first caller's cancellation must not poison the layer for the others.
		return s.openLayer(context.WithoutCancel(ctx), desc)
	})
}

func (s *Source) openLayer(ctx context.Context, desc ocispec.Descriptor) (*tarindex.Archive, error) {
	r, size, err := s.st.blob(desc.Digest)
	if err != nil {
		return nil, fmt.Errorf("layer %s: %w", desc.Digest, err)
	}
	// Every layer is checked against its digest before it is served, once
	// per unchanged source: a stamp in the cache remembers it. A compressed
	// layer is hashed during the pass that indexes it, which reads it
	// whole anyway; any other is hashed on its own.
	stamp := s.stampKey(desc.Digest)
	check := desc.Digest.Algorithm().Available() && (stamp == "" || !s.cache.Stamped(stamp))
	var verify tarindex.Verifier
	if check {
		verify = desc.Digest.Verifier()
	}
	ctx = tarindex.WithLimit(ctx, s.opts.limit(size))
	a, err := tarindex.Open(ctx, r, size, desc.Digest.String(), tarindex.Options{Cache: s.cache, Progress: s.progress("layer " + desc.Digest.Encoded()[:12]), Verify: verify})
	if errors.Is(err, tarindex.ErrMismatch) {
		return nil, fmt.Errorf("layer %s: %w: %w", desc.Digest, ErrDigest, err)
	}
	if err != nil {
		return nil, fmt.Errorf("layer %s: %w", desc.Digest, err)
	}
	if check {
		if !a.Verified {
			if err := verifyReader(desc.Digest, io.NewSectionReader(r, 0, size), size); err != nil {
				return nil, fmt.Errorf("layer %s: %w", desc.Digest, err)
			}
		}
		if stamp != "" {
			s.cache.Stamp(stamp)
		}
	}
	for _, w := range a.Warnings {
		s.warn("layer %s: %s", desc.Digest, w)
	}
	return a, nil
}

// stampKey names "blob d, where this source keeps it, unchanged since":
// the outer tarball's identity, or the blob file's own in a directory.
// "" when it cannot be told.
func (s *Source) stampKey(d digest.Digest) string {
	if s.archiveKey != "" {
		return "verified-" + s.archiveKey + "-" + d.Encoded()
	}
	if s.st.dir == "" || d.Validate() != nil {
		return ""
	}
	p := filepath.Join(s.st.dir, filepath.FromSlash(blobPath(d)))
	st, err := os.Stat(p)
	if err != nil {
		return ""
	}
	return "verified-" + fileKey(p, st)
}

func verifyReader(d digest.Digest, r io.Reader, size int64) error {
	v := d.Verifier()
	// A large buffer, as from a SectionReader every Read is a pread; no
	// larger than the blob, as thousands of small layers may be checked.
	if _, err := io.CopyBuffer(v, r, make([]byte, max(min(size, 1<<20), 512))); err != nil {
		return err
	}
	if !v.Verified() {
		return fmt.Errorf("%w: blob %s does not hash to its digest", ErrDigest, d)
	}
	return nil
}

// IsTarLayer reports whether a layer descriptor holds a filesystem tar (as
// opposed to an artifact's file).
func IsTarLayer(d ocispec.Descriptor) bool {
	mt := d.MediaType
	return mt == "" || strings.Contains(mt, ".tar") || strings.Contains(mt, "rootfs.diff") ||
		strings.HasSuffix(mt, "layer.v1.tar") || mt == mediaTypeDockerLayer
}
