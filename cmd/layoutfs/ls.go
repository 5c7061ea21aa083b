package main

import (
	"fmt"
	"io"

	lfs "github.com/layoutfs/layoutfs/fs"
	"github.com/urfave/cli/v2"
)

var lsCommand = &cli.Command{
	Name:      "ls",
	Usage:     "list a directory of the tree without mounting",
	ArgsUsage: "SOURCE [TREE-PATH]",
	Flags:     sourceFlags(append(selectFlags, &cli.BoolFlag{Name: "long", Aliases: []string{"l"}, Usage: "mode, owner, size, time"})...),
	Action: func(c *cli.Context) error {
		if c.NArg() < 1 || c.NArg() > 2 {
			return cli.Exit("usage: layoutfs ls SOURCE [TREE-PATH]", 2)
		}
		node, p, err := lookupArg(c, c.Args().Get(0), c.Args().Get(1))
		if err != nil {
			return err
		}
		return runLs(c.App.Writer, node, p, c.Bool("long"))
	},
}

func runLs(w io.Writer, node lfs.Node, p string, long bool) error {
	d, ok := node.(lfs.Dir)
	if !ok {
		printEntry(w, p, node, long)
		return nil
	}
	ents, err := d.ReadDir()
	if err != nil {
		return fmt.Errorf("ls %s: %w", p, err)
	}
	for _, e := range ents {
		printEntry(w, e.Name, e.Node, long)
	}
	return nil
}

func printEntry(w io.Writer, name string, n lfs.Node, long bool) {
	if !long {
		fmt.Fprintln(w, name)
		return
	}
	a := n.Attr()
	line := fmt.Sprintf("%v %3d %5d %5d %10d %s %s", a.Mode, a.Nlink, a.Uid, a.Gid, a.Size, a.Mtime.UTC().Format("2006-01-02 15:04"), name)
	if l, ok := n.(lfs.Symlink); ok {
		line += " -> " + l.Target()
	}
	fmt.Fprintln(w, line)
}

// lookupArg opens SOURCE and finds TREE-PATH in its tree.
func lookupArg(c *cli.Context, source, arg string) (lfs.Node, string, error) {
	root, src, err := openTree(c, source)
	if err != nil {
		return nil, "", err
	}
	p, err := treePath(c, src, arg)
	if err != nil {
		return nil, "", err
	}
	n, err := lfs.Walk(root, p)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", source, err)
	}
	return n, p, nil
}
