package main

import (
	"fmt"
	"io"

	lfs "github.com/layoutfs/layoutfs/fs"
	"github.com/urfave/cli/v2"
)

var catCommand = &cli.Command{
	Name:      "cat",
	Usage:     "write a file of the tree to stdout without mounting",
	ArgsUsage: "SOURCE TREE-PATH",
	Flags:     sourceFlags(selectFlags...),
	Action: func(c *cli.Context) error {
		if c.NArg() != 2 {
			return cli.Exit("usage: layoutfs cat SOURCE TREE-PATH", 2)
		}
		node, p, err := lookupArg(c, c.Args().Get(0), c.Args().Get(1))
		if err != nil {
			return err
		}
		return runCat(c.App.Writer, node, p)
	},
}

func runCat(w io.Writer, node lfs.Node, p string) error {
	switch n := node.(type) {
	case lfs.File:
		if _, err := io.Copy(w, io.NewSectionReader(n, 0, n.Attr().Size)); err != nil {
			return fmt.Errorf("cat %s: %w", p, err)
		}
		return nil
	case lfs.Symlink:
		return fmt.Errorf("cat %s: a symbolic link to %s (not followed)", p, n.Target())
	case lfs.Dir:
		return fmt.Errorf("cat %s: is a directory", p)
	}
	return fmt.Errorf("cat %s: not a regular file", p)
}
