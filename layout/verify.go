package layout

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/layoutfs/layoutfs/tarindex"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Problem is one thing Verify found wrong, or worth a note.
type Problem struct {
	// Note is true for what is not an error: a platform manifest absent
	// from a partial multi-platform layout.
	Note bool `json:"note,omitempty"`
	// Kind is one of "digest", "size", "missing", "invalid", "layer",
	// "partial".
	Kind string `json:"kind"`
	// Blob is the digest (or the file, for docker manifest.json entries)
	// the problem is about.
	Blob string `json:"blob"`
	// Via is how the blob is reached: the reference, then each descriptor
	// on the way.
	Via     string `json:"via,omitempty"`
	Message string `json:"message"`
}

func (p Problem) String() string {
	sev := "error"
	if p.Note {
		sev = "note"
	}
	s := fmt.Sprintf("%s: %s: %s", sev, p.Blob, p.Message)
	if p.Via != "" {
		s += " (via " + p.Via + ")"
	}
	return s
}

// VerifyReport is what Verify found.
type VerifyReport struct {
	Blobs       int       `json:"blobs"`       // blobs hashed
	Descriptors int       `json:"descriptors"` // descriptors followed
	Layers      int       `json:"layers"`      // layers indexed
	Problems    []Problem `json:"problems"`
}

// OK reports whether nothing but notes was found.
func (r *VerifyReport) OK() bool {
	for _, p := range r.Problems {
		if !p.Note {
			return false
		}
	}
	return true
}

// Errors counts the problems that are not notes.
func (r *VerifyReport) Errors() int {
	n := 0
	for _, p := range r.Problems {
		if !p.Note {
			n++
		}
	}
	return n
}

type verifier struct {
	s      *Source
	ctx    context.Context
	rep    *VerifyReport
	hashed map[digest.Digest]error // digest check result of each blob hashed
	seen   map[string]bool         // descriptors already followed, by digest and role
}

// Verify checks the whole source: every descriptor reachable from
// index.json (and a docker manifest.json) resolves to a blob of the size
// it states, every blob present hashes to its digest, every manifest and
// index parses, and every layer indexes cleanly; a malformed index.json or
// manifest.json that Open served around is an error. Manifests an index lists
// but the source lacks are notes (a partial multi-platform layout), not
// errors.
func (s *Source) Verify(ctx context.Context) *VerifyReport {
	v := &verifier{s: s, ctx: ctx, rep: &VerifyReport{Problems: []Problem{}}, hashed: map[digest.Digest]error{}, seen: map[string]bool{}}
	// A malformed index.json or manifest.json that open served around is
	// damage all the same.
	for _, b := range s.broken {
		v.add(Problem{Kind: "invalid", Blob: b.name, Message: fmt.Sprintf("malformed: %v (%s)", b.err, b.how)})
	}
	names := map[digest.Digest]string{}
	for _, r := range s.refs {
		for _, d := range r.Descs {
			if _, ok := names[d.Digest]; !ok {
				names[d.Digest] = "tags/" + r.Name
			}
		}
	}
	for i, d := range s.index.Manifests {
		via := names[d.Digest]
		if via == "" {
			via = fmt.Sprintf("index.json manifests[%d]", i)
		}
		v.node(d, via, 0, map[digest.Digest]bool{}, false)
	}
	for _, d := range s.extra {
		v.node(d, "manifest.json", 0, map[digest.Digest]bool{}, false)
	}
	v.dockerFiles()
	for _, d := range s.st.list() {
		if ctx.Err() != nil {
			break
		}
		v.hash(d, "blobs/"+d.Algorithm().String()+"/"+d.Encoded(), "")
	}
	return v.rep
}

func (v *verifier) add(p Problem) { v.rep.Problems = append(v.rep.Problems, p) }

