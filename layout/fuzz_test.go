package layout_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"testing"
	"time"

	"github.com/layoutfs/layoutfs/internal/fuzzseed"
	"github.com/layoutfs/layoutfs/layout"
	digest "github.com/opencontainers/go-digest"
)

// FuzzOpenLayout opens an oci-archive whose index.json, manifest, config,
// layer and docker manifest.json come from the fuzzer (placeholders such
// as @M and #L become the digests and sizes of the blobs, so mutated
// inputs still form a graph; see fuzzseed.Images), then resolves every
// reference, image, config and layer and verifies the whole source. No
// panic, no hang, no read outside the archive, and whatever is returned
// without an error hashes to its digest.
func FuzzOpenLayout(f *testing.F) {
	for _, im := range fuzzseed.Images(fuzzseed.Dir, fuzzseed.MaxSeed()) {
		f.Add(im.Index, im.Manifest, im.Config, im.Layer, im.Docker, false)
	}
	f.Add([]byte(`{"schemaVersion":2,"manifests":null}`), []byte{}, []byte{}, []byte{}, []byte{}, false)
	f.Add([]byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"@M","size":#M}]}`),
		[]byte(`{"schemaVersion":2,"manifests":[{"digest":"@C","size":#C,"platform":{"os":"linux","architecture":"arm"}}]}`),
		[]byte(`{"schemaVersion":2,"config":{"digest":"@L","size":#L},"layers":[{"digest":"@L","size":#L}]}`), []byte{}, []byte{}, true)
	f.Add([]byte{}, []byte{}, []byte(`{"os":"linux","architecture":"amd64"}`), []byte{},
		[]byte(`[{"Config":"blobs/sha256/@c","RepoTags":["a:b","../x"],"Layers":["blobs/sha256/@l","x/../../y"]}]`), false)
	f.Fuzz(func(t *testing.T, index, manifest, config, layer, docker []byte, gzipped bool) {
		defer fuzzseed.Watchdog(20 * time.Second)()
		files := fuzzseed.Fill(index, manifest, config, layer, docker)
		if len(index) == 0 {
			delete(files, "index.json")
		}
		archive := fuzzseed.Tar(files)
		if gzipped {
			archive = gzipBytes(archive)
		}
		checkSource(t, archive)
	})
}

func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	zw := newGzipWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

func checkSource(t *testing.T, archive []byte) {
	ctx := context.Background()
	r := &fuzzseed.StrictReader{B: archive, Fail: t.Errorf}
	s, err := layout.OpenReaderAt(ctx, r, int64(len(archive)), "fuzz.tar", layout.Options{MaxLayerSize: 32 << 20})
	if err != nil {
		return
	}
	for _, ref := range s.Refs() {
		if !layout.SafeRefName(ref.Name) {
			t.Fatalf("unsafe ref %q served", ref.Name)
		}
		ims, err := s.Images(ref.Descs)
		if err != nil {
			continue
		}
		for _, im := range ims {
			if digest.FromBytes(im.Raw) != im.Desc.Digest {
				t.Fatalf("manifest %s served with bytes hashing to %s", im.Desc.Digest, digest.FromBytes(im.Raw))
			}
			if cfg, err := s.Config(im); err == nil && im.Manifest.Config.Digest.Algorithm().Available() && digest.FromBytes(cfg) != im.Manifest.Config.Digest {
				t.Fatalf("config %s served with bytes hashing to %s", im.Manifest.Config.Digest, digest.FromBytes(cfg))
			}
			for _, l := range im.Manifest.Layers {
				s.Layer(ctx, l)
			}
		}
	}
	for _, d := range s.Manifests() {
		s.Resolve(d)
	}
	s.Verify(ctx)
}

func newGzipWriter(w *bytes.Buffer) *gzip.Writer { return gzip.NewWriter(w) }
