package fs

import (
	"fmt"
	iofs "io/fs"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/layoutfs/layoutfs/layout"
	"github.com/layoutfs/layoutfs/tarindex"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// imageDir is one image: its raw manifest and config, each layer's own
// tree, the merged rootfs, and the titled files of an artifact.
func (t *tree) imageDir(im *layout.Image) *lazyDir {
	return t.dir(func() ([]Dirent, error) {
		m := im.Manifest
		ents := []Dirent{
			{Name: "manifest.json", Node: t.bytes(im.Raw)},
			{Name: "config.json", Node: &lazyFile{
				attr: Attr{Ino: t.ino.one(), Mode: 0o444, Nlink: 1, Size: t.blobSize(m.Config), Mtime: t.mtime},
				load: func() ([]byte, error) {
					b, err := t.src.Config(im)
					if err != nil {
						t.warn(err.Error())
					}
					return b, err
				},
			}},
		}
		var tarLayers []ocispec.Descriptor
		var layerEnts []Dirent
		width := len(fmt.Sprint(len(m.Layers) - 1))
		width = max(width, 2)
		files := map[string]Node{}
		for i, l := range m.Layers {
			if title, ok := l.Annotations[layout.AnnotationTitle]; ok {
				t.addArtifactFile(files, im, l, title)
				continue
			}
			if !layout.IsTarLayer(l) {
				continue
			}
			tarLayers = append(tarLayers, l)
			layerEnts = append(layerEnts, Dirent{Name: fmt.Sprintf("%0*d", width, i), Node: t.layerRoot(l)})
		}
		ents = append(ents, Dirent{Name: "layers", Node: t.dir(func() ([]Dirent, error) { return layerEnts, nil })})
		if len(tarLayers) > 0 || len(m.Layers) == 0 {
			var rootfs Node = t.rootfsRoot(im.Desc.Digest, tarLayers)
			if t.live != nil && t.live.opts.UpperDir != "" {
				rootfs = t.live.rwRootfs(im.Desc.Digest, rootfs.(Dir))
			}
			ents = append(ents, Dirent{Name: "rootfs", Node: rootfs})
		}
		if len(files) > 0 {
			ents = append(ents, Dirent{Name: "files", Node: t.pathsDir(files)})
		}
		return ents, nil
	})
}

// addArtifactFile files an artifact layer under its title, a relative path
// as `oras pull` would write it. Titles that climb out, or name a file
// twice, are skipped with a warning.
func (t *tree) addArtifactFile(files map[string]Node, im *layout.Image, l ocispec.Descriptor, title string) {
	name, err := tarindex.CleanName(title)
	if err != nil || name == "" {
		t.warn(fmt.Sprintf("artifact %s: file title %q is unsafe as a path: skipped", im.Desc.Digest, title))
		return
	}
	if _, dup := files[name]; dup {
		t.warn(fmt.Sprintf("artifact %s: a second file titled %q: the first is shown", im.Desc.Digest, name))
		return
	}
	f, err := t.blobFile(l.Digest, "files/"+name)
	if err != nil {
		t.warn(err.Error())
		return
	}
	files[name] = f
}

// pathsDir lays out nodes keyed by slash-separated relative paths as
// nested directories. A path that would have to pass through a file is
// dropped.
func (t *tree) pathsDir(nodes map[string]Node) *lazyDir {
	return t.dir(func() ([]Dirent, error) {
		here := map[string]Node{}
		below := map[string]map[string]Node{}
		for p, n := range nodes {
			first, rest, nested := strings.Cut(p, "/")
			if !nested {
				here[first] = n
				continue
			}
			if below[first] == nil {
				below[first] = map[string]Node{}
			}
			below[first][rest] = n
		}
		var ents []Dirent
		for name, n := range here {
			if _, clash := below[name]; clash {
				t.warn(fmt.Sprintf("files/: %q is both a file and a directory: the file is shown", name))
			}
			ents = append(ents, Dirent{Name: name, Node: n})
		}
		for name, sub := range below {
			if _, clash := here[name]; !clash {
				ents = append(ents, Dirent{Name: name, Node: t.pathsDir(sub)})
			}
		}
		return ents, nil
	})
}

// blobSize is a blob's real size, which a descriptor may misstate.
func (t *tree) blobSize(d ocispec.Descriptor) int64 {
	if _, size, err := t.src.Blob(d.Digest); err == nil {
		return size
	}
	return d.Size
}

// treeRoot is the root directory of a layer or rootfs tree; the tree is
// built when first looked into, not when its parent is listed.
type treeRoot struct {
	attr  Attr
	build func() (*ftree, error)
	alloc *inos

	once sync.Once
	v    *view
	err  error
}

func (t *tree) newTreeRoot(build func() (*ftree, error)) *treeRoot {
	return &treeRoot{attr: Attr{Ino: t.ino.one(), Mode: iofs.ModeDir | 0o755, Nlink: 1, Mtime: t.mtime}, build: build, alloc: t.ino}
}

func (r *treeRoot) Attr() Attr { return r.attr }

func (r *treeRoot) root() (*viewDir, error) {
	r.once.Do(func() {
		ft, err := r.build()
		if err != nil {
			r.err = err
			return
		}
		r.v = &view{t: ft, ino: r.alloc.reserve(ft.size())}
	})
	if r.err != nil {
		return nil, r.err
	}
	return &viewDir{v: r.v, i: 0}, nil
}

func (r *treeRoot) Lookup(name string) (Node, error) {
	d, err := r.root()
	if err != nil {
		return nil, err
	}
	return d.Lookup(name)
}

func (r *treeRoot) ReadDir() ([]Dirent, error) {
	d, err := r.root()
	if err != nil {
		return nil, err
	}
	return d.ReadDir()
}

func (t *tree) layerRoot(desc ocispec.Descriptor) *treeRoot {
	return t.newTreeRoot(func() (*ftree, error) {
		s, err := t.layer(desc)
		if err != nil {
			return nil, err
		}
		tree, _ := s.layerTree()
		return tree, nil
	})
}

// rootfsRoot is an image's merged tree; its views under tags/ and
// manifests/ share one.
func (t *tree) rootfsRoot(image digest.Digest, layers []ocispec.Descriptor) *treeRoot {
	return t.newTreeRoot(func() (*ftree, error) {
		return t.roots.Get(image, func() (*ftree, error) { return t.mergedTree(layers) })
	})
}

// mergedTree indexes the layers in parallel, then applies them in order.
func (t *tree) mergedTree(layers []ocispec.Descriptor) (*ftree, error) {
	slots := make([]*layerSlot, len(layers))
	errs := make([]error, len(layers))
	var wg sync.WaitGroup
	// As many layers at once as there are CPUs to index them: a manifest
	// may list thousands, each pass holding its buffers.
	busy := make(chan struct{}, runtime.GOMAXPROCS(0))
	for i, l := range layers {
		wg.Add(1)
		busy <- struct{}{}
		go func() {
			defer func() { <-busy; wg.Done() }()
			slots[i], errs[i] = t.layer(l)
		}()
	}
	wg.Wait()
	archives := make([]*tarindex.Archive, len(layers))
	for i, s := range slots {
		if errs[i] != nil {
			return nil, fmt.Errorf("rootfs: %w", errs[i])
		}
		archives[i] = s.archive
	}
	key := treeKey(layers)
	if ft, ok := loadTree(archives, key); ok {
		return ft, nil
	}
	trees := make([]*ftree, len(layers))
	dangling := make([][]int32, len(layers))
	for i, s := range slots {
		trees[i], dangling[i] = s.mergeInput()
	}
	ft := mergeLayers(archives, trees, dangling)
	if err := storeTree(ft, key); err != nil {
		t.warn(fmt.Sprintf("rootfs cache: %v (going on without it)", err))
	}
	// The merge leaves its map-based builders as garbage, as large as the
	// tree: hand the memory back now rather than when the scavenger gets
	// to it, so a daemon's RSS is what it keeps.
	go debug.FreeOSMemory()
	return ft, nil
}
