package layout

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"time"
)

// A Change is one entry of a new layer: a file, directory, link or device
// added or replaced, a path deleted (Whiteout), or a directory replaced
// whole (Opaque).
type Change struct {
	// Path is slash-separated, relative to the rootfs, clean, without a
	// leading slash; never "" or ".".
	Path string
	// Whiteout deletes Path, and everything below it, from the lower
	// layers: written as "<dir>/.wh.<base>". The other fields are unused.
	Whiteout bool
	// Opaque marks a directory (Type TypeDir) whose lower contents are all
	// hidden: its entry plus "<Path>/.wh..wh..opq". Its new contents are
	// the other changes below it.
	Opaque bool
	// Type is the tar typeflag: tar.TypeReg (or 0), TypeDir, TypeSymlink,
	// TypeLink, TypeFifo, TypeChar or TypeBlock.
	Type byte
	// Mode holds the permission bits plus setuid, setgid and sticky
	// (07777 at most), as in tar.Header.Mode.
	Mode     int64
	Uid, Gid int
	// ModTime is the entry's mtime, kept to the nanosecond; the zero time
	// is written as the Unix epoch.
	ModTime time.Time
	// Xattrs are written as PAX SCHILY.xattr.<name> records.
	Xattrs map[string]string
	// Linkname is a symlink's target, verbatim; for TypeLink, the Path of
	// another Change of the same layer (the link shares its inode, so the
	// link's own Mode, owner, times and xattrs are not used).
	Linkname           string
	Devmajor, Devminor int64
	// Size and Open are a regular file's content: Open must give exactly
	// Size bytes. Open may be nil when Size is 0.
	Size int64
	Open func() (io.ReadCloser, error)
}

// Names the whiteout convention of the OCI image spec gives meaning to.
const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
)

// typeRegA is the old typeflag of a regular file, and the zero value of
// Change.Type: it is written as tar.TypeReg.
const typeRegA = '\x00'

// markerTime is the mtime of the whiteout and opaque marker entries,
// which stand for no file of their own.
var markerTime = time.Unix(0, 0)

// WriteLayer writes changes to w as a layer tar, uncompressed. The layer
// is reproducible: the same changes (whatever their order) give the same
// bytes. Entries come in path order, a directory before what is in it and,
// inside a directory, the opaque marker first, then the whiteouts, then
// the other entries by name (the image spec asks for whiteouts before
// their siblings). Headers are PAX (USTAR when nothing needs more), with
// xattrs as SCHILY.xattr records, no user or group names, no access or
// change times; the markers have mtime 0 and mode 0. A group of hard links
// is written as one file, at whichever of its paths comes first, and links
// to it: the first path of a group need not be the one the changes
// called the target.
//
// Invalid changes (paths that are not clean and relative, "..", names
// starting with ".wh.", a path twice, an entry below a whiteout or below
// something that is not a directory, a TypeLink whose target is not in
// changes, a bad type or mode) are an ErrInvalid error and nothing is
// written. A regular file whose Open gives more or fewer than Size bytes
// is an error, with part of the layer written.
func WriteLayer(w io.Writer, changes []Change) error {
	return writeLayer(context.Background(), w, changes)
}

// layerEntry is one tar entry to write: a change, or a marker (ch nil).
type layerEntry struct {
	name string // the entry's path, without the trailing slash of a directory
	ch   *Change
	// content is the change holding the entry's data and metadata: ch,
	// or for a member of a hard-link group the group's file.
	content *Change
	// linkTo, for a member of a hard-link group that is not the group's
	// first entry, is the name of the first.
	linkTo string
}

func writeLayer(ctx context.Context, w io.Writer, changes []Change) error {
	ents, err := planLayer(changes)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := writeEntry(tw, e); err != nil {
			return fmt.Errorf("layer entry %s: %w", e.name, err)
		}
	}
	return tw.Close()
}

