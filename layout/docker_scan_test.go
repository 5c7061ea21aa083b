package layout

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestFindManifestByConfigScansOnce: looking up the manifests of a docker
// save's manifest.json entries by config (Docker 25.0's "manifests": null
// save, and a Docker 25+ save whose index.json is damaged) reads the small
// blobs once per open, not once per entry: 2,000 entries and 2,000 small
// blobs that are not manifests open in about the time of one scan, not
// entries × blobs reads (issue 5: "never a hang"). The save's own
// manifests are still found, one that does not hash to its name is not
// taken, and the blobs read are not all kept.
func TestFindManifestByConfigScansOnce(t *testing.T) {
	const entries, junk, own = 2000, 2000, 10
	dir := t.TempDir()
	write := func(name string, b []byte) {
		t.Helper()
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	blob := func(b []byte) digest.Digest {
		d := digest.FromBytes(b)
		write("blobs/sha256/"+d.Encoded(), b)
		return d
	}
	manifestOf := func(cfg digest.Digest, size int) []byte {
		b, _ := json.Marshal(ocispec.Manifest{
			Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
			Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: cfg, Size: int64(size)},
			Layers: []ocispec.Descriptor{},
		})
		return b
	}
	type entry struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	var list []entry
	var configs, ownManifests []digest.Digest
	for i := range entries {
		cfg := fmt.Appendf(nil, `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"config":{"Env":["N=%d"]}}`, i)
		cd := blob(cfg)
		configs = append(configs, cd)
		list = append(list, entry{Config: "blobs/sha256/" + cd.Encoded(), Layers: []string{}})
		switch {
		case i < own: // the save's own manifest, for the lookup to find
			ownManifests = append(ownManifests, blob(manifestOf(cd, len(cfg))))
		case i == own: // a manifest that does not hash to its name
			write("blobs/sha256/"+digest.FromString("forged").Encoded(), manifestOf(cd, len(cfg)))
		}
	}
	for i := range junk {
		switch i % 3 {
		case 0: // not JSON
			blob(fmt.Appendf(nil, "junk %d\x00\xff", i))
		case 1: // JSON, not a manifest
			blob(fmt.Appendf(nil, `{"n":%d,"layers":"none"}`, i))
		default: // an index
			blob(fmt.Appendf(nil, `{"schemaVersion":2,"manifests":[],"annotations":{"n":"%d"}}`, i))
		}
	}
	mj, err := json.Marshal(list)
	if err != nil {
		t.Fatal(err)
	}
	write("manifest.json", mj)
	write("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))

	for _, tc := range []struct {
		label string
		index string
	}{
		{"docker 25.0 manifests null", `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":null}`},
		{"index.json truncated", `{"schemaVersion":2,"mediaType":"application/vnd.oci.i`},
	} {
		t.Run(tc.label, func(t *testing.T) {
			write("index.json", []byte(tc.index))
			start := time.Now()
			s, err := openPath(context.Background(), dir, Options{})
			took := time.Since(start)
			if err != nil {
				t.Fatal(err)
			}
			defer s.close()
			if took > 5*time.Second {
				t.Errorf("open took %v", took)
			}
			if s.manifestScans != 1 {
				t.Errorf("%d scans of the blobs for manifests, want 1", s.manifestScans)
			}
			if len(s.blobs) > own {
				t.Errorf("%d blobs kept parsed after open, want at most the %d manifests found", len(s.blobs), own)
			}
			// Each entry's manifest, as Manifests serves them, by config.
			byConfig := map[digest.Digest]digest.Digest{}
			for _, d := range s.Manifests() {
				n, err := s.Resolve(d)
				if err != nil || n.Manifest == nil {
					t.Fatalf("manifest %s: %v", d.Digest, err)
				}
				byConfig[n.Manifest.Config.Digest] = d.Digest
			}
			if len(byConfig) != entries {
				t.Errorf("manifests of %d configs, want one per entry (%d)", len(byConfig), entries)
			}
			for i, d := range ownManifests {
				if got := byConfig[configs[i]]; got != d {
					t.Errorf("entry %d: manifest %s, want the save's own %s", i, got, d)
				}
			}
			if got := byConfig[configs[own]]; got == "" || got == digest.FromString("forged") {
				t.Errorf("entry %d: manifest %q, want one made, not the blob that does not hash to its name", own, got)
			}
			t.Logf("opened in %v", took)
		})
	}
}
