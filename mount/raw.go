package mount

import (
	"errors"
	"io"
	"log"
	"maps"
	"os/user"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"
	lfs "github.com/layoutfs/layoutfs/fs"
)

// rawFS serves a read-only tree on go-fuse's protocol API (fuse.RawFileSystem)
// instead of its node bridge (go-fuse's fs package, which node.go adapts to
// and read-write mounts use). A read-only tree never changes, which lets the
// server keep almost nothing per inode and answer the kernel with fewer
// round trips:
//
//   - The FUSE node ID of a node is its inode number (hard links share
//     one), and the table of the nodes the kernel holds keeps only the node,
//     its parent (for ".." and log messages) and the kernel's lookup count:
//     about 60 bytes an inode with the map's overhead, where go-fuse's
//     bridge keeps about 560 (an Inode with its maps).
//   - OPENDIR answers ENOSYS, so the kernel sends neither OPENDIR nor
//     RELEASEDIR again and caches every listing (zero-message opendir);
//     READDIR and READDIRPLUS find the directory by node ID and resume at
//     the offset, reading entries by position where the tree allows it
//     (fs.ListerAt) rather than listing the whole directory per request.
//   - OPEN answers ENOSYS too (zero-message open: no OPEN, RELEASE or
//     FLUSH, and the page cache is kept across opens).
//   - When the tree can promise that nothing in it has extended attributes
//     (fs.XattrFree), GETXATTR and LISTXATTR answer ENOSYS and the kernel
//     stops asking: cp -a asks three times per file otherwise.
type rawFS struct {
	fuse.RawFileSystem // ENOSYS for everything a read-only tree does not do

	root lfs.Dir
	log  *log.Logger
	// noXattrs reports whether the whole tree is known to carry no
	// extended attributes (nil: answer per node).
	noXattrs func() bool
	// plus decides whether a READDIRPLUS entry carries the child's node
	// (the kernel then needs no LOOKUP for it) or only its name and type.
	plus func(child lfs.Node, a lfs.Attr) bool

	pre *prefetcher // set by Init

	mu     sync.Mutex
	nodes  nodeTable         // what the kernel holds, by node ID
	alias  map[uint64]uint64 // node IDs of inode numbers that cannot be one
	nextID uint64
	lists  map[uint64][]lfs.Dirent // listings being read, of directories that cannot list by position
}

const (
	rootID = fuse.FUSE_ROOT_ID
	// aliasBase is where node IDs for inode numbers that cannot be node
	// IDs (0, 1 when it is not the root, and the top half, where go-fuse
	// keeps its own) start.
	aliasBase = 1 << 63
)

func newRawFS(root lfs.Dir, logger *log.Logger) *rawFS {
	s := &rawFS{
		RawFileSystem: fuse.NewDefaultRawFileSystem(),
		root:          root,
		log:           logger,
		alias:         map[uint64]uint64{},
		nextID:        aliasBase,
		lists:         map[uint64][]lfs.Dirent{},
		plus:          func(lfs.Node, lfs.Attr) bool { return true },
	}
	*s.nodes.add(rootID) = rawNode{n: root, parent: rootID, lookups: 1 << 62}
	if x, ok := root.(lfs.XattrFree); ok {
		s.noXattrs = x.NoXattrs
	}
	return s
}

func (s *rawFS) String() string { return fsType }

// Init starts the prefetcher once the kernel is there to take its pushes.
func (s *rawFS) Init(srv *fuse.Server) {
	s.pre = newPrefetcher(s, srv.InodeNotifyStoreCache)
}

func (s *rawFS) OnUnmount() {
	if s.pre != nil {
		s.pre.stop()
	}
}

// node returns the node the kernel knows as id.
func (s *rawFS) node(id uint64) (rawNode, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.nodes.get(id); e != nil {
		return *e, true
	}
	return rawNode{}, false
}