// planLayer checks changes and returns the entries of their layer, in
// order, with hard-link groups resolved.
func planLayer(changes []Change) ([]layerEntry, error) {
	byPath := make(map[string]*Change, len(changes))
	for i := range changes {
		c := &changes[i]
		if err := checkChange(c); err != nil {
			return nil, fmt.Errorf("%w: change %q: %v", ErrInvalid, c.Path, err)
		}
		if _, dup := byPath[c.Path]; dup {
			return nil, fmt.Errorf("%w: change %q: given twice", ErrInvalid, c.Path)
		}
		byPath[c.Path] = c
	}
	for i := range changes {
		c := &changes[i]
		// Every ancestor in the set must be a directory that stays.
		for p := path.Dir(c.Path); p != "."; p = path.Dir(p) {
			a, ok := byPath[p]
			switch {
			case !ok:
			case a.Whiteout:
				return nil, fmt.Errorf("%w: change %q: below %q, which is deleted", ErrInvalid, c.Path, p)
			case a.Type != tar.TypeDir:
				return nil, fmt.Errorf("%w: change %q: below %q, which is not a directory", ErrInvalid, c.Path, p)
			}
		}
	}

	// Hard links: each TypeLink resolves, through links to links, to the
	// change holding the file.
	root := map[*Change]*Change{} // link -> the file it shares
	for i := range changes {
		c := &changes[i]
		if c.Whiteout || c.Type != tar.TypeLink {
			continue
		}
		t := c
		for hops := 0; t.Type == tar.TypeLink; hops++ {
			next, ok := byPath[t.Linkname]
			switch {
			case !ok:
				return nil, fmt.Errorf("%w: change %q: hard link to %q, which is not among the changes", ErrInvalid, c.Path, t.Linkname)
			case next.Whiteout:
				return nil, fmt.Errorf("%w: change %q: hard link to %q, which is deleted", ErrInvalid, c.Path, t.Linkname)
			case next.Type == tar.TypeDir:
				return nil, fmt.Errorf("%w: change %q: hard link to the directory %q", ErrInvalid, c.Path, t.Linkname)
			case hops > len(changes):
				return nil, fmt.Errorf("%w: change %q: hard links in a cycle", ErrInvalid, c.Path)
			}
			t = next
		}
		root[c] = t
	}

	var ents []layerEntry
	for i := range changes {
		c := &changes[i]
		if c.Whiteout {
			dir, base := path.Split(c.Path)
			ents = append(ents, layerEntry{name: dir + whiteoutPrefix + base})
			continue
		}
		ents = append(ents, layerEntry{name: c.Path, ch: c, content: c})
		if c.Opaque {
			ents = append(ents, layerEntry{name: c.Path + "/" + opaqueMarker})
		}
	}
	slices.SortFunc(ents, func(a, b layerEntry) int { return comparePaths(a.name, b.name) })

	// The first entry of each group carries the file; the others link to
	// it.
	first := map[*Change]string{} // file -> name of the group's first entry
	for i := range ents {
		e := &ents[i]
		if e.ch == nil {
			continue
		}
		file := e.ch
		if r, ok := root[e.ch]; ok {
			file = r
		} else if e.ch.Type == tar.TypeDir {
			continue
		}
		e.content = file
		if name, ok := first[file]; ok {
			e.linkTo = name
			continue
		}
		first[file] = e.name
	}
	return ents, nil
}

// checkChange checks one change on its own.
func checkChange(c *Change) error {
	if err := checkLayerPath(c.Path); err != nil {
		return err
	}
	if c.Whiteout {
		if c.Opaque {
			return errors.New("both a whiteout and opaque")
		}
		return nil
	}
	switch c.Type {
	case tar.TypeReg, typeRegA, tar.TypeDir, tar.TypeSymlink, tar.TypeLink, tar.TypeFifo, tar.TypeChar, tar.TypeBlock:
	default:
		return fmt.Errorf("type %q is not one a layer can hold", c.Type)
	}
	if c.Opaque && c.Type != tar.TypeDir {
		return errors.New("opaque, but not a directory")
	}
	if c.Mode&^0o7777 != 0 || c.Mode < 0 {
		return fmt.Errorf("mode %#o has bits beyond 07777", c.Mode)
	}
	if c.Uid < 0 || c.Gid < 0 {
		return fmt.Errorf("negative owner %d:%d", c.Uid, c.Gid)
	}
	for k := range c.Xattrs { // values are bytes: anything goes
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return fmt.Errorf("xattr name %q is not valid", k)
		}
	}
	switch c.Type {
	case tar.TypeReg, typeRegA:
		if c.Size < 0 {
			return fmt.Errorf("negative size %d", c.Size)
		}
		if c.Size > 0 && c.Open == nil {
			return fmt.Errorf("%d bytes and no Open", c.Size)
		}
	case tar.TypeSymlink:
		if c.Linkname == "" || strings.ContainsRune(c.Linkname, 0) {
			return fmt.Errorf("symlink target %q is not valid", c.Linkname)
		}
	case tar.TypeLink:
		if c.Linkname == c.Path {
			return errors.New("hard link to itself")
		}
	case tar.TypeChar, tar.TypeBlock:
		if c.Devmajor < 0 || c.Devminor < 0 {
			return fmt.Errorf("device %d,%d is not valid", c.Devmajor, c.Devminor)
		}
	}
	return nil
}

