package fs

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// The pending changes to one image's rootfs live in an upper directory:
//
//	journal   one JSON record per line, each the new state of one path
//	data/N    the content of regular file N, written in place
//
// A change appends its records with one write(2), before the request is
// answered, so they survive the daemon dying at any point (the kernel
// keeps what was written); a torn last line is ignored. Opening the upper
// replays the journal and writes it again compacted (temporary file and
// rename), dropping data files nothing names.

// unode is an inode of the upper: a path's new metadata and, for a
// regular file, where its content is. Hard links share one.
type unode struct {
	ID    uint64        `json:"id"`
	Type  byte          `json:"type"` // a tar typeflag
	Mode  iofs.FileMode `json:"mode"` // permissions and setuid/setgid/sticky
	Uid   uint32        `json:"uid"`
	Gid   uint32        `json:"gid"`
	Mtime int64         `json:"mtime"` // ns since the epoch
	// Touched: Mtime is the clock's at the last change, not one the user
	// set or the lower had. A commit writes a fixed time instead, so that
	// the same edits give the same layer.
	Touched bool              `json:"touched,omitempty"`
	Xattrs  map[string]string `json:"xattrs,omitempty"`
	Link    string            `json:"link,omitempty"` // symlink target
	Rdev    uint64            `json:"rdev,omitempty"`
	// Data names the file under data/ holding the content; "" means the
	// content is still the lower file's at Lower (a copy-up of metadata).
	Data  string `json:"data,omitempty"`
	Lower string `json:"lower,omitempty"`
	Size  int64  `json:"size"`
}

// urec is the upper's word on one path: a whiteout (deleted, the lower
// hidden), or a node (added or changed), which for a directory may be
// opaque (nothing of the lower directory shows through).
type urec struct {
	Whiteout bool
	Opaque   bool
	Node     *unode
}

// journalLine is one record as written.
type journalLine struct {
	Path     string `json:"p"`
	Whiteout bool   `json:"wh,omitempty"`
	Drop     bool   `json:"drop,omitempty"` // the path is back to the lower's
	Opaque   bool   `json:"opq,omitempty"`
	Node     *unode `json:"n,omitempty"`
}

// upper is the pending changes of one image. Its methods are called with
// the rootfs's lock held; it has no lock of its own.
type upper struct {
	dir   string
	recs  map[string]*urec
	names map[*unode]map[string]bool // the paths of each node
	// tree indexes the records by directory: the names in each directory
	// that have a record or records below them, so that listing or
	// removing a directory touches only what lies in it.
	tree    map[string]map[string]bool
	journal *os.File
	nextID  uint64
	// stamp identifies the journal file, so that a discard or commit by
	// another process (which removes the directory) is noticed.
	stamp string
}

func newUpper(dir string) *upper {
	return &upper{dir: dir, recs: map[string]*urec{}, names: map[*unode]map[string]bool{}, tree: map[string]map[string]bool{}, nextID: 1}
}

// openUpper opens (creating it) the upper at dir, replays and compacts
// its journal.
//
// Where there is no journal yet, nothing is created until the first
// change: browsing a read-write mount writes nothing.
func openUpper(dir string) (*upper, error) {
	u := newUpper(dir)
	if _, err := os.Stat(filepath.Join(dir, "journal")); errors.Is(err, iofs.ErrNotExist) {
		return u, nil
	}
	if err := u.replay(); err != nil {
		return nil, err
	}
	if err := u.compact(); err != nil {
		return nil, err
	}
	return u, nil
}

// readUpper reads the changes at dir without opening it for writing (for
// status and commit in another process). A missing dir is no changes.
func readUpper(dir string) (*upper, error) {
	u := newUpper(dir)
	return u, u.replay()
}

