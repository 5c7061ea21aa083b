package tests

// Regression tests for two hostile inputs that once broke layoutfs (a hang
// and a disk-filling decompression), fixed since; they run with the rest.

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/layoutfs/layoutfs/layout"

	lfs "github.com/layoutfs/layoutfs/fs"
)

// TestHostileSymlinkDoubling: fs/merge.go builder.follow once resolved
// each symlink of a path with hops+1 but did not share the count between
// siblings, so l0 -> l1/l1, l1 -> l2/l2, ..., l30 -> . cost 2^30 steps when
// a later layer wrote l0/file through the link (the daemon's lookup of
// rootfs never returned). Like the kernel, which counts every link
// followed during one resolution against its limit of 40 (ELOOP), follow
// now shares one count across the whole resolution.
func TestHostileSymlinkDoubling(t *testing.T) {
	for _, c := range []hCase{
		{name: "symlinks doubling at each level, written through", archive: func(t testing.TB) []byte {
			// l0 -> l1/l1, l1 -> l2/l2, ... l30 -> . : resolving l0 one
			// level at a time without a shared hop count takes 2^30 steps.
			var hdrs []*tar.Header
			for i := range 30 {
				hdrs = append(hdrs, &tar.Header{Name: "l" + strconv.Itoa(i), Typeflag: tar.TypeSymlink, Linkname: fmt.Sprintf("l%d/l%d", i+1, i+1)})
			}
			hdrs = append(hdrs, &tar.Header{Name: "l30", Typeflag: tar.TypeSymlink, Linkname: "."})
			return hOneLayer(t, hTar(t, hdrs...), hTarBodies(t, hReg("l0/file", "written through")))
		}, check: func(t *testing.T, r *hResult) {
			wantNoErrs(t, r)
			if l, ok := r.nodes[hRootfs+"l0"].(lfs.Symlink); ok && l.Target() != "l1/l1" {
				t.Errorf("rootfs/l0 -> %q", l.Target())
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := hOpen(t, c.archive(t), c.opts)
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, r)
		})
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestHostileZstdBomb: a zstd layer of one frame that does not declare its
// size is decompressed whole into the cache directory (tarindex/open.go
// uncompressed), and was once copied to its end before Build saw the
// limit: a 100 KiB layer expanding to 8 GiB wrote 8 GiB (a terabyte bomb
// would fill the disk) before failing with ErrTooLarge. The copy now stops
// one byte past the limit.
func TestHostileZstdBomb(t *testing.T) {
	var buf bytes.Buffer
	zw, _ := zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedFastest))
	tw := tar.NewWriter(zw)
	tw.WriteHeader(&tar.Header{Name: "zeros", Typeflag: tar.TypeReg, Size: 8 << 30, Mode: 0o644})
	io.Copy(tw, io.LimitReader(zeros{}, 8<<30))
	tw.Close()
	zw.Close()
	a := hNew(t)
	l := a.blob("application/vnd.oci.image.layer.v1.tar+zstd", buf.Bytes())
	archive := a.top(mntRef(a.image(l), "v1")).tar()
	start := time.Now()
	r, err := hOpen(t, archive, layout.Options{MaxLayerSize: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	wantLayerErr("expands past the limit")(t, r)
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("a %d-byte zstd layer took %v to be refused at 8 MiB: it was decompressed whole", len(buf.Bytes()), el)
	}
}
