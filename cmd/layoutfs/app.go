package main

import (
	"github.com/urfave/cli/v2"
)

// cacheDirFlag is shared by every command that opens a source.
var cacheDirFlag = &cli.StringFlag{
	Name:    "cache-dir",
	Usage:   "keep indexes here (default $XDG_CACHE_HOME/layoutfs, else ~/.cache/layoutfs)",
	EnvVars: []string{"LAYOUTFS_CACHE_DIR"},
}

var quietFlag = &cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no warnings or progress on stderr"}

// selectFlags narrow the absolute-path shorthand to one image.
var selectFlags = []cli.Flag{
	&cli.StringFlag{Name: "platform", Usage: "with an absolute path: the image of this platform, os/arch[/variant][:osversion]"},
	&cli.StringFlag{Name: "ref", Usage: "with an absolute path: the image of this reference"},
}

func sourceFlags(extra ...cli.Flag) []cli.Flag {
	flags := append([]cli.Flag{cacheDirFlag, quietFlag}, limitFlags...)
	return append(flags, extra...)
}

func newApp() *cli.App {
	return &cli.App{
		Name:  "layoutfs",
		Usage: "mount container image archives (docker save, oci-archive, OCI layouts) as plain directory trees",
		Description: `SOURCE is an OCI layout directory, an oci-archive, a docker save tarball (legacy or
Docker 25+), or any of these compressed with gzip or zstd; it is recognised by content.
TREE-PATH is a path in the tree a mount shows (tags/<ref>/<platform>/rootfs/etc/os-release);
an absolute path (/etc/os-release) means that path in the rootfs of the only image, narrowed
by --ref and --platform.`,
		HideHelpCommand: true,
		Commands: []*cli.Command{
			mountCommand,
			umountCommand,
			lsCommand,
			catCommand,
			cpCommand,
			inspectCommand,
			verifyCommand,
			tagCommand,
			untagCommand,
			gcCommand,
			commitCommand,
			statusCommand,
			discardCommand,
		},
	}
}