// remember records one more kernel reference to n, found in the directory
// parent, and returns its node ID.
func (s *rawFS) remember(n lfs.Node, ino uint64, parent uint64) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := ino
	if id <= rootID || id >= aliasBase {
		if a, ok := s.alias[ino]; ok && ino != 0 {
			id = a
		} else {
			id = s.nextID
			s.nextID++
			if ino != 0 {
				s.alias[ino] = id
			}
		}
	}
	e := s.nodes.add(id)
	if e.n == nil {
		*e = rawNode{n: n, parent: parent}
	}
	e.lookups++
	return id
}

var _ = fuse.RawFileSystem((*rawFS)(nil))

// Forget drops the kernel's references; a node it no longer holds leaves
// the table.
func (s *rawFS) Forget(id, nlookup uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.nodes.get(id)
	if e == nil || id == rootID {
		return
	}
	if e.lookups > nlookup {
		e.lookups -= nlookup
		return
	}
	s.nodes.remove(id)
	delete(s.lists, id)
	if id >= aliasBase {
		for ino, a := range s.alias {
			if a == id {
				delete(s.alias, ino)
				break
			}
		}
	}
}

// nodeID returns the node ID of the node numbered ino if the kernel holds
// it, else 0.
func (s *rawFS) nodeID(ino uint64) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := ino
	if id <= rootID || id >= aliasBase {
		if id = s.alias[ino]; ino == 0 {
			id = 0
		}
	}
	if id == 0 || s.nodes.get(id) == nil {
		return 0
	}
	return id
}

// entry fills out for child, found in the directory parent, and counts
// the kernel's new reference to it.
func (s *rawFS) entry(out *fuse.EntryOut, child lfs.Node, a lfs.Attr, parent uint64) {
	fillAttrFrom(&out.Attr, child, a)
	out.NodeId = s.remember(child, a.Ino, parent)
	out.Generation = 0
	out.SetEntryTimeout(entryTimeout)
	out.SetAttrTimeout(attrTimeout)
}

func (s *rawFS) Lookup(cancel <-chan struct{}, h *fuse.InHeader, name string, out *fuse.EntryOut) (st fuse.Status) {
	defer s.recoverPanic("lookup", h.NodeId, name, &st)
	e, ok := s.node(h.NodeId)
	if !ok {
		return fuse.Status(syscall.ESTALE)
	}
	d, ok := e.n.(lfs.Dir)
	if !ok {
		return fuse.ENOTDIR
	}
	child, err := d.Lookup(name)
	if err != nil {
		errno := s.fail("lookup", h.NodeId, name, err)
		if errno == syscall.ENOENT {
			// A cached miss: node ID 0 with a timeout.
			*out = fuse.EntryOut{}
			out.SetEntryTimeout(negativeTimeout)
			return fuse.OK
		}
		return fuse.Status(errno)
	}
	s.entry(out, child, child.Attr(), h.NodeId)
	return fuse.OK
}

func (s *rawFS) GetAttr(cancel <-chan struct{}, in *fuse.GetAttrIn, out *fuse.AttrOut) (st fuse.Status) {
	defer s.recoverPanic("getattr", in.NodeId, "", &st)
	e, ok := s.node(in.NodeId)
	if !ok {
		return fuse.Status(syscall.ESTALE)
	}
	fillAttr(&out.Attr, e.n)
	out.SetTimeout(attrTimeout)
	return fuse.OK
}

func (s *rawFS) Access(cancel <-chan struct{}, in *fuse.AccessIn) (st fuse.Status) {
	defer s.recoverPanic("access", in.NodeId, "", &st)
	e, ok := s.node(in.NodeId)
	if !ok {
		return fuse.Status(syscall.ESTALE)
	}
	a := e.n.Attr()
	if !hasAccess(in.Caller.Uid, in.Caller.Gid, a.Uid, a.Gid, unixMode(a.Mode), in.Mask) {
		return fuse.EACCES
	}
	return fuse.OK
}

// Open and OpenDir answer ENOSYS: the kernel then opens files and
// directories without asking, for the life of the mount (see rawFS).
func (s *rawFS) Open(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	return fuse.ENOSYS
}

func (s *rawFS) OpenDir(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	return fuse.ENOSYS
}

