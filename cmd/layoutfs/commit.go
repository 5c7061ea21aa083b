package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	lfs "github.com/layoutfs/layoutfs/fs"
	"github.com/layoutfs/layoutfs/layout"
	"github.com/layoutfs/layoutfs/mount"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/urfave/cli/v2"
)

var commitCommand = &cli.Command{
	Name:      "commit",
	Usage:     "write the pending changes to an image's rootfs as a new layer, and point the ref (or --tag) at the new image",
	ArgsUsage: "MOUNTPOINT tags/<ref>/<platform>",
	Description: `The changes made in MOUNTPOINT/tags/<ref>/<platform>/rootfs of a --rw mount
become a layer (deletions as whiteouts), appended to a new config, manifest
and, for a multi-platform ref, a new index with only that platform replaced.
The ref, or --tag NEW, then points at it: one locked, crash-safe write to the
source. The pending changes are dropped once committed. An image reached by
digest (manifests/<digest>/<platform>) needs --tag.`,
	Flags: sourceFlags(
		&cli.StringFlag{Name: "tag", Usage: "point this new reference at the result instead of moving the ref"},
		&cli.StringFlag{Name: "message", Aliases: []string{"m"}, Usage: "the history entry's comment"},
		&cli.StringFlag{Name: "compression", Value: "gzip", Usage: "the layer's compression: gzip, zstd or none"},
	),
	Action: func(c *cli.Context) error {
		if c.NArg() != 2 {
			return cli.Exit("usage: layoutfs commit [flags] MOUNTPOINT tags/<ref>/<platform>", 2)
		}
		im, err := openMountedImage(c, c.Args().Get(0), c.Args().Get(1))
		if err != nil {
			return err
		}
		defer im.pending.Close()
		if im.pending.Empty() {
			return fmt.Errorf("commit %s: nothing to commit", im.treePath)
		}
		changes, err := im.pending.Changes()
		if err != nil {
			return fmt.Errorf("commit %s: %w", im.treePath, err)
		}
		desc, err := im.src.Commit(c.Context, im.ref, im.platform, changes, layout.CommitOptions{
			Compression: c.String("compression"),
			Message:     c.String("message"),
			Tag:         c.String("tag"),
			Base:        im.manifest,
		})
		if err != nil {
			return fmt.Errorf("commit %s: %w", im.treePath, err)
		}
		if err := im.pending.Discard(); err != nil {
			return fmt.Errorf("committed as %s, but the changes could not be dropped: %w", desc.Digest, err)
		}
		fmt.Fprintln(c.App.Writer, desc.Digest)
		return nil
	},
}

var discardCommand = &cli.Command{
	Name:      "discard",
	Usage:     "drop the pending changes to an image's rootfs",
	ArgsUsage: "MOUNTPOINT tags/<ref>/<platform>",
	Flags:     sourceFlags(),
	Action: func(c *cli.Context) error {
		if c.NArg() != 2 {
			return cli.Exit("usage: layoutfs discard MOUNTPOINT tags/<ref>/<platform>", 2)
		}
		im, err := openMountedImage(c, c.Args().Get(0), c.Args().Get(1))
		if err != nil {
			return err
		}
		defer im.pending.Close()
		return im.pending.Discard()
	},
}

var statusCommand = &cli.Command{
	Name:      "status",
	Usage:     "list the pending changes to the rootfs of the images of a --rw mount",
	ArgsUsage: "MOUNTPOINT",
	Description: `For each image with pending changes: its manifest, the tags that reach it,
then one line per changed path: A added, M changed, D deleted.`,
	Flags: sourceFlags(),
	Action: func(c *cli.Context) error {
		if c.NArg() != 1 {
			return cli.Exit("usage: layoutfs status MOUNTPOINT", 2)
		}
		source, err := mount.SourceOf(c.Args().First())
		if err != nil {
			return err
		}
		src, err := openSource(c, source, newReporter(c))
		if err != nil {
			return err
		}
		root := lfs.New(src, lfs.Options{})
		upper := lfs.UpperDir(cacheDir(c), source)
		for _, m := range lfs.PendingManifests(upper) {
			if err := printStatus(c.Context, c.App.Writer, src, root, upper, m); err != nil {
				return err
			}
		}
		return nil
	},
}

