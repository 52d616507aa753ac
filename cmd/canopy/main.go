// Command canopy is the one binary of Canopy: server, all-in-one and CLI.
package main

import (
	"context"
	"os"

	"github.com/canopy-sdn/canopy/internal/cli"
)

func main() {
	os.Exit(cli.Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}
