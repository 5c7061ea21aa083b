package layout

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/layoutfs/layoutfs/tarindex"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Garbage is a file of the source that nothing references.
type Garbage struct {
	Path   string        // in the layout or archive: blobs/sha256/<hex>, <id>/layer.tar
	Digest digest.Digest // the blob's digest when its path names one, else ""
	Size   int64
}

// GC removes the blobs no reference reaches, and returns them sorted by
// path; with dryRun it only lists them, without taking the lock. Reached are: every index.json entry
// (tagged or not), nested indexes, manifests, their configs and layers, the
// subject of a kept manifest, manifests whose subject is kept (referrers),
// and for a docker save whatever manifest.json names (with the other files
// of a legacy layer directory). A tarball is rewritten without them.
//
// keep are further roots, kept with what they reference as an index.json
// entry would be: manifests the caller still needs though no reference
// reaches them (an image with pending changes, untagged meanwhile).
//
// Only layoutfs writers take the lock: a peer that adds blobs before it
// writes index.json (skopeo, oras) must not run at the same time as GC.
func (s *Source) GC(ctx context.Context, dryRun bool, keep ...digest.Digest) ([]Garbage, error) {
	var out []Garbage
	if dryRun {
		// A look only: no lock (nothing is created beside the source),
		// one consistent reading of it.
		fresh, err := openFresh(ctx, s.Path, s.opts)
		if err != nil {
			return nil, fmt.Errorf("gc %s: %w", s.Path, err)
		}
		defer fresh.close()
		out, err := fresh.garbage(keep)
		if err != nil {
			return nil, fmt.Errorf("gc %s: %w", s.Path, err)
		}
		return out, nil
	}
	err := s.withLock(ctx, func(fresh *Source, l *writeLock) error {
		g, err := fresh.garbage(keep)
		if err != nil {
			return err
		}
		out = g
		if len(g) == 0 {
			return nil
		}
		if fresh.st.archive == nil {
			return removeDirGarbage(fresh.Path, g)
		}
		drop := map[string]bool{}
		for _, x := range g {
			drop[x.Path] = true
		}
		return rewriteArchive(ctx, l.f, fresh, nil, drop, nil)
	})
	if err != nil {
		return nil, fmt.Errorf("gc %s: %w", s.Path, err)
	}
	return out, nil
}

func removeDirGarbage(dir string, g []Garbage) error {
	dirs := map[string]bool{}
	for i, x := range g {
		p := filepath.Join(dir, filepath.FromSlash(x.Path))
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			return err
		}
		dirs[filepath.Dir(p)] = true
		if i == 0 {
			crashPoint("gc:removed-one")
		}
	}
	for d := range dirs {
		if err := syncDir(d); err != nil {
			return err
		}
	}
	return nil
}

