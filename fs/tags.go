package fs

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"maps"
	"path"
	"slices"
	"sort"
	"strings"
	"syscall"

	"github.com/layoutfs/layoutfs/layout"
	digest "github.com/opencontainers/go-digest"
)

// tagsDir is a directory of a live tree's tags/: the references whose
// names start with prefix ("" for tags/ itself, else ending in "/").
//
// A reference is shown as a symbolic link to its manifest or index under
// manifests/, as git shows a ref as a name for a commit. That is what
// makes the plain tools do the right thing: rm -r removes the link (the
// reference) instead of descending into the image and deleting its files,
// mv renames it, and ln -s makes one, the same way SPEC.md writes it. A
// name that is also a level of deeper names (a and a/b), or that names
// several manifests, stays a directory, holding its images as the
// read-only tree does.
type tagsDir struct {
	l      *Live
	prefix string
	attr   Attr
}

func (l *Live) tagsDir(prefix string) *tagsDir {
	t, _ := l.current()
	return &tagsDir{l: l, prefix: prefix, attr: Attr{Ino: l.stableIno("tags/" + prefix), Mode: iofs.ModeDir | 0o755, Nlink: 1, Mtime: t.mtime}}
}

func (d *tagsDir) Attr() Attr { return d.attr }
func (d *tagsDir) Changing()  {}

// tagKid is what one name in a tags/ directory stands for.
type tagKid struct {
	ref    *layout.Ref // the reference of that name, if any
	deeper bool        // names continue below it
}

// kids returns the names directly in d, from the source's references.
func (d *tagsDir) kids(t *tree) map[string]*tagKid {
	kids := map[string]*tagKid{}
	for _, ref := range t.src.Refs() {
		rest, ok := strings.CutPrefix(ref.Name, d.prefix)
		if !ok || rest == "" {
			continue
		}
		name, _, deeper := strings.Cut(rest, "/")
		k := kids[name]
		if k == nil {
			k = &tagKid{}
			kids[name] = k
		}
		if deeper {
			k.deeper = true
		} else {
			k.ref = &ref
		}
	}
	for _, prefix := range d.l.madeDirs() {
		if rest, ok := strings.CutPrefix(prefix, d.prefix); ok && rest != "" {
			name, _, _ := strings.Cut(rest, "/")
			if kids[name] == nil {
				kids[name] = &tagKid{}
			}
			kids[name].deeper = true
		}
	}
	return kids
}

// madeDirs returns the prefixes of the directories made in tags/.
func (l *Live) madeDirs() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Collect(maps.Keys(l.made))
}

// forgetDirs forgets the made directories at or below prefix, and
// reports whether there were any.
func (l *Live) forgetDirs(prefix string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	found := false
	for p := range l.made {
		if strings.HasPrefix(p, prefix) {
			delete(l.made, p)
			found = true
		}
	}
	return found
}

// Mkdir makes a directory for references to be made in; it exists in
// this mount only, until a reference is made below it.
func (d *tagsDir) Mkdir(name string, perm iofs.FileMode, uid, gid uint32) (Node, error) {
	t, _ := d.l.current()
	if d.kids(t)[name] != nil {
		return nil, fmt.Errorf("tag %s: %w", d.prefix+name, syscall.EEXIST)
	}
	if !layout.SafeRefName(d.prefix + name + "/x") {
		return nil, fmt.Errorf("tag directory %s: unsafe as part of a reference name: %w", d.prefix+name, syscall.EINVAL)
	}
	d.l.mu.Lock()
	d.l.made[d.prefix+name+"/"] = true
	d.l.mu.Unlock()
	return d.l.tagsDir(d.prefix + name + "/"), nil
}

// node returns the node for the name of kid k.
func (d *tagsDir) node(t *tree, name string, k *tagKid) Node {
	if k.ref != nil && !k.deeper && len(k.ref.Descs) == 1 {
		depth := strings.Count(d.prefix, "/") + 1
		target := strings.Repeat("../", depth) + "manifests/" + k.ref.Descs[0].Digest.String()
		return &tagLink{attr: Attr{Ino: d.l.stableIno(d.prefix + name + "\x00" + target), Mode: iofs.ModeSymlink | 0o777, Nlink: 1, Size: int64(len(target)), Mtime: t.mtime}, target: target}
	}
	return d.l.tagsDir(d.prefix + name + "/")
}

func (d *tagsDir) Lookup(name string) (Node, error) {
	t, _ := d.l.current()
	if k := d.kids(t)[name]; k != nil {
		return d.node(t, name, k), nil
	}
	for _, e := range d.images(t) {
		if e.Name == name {
			return e.Node, nil
		}
	}
	return nil, iofs.ErrNotExist
}

func (d *tagsDir) ReadDir() ([]Dirent, error) {
	t, _ := d.l.current()
	var ents []Dirent
	taken := map[string]bool{}
	for _, e := range d.images(t) {
		taken[e.Name] = true
		ents = append(ents, e)
	}
	for name, k := range d.kids(t) {
		if !taken[name] {
			ents = append(ents, Dirent{Name: name, Node: d.node(t, name, k)})
		}
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name < ents[j].Name })
	return ents, nil
}

// images returns what the reference d itself names, when it is one: its
// platforms (and index.json), as the read-only tree shows them.
func (d *tagsDir) images(t *tree) []Dirent {
	name, ok := strings.CutSuffix(d.prefix, "/")
	if !ok {
		return nil
	}
	ref, ok := t.src.Ref(name)
	if !ok {
		return nil
	}
	ents, err := t.refDir(ref.Descs, nil).ReadDir()
	if err != nil {
		t.warn(err.Error())
	}
	return ents
}