// blob checks that the blob of d exists, has d's size and hashes to d. It
// returns its reader when it exists.
func (v *verifier) blob(d ocispec.Descriptor, via string, partialOK bool) (io.ReaderAt, int64, bool) {
	v.rep.Descriptors++
	if err := d.Digest.Validate(); err != nil {
		v.add(Problem{Kind: "invalid", Blob: string(d.Digest), Via: via, Message: fmt.Sprintf("invalid digest: %v", err)})
		return nil, 0, false
	}
	r, size, err := v.s.st.blob(d.Digest)
	if err != nil {
		if IsNotFound(err) && partialOK {
			v.add(Problem{Note: true, Kind: "partial", Blob: d.Digest.String(), Via: via, Message: fmt.Sprintf("%s missing (partial layout)", platformName(d.Platform))})
			return nil, 0, false
		}
		kind := "invalid"
		if IsNotFound(err) {
			kind = "missing"
		}
		v.add(Problem{Kind: kind, Blob: d.Digest.String(), Via: via, Message: err.Error()})
		return nil, 0, false
	}
	if d.Size != size {
		v.add(Problem{Kind: "size", Blob: d.Digest.String(), Via: via, Message: fmt.Sprintf("descriptor says %d bytes, blob has %d", d.Size, size)})
	}
	ok := v.hash(d.Digest, d.Digest.String(), via) == nil
	return r, size, ok
}

// hash checks a blob against its digest, once.
func (v *verifier) hash(d digest.Digest, name, via string) error {
	if err, done := v.hashed[d]; done {
		return err
	}
	r, size, err := v.s.st.blob(d)
	if err == nil {
		v.rep.Blobs++
		ver := d.Verifier()
		if _, err = io.Copy(ver, io.NewSectionReader(r, 0, size)); err == nil && !ver.Verified() {
			got, _ := d.Algorithm().FromReader(io.NewSectionReader(r, 0, size))
			err = fmt.Errorf("%w: content hashes to %s", ErrDigest, got)
			v.add(Problem{Kind: "digest", Blob: name, Via: via, Message: err.Error()})
		} else if err != nil {
			v.add(Problem{Kind: "invalid", Blob: name, Via: via, Message: fmt.Sprintf("read: %v", err)})
		}
	}
	v.hashed[d] = err
	return err
}

// node checks a manifest or index descriptor and what it reaches.
func (v *verifier) node(d ocispec.Descriptor, via string, depth int, path map[digest.Digest]bool, partialOK bool) {
	if v.ctx.Err() != nil {
		return
	}
	key := "node " + string(d.Digest)
	if v.seen[key] {
		return
	}
	if path[d.Digest] {
		v.add(Problem{Kind: "invalid", Blob: d.Digest.String(), Via: via, Message: ErrCycle.Error() + ": the index includes itself"})
		return
	}
	if depth > maxNesting {
		v.add(Problem{Kind: "invalid", Blob: d.Digest.String(), Via: via, Message: fmt.Sprintf("indexes nested deeper than %d", maxNesting)})
		return
	}
	v.seen[key] = true
	r, size, _ := v.blob(d, via, partialOK)
	if r == nil {
		return
	}
	raw, err := readAll(r, size, maxBlobJSON, d.Digest.String())
	if err != nil {
		v.add(Problem{Kind: "invalid", Blob: d.Digest.String(), Via: via, Message: err.Error()})
		return
	}
	isIndex, isManifest := isIndexType(d.MediaType), isManifestType(d.MediaType)
	if !isIndex && !isManifest {
		isIndex, isManifest = sniffKind(raw)
	}
	here := via + " > " + short(d.Digest)
	switch {
	case isIndex:
		var idx ocispec.Index
		if err := json.Unmarshal(raw, &idx); err != nil {
			v.add(Problem{Kind: "invalid", Blob: d.Digest.String(), Via: via, Message: fmt.Sprintf("index: %v", err)})
			return
		}
		path[d.Digest] = true
		for _, c := range idx.Manifests {
			v.node(c, here, depth+1, path, true)
		}
		delete(path, d.Digest)
	case isManifest:
		var m ocispec.Manifest
		if err := json.Unmarshal(raw, &m); err != nil {
			v.add(Problem{Kind: "invalid", Blob: d.Digest.String(), Via: via, Message: fmt.Sprintf("manifest: %v", err)})
			return
		}
		v.config(m.Config, here+" config")
		for i, l := range m.Layers {
			v.layer(l, fmt.Sprintf("%s layer %d", here, i))
		}
	default:
		v.add(Problem{Kind: "invalid", Blob: d.Digest.String(), Via: via, Message: fmt.Sprintf("media type %q is neither a manifest nor an index", d.MediaType)})
	}
}

