package layout

import (
	"sort"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Ref is a reference name and what it points at. A name given to several
// descriptors (one per platform, as some writers do) points at all of them.
type Ref struct {
	Name  string
	Descs []ocispec.Descriptor
}

// Refs returns the references of the source sorted by name: each
// org.opencontainers.image.ref.name of index.json, then each RepoTags entry
// of a docker manifest.json not already among them.
func (s *Source) Refs() []Ref { return s.refs }

// Ref returns the reference called name.
func (s *Source) Ref(name string) (Ref, bool) {
	i := sort.Search(len(s.refs), func(i int) bool { return s.refs[i].Name >= name })
	if i < len(s.refs) && s.refs[i].Name == name {
		return s.refs[i], true
	}
	return Ref{}, false
}

func (s *Source) refsFromIndex() {
	for _, d := range s.index.Manifests {
		if name, ok := d.Annotations[ocispec.AnnotationRefName]; ok {
			s.addRef(name, d)
		}
	}
}

// addRef files desc under name, unless name is unsafe as a path.
func (s *Source) addRef(name string, desc ocispec.Descriptor) {
	if !SafeRefName(name) {
		s.warn("reference %q is unsafe as a path: skipped", name)
		return
	}
	i := sort.Search(len(s.refs), func(i int) bool { return s.refs[i].Name >= name })
	if i < len(s.refs) && s.refs[i].Name == name {
		for _, d := range s.refs[i].Descs {
			if d.Digest == desc.Digest {
				return
			}
		}
		s.refs[i].Descs = append(s.refs[i].Descs, desc)
		return
	}
	s.refs = append(s.refs, Ref{})
	copy(s.refs[i+1:], s.refs[i:])
	s.refs[i] = Ref{Name: name, Descs: []ocispec.Descriptor{desc}}
}

// SafeRefName reports whether a reference name can be a path under tags/:
// no empty, "." or ".." components, no NUL, not absolute.
func SafeRefName(name string) bool {
	if name == "" || strings.ContainsRune(name, 0) {
		return false
	}
	for _, part := range strings.Split(name, "/") {
		if part == "" || part == "." || part == ".." {
			return false
		}
	}
	return true
}