// refsUnder returns the reference names that are name or lie below it.
func refsUnder(t *tree, name string) []string {
	var out []string
	for _, ref := range t.src.Refs() {
		if ref.Name == name || strings.HasPrefix(ref.Name, name+"/") {
			out = append(out, ref.Name)
		}
	}
	return out
}

// Rename renames a reference, or every reference below a directory.
func (d *tagsDir) Rename(oldName string, newDir Dir, newName string, noReplace bool) error {
	nd, ok := newDir.(*tagsDir)
	if !ok || nd.l != d.l {
		return fmt.Errorf("rename %s out of tags/: %w", oldName, syscall.EXDEV)
	}
	from, to := d.prefix+oldName, nd.prefix+newName
	t, _ := d.l.current()
	names := refsUnder(t, from)
	if len(names) == 0 && d.l.forgetDirs(from+"/") {
		// An empty directory made here: it moves in memory.
		d.l.mu.Lock()
		d.l.made[to+"/"] = true
		d.l.mu.Unlock()
		return nil
	}
	switch {
	case len(names) == 0:
		return fmt.Errorf("tag %s: %w", from, iofs.ErrNotExist)
	case from == to:
		return nil
	case strings.HasPrefix(to, from+"/"):
		return fmt.Errorf("rename tag %s into itself: %w", from, syscall.EINVAL)
	}
	if existing := refsUnder(t, to); len(existing) > 0 {
		_, isRef := t.src.Ref(to)
		if noReplace || len(existing) > 1 || !isRef || len(names) > 1 {
			return fmt.Errorf("rename tag %s to %s: %w", from, to, syscall.EEXIST)
		}
	}
	defer d.l.changed()
	for _, name := range names {
		if err := t.src.Rename(context.Background(), name, to+name[len(from):]); err != nil {
			return d.editErr("rename tag "+name, err)
		}
	}
	return nil
}

// Remove removes a reference (a link) or every reference below a
// directory. Blobs stay until gc.
func (d *tagsDir) Remove(name string, dir bool) error {
	full := d.prefix + name
	t, _ := d.l.current()
	k := d.kids(t)[name]
	if k == nil {
		return fmt.Errorf("tag %s: %w", full, iofs.ErrNotExist)
	}
	_, isLink := d.node(t, name, k).(*tagLink)
	switch {
	case dir && isLink:
		return fmt.Errorf("tag %s: %w", full, syscall.ENOTDIR)
	case !dir && !isLink:
		return fmt.Errorf("tag %s: %w", full, syscall.EISDIR)
	}
	defer d.l.changed()
	d.l.forgetDirs(full + "/")
	for _, ref := range refsUnder(t, full) {
		if err := t.src.Untag(context.Background(), ref); err != nil {
			return d.editErr("untag "+ref, err)
		}
	}
	return nil
}

// Symlink adds the reference name for what target points at: a manifest
// or index (../manifests/<digest>) or another reference (a path in
// tags/). Relative targets are taken from this directory, as the kernel
// would resolve them; an absolute one must end in manifests/<digest>.
func (d *tagsDir) Symlink(name, target string, uid, gid uint32) (Node, error) {
	full := d.prefix + name
	t, _ := d.l.current()
	if d.kids(t)[name] != nil {
		return nil, fmt.Errorf("tag %s: %w", full, syscall.EEXIST)
	}
	what, err := linkTarget(d.prefix, target)
	if err != nil {
		return nil, fmt.Errorf("tag %s -> %s: %w", full, target, err)
	}
	if err := t.src.Tag(context.Background(), what, full); err != nil {
		return nil, d.editErr("tag "+full, err)
	}
	d.l.changed()
	return d.Lookup(name)
}

// linkTarget turns a symlink target made in tags/<prefix> into what
// layout's Tag takes: a digest, or a reference name.
func linkTarget(prefix, target string) (string, error) {
	if path.IsAbs(target) {
		dir, last := path.Split(path.Clean(target))
		if path.Base(dir) == "manifests" {
			if _, err := digest.Parse(last); err == nil {
				return last, nil
			}
		}
		return "", fmt.Errorf("an absolute target must end in manifests/<digest>: %w", syscall.EINVAL)
	}
	p := path.Join("tags", prefix, target)
	if rest, ok := strings.CutPrefix(p, "manifests/"); ok && !strings.Contains(rest, "/") {
		if _, err := digest.Parse(rest); err != nil {
			return "", fmt.Errorf("manifests/%s: %v: %w", rest, err, syscall.EINVAL)
		}
		return rest, nil
	}
	if rest, ok := strings.CutPrefix(p, "tags/"); ok {
		return rest, nil
	}
	return "", fmt.Errorf("the target must be ../manifests/<digest> or another tag: %w", syscall.EINVAL)
}

// editErr gives a failed edit the errno a file system would, and logs
// the reason, which the errno alone would not tell.
func (d *tagsDir) editErr(op string, err error) error {
	d.l.opts.Warn(fmt.Sprintf("%s: %v", op, err))
	var errno syscall.Errno
	switch {
	case errors.As(err, &errno):
		return err
	case layout.IsNotFound(err):
		errno = syscall.ENOENT
	case errors.Is(err, layout.ErrInvalid):
		errno = syscall.EINVAL
	case errors.Is(err, layout.ErrUnsupported):
		errno = syscall.EPERM
	default:
		errno = syscall.EIO
	}
	return fmt.Errorf("%s: %w (%w)", op, err, errno)
}

// tagLink is a reference in a live tree's tags/.
type tagLink struct {
	attr   Attr
	target string
}

func (l *tagLink) Attr() Attr     { return l.attr }
func (l *tagLink) Target() string { return l.target }