// Flush has nothing to do on a read-only tree; ENOSYS tells the kernel
// once, and it stops sending FLUSH on every close.
func (s *rawFS) Flush(cancel <-chan struct{}, in *fuse.FlushIn) fuse.Status {
	return fuse.ENOSYS
}

func (s *rawFS) Read(cancel <-chan struct{}, in *fuse.ReadIn, buf []byte) (_ fuse.ReadResult, st fuse.Status) {
	defer s.recoverPanic("read", in.NodeId, "", &st)
	e, ok := s.node(in.NodeId)
	if !ok {
		return nil, fuse.Status(syscall.ESTALE)
	}
	if in.Offset == 0 && s.pre != nil && e.n.Attr().Size <= prefetchMaxFile {
		s.pre.read(in.Caller.Pid, in.NodeId, e.parent)
	}
	r, errno := readFile(e.n, buf, int64(in.Offset))
	if errno == syscall.EIO {
		s.log.Printf("layoutfs: read %s: %v", s.path(in.NodeId, ""), r.err)
	}
	return r.res, fuse.Status(errno)
}

func (s *rawFS) Readlink(cancel <-chan struct{}, h *fuse.InHeader) (_ []byte, st fuse.Status) {
	defer s.recoverPanic("readlink", h.NodeId, "", &st)
	e, ok := s.node(h.NodeId)
	if !ok {
		return nil, fuse.Status(syscall.ESTALE)
	}
	l, ok := e.n.(lfs.Symlink)
	if !ok {
		return nil, fuse.EINVAL
	}
	return []byte(l.Target()), fuse.OK
}

func (s *rawFS) ReadDir(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	return s.readDir(in, out, false)
}

func (s *rawFS) ReadDirPlus(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	return s.readDir(in, out, true)
}

// readDir answers READDIR and READDIRPLUS from the offset on: "." and ".."
// at positions 0 and 1, then the entries in order. An entry's offset is the
// position after it.
func (s *rawFS) readDir(in *fuse.ReadIn, out *fuse.DirEntryList, plus bool) (st fuse.Status) {
	defer s.recoverPanic("readdir", in.NodeId, "", &st)
	e, ok := s.node(in.NodeId)
	if !ok {
		return fuse.Status(syscall.ESTALE)
	}
	d, ok := e.n.(lfs.Dir)
	if !ok {
		return fuse.ENOTDIR
	}
	count, at, err := s.listing(in.NodeId, d, in.Offset == 0)
	if err != nil {
		return fuse.Status(s.fail("readdir", in.NodeId, "", err))
	}
	pos := int(in.Offset)
	for ; pos < 2+count; pos++ {
		var de fuse.DirEntry
		var child lfs.Node
		var a lfs.Attr
		switch pos {
		case 0:
			de = fuse.DirEntry{Name: ".", Mode: syscall.S_IFDIR, Ino: e.n.Attr().Ino}
		case 1:
			de = fuse.DirEntry{Name: "..", Mode: syscall.S_IFDIR, Ino: s.parentIno(in.NodeId, e)}
		default:
			ent := at(pos - 2)
			child = ent.Node
			a = child.Attr()
			de = fuse.DirEntry{Name: ent.Name, Mode: typeBits(a.Mode), Ino: a.Ino}
		}
		de.Off = uint64(pos + 1)
		if !plus {
			if !out.AddDirEntry(de) {
				break
			}
			continue
		}
		eo := out.AddDirLookupEntry(de)
		if eo == nil {
			break
		}
		if child != nil && s.plus(child, a) {
			s.entry(eo, child, a, in.NodeId)
		}
	}
	if pos >= 2+count {
		// Read to the end: a listing kept for this reader can go.
		s.mu.Lock()
		delete(s.lists, in.NodeId)
		s.mu.Unlock()
	}
	return fuse.OK
}

