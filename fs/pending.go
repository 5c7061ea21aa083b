package fs

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"time"

	"github.com/layoutfs/layoutfs/internal/flock"
	"github.com/layoutfs/layoutfs/layout"
	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// Pending is the pending changes to one image's rootfs, read from its
// upper directory (see UpperDir) by a process other than the mount's. It
// holds the image's lock until Close: a mount's changes to that image wait
// meanwhile, so what is read is what Discard drops.
type Pending struct {
	dir   string
	up    *upper
	lower Dir
	lock  *os.File
}

// OpenPending reads the pending changes to the image with manifest m of
// the source whose uppers are under upperDir; lower is that image's
// read-only rootfs, where unchanged content is read (nil when only Len
// and Discard are wanted: the image is no longer in the source). It waits
// for a change being made by a mount, or another Pending of the image, to
// end.
func OpenPending(ctx context.Context, upperDir string, m digest.Digest, lower Dir) (*Pending, error) {
	dir := filepath.Join(upperDir, m.Encoded())
	lock, err := flock.Open(dir + ".lock")
	if err != nil {
		return nil, err
	}
	if err := flock.Wait(ctx, lock); err != nil {
		lock.Close()
		return nil, fmt.Errorf("lock %s: %w", lock.Name(), err)
	}
	up, err := readUpper(dir)
	if err != nil {
		lock.Close()
		return nil, err
	}
	return &Pending{dir: dir, up: up, lower: lower, lock: lock}, nil
}

// Close releases the image's lock.
func (p *Pending) Close() error {
	return p.lock.Close()
}

// PendingManifests returns the manifests with a pending-changes directory
// under upperDir.
func PendingManifests(upperDir string) []digest.Digest {
	ents, _ := os.ReadDir(upperDir)
	var out []digest.Digest
	for _, e := range ents {
		d := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		if e.IsDir() && d.Validate() == nil {
			out = append(out, d)
		}
	}
	return out
}

// Empty reports whether there is nothing to commit.
func (p *Pending) Empty() bool { return p.Len() == 0 }

// Len is the number of changed paths.
func (p *Pending) Len() int {
	n := len(p.up.recs)
	if p.up.recs["."] != nil {
		n-- // the root's metadata alone is no change to commit
	}
	return n
}

// Discard drops the changes. A mount showing them notices within a
// moment and shows the image as it is.
func (p *Pending) Discard() error {
	if err := os.RemoveAll(p.dir); err != nil {
		return fmt.Errorf("discard %s: %w", p.dir, err)
	}
	return nil
}

// Status lists the changes, one per path in order: "A" added, "M"
// changed, "D" deleted.
func (p *Pending) Status() []string {
	var out []string
	for _, q := range p.up.paths() {
		r := p.up.recs[q]
		switch {
		case q == ".":
			continue
		case r.Whiteout:
			out = append(out, "D "+q)
		case p.inLower(q):
			out = append(out, "M "+q)
		default:
			out = append(out, "A "+q)
		}
	}
	return out
}

func (p *Pending) inLower(q string) bool {
	_, err := Walk(p.lower, q)
	return err == nil
}

// Changes returns the changes as entries of a new layer: deletions as
// whiteouts, directories made where one was deleted as opaque, a second
// path of an inode as a hard link to the first, and the parent directories
// of each change with their metadata from the lower, as docker writes
// them.
func (p *Pending) Changes() ([]layout.Change, error) {
	var out []layout.Change
	first := map[*unode]string{}
	have := map[string]bool{}
	for _, q := range p.up.paths() {
		if q == "." {
			continue
		}
		have[q] = true
	}
	for _, q := range p.up.paths() {
		if q == "." {
			continue
		}
		for dir := path.Dir(q); dir != "."; dir = path.Dir(dir) {
			if have[dir] {
				continue
			}
			have[dir] = true
			n, err := Walk(p.lower, dir)
			if err != nil {
				return nil, fmt.Errorf("parent %s of %s: %w", dir, q, err)
			}
			out = append(out, attrChange(dir, n))
		}
		r := p.up.recs[q]
		if r.Whiteout {
			out = append(out, layout.Change{Path: q, Whiteout: true})
			continue
		}
		u := r.Node
		if f, ok := first[u]; ok && u.Type != tar.TypeDir {
			out = append(out, layout.Change{Path: q, Type: tar.TypeLink, Linkname: f})
			continue
		}
		first[u] = q
		c := layout.Change{Path: q, Opaque: r.Opaque && u.Type == tar.TypeDir, Type: u.Type, Mode: tarMode(u.Mode),
			Uid: int(u.Uid), Gid: int(u.Gid), ModTime: time.Unix(0, u.Mtime), Xattrs: u.Xattrs, Linkname: u.Link}
		if u.Touched {
			c.ModTime = commitEpoch()
		}
		if u.Type == tar.TypeChar || u.Type == tar.TypeBlock {
			c.Devmajor, c.Devminor = int64(unix.Major(u.Rdev)), int64(unix.Minor(u.Rdev))
		}
		if u.Type == tar.TypeReg {
			c.Size = u.Size
			c.Open = p.content(q, u)
		}
		out = append(out, c)
	}
	return out, nil
}

// content opens a regular file's bytes: the upper's copy, or the lower's.
func (p *Pending) content(q string, u *unode) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) {
		if u.Data != "" {
			f, err := os.Open(p.up.dataPath(u.Data))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", q, err)
			}
			return struct {
				io.Reader
				io.Closer
			}{io.LimitReader(f, u.Size), f}, nil
		}
		n, err := Walk(p.lower, u.Lower)
		if err != nil {
			return nil, fmt.Errorf("%s: content at %s: %w", q, u.Lower, err)
		}
		f, ok := n.(File)
		if !ok {
			return nil, fmt.Errorf("%s: content at %s: %w", q, u.Lower, errors.ErrUnsupported)
		}
		return io.NopCloser(io.NewSectionReader(f, 0, u.Size)), nil
	}
}

// commitEpoch is the mtime a commit gives what the user changed without
// setting a time: SOURCE_DATE_EPOCH when set (as reproducible builds
// use), else the Unix epoch.
func commitEpoch() time.Time {
	if s, err := strconv.ParseInt(os.Getenv("SOURCE_DATE_EPOCH"), 10, 64); err == nil {
		return time.Unix(s, 0)
	}
	return time.Unix(0, 0)
}

// attrChange is a directory entry carrying a lower node's metadata.
func attrChange(p string, n Node) layout.Change {
	a := n.Attr()
	c := layout.Change{Path: p, Type: tar.TypeDir, Mode: tarMode(a.Mode), Uid: int(a.Uid), Gid: int(a.Gid), ModTime: a.Mtime}
	if x, ok := n.(Xattrer); ok {
		c.Xattrs = x.Xattrs()
	}
	return c
}

// tarMode is tar's mode for io/fs permission and special bits.
func tarMode(m iofs.FileMode) int64 {
	mode := int64(m.Perm())
	if m&iofs.ModeSetuid != 0 {
		mode |= 0o4000
	}
	if m&iofs.ModeSetgid != 0 {
		mode |= 0o2000
	}
	if m&iofs.ModeSticky != 0 {
		mode |= 0o1000
	}
	return mode
}
