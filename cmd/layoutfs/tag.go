package main

import (
	"github.com/layoutfs/layoutfs/layout"
	"github.com/urfave/cli/v2"
)

var tagCommand = &cli.Command{
	Name:      "tag",
	Usage:     "point reference NEW at TARGET (a reference or a manifest digest), writing the source in place",
	ArgsUsage: "SOURCE TARGET NEW",
	Description: `TARGET is a reference name of SOURCE or the digest of a manifest or index in it
(sha256:<hex>). NEW moves if it exists. index.json is replaced atomically under a lock; a
tarball is rewritten beside itself and renamed over; a docker save's manifest.json RepoTags
and repositories follow (a legacy docker save takes only repo:tag names).

   layoutfs tag image.tar alpine:3.20 alpine:latest
   layoutfs tag ./layout sha256:4c1f... v2`,
	Flags: sourceFlags(),
	Action: func(c *cli.Context) error {
		if c.NArg() != 3 {
			return cli.Exit("usage: layoutfs tag SOURCE TARGET NEW", 2)
		}
		src, err := openForWrite(c, c.Args().Get(0))
		if err != nil {
			return err
		}
		return src.Tag(c.Context, c.Args().Get(1), c.Args().Get(2))
	},
}

// openForWrite returns SOURCE for a write: the write reads it under its
// lock, so it is not read here first.
func openForWrite(c *cli.Context, path string) (*layout.Source, error) {
	o, err := sourceOptions(c, newReporter(c))
	if err != nil {
		return nil, err
	}
	return layout.OpenForWrite(path, o), nil
}
