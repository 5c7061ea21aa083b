package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/layoutfs/layoutfs/layout"
	"github.com/urfave/cli/v2"
)

// limitFlags bound what a source's layers may expand to (issue 5: a tiny
// gzip layer must not decompress to terabytes). Every command that opens a
// source takes them; a mount hands them to its daemon.
var limitFlags = []cli.Flag{
	&cli.StringFlag{
		Name:    "max-layer-size",
		Usage:   fmt.Sprintf("refuse a layer (or compressed outer archive) that expands past SIZE bytes; K, M, G, T suffixes (default %s)", formatSize(layout.DefaultMaxLayerSize)),
		EnvVars: []string{"LAYOUTFS_MAX_LAYER_SIZE"},
	},
	&cli.Int64Flag{
		Name:    "max-expansion",
		Usage:   fmt.Sprintf("refuse a compressed stream that expands past N times its size, once past 256 MiB; -1: no ratio limit (default %d)", layout.DefaultMaxExpansion),
		EnvVars: []string{"LAYOUTFS_MAX_EXPANSION"},
	},
}

// applyLimits sets the limit flags' values in o. A value that is not one
// is a usage error (exit 2), as a malformed command line is.
func applyLimits(c *cli.Context, o *layout.Options) error {
	if s := c.String("max-layer-size"); s != "" {
		n, err := parseSize(s)
		if err != nil {
			return cli.Exit(fmt.Sprintf("layoutfs: --max-layer-size (or LAYOUTFS_MAX_LAYER_SIZE) %q: %v", s, err), 2)
		}
		o.MaxLayerSize = n
	}
	if c.IsSet("max-expansion") {
		n := c.Int64("max-expansion")
		if n == 0 || n < -1 {
			return cli.Exit(fmt.Sprintf("layoutfs: --max-expansion (or LAYOUTFS_MAX_EXPANSION) %d: want a ratio of at least 1, or -1 for none", n), 2)
		}
		o.MaxExpansion = n
	}
	return nil
}

// limitArgs are the limit flags as the user gave them, for the daemon.
func limitArgs(c *cli.Context) []string {
	var args []string
	if c.IsSet("max-layer-size") {
		args = append(args, "--max-layer-size", c.String("max-layer-size"))
	}
	if c.IsSet("max-expansion") {
		args = append(args, "--max-expansion", strconv.FormatInt(c.Int64("max-expansion"), 10))
	}
	return args
}

// parseSize reads a byte count with an optional binary suffix: 4096, 512M,
// 64G, 1T.
func parseSize(s string) (int64, error) {
	num, shift := strings.ToUpper(strings.TrimSpace(s)), 0
	if i := len(num) - 1; i >= 0 {
		if k := strings.IndexByte("KMGT", num[i]); k >= 0 {
			num, shift = num[:i], 10*(k+1)
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 {
		return 0, errors.New("not a size (a positive number of bytes, optionally with K, M, G or T)")
	}
	if n > (1<<63-1)>>shift {
		return 0, errors.New("too large")
	}
	return n << shift, nil
}

// formatSize is n in the largest binary unit that divides it.
func formatSize(n int64) string {
	for _, u := range []struct {
		suffix string
		shift  int
	}{{"T", 40}, {"G", 30}, {"M", 20}, {"K", 10}} {
		if n >= 1<<u.shift && n%(1<<u.shift) == 0 {
			return fmt.Sprintf("%d%s", n>>u.shift, u.suffix)
		}
	}
	return strconv.FormatInt(n, 10)
}
