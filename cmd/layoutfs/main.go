// Command layoutfs mounts container image archives as browsable trees and
// reads them without a mount (ls, cat, cp, inspect).
package main

import (
	"fmt"
	"os"
)

func main() {
	app := newApp()
	if err := app.Run(flagsFirst(app, os.Args)); err != nil {
		fmt.Fprintf(os.Stderr, "layoutfs: %s\n", err)
		os.Exit(1)
	}
}
