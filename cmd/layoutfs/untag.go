package main

import (
	"github.com/urfave/cli/v2"
)

var untagCommand = &cli.Command{
	Name:      "untag",
	Usage:     "remove reference REF from the source (its blobs stay until gc)",
	ArgsUsage: "SOURCE REF",
	Flags:     sourceFlags(),
	Action: func(c *cli.Context) error {
		if c.NArg() != 2 {
			return cli.Exit("usage: layoutfs untag SOURCE REF", 2)
		}
		src, err := openForWrite(c, c.Args().Get(0))
		if err != nil {
			return err
		}
		return src.Untag(c.Context, c.Args().Get(1))
	},
}
