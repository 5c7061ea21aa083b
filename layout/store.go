package layout

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/layoutfs/layoutfs/tarindex"
	digest "github.com/opencontainers/go-digest"
)

// store finds blobs and top-level files of a source: in a directory, in a
// tar archive, or among bytes layoutfs synthesised (legacy docker save).
type store struct {
	dir string // layout directory, or ""

	archive *tarindex.Archive // tarball sources
	byName  map[string]*tarindex.Entry

	mu    sync.Mutex
	files map[string]*os.File // open blob files of a directory layout

	extra map[digest.Digest]io.ReaderAt // synthesised or re-homed blobs
	sizes map[digest.Digest]int64
}

func newDirStore(dir string) *store {
	return &store{dir: dir, files: map[string]*os.File{}, extra: map[digest.Digest]io.ReaderAt{}, sizes: map[digest.Digest]int64{}}
}

func newTarStore(a *tarindex.Archive) *store {
	s := &store{archive: a, byName: map[string]*tarindex.Entry{}, extra: map[digest.Digest]io.ReaderAt{}, sizes: map[digest.Digest]int64{}}
	for i := range a.Entries {
		e := &a.Entries[i]
		s.byName[e.Name] = e // the last of duplicate names wins, as with tar -x
	}
	return s
}

// blobPath is where a layout keeps a blob; d must be valid.
func blobPath(d digest.Digest) string {
	return path.Join("blobs", d.Algorithm().String(), d.Encoded())
}

// add registers bytes that live outside blobs/ under digest d.
func (s *store) add(d digest.Digest, r io.ReaderAt, size int64) {
	s.extra[d] = r
	s.sizes[d] = size
}

// blob returns the bytes of blob d in place.
func (s *store) blob(d digest.Digest) (io.ReaderAt, int64, error) {
	if err := d.Validate(); err != nil {
		return nil, 0, fmt.Errorf("%w: digest %q: %v", ErrInvalid, d, err)
	}
	if r, ok := s.extra[d]; ok {
		return r, s.sizes[d], nil
	}
	return s.file(blobPath(d))
}

// file returns a top-level file or a blob by its path in the layout.
func (s *store) file(name string) (io.ReaderAt, int64, error) {
	if s.archive != nil {
		e, err := s.entry(name)
		if err != nil {
			return nil, 0, err
		}
		return e.Reader(s.archive.Data), e.Size, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if f, ok := s.files[name]; ok {
		st, err := f.Stat()
		if err != nil {
			return nil, 0, err
		}
		return f, st.Size(), nil
	}
	f, err := os.Open(filepath.Join(s.dir, filepath.FromSlash(name)))
	if err != nil {
		if os.IsNotExist(err) {
			return nil, 0, fmt.Errorf("%s: %w", name, ErrNotFound)
		}
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("%w: %s is not a regular file", ErrInvalid, name)
	}
	s.files[name] = f
	return f, st.Size(), nil
}

// entry finds a regular file in the archive, following symlinks and hard
// links inside it (skopeo writes layer.tar as a symlink).
func (s *store) entry(name string) (*tarindex.Entry, error) {
	for hops := 0; hops < 16; hops++ {
		e, ok := s.byName[name]
		if !ok {
			return nil, fmt.Errorf("%s: %w in archive", name, ErrNotFound)
		}
		switch e.Type {
		case tar.TypeReg:
			if e.Sparse {
				// Each read of a sparse member expands it from its start:
				// fine for a file in a layer, quadratic for a blob that is
				// read through. No image tool writes blobs so.
				return nil, fmt.Errorf("%w: %s is a sparse archive member", ErrInvalid, name)
			}
			return e, nil
		case tar.TypeLink:
			name = e.Linkname
		case tar.TypeSymlink:
			target := e.Linkname
			if !path.IsAbs(target) {
				target = path.Join(path.Dir(name), target)
			}
			clean, err := tarindex.CleanName(target)
			if err != nil {
				return nil, fmt.Errorf("%w: %s links outside the archive", ErrInvalid, name)
			}
			name = clean
		default:
			return nil, fmt.Errorf("%w: %s is not a regular file", ErrInvalid, name)
		}
	}
	return nil, fmt.Errorf("%w: %s: too many links", ErrInvalid, name)
}

// identity names the bytes a file name of the layout resolves to, so that
// names reaching the same bytes (through links, or spelled differently)
// can be told to be the same. Unresolvable names are their own identity.
func (s *store) identity(name string) string {
	clean, err := tarindex.CleanName(name)
	if err != nil {
		return "bad:" + name
	}
	if s.archive != nil {
		if e, err := s.entry(clean); err == nil {
			return "entry@" + strconv.FormatInt(e.Offset, 10)
		}
	}
	return "name:" + clean
}

// readFile reads a small file whole, refusing anything over limit.
func (s *store) readFile(name string, limit int64) ([]byte, error) {
	r, size, err := s.file(name)
	if err != nil {
		return nil, err
	}
	return readAll(r, size, limit, name)
}

func readAll(r io.ReaderAt, size, limit int64, what string) ([]byte, error) {
	if size > limit {
		return nil, fmt.Errorf("%w: %s is %d bytes, over the %d byte limit", ErrInvalid, what, size, limit)
	}
	b := make([]byte, size)
	if _, err := r.ReadAt(b, 0); err != nil && err != io.EOF {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	return b, nil
}

func (s *store) has(name string) bool {
	if s.archive != nil {
		_, err := s.entry(name)
		return err == nil
	}
	st, err := os.Stat(filepath.Join(s.dir, filepath.FromSlash(name)))
	return err == nil && st.Mode().IsRegular()
}

// list returns the digests of every blob present, sorted.
func (s *store) list() []digest.Digest {
	seen := map[digest.Digest]bool{}
	for d := range s.extra {
		seen[d] = true
	}
	add := func(name string) {
		rest, ok := strings.CutPrefix(name, "blobs/")
		if !ok {
			return
		}
		alg, hex, ok := strings.Cut(rest, "/")
		if !ok || strings.Contains(hex, "/") {
			return
		}
		d := digest.NewDigestFromEncoded(digest.Algorithm(alg), hex)
		if d.Validate() == nil && s.has(name) {
			seen[d] = true
		}
	}
	if s.archive != nil {
		for name := range s.byName {
			add(name)
		}
	} else {
		algs, _ := os.ReadDir(filepath.Join(s.dir, "blobs"))
		for _, a := range algs {
			ents, _ := os.ReadDir(filepath.Join(s.dir, "blobs", a.Name()))
			for _, e := range ents {
				add("blobs/" + a.Name() + "/" + e.Name())
			}
		}
	}
	out := make([]digest.Digest, 0, len(seen))
	for d := range seen {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// bytesReader serves synthesised bytes as a blob.
func bytesReader(b []byte) io.ReaderAt { return bytes.NewReader(b) }