// listing returns the number of entries of d and a way to get each by
// position. A directory that cannot read by position is listed once per
// reading from the start, kept until read to the end or forgotten.
func (s *rawFS) listing(id uint64, d lfs.Dir, fresh bool) (int, func(int) lfs.Dirent, error) {
	if l, ok := d.(lfs.ListerAt); ok {
		n, err := l.NumEntries()
		return n, l.EntryAt, err
	}
	s.mu.Lock()
	ents, ok := s.lists[id]
	s.mu.Unlock()
	if !ok || fresh {
		var err error
		if ents, err = d.ReadDir(); err != nil {
			return 0, nil, err
		}
		// lfs promises sorted entries; a tree that forgets must not
		// confuse the kernel's offsets.
		byName := func(a, b lfs.Dirent) int { return strings.Compare(a.Name, b.Name) }
		if !slices.IsSortedFunc(ents, byName) {
			ents = slices.SortedFunc(slices.Values(ents), byName)
		}
		s.mu.Lock()
		s.lists[id] = ents
		s.mu.Unlock()
	}
	return len(ents), func(i int) lfs.Dirent { return ents[i] }, nil
}

// parentIno is the inode number of the directory e was found in.
func (s *rawFS) parentIno(id uint64, e rawNode) uint64 {
	if id == rootID {
		return e.n.Attr().Ino
	}
	if p, ok := s.node(e.parent); ok {
		return p.n.Attr().Ino
	}
	return e.n.Attr().Ino
}

func (s *rawFS) GetXAttr(cancel <-chan struct{}, h *fuse.InHeader, attr string, dest []byte) (_ uint32, st fuse.Status) {
	defer s.recoverPanic("getxattr", h.NodeId, "", &st)
	if s.noXattrs != nil && s.noXattrs() {
		return 0, fuse.ENOSYS
	}
	e, ok := s.node(h.NodeId)
	if !ok {
		return 0, fuse.Status(syscall.ESTALE)
	}
	v, ok := xattrsOf(e.n)[attr]
	switch {
	case !ok:
		return 0, fuse.ENOATTR
	case len(dest) == 0:
		return uint32(len(v)), fuse.OK
	case len(dest) < len(v):
		return uint32(len(v)), fuse.ERANGE
	}
	return uint32(copy(dest, v)), fuse.OK
}

func (s *rawFS) ListXAttr(cancel <-chan struct{}, h *fuse.InHeader, dest []byte) (_ uint32, st fuse.Status) {
	defer s.recoverPanic("listxattr", h.NodeId, "", &st)
	if s.noXattrs != nil && s.noXattrs() {
		return 0, fuse.ENOSYS
	}
	e, ok := s.node(h.NodeId)
	if !ok {
		return 0, fuse.Status(syscall.ESTALE)
	}
	var b []byte
	for _, name := range slices.Sorted(maps.Keys(xattrsOf(e.n))) {
		b = append(append(b, name...), 0)
	}
	switch {
	case len(dest) == 0:
		return uint32(len(b)), fuse.OK
	case len(dest) < len(b):
		return uint32(len(b)), fuse.ERANGE
	}
	return uint32(copy(dest, b)), fuse.OK
}

func (s *rawFS) StatFs(cancel <-chan struct{}, h *fuse.InHeader, out *fuse.StatfsOut) fuse.Status {
	statfs(out)
	return fuse.OK
}

// fail converts err for the kernel and logs the cases where the errno
// alone would hide the cause (EIO).
func (s *rawFS) fail(op string, id uint64, name string, err error) syscall.Errno {
	errno := toErrno(err)
	if errno == syscall.EIO {
		s.log.Printf("layoutfs: %s %s: %v", op, s.path(id, name), err)
	}
	return errno
}

// recoverPanic is deferred by every handler: a panic in one node (a bug,
// or a corrupt archive tripping one) must cost one EIO, not the mount.
func (s *rawFS) recoverPanic(op string, id uint64, name string, st *fuse.Status) {
	if r := recover(); r != nil {
		s.log.Printf("layoutfs: panic in %s %s: %v\n%s", op, s.path(id, name), r, debug.Stack())
		*st = fuse.EIO
	}
}

