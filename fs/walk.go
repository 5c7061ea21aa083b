package fs

import (
	"fmt"
	iofs "io/fs"
	"strings"
)

// Walk returns the node at slash-separated path p below root ("" or "."
// is root itself). Symlinks are not followed: a link in the middle of p is
// an error, as it would be for a path that names no directory.
func Walk(root Dir, p string) (Node, error) {
	p = strings.Trim(p, "/")
	var n Node = root
	if p == "" || p == "." {
		return n, nil
	}
	for _, part := range strings.Split(p, "/") {
		if part == "" || part == "." {
			continue
		}
		d, ok := n.(Dir)
		if !ok {
			return nil, &iofs.PathError{Op: "walk", Path: p, Err: fmt.Errorf("%w: a path component is not a directory", iofs.ErrNotExist)}
		}
		next, err := d.Lookup(part)
		if err != nil {
			return nil, &iofs.PathError{Op: "walk", Path: p, Err: err}
		}
		n = next
	}
	return n, nil
}