func (v *verifier) config(d ocispec.Descriptor, via string) {
	if v.seen["config "+string(d.Digest)] {
		return
	}
	v.seen["config "+string(d.Digest)] = true
	r, size, ok := v.blob(d, via, false)
	if r == nil || !ok {
		return
	}
	raw, err := readAll(r, size, maxBlobJSON, d.Digest.String())
	if err == nil && !json.Valid(raw) {
		err = fmt.Errorf("config is not JSON")
	}
	if err != nil {
		v.add(Problem{Kind: "invalid", Blob: d.Digest.String(), Via: via, Message: err.Error()})
	}
}

// layer checks a layer blob and, for a filesystem layer whose digest
// holds, that it indexes without errors or skipped entries.
func (v *verifier) layer(d ocispec.Descriptor, via string) {
	if v.seen["layer "+string(d.Digest)] {
		return
	}
	v.seen["layer "+string(d.Digest)] = true
	r, size, ok := v.blob(d, via, false)
	if r == nil || !ok || !IsTarLayer(d) {
		return
	}
	v.rep.Layers++
	ctx := tarindex.WithLimit(v.ctx, v.s.opts.limit(size))
	// A full pass, not a table of contents: verify checks the tar stream
	// itself, which is what extraction would see.
	a, err := tarindex.Open(ctx, r, size, d.Digest.String(), tarindex.Options{NoTOC: true})
	if err != nil {
		v.add(Problem{Kind: "layer", Blob: d.Digest.String(), Via: via, Message: err.Error()})
		return
	}
	for _, w := range a.Warnings {
		v.add(Problem{Kind: "layer", Blob: d.Digest.String(), Via: via, Message: w})
	}
}

// dockerFiles checks that each file a docker manifest.json names is in
// the archive (the graph walk covers them only when they resolved).
func (v *verifier) dockerFiles() {
	raw, ok := v.s.Files["manifest.json"]
	if !ok || v.s.isBroken("manifest.json") {
		return
	}
	var entries []dockerEntry
	if err := json.Unmarshal(raw, &entries); err != nil {
		v.add(Problem{Kind: "invalid", Blob: "manifest.json", Message: err.Error()})
		return
	}
	for i, e := range entries {
		via := fmt.Sprintf("manifest.json entry %d", i)
		if len(e.RepoTags) > 0 {
			via += " (" + strings.Join(e.RepoTags, ", ") + ")"
		}
		for _, name := range append([]string{e.Config}, e.Layers...) {
			clean, err := tarindex.CleanName(name)
			if err == nil {
				_, _, err = v.s.st.file(clean)
			}
			if err != nil {
				kind := "invalid"
				if IsNotFound(err) {
					kind = "missing"
				}
				v.add(Problem{Kind: kind, Blob: name, Via: via, Message: err.Error()})
			}
		}
	}
}

func short(d digest.Digest) string {
	if enc := d.Encoded(); len(enc) > 12 {
		return d.Algorithm().String() + ":" + enc[:12]
	}
	return string(d)
}

// SortProblems orders problems errors first, then by blob.
func SortProblems(ps []Problem) {
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].Note != ps[j].Note {
			return !ps[i].Note
		}
		return ps[i].Blob < ps[j].Blob
	})
}