// path names a node (and name in it, if not empty) for log messages. The
// table keeps no names: each is found by inode number in the listing of
// the directory the node was found in, which costs only when logging.
func (s *rawFS) path(id uint64, name string) string {
	var parts []string
	if name != "" {
		parts = append(parts, name)
	}
	for i := 0; id != rootID && i < 4096; i++ {
		e, ok := s.node(id)
		if !ok {
			parts = append(parts, "?")
			break
		}
		p, _ := s.node(e.parent)
		parts = append(parts, nameIn(p.n, e.n))
		id = e.parent
	}
	slices.Reverse(parts)
	return "/" + strings.Join(parts, "/")
}

// nameIn finds a name of n in dir, or "?". It is called while logging a
// panic, so it must not panic itself.
func nameIn(dir, n lfs.Node) (name string) {
	defer func() {
		if recover() != nil {
			name = "?"
		}
	}()
	d, ok := dir.(lfs.Dir)
	if !ok {
		return "?"
	}
	ents, err := d.ReadDir()
	if err != nil {
		return "?"
	}
	ino := n.Attr().Ino
	for _, e := range ents {
		if e.Node.Attr().Ino == ino {
			return e.Name
		}
	}
	return "?"
}

// readResult is a read's reply, or the error behind an EIO.
type readResult struct {
	res fuse.ReadResult
	err error
}

// readFile reads from n at off into buf: spliced from the archive when its
// bytes lie there in one piece, else through ReadAt. The kernel clips reads
// at the size we reported, and a short read at the end is io.EOF, not an
// error.
func readFile(n lfs.Node, buf []byte, off int64) (readResult, syscall.Errno) {
	file, ok := n.(lfs.File)
	if !ok {
		if _, dir := n.(lfs.Dir); dir {
			return readResult{}, syscall.EISDIR
		}
		return readResult{err: errors.New("regular file has no content")}, syscall.EIO
	}
	if s, ok := file.(lfs.FileSpan); ok && off >= 0 {
		if f, start, ok := s.Span(); ok {
			size := file.Attr().Size
			if off >= size {
				return readResult{res: fuse.ReadResultData(nil)}, 0
			}
			return readResult{res: fuse.ReadResultFd(f.Fd(), start+off, int(min(int64(len(buf)), size-off)))}, 0
		}
	}
	nr, err := file.ReadAt(buf, off)
	if err != nil && !errors.Is(err, io.EOF) {
		// Not a short read: serving what we have would leave a hole of
		// zeros in the page cache instead of an error.
		errno := toErrno(err)
		return readResult{err: err}, errno
	}
	return readResult{res: fuse.ReadResultData(buf[:nr])}, 0
}

// statfs reports an empty, full filesystem: nothing can be written, and
// the archive's size says nothing useful to df.
func statfs(out *fuse.StatfsOut) {
	out.Bsize = 4096
	out.Frsize = 4096
	out.NameLen = 255
}

// hasAccess is access(2)'s check of mode bits, as go-fuse's bridge makes
// it: root may read and write anything and execute what has an execute
// bit (or is a directory); others get the owner's, the group's or the
// others' bits.
func hasAccess(uid, gid, fileUid, fileGid, mode, mask uint32) bool {
	mask &= 7
	if mask == 0 {
		return true
	}
	if uid == 0 {
		return mask&1 == 0 || mode&0o111 != 0 || mode&syscall.S_IFMT == syscall.S_IFDIR
	}
	var bits uint32
	switch {
	case uid == fileUid:
		bits = mode >> 6
	case gid == fileGid:
		bits = mode >> 3
	case (mode>>3)&mask != mode&mask && inGroup(uid, fileGid):
		// The group lookup only matters where group and others differ.
		bits = mode >> 3
	default:
		bits = mode
	}
	return bits&mask == mask
}

// inGroup reports whether gid is one of uid's supplementary groups.
func inGroup(uid, gid uint32) bool {
	u, err := user.LookupId(strconv.Itoa(int(uid)))
	if err != nil {
		return false
	}
	gs, err := u.GroupIds()
	return err == nil && slices.Contains(gs, strconv.Itoa(int(gid)))
}
