package layout

import (
	"encoding/json"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Docker media types, read as their OCI counterparts.
const (
	mediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerConfig   = "application/vnd.docker.container.image.v1+json"
	mediaTypeDockerLayer    = "application/vnd.docker.image.rootfs.diff.tar.gzip"
)

// AnnotationTitle names a file in an ORAS artifact.
const AnnotationTitle = ocispec.AnnotationTitle

func isIndexType(mt string) bool {
	return mt == ocispec.MediaTypeImageIndex || mt == mediaTypeDockerList
}

func isManifestType(mt string) bool {
	return mt == ocispec.MediaTypeImageManifest || mt == mediaTypeDockerManifest
}

// sniffKind tells an index from a manifest by content, for descriptors that
// carry no or an unknown media type.
func sniffKind(raw []byte) (index, manifest bool) {
	var probe struct {
		MediaType string          `json:"mediaType"`
		Manifests json.RawMessage `json:"manifests"`
		Layers    json.RawMessage `json:"layers"`
		Config    json.RawMessage `json:"config"`
	}
	if json.Unmarshal(raw, &probe) != nil {
		return false, false
	}
	switch {
	case isIndexType(probe.MediaType):
		return true, false
	case isManifestType(probe.MediaType):
		return false, true
	case probe.Manifests != nil:
		return true, false
	case probe.Config != nil:
		return false, true
	}
	return false, false
}
