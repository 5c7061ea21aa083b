package main

import (
	"encoding/json"
	"fmt"

	"github.com/layoutfs/layoutfs/layout"
	"github.com/urfave/cli/v2"
)

var verifyCommand = &cli.Command{
	Name:      "verify",
	Usage:     "check every blob against its digest and size, every descriptor, every layer",
	ArgsUsage: "SOURCE",
	Description: `Prints one line per problem, naming the blob and how it is reached, then a
summary; exits 1 if anything is wrong. Manifests missing from a partial
multi-platform layout are notes, not errors.`,
	Flags: sourceFlags(&cli.BoolFlag{Name: "json", Usage: "machine-readable output"}),
	Action: func(c *cli.Context) error {
		if c.NArg() != 1 {
			return cli.Exit("usage: layoutfs verify SOURCE", 2)
		}
		src, err := openSource(c, c.Args().First(), newReporter(c))
		if err != nil {
			return err
		}
		rep := src.Verify(c.Context)
		layout.SortProblems(rep.Problems)
		if c.Bool("json") {
			enc := json.NewEncoder(c.App.Writer)
			enc.SetIndent("", "  ")
			out := struct {
				Source string `json:"source"`
				OK     bool   `json:"ok"`
				*layout.VerifyReport
			}{src.Path, rep.OK(), rep}
			if err := enc.Encode(out); err != nil {
				return err
			}
		} else {
			for _, p := range rep.Problems {
				fmt.Fprintln(c.App.Writer, p)
			}
			verdict := "OK"
			if !rep.OK() {
				verdict = "FAILED"
			}
			fmt.Fprintf(c.App.Writer, "%s: %s: %d blobs hashed, %d descriptors, %d layers indexed; %d errors, %d notes\n",
				src.Path, verdict, rep.Blobs, rep.Descriptors, rep.Layers, rep.Errors(), len(rep.Problems)-rep.Errors())
		}
		if !rep.OK() {
			return cli.Exit("", 1)
		}
		return nil
	},
}
