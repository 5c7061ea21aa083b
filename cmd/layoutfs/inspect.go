package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/layoutfs/layoutfs/layout"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/urfave/cli/v2"
)

var inspectCommand = &cli.Command{
	Name:      "inspect",
	Usage:     "show a source's references, platforms, layers and sizes",
	ArgsUsage: "SOURCE",
	Flags:     sourceFlags(&cli.BoolFlag{Name: "json", Usage: "machine-readable output"}),
	Action: func(c *cli.Context) error {
		if c.NArg() != 1 {
			return cli.Exit("usage: layoutfs inspect SOURCE", 2)
		}
		src, err := openSource(c, c.Args().First(), newReporter(c))
		if err != nil {
			return err
		}
		rep, err := describe(src)
		if err != nil {
			return err
		}
		if c.Bool("json") {
			enc := json.NewEncoder(c.App.Writer)
			enc.SetIndent("", "  ")
			return enc.Encode(rep)
		}
		printReport(c.App.Writer, rep)
		return nil
	},
}

// report is what inspect prints; its JSON form is for machines.
type report struct {
	Source   string        `json:"source"`
	Kind     string        `json:"kind"`
	Refs     []refReport   `json:"refs"`
	Untagged []imageReport `json:"untagged"`
}

type refReport struct {
	Name   string        `json:"name"`
	Images []imageReport `json:"images"`
}

type imageReport struct {
	Platform string        `json:"platform"`
	Digest   string        `json:"digest"`
	Size     int64         `json:"size"`
	Layers   []layerReport `json:"layers"`
}

type layerReport struct {
	Digest    string `json:"digest"`
	MediaType string `json:"mediaType"`
	Size      int64  `json:"size"`
	Title     string `json:"title,omitempty"`
}

func describe(src *layout.Source) (*report, error) {
	rep := &report{Source: src.Path, Kind: src.Kind.String(), Refs: []refReport{}, Untagged: []imageReport{}}
	tagged := map[string]bool{}
	for _, r := range src.Refs() {
		ims, err := images(src, r.Descs)
		if err != nil {
			return nil, fmt.Errorf("ref %s: %w", r.Name, err)
		}
		for _, im := range ims {
			tagged[im.Digest] = true
		}
		rep.Refs = append(rep.Refs, refReport{Name: r.Name, Images: ims})
	}
	for _, d := range src.Manifests() {
		ims, err := images(src, []ocispec.Descriptor{d})
		if err != nil {
			continue
		}
		for _, im := range ims {
			if !tagged[im.Digest] {
				tagged[im.Digest] = true
				rep.Untagged = append(rep.Untagged, im)
			}
		}
	}
	return rep, nil
}

func images(src *layout.Source, descs []ocispec.Descriptor) ([]imageReport, error) {
	ims, err := src.Images(descs)
	if err != nil {
		return nil, err
	}
	out := []imageReport{}
	for _, im := range ims {
		ir := imageReport{Platform: im.Platform, Digest: im.Desc.Digest.String(), Size: int64(len(im.Raw)), Layers: []layerReport{}}
		for _, l := range im.Manifest.Layers {
			ir.Layers = append(ir.Layers, layerReport{Digest: l.Digest.String(), MediaType: l.MediaType, Size: l.Size, Title: l.Annotations[layout.AnnotationTitle]})
			ir.Size += l.Size
		}
		ir.Size += im.Manifest.Config.Size
		out = append(out, ir)
	}
	return out, nil
}

func printReport(w io.Writer, rep *report) {
	fmt.Fprintf(w, "%s: %s\n", rep.Source, rep.Kind)
	for _, r := range rep.Refs {
		fmt.Fprintf(w, "tags/%s\n", r.Name)
		printImages(w, r.Images)
	}
	if len(rep.Untagged) > 0 {
		fmt.Fprintln(w, "untagged")
		printImages(w, rep.Untagged)
	}
}

func printImages(w io.Writer, ims []imageReport) {
	for _, im := range ims {
		fmt.Fprintf(w, "  %s  %s  %s\n", im.Platform, im.Digest, human(im.Size))
		for i, l := range im.Layers {
			name := l.MediaType
			if l.Title != "" {
				name = "file " + l.Title
			}
			fmt.Fprintf(w, "    %02d  %s  %8s  %s\n", i, l.Digest, human(l.Size), name)
		}
	}
}

func human(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
