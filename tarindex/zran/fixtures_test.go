package zran

import (
	"archive/tar"
	"io"
	"os"
	"strings"
	"testing"
)

const fixtures = "/work/shared/fixtures/real/"

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(fixtures + name)
	if err != nil {
		t.Skipf("SKIP: fixture %s unavailable: %v", name, err)
	}
	return b
}

// TestFixtureLayers checks the gzip layers of a real docker-save tarball.
func TestFixtureLayers(t *testing.T) {
	f, err := os.Open(fixtures + "A-dive-kaniko-ggcr-tarball.tar")
	if err != nil {
		t.Skipf("SKIP: fixture unavailable: %v", err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	layers := 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(h.Name, ".tar.gz") {
			continue
		}
		gz, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		layers++
		t.Run(h.Name[:12], func(t *testing.T) {
			checkStream(t, gz, 1, int64(layers))
			checkStream(t, gz, 0, int64(layers))
		})
	}
	if layers != 14 {
		t.Fatalf("found %d layers, want 14", layers)
	}
}

func TestFixtureOCIArchive(t *testing.T) {
	gz := readFixture(t, "C-skopeo-oci-archive-name-only.tar.gz")
	checkStream(t, gz, 1, 1)
}