// garbage finds what GC removes, keeping roots besides index.json's.
func (s *Source) garbage(roots []digest.Digest) ([]Garbage, error) {
	keep := map[digest.Digest]bool{}
	var walk func(d ocispec.Descriptor, depth int) error
	walk = func(d ocispec.Descriptor, depth int) error {
		if d.Digest.Validate() != nil || keep[d.Digest] {
			return nil
		}
		keep[d.Digest] = true
		if depth > maxNesting {
			return fmt.Errorf("%w: indexes nested deeper than %d", ErrInvalid, maxNesting)
		}
		n, err := s.Resolve(d)
		if err != nil {
			if IsNotFound(err) {
				return nil // absent: nothing below it to keep
			}
			// What it references is unknown: removing anything could
			// break it.
			return fmt.Errorf("cannot tell what %s references: %w", d.Digest, err)
		}
		if n.Index != nil {
			for _, c := range n.Index.Manifests {
				if err := walk(c, depth+1); err != nil {
					return err
				}
			}
			if n.Index.Subject != nil {
				return walk(*n.Index.Subject, depth+1)
			}
			return nil
		}
		m := n.Manifest
		keep[m.Config.Digest] = true
		for _, l := range m.Layers {
			keep[l.Digest] = true
		}
		if m.Subject != nil {
			return walk(*m.Subject, depth+1)
		}
		return nil
	}
	descs := append([]ocispec.Descriptor{}, s.index.Manifests...)
	descs = append(descs, s.extra...)
	for _, d := range roots {
		descs = append(descs, ocispec.Descriptor{Digest: d})
	}
	for _, d := range descs {
		if err := walk(d, 0); err != nil {
			return nil, err
		}
	}

	// Names a docker manifest.json holds, with what they link to.
	keepName := map[string]bool{}
	if b, ok := s.Files["manifest.json"]; ok {
		var ents []struct {
			Config       string
			Layers       []string
			LayerSources map[digest.Digest]json.RawMessage
			Parent       digest.Digest
		}
		if err := json.Unmarshal(b, &ents); err != nil {
			return nil, fmt.Errorf("%w: manifest.json: %v", ErrInvalid, err)
		}
		for _, e := range ents {
			for _, p := range append([]string{e.Config}, e.Layers...) {
				if c, err := cleanMember(p); err == nil {
					s.keepLinked(c, keepName)
					if path.Dir(c) != "." && !strings.HasPrefix(c, "blobs/") {
						keepName[path.Dir(c)+"/"] = true // its json, VERSION
					}
				}
			}
			for d := range e.LayerSources {
				keep[d] = true
			}
			if e.Parent.Validate() == nil { // the parent's config, which docker load looks up
				keep[e.Parent] = true
				keepName[e.Parent.Encoded()+".json"] = true
				keepName[e.Parent.String()] = true
			}
		}
	}

	// A legacy layer directory (<id>/json, VERSION, layer.tar) stays when
	// manifest.json names a file in it (kept above), when repositories
	// names it, or when a kept one names it as parent. In saves whose
	// manifest.json names <digest>.tar files instead (skopeo's), a layer
	// directory stays when its layer.tar links to a kept layer.
	if s.st.archive != nil && s.docker() {
		dirStyle := false
		for n := range keepName {
			if strings.HasSuffix(n, "/") {
				dirStyle = true
			}
		}
		var repos map[string]map[string]string
		json.Unmarshal(s.Files["repositories"], &repos)
		for _, tags := range repos {
			for _, id := range tags {
				if c, err := cleanMember(id); err == nil && !strings.Contains(c, "/") {
					keepName[c+"/"] = true
				}
			}
		}
		if !dirStyle {
			for _, e := range s.st.archive.Entries {
				dir, base := path.Split(e.Name)
				if base != "layer.tar" || strings.Count(dir, "/") != 1 || keepName[dir] {
					continue
				}
				linked := map[string]bool{}
				s.keepLinked(e.Name, linked)
				for n := range linked {
					if n != e.Name && keepName[n] {
						keepName[dir] = true
					}
				}
			}
		}
		for changed := true; changed; {
			changed = false
			for n := range keepName {
				if !strings.HasSuffix(n, "/") || strings.Count(n, "/") != 1 {
					continue
				}
				var v1 struct{ Parent string }
				if b, err := s.st.readFile(n+"json", maxBlobJSON); err == nil && json.Unmarshal(b, &v1) == nil && v1.Parent != "" {
					if p := strings.TrimPrefix(v1.Parent, "sha256:") + "/"; !keepName[p] {
						keepName[p] = true
						changed = true
					}
				}
			}
		}
	}

	// Referrers: manifests whose subject is kept, until none is added.
	for changed := true; changed; {
		changed = false
		for _, d := range s.st.list() {
			if keep[d] {
				continue
			}
			r, size, err := s.st.blob(d)
			if err != nil || size > maxBlobJSON || size < 2 {
				continue
			}
			var first [1]byte
			if _, err := r.ReadAt(first[:], 0); err != nil || first[0] != '{' {
				continue
			}
			b, err := readAll(r, size, maxBlobJSON, d.String())
			if err != nil {
				continue
			}
			var m struct {
				MediaType string              `json:"mediaType"`
				Subject   *ocispec.Descriptor `json:"subject"`
			}
			if json.Unmarshal(b, &m) != nil || m.Subject == nil || !keep[m.Subject.Digest] {
				continue
			}
			if err := walk(ocispec.Descriptor{MediaType: m.MediaType, Digest: d, Size: size}, 0); err != nil {
				return nil, err
			}
			changed = true
		}
	}

	// A kept blob may be a link to another member: keep what it links to.
	if s.st.archive != nil {
		for _, name := range s.memberNames() {
			if d, ok := garbageCandidate(name, s.Kind); ok && d != "" && keep[d] && strings.HasPrefix(name, "blobs/") {
				s.keepLinked(name, keepName)
			}
			if i := strings.IndexByte(name, '/'); i > 0 && keepName[name[:i+1]] {
				s.keepLinked(name, keepName) // a kept layer directory's links
			}
		}
	}

	var out []Garbage
	for _, name := range s.memberNames() {
		d, isBlob := garbageCandidate(name, s.Kind)
		if !isBlob || keepName[name] {
			continue
		}
		if d != "" && keep[d] && strings.HasPrefix(name, "blobs/") {
			continue
		}
		if i := strings.IndexByte(name, '/'); i > 0 && keepName[name[:i+1]] {
			continue
		}
		var size int64
		if _, sz, err := s.st.file(name); err == nil {
			size = sz
		}
		out = append(out, Garbage{Path: name, Digest: d, Size: size})
	}
	// Layer directories of a docker save left with nothing kept go too.
	if s.st.archive != nil {
		for _, e := range s.st.archive.Entries {
			if e.Type != tar.TypeDir || strings.Contains(e.Name, "/") || !hexName.MatchString(e.Name) || keepName[e.Name+"/"] {
				continue
			}
			if _, ok := garbageCandidate(e.Name+"/x", s.Kind); !ok {
				continue
			}
			used := false
			for n := range keepName {
				if strings.HasPrefix(n, e.Name+"/") {
					used = true
				}
			}
			if !used {
				out = append(out, Garbage{Path: e.Name})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// keepLinked marks name kept, and what it links to inside an archive.
func (s *Source) keepLinked(name string, keep map[string]bool) {
	for hops := 0; hops < 16 && !keep[name]; hops++ {
		keep[name] = true
		if s.st.archive == nil {
			return
		}
		e, ok := s.st.byName[name]
		if !ok {
			return
		}
		switch e.Type {
		case tar.TypeLink:
			name = e.Linkname
		case tar.TypeSymlink:
			t := e.Linkname
			if !path.IsAbs(t) {
				t = path.Join(path.Dir(name), t)
			}
			c, err := tarindex.CleanName(t)
			if err != nil {
				return
			}
			name = c
		default:
			return
		}
	}
}

// memberNames lists the files of the source: archive members, or the blob
// files of a directory.
func (s *Source) memberNames() []string {
	var out []string
	if s.st.archive != nil {
		seen := map[string]bool{}
		for _, e := range s.st.archive.Entries {
			if e.Type != tar.TypeDir && !seen[e.Name] {
				seen[e.Name] = true
				out = append(out, e.Name)
			}
		}
		return out
	}
	algs, _ := os.ReadDir(filepath.Join(s.st.dir, "blobs"))
	for _, a := range algs {
		ents, _ := os.ReadDir(filepath.Join(s.st.dir, "blobs", a.Name()))
		for _, e := range ents {
			if e.Type().IsRegular() {
				out = append(out, "blobs/"+a.Name()+"/"+e.Name())
			}
		}
	}
	return out
}

var hexName = regexp.MustCompile(`^(?:sha256:)?([0-9a-f]{64})(?:\.tar|\.json|\.tar\.gz|\.tar\.zst)?$`)

// garbageCandidate tells whether a member is image content GC may remove:
// a blob under blobs/<alg>/, or in a docker save a file named by a digest
// or inside a top-level layer directory named by one. Anything else (a
// README beside the image) is never touched.
func garbageCandidate(name string, k Kind) (digest.Digest, bool) {
	if rest, ok := strings.CutPrefix(name, "blobs/"); ok {
		alg, hex, ok := strings.Cut(rest, "/")
		if !ok || strings.Contains(hex, "/") {
			return "", false
		}
		d := digest.NewDigestFromEncoded(digest.Algorithm(alg), hex)
		return d, d.Validate() == nil
	}
	if k != KindDockerLegacy && k != KindDockerSave {
		return "", false
	}
	first, rest, nested := strings.Cut(name, "/")
	if nested {
		return "", hexName.MatchString(first) && !strings.Contains(first, ".") && rest != ""
	}
	if m := hexName.FindStringSubmatch(name); m != nil {
		return digest.NewDigestFromEncoded(digest.SHA256, m[1]), true
	}
	return "", false
}

func (s *Source) docker() bool { return s.Kind == KindDockerSave || s.Kind == KindDockerLegacy }