// checkLayerPath checks that p is a clean relative path whose names are
// not whiteout names.
func checkLayerPath(p string) error {
	switch {
	case p == "" || p == ".":
		return errors.New("empty path")
	case strings.HasPrefix(p, "/"):
		return errors.New("absolute path")
	case strings.ContainsRune(p, 0):
		return errors.New("NUL in path")
	case path.Clean(p) != p:
		return errors.New("path is not clean")
	}
	for _, name := range strings.Split(p, "/") {
		if name == ".." {
			return errors.New(`".." in path`)
		}
		if strings.HasPrefix(name, whiteoutPrefix) {
			return fmt.Errorf("%q is a whiteout name", name)
		}
	}
	return nil
}

// comparePaths orders layer entries: name by name, a directory before
// what is in it; among the entries of one directory the opaque marker
// first, then whiteouts, then the rest, each by bytes.
func comparePaths(a, b string) int {
	for {
		ai, bi := strings.IndexByte(a, '/'), strings.IndexByte(b, '/')
		an, bn := a, b
		if ai >= 0 {
			an = a[:ai]
		}
		if bi >= 0 {
			bn = b[:bi]
		}
		if an != bn {
			if ra, rb := nameRank(an), nameRank(bn); ra != rb {
				return ra - rb
			}
			return strings.Compare(an, bn)
		}
		switch {
		case ai < 0 && bi < 0:
			return 0
		case ai < 0:
			return -1 // a is b's ancestor
		case bi < 0:
			return 1
		}
		a, b = a[ai+1:], b[bi+1:]
	}
}

func nameRank(name string) int {
	switch {
	case name == opaqueMarker:
		return 0
	case strings.HasPrefix(name, whiteoutPrefix):
		return 1
	}
	return 2
}

func writeEntry(tw *tar.Writer, e layerEntry) error {
	if e.ch == nil {
		// A whiteout or an opaque marker.
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: e.name, ModTime: markerTime, Format: tar.FormatPAX})
	}
	c := e.content
	h := &tar.Header{
		Name:     e.name,
		Typeflag: c.Type,
		Mode:     c.Mode,
		Uid:      c.Uid,
		Gid:      c.Gid,
		ModTime:  c.ModTime,
		Format:   tar.FormatPAX,
	}
	if h.ModTime.IsZero() {
		h.ModTime = markerTime
	}
	if len(c.Xattrs) > 0 {
		h.PAXRecords = make(map[string]string, len(c.Xattrs))
		for k, v := range c.Xattrs {
			h.PAXRecords["SCHILY.xattr."+k] = v
		}
	}
	if e.linkTo != "" {
		// The group's file is already written: this path shares it.
		h.Typeflag, h.Linkname, h.PAXRecords = tar.TypeLink, e.linkTo, nil
		return tw.WriteHeader(h)
	}
	switch c.Type {
	case tar.TypeReg, typeRegA:
		h.Typeflag, h.Size = tar.TypeReg, c.Size
	case tar.TypeDir:
		h.Name += "/"
	case tar.TypeSymlink:
		h.Linkname = c.Linkname
	case tar.TypeChar, tar.TypeBlock:
		h.Devmajor, h.Devminor = c.Devmajor, c.Devminor
	}
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	if h.Size == 0 {
		return nil
	}
	return copyContent(tw, c)
}

// copyContent writes the Size bytes of a regular file's change.
func copyContent(w io.Writer, c *Change) error {
	rc, err := c.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	n, err := io.CopyN(w, rc, c.Size)
	if err == io.EOF {
		return fmt.Errorf("content is %d bytes, not %d: %w", n, c.Size, io.ErrUnexpectedEOF)
	}
	if err != nil {
		return err
	}
	var one [1]byte
	if m, _ := io.ReadFull(rc, one[:]); m > 0 {
		return fmt.Errorf("content is longer than its %d bytes", c.Size)
	}
	return rc.Close()
}
