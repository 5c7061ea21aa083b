package mount

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// mountEntry is the part of a /proc/self/mountinfo line we need.
type mountEntry struct {
	point  string // where it is mounted, unescaped
	fstype string // "fuse.layoutfs" for our mounts
	source string // Options.FsName
	dev    string // major:minor, as /sys/class/bdi names it
}

// findMount returns the topmost mount at the path dir (already made
// canonical), or ok false when dir is not a mount point.
func findMount(dir string) (m mountEntry, ok bool, err error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return m, false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		// 36 35 98:0 /root /mnt/x rw,noatime shared:1 - fuse.layoutfs /src/img.tar ro,...
		// The optional fields before "-" vary in number.
		fields := strings.Fields(sc.Text())
		sep := -1
		for i := 6; i < len(fields); i++ {
			if fields[i] == "-" {
				sep = i
				break
			}
		}
		if len(fields) < 5 || sep < 0 || sep+2 >= len(fields) {
			continue
		}
		if p := unescapeMountinfo(fields[4]); p == dir {
			// Later lines are mounted on top of earlier ones.
			m = mountEntry{point: p, fstype: fields[sep+1], source: unescapeMountinfo(fields[sep+2]), dev: fields[2]}
			ok = true
		}
	}
	if err := sc.Err(); err != nil {
		return m, false, fmt.Errorf("read /proc/self/mountinfo: %w", err)
	}
	return m, ok, nil
}

// unescapeMountinfo undoes the kernel's octal escapes (\040 for a space,
// \011, \012, \134) in mountinfo paths.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// resolveMountpoint makes p absolute with symlinks resolved, the form the
// kernel shows in mountinfo, and looks it up there. It never stats p while
// p may be a mount point: on a dead FUSE mount that fails (ENOTCONN), on a
// hung one it hangs. So the parent is resolved first; only if that path is
// no mount point is the last element resolved too, in case it is a symlink
// to one. err from mountinfo comes with the path still set.
func resolveMountpoint(p string) (path string, m mountEntry, mounted bool, err error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", m, false, err
	}
	parent, err := filepath.EvalSymlinks(filepath.Dir(abs))
	if err != nil {
		return "", m, false, err
	}
	path = filepath.Join(parent, filepath.Base(abs))
	if m, mounted, err = findMount(path); err != nil || mounted {
		return path, m, mounted, err
	}
	if r, err := filepath.EvalSymlinks(path); err == nil && r != path {
		path = r
		m, mounted, err = findMount(path)
	}
	return path, m, mounted, err
}

// SourceOf returns the source a layoutfs mount at mountpoint serves, as
// the mount recorded it.
func SourceOf(mountpoint string) (string, error) {
	mnt, m, mounted, err := resolveMountpoint(mountpoint)
	switch {
	case err != nil:
		return "", fmt.Errorf("mountpoint %s: %w", mountpoint, err)
	case !mounted || m.fstype != "fuse."+fsType:
		return "", fmt.Errorf("%s is not a layoutfs mount", mnt)
	}
	return m.source, nil
}
