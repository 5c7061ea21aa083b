package main

import (
	"fmt"
	"io"

	lfs "github.com/layoutfs/layoutfs/fs"
	"github.com/layoutfs/layoutfs/layout"
	"github.com/urfave/cli/v2"
)

var gcCommand = &cli.Command{
	Name:      "gc",
	Usage:     "remove blobs no reference reaches; --dry-run lists them",
	ArgsUsage: "SOURCE",
	Description: `Lists each removed path and its size. Kept: what index.json reaches (nested indexes,
manifests, configs, layers, subjects and referrers) and, for a docker save, what manifest.json
names, and images with changes pending in a --rw mount (layoutfs status) under the same
--cache-dir. A tarball is rewritten without the garbage. Peers that write blobs before index.json
(skopeo, oras) must not write to SOURCE meanwhile: they do not take layoutfs's lock.`,
	Flags: sourceFlags(&cli.BoolFlag{Name: "dry-run", Aliases: []string{"n"}, Usage: "list what would be removed, remove nothing"}),
	Action: func(c *cli.Context) error {
		if c.NArg() != 1 {
			return cli.Exit("usage: layoutfs gc [--dry-run] SOURCE", 2)
		}
		src, err := openForWrite(c, c.Args().Get(0))
		if err != nil {
			return err
		}
		// Images with changes pending in a --rw mount stay, tagged or not:
		// collecting one would leave its changes with nothing to apply to.
		pending := lfs.PendingManifests(lfs.UpperDir(cacheDir(c), c.Args().Get(0)))
		g, err := src.GC(c.Context, c.Bool("dry-run"), pending...)
		if err != nil {
			return err
		}
		return printGarbage(c.App.Writer, c.App.ErrWriter, g, c.Bool("dry-run"))
	},
}

// printGarbage lists one path and size per line on w, the total on
// summary.
func printGarbage(w, summary io.Writer, g []layout.Garbage, dry bool) error {
	var total int64
	for _, x := range g {
		total += x.Size
		if _, err := fmt.Fprintf(w, "%s\t%d\n", x.Path, x.Size); err != nil {
			return err
		}
	}
	verb := "removed"
	if dry {
		verb = "would remove"
	}
	_, err := fmt.Fprintf(summary, "layoutfs: gc: %s %d files, %d bytes\n", verb, len(g), total)
	return err
}
