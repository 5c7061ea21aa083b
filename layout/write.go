package layout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/layoutfs/layoutfs/tarindex"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ErrUnsupported is returned for an edit a source's shape cannot hold.
var ErrUnsupported = errors.New("layout: unsupported")

// crashPoint is called between the steps of a write, with the step's
// name. Tests set it to kill the process there and then check that what is
// on disk is the old or the new source, never a broken one.
var crashPoint = func(step string) {}

// Tag points the reference newName at target: a reference name of the
// source, or the digest (alg:hex) of a manifest or index in it. A name that
// existed moves. In index.json the new name is a new entry (as oras writes a
// descriptor with several tags once per tag), or the ref name of an
// untagged entry of that digest; in a docker save, a name of the form
// repo:tag is also added to manifest.json's RepoTags and to repositories,
// so docker load and skopeo see it. A legacy docker save has only
// RepoTags, so there newName must be of that form.
//
// Every write reads the source afresh under its lock (s may be stale); s
// itself is not changed: open the source again to see the result.
func (s *Source) Tag(ctx context.Context, target, newName string) error {
	return s.edit(ctx, "tag", func(e *editor) error { return e.tag(target, newName) })
}

// Untag removes the reference name. The blobs stay until GC.
func (s *Source) Untag(ctx context.Context, name string) error {
	return s.edit(ctx, "untag", func(e *editor) error {
		if !e.removeName(name) {
			return fmt.Errorf("reference %q: %w", name, ErrNotFound)
		}
		return nil
	})
}

// Rename moves the reference oldName to newName in one write.
func (s *Source) Rename(ctx context.Context, oldName, newName string) error {
	return s.edit(ctx, "rename", func(e *editor) error {
		if oldName == newName {
			if len(e.lookupName(oldName)) == 0 {
				return fmt.Errorf("reference %q: %w", oldName, ErrNotFound)
			}
			return nil
		}
		if err := e.tag(oldName, newName); err != nil {
			return err
		}
		e.removeName(oldName)
		return nil
	})
}

// editor holds what a write changes, parsed from the fresh source.
type editor struct {
	src   *Source // opened under the lock
	index object  // index.json; nil for a legacy docker save
	ents  []object
	dock  []object // manifest.json entries, nil when there is none
	repos object   // repositories, nil when there is none

	indexDirty, dockDirty, reposDirty bool

	cfgDigests map[string]digest.Digest // config file -> digest, for manifest.json entries
}

// edit runs fn on the current state of the source, under its lock, and
// writes back what fn changed.
func (s *Source) edit(ctx context.Context, op string, fn func(*editor) error) error {
	err := s.withLock(ctx, func(fresh *Source, l *writeLock) error {
		e, err := newEditor(fresh)
		if err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
		return e.commit(ctx, l)
	})
	if err != nil {
		return fmt.Errorf("%s %s: %w", op, s.Path, err)
	}
	return nil
}

// withLock takes the write lock and opens the source afresh under it.
// A source reached through a symbolic link is written where the link
// points: the link stays a link.
func (s *Source) withLock(ctx context.Context, fn func(*Source, *writeLock) error) error {
	path, err := filepath.EvalSymlinks(s.Path)
	if err != nil {
		return err
	}
	l, err := lockSource(ctx, path)
	if err != nil {
		return err
	}
	defer l.unlock()
	crashPoint("locked")
	fresh, err := openFresh(ctx, path, s.opts)
	if err != nil {
		return err
	}
	defer fresh.close()
	if fresh.st.archive == nil {
		removeStaleTemps(path, ".")
		blobs, _ := os.ReadDir(filepath.Join(path, "blobs"))
		for _, a := range blobs {
			if a.IsDir() {
				removeStaleTemps(filepath.Join(path, "blobs", a.Name()), tempMark)
			}
		}
	} else {
		removeStaleTemps(filepath.Dir(path), "."+filepath.Base(path)+tempMark)
	}
	return fn(fresh, l)
}

