package mount

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"slices"
	"syscall"
	"testing"

	lfs "github.com/layoutfs/layoutfs/fs"
	"golang.org/x/sys/unix"
)

func TestToErrno(t *testing.T) {
	for _, c := range []struct {
		err  error
		want syscall.Errno
	}{
		{nil, 0},
		{&iofs.PathError{Op: "lookup", Path: "x", Err: iofs.ErrNotExist}, syscall.ENOENT},
		{fmt.Errorf("tags/a: %w", iofs.ErrNotExist), syscall.ENOENT},
		{fmt.Errorf("x: %w", iofs.ErrPermission), syscall.EACCES},
		{fmt.Errorf("x: %w", errors.ErrUnsupported), syscall.ENOTSUP},
		{fmt.Errorf("x: %w", context.Canceled), syscall.EINTR},
		{errors.New("tarindex: corrupt header"), syscall.EIO},
		{syscall.ENOENT, syscall.ENOENT}, // syscall.Errno knows it is ErrNotExist
		{syscall.EBADF, syscall.EIO},
	} {
		if got := toErrno(c.err); got != c.want {
			t.Errorf("toErrno(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

func TestKernelDev(t *testing.T) {
	for _, c := range []struct{ major, minor uint32 }{{0, 0}, {1, 3}, {8, 0}, {259, 70000}, {4095, 1<<20 - 1}} {
		got := kernelDev(unix.Mkdev(c.major, c.minor))
		// The kernel's new_decode_dev.
		major := (got & 0xfff00) >> 8
		minor := (got & 0xff) | (got>>12)&0xfff00
		if major != c.major || minor != c.minor {
			t.Errorf("kernelDev(%d,%d) decodes as (%d,%d)", c.major, c.minor, major, minor)
		}
	}
}

func TestUnescapeMountinfo(t *testing.T) {
	for in, want := range map[string]string{
		`/mnt/plain`:           "/mnt/plain",
		`/mnt/with\040space`:   "/mnt/with space",
		`/a\011tab\012nl\134b`: "/a\ttab\nnl\\b",
		`/trailing\04`:         `/trailing\04`,
		`/end\040`:             "/end ",
	} {
		if got := unescapeMountinfo(in); got != want {
			t.Errorf("unescapeMountinfo(%q) = %q, want %q", in, got, want)
		}
	}
}

// memRoot is an empty directory.
type memRoot struct{}

func (memRoot) Attr() lfs.Attr                  { return lfs.Attr{Mode: iofs.ModeDir | 0o755} }
func (memRoot) Lookup(string) (lfs.Node, error) { return nil, iofs.ErrNotExist }
func (memRoot) ReadDir() ([]lfs.Dirent, error)  { return nil, nil }

func TestFuseOptions(t *testing.T) {
	opts, err := fuseOptions(Options{FsName: "/src/a.tar", Options: []string{"ro", "allow_other", "max_read=65536"}}, true)
	if err != nil {
		t.Fatal(err)
	}
	mo := opts.MountOptions
	if !mo.AllowOther || !mo.DirectMountStrict || mo.DirectMountFlags&syscall.MS_RDONLY == 0 {
		t.Errorf("direct: %+v", mo)
	}
	// "ro" is a flag for mount(2), which rejects it as an option; other
	// users are held to the archive's permissions.
	if want := []string{"max_read=65536", "default_permissions"}; !slices.Equal(mo.Options, want) {
		t.Errorf("options %q, want %q", mo.Options, want)
	}
	if _, err := fuseOptions(Options{Options: []string{"rw"}}, true); err == nil {
		t.Errorf("rw accepted")
	}
}
