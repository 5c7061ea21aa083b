package layout

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// NewBlob is a blob to add to a source: its digest and how to read it.
type NewBlob struct {
	Digest digest.Digest
	Open   func() (io.ReadCloser, error)
}

// AddAndTag adds blobs (a new image's layers, config and manifest, say)
// and points name at desc, in one write under one lock: a GC cannot run
// between the blobs landing and index.json naming them, and a tarball is
// rewritten once. Each blob's bytes are checked against its digest before
// anything names it; blobs already present are skipped. desc is written to
// index.json as given (with name as its ref name). A legacy docker save
// cannot take new images this way (ErrUnsupported).
func (s *Source) AddAndTag(ctx context.Context, blobs []NewBlob, desc ocispec.Descriptor, name string) error {
	return s.addAndTag(ctx, blobs, desc, name, nil)
}

// addAndTag is AddAndTag with a hook: edit, when not nil, is called under
// the lock with the editor of the fresh source, once name points at desc
// and before any blob is written. It may edit more, or refuse (its error
// stops the write; nothing is written).
func (s *Source) addAndTag(ctx context.Context, blobs []NewBlob, desc ocispec.Descriptor, name string, edit func(*editor) error) error {
	err := s.withLock(ctx, func(fresh *Source, l *writeLock) error {
		if fresh.Kind == KindDockerLegacy {
			return fmt.Errorf("%w: adding images to a legacy docker save", ErrUnsupported)
		}
		if !SafeRefName(name) {
			return fmt.Errorf("%w: reference name %q is unsafe as a path", ErrInvalid, name)
		}
		if err := desc.Digest.Validate(); err != nil {
			return fmt.Errorf("%w: digest %q: %v", ErrInvalid, desc.Digest, err)
		}
		e, err := newEditor(fresh)
		if err != nil {
			return err
		}
		e.tagDesc(desc, name)
		if edit != nil {
			if err := edit(e); err != nil {
				return err
			}
		}
		if fresh.st.archive == nil {
			for _, b := range blobs {
				if err := putNewBlob(b, func(r io.Reader) error { return putBlobDir(fresh.Path, b.Digest, r) }); err != nil {
					return err
				}
			}
			return e.commit(ctx, l)
		}
		// A tarball: stage each new blob in a checked temporary file, then
		// one rewrite adds them all and replaces index.json.
		var add []newMember
		dir, base := filepath.Split(fresh.Path)
		if dir == "" {
			dir = "."
		}
		for _, b := range blobs {
			if _, _, err := fresh.st.blob(b.Digest); err == nil {
				continue
			}
			f, err := os.CreateTemp(dir, "."+base+tempMark+"blob-*")
			if err != nil {
				return err
			}
			defer func() {
				f.Close()
				os.Remove(f.Name())
			}()
			var n int64
			err = putNewBlob(b, func(r io.Reader) error {
				v := b.Digest.Verifier()
				var err error
				n, err = io.Copy(io.MultiWriter(f, v), r)
				if err == nil && !v.Verified() {
					err = fmt.Errorf("%w: the bytes given for %s hash to something else", ErrDigest, b.Digest)
				}
				return err
			})
			if err != nil {
				return err
			}
			add = append(add, newMember{name: blobPath(b.Digest), r: f, size: n})
		}
		crashPoint("blob:temp-written")
		files, err := e.files()
		if err != nil {
			return err
		}
		return rewriteArchive(ctx, l.f, fresh, files, nil, add)
	})
	if err != nil {
		return fmt.Errorf("add and tag %s in %s: %w", name, s.Path, err)
	}
	return nil
}

func putNewBlob(b NewBlob, put func(io.Reader) error) error {
	if err := b.Digest.Validate(); err != nil {
		return fmt.Errorf("%w: digest %q: %v", ErrInvalid, b.Digest, err)
	}
	rc, err := b.Open()
	if err != nil {
		return fmt.Errorf("blob %s: %w", b.Digest, err)
	}
	defer rc.Close()
	return put(rc)
}

// tagDesc points name at desc, which need not be in the source yet.
func (e *editor) tagDesc(desc ocispec.Descriptor, name string) {
	e.removeName(name)
	desc.Annotations = nil
	e.addIndexName(descObject(desc), name)
}