// openFresh opens the source under the write lock. Peers that write
// index.json in place, without a lock (skopeo, oras, ggcr), leave it
// truncated while they write: an unparsable index.json or manifest.json is
// read again for a while before it counts as broken.
func openFresh(ctx context.Context, path string, o Options) (*Source, error) {
	for attempt := 0; ; attempt++ {
		s, err := open(ctx, path, o)
		if err == nil || attempt >= 40 || !errors.Is(err, ErrInvalid) {
			return s, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// OpenForWrite returns a handle on the source at path for the write
// methods (Tag, Untag, Rename, PutBlob, GC) without reading it: each write
// reads the source under its lock anyway. Its read methods serve nothing.
func OpenForWrite(path string, o Options) *Source {
	return &Source{Path: path, opts: o, Files: map[string][]byte{}, blobs: map[digest.Digest][]byte{}, warned: map[string]bool{}}
}

// close lets go of the open files of a source opened for one write.
func (s *Source) close() {
	if s.st == nil {
		return
	}
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	for _, f := range s.st.files {
		f.Close()
	}
	s.st.files = map[string]*os.File{}
	if s.st.archive != nil {
		if c, ok := s.st.archive.Data.(io.Closer); ok {
			c.Close()
		}
	}
}

func newEditor(src *Source) (*editor, error) {
	e := &editor{src: src}
	if src.Kind != KindDockerLegacy {
		if err := json.Unmarshal(src.Files["index.json"], &e.index); err != nil {
			return nil, fmt.Errorf("%w: index.json: %v", ErrInvalid, err)
		}
		var ents []object
		if _, err := e.index.get("manifests", &ents); err != nil {
			return nil, fmt.Errorf("%w: index.json manifests: %v", ErrInvalid, err)
		}
		e.ents = ents
	}
	if b, ok := src.Files["manifest.json"]; ok {
		if err := json.Unmarshal(b, &e.dock); err != nil {
			return nil, fmt.Errorf("%w: manifest.json: %v", ErrInvalid, err)
		}
		if e.dock == nil {
			e.dock = []object{}
		}
	}
	if b, ok := src.Files["repositories"]; ok {
		if err := json.Unmarshal(b, &e.repos); err != nil {
			// Not ours to fix: leave it as it is.
			e.repos = nil
			src.warn("repositories: %v: left as it is", err)
		}
	}
	return e, nil
}

func (e *editor) docker() bool { return e.src.Kind == KindDockerSave || e.src.Kind == KindDockerLegacy }
func (e *editor) legacy() bool { return e.src.Kind == KindDockerLegacy }

func annotations(o object) object {
	var a object
	o.get("annotations", &a)
	return a
}

func entryDigest(o object) digest.Digest { return digest.Digest(o.str("digest")) }

// lookupName returns the descriptors name points at, as index.json
// entries (or built from the source's resolution for RepoTags).
func (e *editor) lookupName(name string) []object {
	var out []object
	if !e.legacy() {
		for _, o := range e.ents {
			if annotations(o).str(ocispec.AnnotationRefName) == name {
				out = append(out, o.clone())
			}
		}
		if len(out) > 0 {
			return out
		}
	}
	if r, ok := e.src.Ref(name); ok {
		for _, d := range r.Descs {
			out = append(out, descObject(d))
		}
	}
	return out
}

func descObject(d ocispec.Descriptor) object {
	var o object
	o.set("mediaType", d.MediaType)
	o.set("digest", d.Digest)
	o.set("size", d.Size)
	if d.Platform != nil {
		o.set("platform", d.Platform)
	}
	if d.ArtifactType != "" {
		o.set("artifactType", d.ArtifactType)
	}
	return o
}

func objectDesc(o object) ocispec.Descriptor {
	var d ocispec.Descriptor
	b, _ := json.Marshal(o)
	json.Unmarshal(b, &d)
	return d
}

// resolveTarget finds what target (a name or a digest) points at.
func (e *editor) resolveTarget(target string) ([]object, error) {
	if d, err := digest.Parse(target); err == nil && strings.Contains(target, ":") {
		if _, ok := e.src.Ref(target); !ok {
			return e.resolveDigest(d)
		}
	}
	out := e.lookupName(target)
	if len(out) == 0 {
		return nil, fmt.Errorf("reference %q: %w", target, ErrNotFound)
	}
	return out, nil
}

func (e *editor) resolveDigest(d digest.Digest) ([]object, error) {
	for _, o := range e.ents {
		if entryDigest(o) == d {
			c := o.clone()
			c.del("annotations")
			return []object{c}, nil
		}
	}
	for _, m := range e.src.Manifests() {
		if m.Digest == d {
			m.Annotations = nil
			return []object{descObject(m)}, nil
		}
	}
	_, size, err := e.src.Blob(d)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", d, ErrNotFound)
	}
	n, err := e.src.Resolve(ocispec.Descriptor{Digest: d, Size: size})
	if err != nil {
		return nil, fmt.Errorf("%s is not a manifest or an index: %w", d, err)
	}
	mt := ocispec.MediaTypeImageManifest
	if n.Index != nil {
		mt = ocispec.MediaTypeImageIndex
		if n.Index.MediaType != "" {
			mt = n.Index.MediaType
		}
	} else if n.Manifest.MediaType != "" {
		mt = n.Manifest.MediaType
	}
	return []object{descObject(ocispec.Descriptor{MediaType: mt, Digest: d, Size: size})}, nil
}

func (e *editor) tag(target, name string) error {
	if !SafeRefName(name) {
		return fmt.Errorf("%w: reference name %q is unsafe as a path", ErrInvalid, name)
	}
	if e.legacy() && !dockerTagged(name) {
		return fmt.Errorf("%w: a legacy docker save names images by repo:tag in manifest.json, and %q is not one", ErrUnsupported, name)
	}
	descs, err := e.resolveTarget(target)
	if err != nil {
		return err
	}
	if target == name || e.alreadyNames(name, descs) {
		return nil // nothing moves: index.json stays byte for byte
	}
	e.removeName(name)
	if !e.legacy() {
		for _, d := range descs {
			e.addIndexName(d, name)
		}
	}
	if e.docker() && dockerTagged(name) {
		added := false
		for _, d := range descs {
			if e.addRepoTag(d, name) {
				added = true
			}
		}
		if !added && e.legacy() {
			return fmt.Errorf("%w: %s is not an image of manifest.json", ErrUnsupported, target)
		}
	}
	return nil
}

// alreadyNames reports whether name points at exactly the digests of descs,
// everywhere the source keeps names.
func (e *editor) alreadyNames(name string, descs []object) bool {
	have := e.lookupName(name)
	if len(have) != len(descs) || len(have) == 0 {
		return false
	}
	for i := range have {
		if entryDigest(have[i]) != entryDigest(descs[i]) {
			return false
		}
	}
	if e.docker() && dockerTagged(name) {
		// The name must be in RepoTags too, else tagging adds it there.
		for _, o := range e.dock {
			var tags []string
			o.get("RepoTags", &tags)
			if slices.Contains(tags, name) {
				return true
			}
		}
		return false
	}
	return true
}

// addIndexName names the descriptor d in index.json: the first untagged
// entry of its digest gets the name, else a new entry is appended.
func (e *editor) addIndexName(d object, name string) {
	e.indexDirty = true
	dg := entryDigest(d)
	for i, o := range e.ents {
		a := annotations(o)
		if entryDigest(o) == dg && a.str(ocispec.AnnotationRefName) == "" && a.str(annotationImageName) == "" {
			a.set(ocispec.AnnotationRefName, name)
			e.ents[i] = o.clone()
			e.ents[i].set("annotations", a)
			return
		}
	}
	n := d.clone()
	a := annotations(n).clone()
	a.del(ocispec.AnnotationRefName)
	a.del(annotationImageName)
	a.set(ocispec.AnnotationRefName, name)
	if e.src.Kind == KindDockerSave && dockerTagged(name) {
		a.set(annotationImageName, normalizeDockerRef(name))
	}
	n.set("annotations", a)
	e.ents = append(e.ents, n)
}

// addRepoTag adds name to the RepoTags of the manifest.json entries of the
// images d reaches, and to repositories. It reports whether any entry took
// it.
func (e *editor) addRepoTag(d object, name string) bool {
	ims, err := e.src.Images([]ocispec.Descriptor{objectDesc(d)})
	if err != nil {
		return false
	}
	cfgs := e.dockerConfigs()
	added := false
	for _, im := range ims {
		for i, cfg := range cfgs {
			if cfg != im.Manifest.Config.Digest {
				continue
			}
			var tags []string
			e.dock[i].get("RepoTags", &tags)
			if !slices.Contains(tags, name) {
				tags = append(tags, name)
				e.dock[i].set("RepoTags", tags)
				e.dockDirty = true
			}
			e.addRepository(i, name)
			added = true
		}
	}
	return added
}

// dockerConfigs returns the config digest of each manifest.json entry.
// Each config file is hashed once per write, however many entries name it.
func (e *editor) dockerConfigs() []digest.Digest {
	if e.cfgDigests == nil {
		e.cfgDigests = map[string]digest.Digest{}
	}
	out := make([]digest.Digest, len(e.dock))
	for i, o := range e.dock {
		name, err := cleanMember(o.str("Config"))
		if err != nil {
			continue
		}
		if d, ok := e.cfgDigests[name]; ok {
			out[i] = d
			continue
		}
		r, size, err := e.src.st.file(name)
		if err != nil {
			continue
		}
		if d, err := digest.FromReader(io.NewSectionReader(r, 0, size)); err == nil {
			out[i] = d
			e.cfgDigests[name] = d
		}
	}
	return out
}

// addRepository records repo:tag in the repositories file, pointing at the
// top layer of manifest.json entry i, as docker save does.
func (e *editor) addRepository(i int, name string) {
	if e.repos == nil {
		return
	}
	repo, tag := splitDockerTag(name)
	var layers []string
	e.dock[i].get("Layers", &layers)
	id := ""
	// The id another tag of the same image uses, else the top layer's.
	var tags []string
	e.dock[i].get("RepoTags", &tags)
	for _, t := range tags {
		r, tg := splitDockerTag(t)
		var m object
		if ok, _ := e.repos.get(r, &m); ok {
			if v := m.str(tg); v != "" {
				id = v
				break
			}
		}
	}
	if id == "" && len(layers) > 0 {
		top := layers[len(layers)-1]
		if dir := path.Dir(top); dir != "." && dir != "blobs/sha256" {
			id = path.Base(dir)
		} else {
			id = strings.TrimSuffix(path.Base(top), path.Ext(top))
		}
	}
	if id == "" {
		return
	}
	var m object
	e.repos.get(repo, &m)
	m.set(tag, id)
	e.repos.set(repo, m)
	e.reposDirty = true
}

// removeName removes every trace of name; it reports whether there was
// one.
func (e *editor) removeName(name string) bool {
	found := false
	if !e.legacy() {
		out := e.ents[:0:0]
		for _, o := range e.ents {
			a := annotations(o)
			named := a.str(ocispec.AnnotationRefName) != "" || a.str(annotationImageName) != ""
			hit := false
			if a.str(ocispec.AnnotationRefName) == name {
				a.del(ocispec.AnnotationRefName)
				hit = true
			}
			if dockerTagged(name) && a.str(annotationImageName) != "" && normalizeDockerRef(a.str(annotationImageName)) == normalizeDockerRef(name) && e.src.Kind == KindDockerSave {
				a.del(annotationImageName)
				hit = true
			}
			if !hit {
				out = append(out, o)
				continue
			}
			found = true
			e.indexDirty = true
			if named && a.str(ocispec.AnnotationRefName) == "" && a.str(annotationImageName) == "" {
				continue // the entry was there for its name: it goes with it
			}
			o = o.clone()
			if len(a) == 0 {
				o.del("annotations")
			} else {
				o.set("annotations", a)
			}
			out = append(out, o)
		}
		e.ents = out
	}
	if e.dock != nil {
		out := e.dock[:0:0]
		cfgs := e.dockerConfigs()
		for i, o := range e.dock {
			var tags []string
			o.get("RepoTags", &tags)
			if !slices.Contains(tags, name) {
				out = append(out, o)
				continue
			}
			found = true
			e.dockDirty = true
			tags = slices.DeleteFunc(tags, func(t string) bool { return t == name })
			if cfg := cfgs[i]; len(tags) == 0 && !e.indexReaches(cfg) && !e.isDockerParent(cfg) {
				continue // no name left and nothing else holds the image
			}
			o = o.clone()
			o.set("RepoTags", tags)
			out = append(out, o)
		}
		e.dock = out
	}
	if e.repos != nil && dockerTagged(name) {
		repo, tag := splitDockerTag(name)
		var m object
		if ok, _ := e.repos.get(repo, &m); ok && m.str(tag) != "" {
			m.del(tag)
			if len(m) == 0 {
				e.repos.del(repo)
			} else {
				e.repos.set(repo, m)
			}
			e.reposDirty = true
		}
	}
	return found
}

// isDockerParent reports whether another manifest.json entry names the
// image of config cfg as its Parent: docker load needs the parent loaded.
func (e *editor) isDockerParent(cfg digest.Digest) bool {
	for _, o := range e.dock {
		if cfg != "" && digest.Digest(o.str("Parent")) == cfg {
			return true
		}
	}
	return false
}

// indexReaches reports whether index.json (as edited) reaches an image
// whose config is cfg. A legacy save has no index.json of its own.
func (e *editor) indexReaches(cfg digest.Digest) bool {
	if e.legacy() || cfg == "" {
		return false
	}
	var descs []ocispec.Descriptor
	for _, o := range e.ents {
		descs = append(descs, objectDesc(o))
	}
	ims, err := e.src.Images(descs)
	if err != nil {
		return true // unknown: keep the image
	}
	for _, im := range ims {
		if im.Manifest.Config.Digest == cfg {
			return true
		}
	}
	return false
}

// Docker reference grammar (distribution/reference), enough to tell a
// repo:tag that docker and skopeo accept in RepoTags.
var dockerTagRE = func() *regexp.Regexp {
	label := `[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?`
	domain := `(?:` + label + `(?:\.` + label + `)*(?::[0-9]+)?/)?`
	comp := `[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*`
	return regexp.MustCompile(`^` + domain + comp + `(?:/` + comp + `)*:[\w][\w.-]{0,127}$`)
}()

// dockerTagged reports whether name is a docker repo:tag reference.
func dockerTagged(name string) bool { return len(name) <= 255 && dockerTagRE.MatchString(name) }

func splitDockerTag(name string) (repo, tag string) {
	i := strings.LastIndexByte(name, ':')
	return name[:i], name[i+1:]
}

func cleanMember(name string) (string, error) {
	c, err := tarindex.CleanName(name)
	if err == nil && c == "" {
		err = fmt.Errorf("%w: empty path", ErrInvalid)
	}
	return c, err
}

// files returns the top-level files the edit changed, with their new
// bytes.
func (e *editor) files() (map[string][]byte, error) {
	out := map[string][]byte{}
	if e.indexDirty {
		ents := e.ents
		if ents == nil {
			ents = []object{}
		}
		if err := e.index.set("manifests", ents); err != nil {
			return nil, err
		}
		b, err := json.Marshal(e.index)
		if err != nil {
			return nil, err
		}
		out["index.json"] = b
	}
	if e.dockDirty {
		b, err := json.Marshal(e.dock)
		if err != nil {
			return nil, err
		}
		out["manifest.json"] = b
	}
	if e.reposDirty {
		b, err := json.Marshal(e.repos)
		if err != nil {
			return nil, err
		}
		out["repositories"] = b
	}
	return out, nil
}

// commit writes what changed: for a directory, each changed file replaced
// atomically (index.json last) and removed blobs; for a tarball, a new
// archive renamed over the old one.
func (e *editor) commit(ctx context.Context, l *writeLock) error {
	files, err := e.files()
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return nil
	}
	if e.src.st.archive == nil {
		return e.commitDir(files)
	}
	return rewriteArchive(ctx, l.f, e.src, files, nil, nil)
}

func (e *editor) commitDir(files map[string][]byte) error {
	dir := e.src.Path
	for _, name := range []string{"manifest.json", "repositories", "index.json"} {
		if b, ok := files[name]; ok {
			if err := writeFileAtomic(dir, name, b); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeFileAtomic replaces dir/name with b: a temporary file in dir,
// fsync, rename, fsync of dir. The file keeps its mode.
func writeFileAtomic(dir, name string, b []byte) (err error) {
	mode := os.FileMode(0o644)
	if st, err := os.Stat(filepath.Join(dir, name)); err == nil {
		mode = st.Mode().Perm()
	}
	f, err := os.CreateTemp(dir, "."+name+tempMark+"*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err = f.Write(b); err != nil {
		return err
	}
	crashPoint(name + ":temp-written")
	if err = f.Chmod(mode); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	crashPoint(name + ":temp-synced")
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return err
	}
	crashPoint(name + ":renamed")
	if err := syncDir(dir); err != nil {
		return err
	}
	crashPoint(name + ":dir-synced")
	return nil
}

// putBlobDir writes a blob into a layout directory: a temporary file in
// blobs/<alg>/, its digest checked, then renamed into place.
func putBlobDir(dir string, d digest.Digest, r io.Reader) (err error) {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("%w: digest %q: %v", ErrInvalid, d, err)
	}
	algDir := filepath.Join(dir, "blobs", d.Algorithm().String())
	final := filepath.Join(algDir, d.Encoded())
	if _, err := os.Stat(final); err == nil {
		return nil
	}
	if err := os.MkdirAll(algDir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(algDir, tempMark+"*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	v := d.Verifier()
	if _, err = io.Copy(io.MultiWriter(f, v), r); err != nil {
		return err
	}
	crashPoint("blob:temp-written")
	if !v.Verified() {
		return fmt.Errorf("%w: the bytes given for %s hash to something else", ErrDigest, d)
	}
	if err = f.Chmod(0o444); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, final); err != nil {
		return err
	}
	crashPoint("blob:renamed")
	return syncDir(algDir)
}

// PutBlob adds the blob d, read from r, to the source; the bytes must hash
// to d. It is how new blobs reach the source before index.json names them.
// A tarball is rewritten with the blob appended.
func (s *Source) PutBlob(ctx context.Context, d digest.Digest, r io.Reader) error {
	err := s.withLock(ctx, func(fresh *Source, l *writeLock) error {
		if fresh.st.archive == nil {
			return putBlobDir(fresh.Path, d, r)
		}
		if _, _, err := fresh.st.blob(d); err == nil {
			return nil
		}
		return putBlobArchive(ctx, l, fresh, d, r)
	})
	if err != nil {
		return fmt.Errorf("put blob %s into %s: %w", d, s.Path, err)
	}
	return nil
}