func (u *upper) replay() error {
	f, err := os.Open(filepath.Join(u.dir, "journal"))
	if errors.Is(err, iofs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("upper %s: %w", u.dir, err)
	}
	defer f.Close()
	nodes := map[uint64]*unode{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	for sc.Scan() {
		var l journalLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil || !validLine(l) {
			// A torn last write: what came before it stands.
			continue
		}
		u.applyLine(l, nodes)
	}
	return nil
}

// applyLine applies one record; nodes gathers hard links by id.
func (u *upper) applyLine(l journalLine, nodes map[uint64]*unode) {
	switch {
	case l.Drop:
		u.set(l.Path, nil)
	case l.Whiteout:
		u.set(l.Path, &urec{Whiteout: true})
	case l.Node != nil:
		n := nodes[l.Node.ID]
		if n == nil {
			n = l.Node
			nodes[n.ID] = n
		} else {
			*n = *l.Node
		}
		u.set(l.Path, &urec{Opaque: l.Opaque, Node: n})
		u.nextID = max(u.nextID, n.ID+1)
		if id, err := strconv.ParseUint(n.Data, 10, 64); err == nil {
			u.nextID = max(u.nextID, id+1)
		}
	}
}

// validLine checks a record read back: its paths stay in the rootfs and
// its data file under data/, whatever the journal holds.
func validLine(l journalLine) bool {
	if !validUpperPath(l.Path) {
		return false
	}
	if n := l.Node; n != nil {
		if _, err := strconv.ParseUint(n.Data, 10, 64); n.Data != "" && err != nil {
			return false
		}
		if n.Lower != "" && !validUpperPath(n.Lower) || n.Size < 0 {
			return false
		}
	}
	return true
}

func validUpperPath(p string) bool {
	return p != "" && !path.IsAbs(p) && path.Clean(p) == p && p != ".." && !strings.HasPrefix(p, "../")
}

// compact writes the journal again from the records, and removes data
// files no record names.
func (u *upper) compact() error {
	if err := os.MkdirAll(filepath.Join(u.dir, "data"), 0o700); err != nil {
		return fmt.Errorf("upper %s: %w", u.dir, err)
	}
	tmp, err := os.CreateTemp(u.dir, ".journal-*")
	if err != nil {
		return fmt.Errorf("upper %s: %w", u.dir, err)
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriter(tmp)
	used := map[string]bool{}
	for _, p := range u.paths() {
		r := u.recs[p]
		b, _ := json.Marshal(journalLine{Path: p, Whiteout: r.Whiteout, Opaque: r.Opaque, Node: r.Node})
		w.Write(append(b, '\n'))
		if r.Node != nil && r.Node.Data != "" {
			used[r.Node.Data] = true
		}
	}
	if err := w.Flush(); err != nil {
		tmp.Close()
		return fmt.Errorf("upper %s: %w", u.dir, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("upper %s: %w", u.dir, err)
	}
	tmp.Close()
	jpath := filepath.Join(u.dir, "journal")
	if err := os.Rename(tmp.Name(), jpath); err != nil {
		return fmt.Errorf("upper %s: %w", u.dir, err)
	}
	ents, _ := os.ReadDir(filepath.Join(u.dir, "data"))
	for _, e := range ents {
		if !used[e.Name()] {
			os.Remove(filepath.Join(u.dir, "data", e.Name()))
		}
	}
	u.journal, err = os.OpenFile(jpath, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("upper %s: %w", u.dir, err)
	}
	u.stamp = fileStamp(jpath)
	return nil
}

// fileStamp identifies a file's inode ("" when it is gone).
func fileStamp(p string) string {
	st, err := os.Stat(p)
	if err != nil {
		return ""
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		return fmt.Sprintf("%d:%d", sys.Dev, sys.Ino)
	}
	return st.Name()
}

// gone reports whether the upper was removed or replaced by another
// process (discard, commit) since it was opened.
func (u *upper) gone() bool {
	return fileStamp(filepath.Join(u.dir, "journal")) != u.stamp
}

func (u *upper) close() {
	if u.journal != nil {
		u.journal.Close()
	}
}

// paths returns the recorded paths, sorted.
func (u *upper) paths() []string {
	out := make([]string, 0, len(u.recs))
	for p := range u.recs {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// write appends records, in one write.
func (u *upper) write(lines ...journalLine) error {
	var buf []byte
	for _, l := range lines {
		b, err := json.Marshal(l)
		if err != nil {
			return err
		}
		buf = append(append(buf, b...), '\n')
	}
	if u.journal == nil {
		// The first change: the upper comes into being.
		if err := u.compact(); err != nil {
			return err
		}
	}
	if _, err := u.journal.Write(buf); err != nil {
		return fmt.Errorf("upper %s: journal: %w", u.dir, err)
	}
	return nil
}

// set makes r the record of p (nil: none), keeping names in step.
func (u *upper) set(p string, r *urec) {
	if old := u.recs[p]; old != nil && old.Node != nil {
		delete(u.names[old.Node], p)
		if len(u.names[old.Node]) == 0 {
			delete(u.names, old.Node)
		}
	}
	if r == nil {
		delete(u.recs, p)
		u.prune(p)
		return
	}
	if u.recs[p] == nil {
		u.index(p)
	}
	u.recs[p] = r
	if r.Node != nil {
		if u.names[r.Node] == nil {
			u.names[r.Node] = map[string]bool{}
		}
		u.names[r.Node][p] = true
	}
}

// index enters p and its parents in the tree index.
func (u *upper) index(p string) {
	for c := p; c != "."; c = path.Dir(c) {
		dir := path.Dir(c)
		if u.tree[dir][path.Base(c)] {
			return
		}
		if u.tree[dir] == nil {
			u.tree[dir] = map[string]bool{}
		}
		u.tree[dir][path.Base(c)] = true
	}
}

// prune takes p, and parents left with nothing, out of the tree index.
func (u *upper) prune(p string) {
	for c := p; c != "." && u.recs[c] == nil && len(u.tree[c]) == 0; c = path.Dir(c) {
		dir := path.Dir(c)
		delete(u.tree[dir], path.Base(c))
		if len(u.tree[dir]) == 0 {
			delete(u.tree, dir)
		}
	}
}

// below returns the recorded paths strictly below p.
func (u *upper) below(p string) []string {
	var out []string
	for name := range u.tree[p] {
		q := path.Join(p, name)
		if u.recs[q] != nil {
			out = append(out, q)
		}
		out = append(out, u.below(q)...)
	}
	return out
}

// put records p as node n (opaque: hiding the lower directory).
func (u *upper) put(p string, n *unode, opaque bool) error {
	u.set(p, &urec{Opaque: opaque, Node: n})
	return u.write(journalLine{Path: p, Opaque: opaque, Node: n})
}

// putNode records every path of n again, after n changed.
func (u *upper) putNode(n *unode) error {
	var lines []journalLine
	for p := range u.names[n] {
		lines = append(lines, journalLine{Path: p, Opaque: u.recs[p].Opaque, Node: n})
	}
	return u.write(lines...)
}

// remove records p (and everything below it) deleted: a whiteout when the
// lower has p, else no record at all.
func (u *upper) remove(p string, inLower bool) error {
	var lines []journalLine
	for _, q := range u.below(p) {
		u.set(q, nil)
		lines = append(lines, journalLine{Path: q, Drop: true})
	}
	u.set(p, nil)
	if inLower {
		u.set(p, &urec{Whiteout: true})
		lines = append(lines, journalLine{Path: p, Whiteout: true})
	} else {
		lines = append(lines, journalLine{Path: p, Drop: true})
	}
	return u.write(lines...)
}

// newID returns a number for a new upper inode or data file.
func (u *upper) newID() uint64 {
	id := u.nextID
	u.nextID++
	return id
}

// dataPath is where data file name lives.
func (u *upper) dataPath(name string) string { return filepath.Join(u.dir, "data", name) }

// newData creates data file name, the upper with it if need be.
func (u *upper) newData(name string) (*os.File, error) {
	if u.journal == nil {
		if err := u.compact(); err != nil {
			return nil, err
		}
	}
	return os.OpenFile(u.dataPath(name), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
}

// under returns the records directly in directory p ("" for the root),
// by name.
func (u *upper) under(p string) map[string]*urec {
	if p == "" {
		p = "."
	}
	out := map[string]*urec{}
	for name := range u.tree[p] {
		if r := u.recs[path.Join(p, name)]; r != nil {
			out[name] = r
		}
	}
	return out
}
