package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"

	lfs "github.com/layoutfs/layoutfs/fs"
	"github.com/layoutfs/layoutfs/layout"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
)

// defaultCacheDir is $XDG_CACHE_HOME/layoutfs, else ~/.cache/layoutfs.
func defaultCacheDir() string {
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "layoutfs")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".cache", "layoutfs")
	}
	return ""
}

// reporter writes warnings and progress to stderr: progress only on a
// terminal, nothing at all with --quiet.
type reporter struct {
	quiet bool
	tty   bool
	mu    sync.Mutex
	shown bool // a progress line is on screen
}

func newReporter(c *cli.Context) *reporter {
	_, err := unix.IoctlGetTermios(int(os.Stderr.Fd()), unix.TCGETS)
	return &reporter{quiet: c.Bool("quiet"), tty: err == nil}
}

func (r *reporter) warn(msg string) {
	if r.quiet {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.clear()
	fmt.Fprintf(os.Stderr, "layoutfs: warning: %s\n", msg)
}

func (r *reporter) progress(what string, done, total int64) {
	if r.quiet || !r.tty {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if done >= total {
		r.clear()
		return
	}
	fmt.Fprintf(os.Stderr, "\r\033[Kindexing %s: %3d%% (%d/%d MB)", what, done*100/max(total, 1), done>>20, total>>20)
	r.shown = true
}

func (r *reporter) clear() {
	if r.shown {
		fmt.Fprint(os.Stderr, "\r\033[K")
		r.shown = false
	}
}

// openSource opens SOURCE with the command's cache and reporting settings.
func openSource(c *cli.Context, path string, rep *reporter) (*layout.Source, error) {
	o, err := sourceOptions(c, rep)
	if err != nil {
		return nil, err
	}
	return layout.Open(c.Context, path, o)
}

// sourceOptions are the options of the command's sources.
func sourceOptions(c *cli.Context, rep *reporter) (layout.Options, error) {
	o := layout.Options{CacheDir: cacheDir(c), Warn: rep.warn, Progress: rep.progress}
	return o, applyLimits(c, &o)
}

// cacheDir is the command's cache directory.
func cacheDir(c *cli.Context) string {
	if dir := c.String("cache-dir"); dir != "" {
		return dir
	}
	return defaultCacheDir()
}

// openTree opens SOURCE and returns its tree.
func openTree(c *cli.Context, path string) (lfs.Dir, *layout.Source, error) {
	rep := newReporter(c)
	src, err := openSource(c, path, rep)
	if err != nil {
		return nil, nil, err
	}
	return lfs.New(src, lfs.Options{Warn: rep.warn}), src, nil
}