// printStatus prints the pending changes to the image with manifest m.
func printStatus(ctx context.Context, w io.Writer, src *layout.Source, root lfs.Dir, upper string, m digest.Digest) error {
	dir := "manifests/" + m.String()
	n, err := lfs.Walk(root, dir)
	if err != nil {
		return printUnreached(ctx, w, src, upper, m)
	}
	ents, err := n.(lfs.Dir).ReadDir()
	if err != nil || len(ents) != 1 {
		return nil
	}
	imageDir := dir + "/" + ents[0].Name
	lower, err := lfs.Walk(root, imageDir+"/rootfs")
	if err != nil {
		return nil
	}
	p, err := lfs.OpenPending(ctx, upper, m, lower.(lfs.Dir))
	if err != nil {
		return err
	}
	defer p.Close()
	if p.Empty() {
		return nil
	}
	var tags []string
	for _, ref := range src.Refs() {
		ims, _ := src.Images(ref.Descs)
		for _, im := range ims {
			if im.Desc.Digest == m {
				tags = append(tags, "tags/"+ref.Name+"/"+im.Platform)
			}
		}
	}
	fmt.Fprintf(w, "%s", imageDir)
	if len(tags) > 0 {
		fmt.Fprintf(w, " (%s)", strings.Join(tags, ", "))
	}
	fmt.Fprintln(w)
	for _, l := range p.Status() {
		fmt.Fprintf(w, "  %s\n", l)
	}
	return nil
}

// printUnreached prints the pending changes to an image that no
// reference reaches any more, and how to get at them.
func printUnreached(ctx context.Context, w io.Writer, src *layout.Source, upper string, m digest.Digest) error {
	p, err := lfs.OpenPending(ctx, upper, m, nil)
	if err != nil {
		return err
	}
	defer p.Close()
	if p.Empty() {
		return nil
	}
	if _, err := src.Resolve(ocispec.Descriptor{Digest: m}); err == nil {
		fmt.Fprintf(w, "manifests/%s (no reference: %d changes pending; ln -s ../manifests/%s tags/NAME in the mount reaches them again)\n", m, p.Len(), m)
		return nil
	}
	fmt.Fprintf(w, "manifests/%s (gone from %s: %d changes pending with no image to apply to, in %s)\n", m, src.Path, p.Len(), filepath.Join(upper, m.Encoded()))
	return nil
}

// mountedImage is an image of a mounted source, named by its path in the
// tree, with its pending changes.
type mountedImage struct {
	treePath string
	src      *layout.Source
	ref      string // a reference name, or a digest
	platform string
	manifest digest.Digest // the image the changes were made on
	pending  *lfs.Pending
}

// openMountedImage finds the image at treePath (tags/<ref>/<platform> or
// manifests/<digest>/<platform>, relative to the mountpoint or under it)
// of the source mounted at mnt.
func openMountedImage(c *cli.Context, mnt, treePath string) (*mountedImage, error) {
	source, err := mount.SourceOf(mnt)
	if err != nil {
		return nil, err
	}
	if filepath.IsAbs(treePath) || strings.HasPrefix(treePath, mnt) {
		if rel, err := filepath.Rel(absPath(mnt), absPath(treePath)); err == nil && !strings.HasPrefix(rel, "..") {
			treePath = rel
		}
	}
	treePath = strings.Trim(filepath.ToSlash(filepath.Clean(treePath)), "/")
	parts := strings.Split(treePath, "/")
	if len(parts) < 3 || parts[0] != "tags" && parts[0] != "manifests" {
		return nil, fmt.Errorf("%s: name an image as tags/<ref>/<platform> or manifests/<digest>/<platform>", treePath)
	}
	src, err := openSource(c, source, newReporter(c))
	if err != nil {
		return nil, err
	}
	root := lfs.New(src, lfs.Options{})
	mf, err := lfs.Walk(root, treePath+"/manifest.json")
	if err != nil {
		return nil, fmt.Errorf("%s: not an image of %s: %w", treePath, source, err)
	}
	f, ok := mf.(lfs.File)
	if !ok {
		return nil, fmt.Errorf("%s: not an image of %s", treePath, source)
	}
	manifest, err := digest.FromReader(io.NewSectionReader(f, 0, f.Attr().Size))
	if err != nil {
		return nil, err
	}
	lower, err := lfs.Walk(root, treePath+"/rootfs")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", treePath, err)
	}
	pending, err := lfs.OpenPending(c.Context, lfs.UpperDir(cacheDir(c), source), manifest, lower.(lfs.Dir))
	if err != nil {
		return nil, err
	}
	return &mountedImage{
		treePath: treePath,
		src:      src,
		ref:      strings.Join(parts[1:len(parts)-1], "/"),
		platform: parts[len(parts)-1],
		manifest: manifest,
		pending:  pending,
	}, nil
}
