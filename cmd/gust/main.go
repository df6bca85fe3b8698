// Command gust is the Gust serverless platform in one binary: `gust up`
// runs a node; every other subcommand is a client of a node's HTTP API.
package main

import (
	"context"
	"io"
	"os"

	"github.com/gustfaas/gust/internal/cli"
	"github.com/gustfaas/gust/internal/meter"
	"github.com/gustfaas/gust/internal/node"
	"github.com/gustfaas/gust/internal/sandbox/process"
)

func main() {
	// A sandboxed function instance starts as this binary in helper mode;
	// it never returns from here.
	process.RunHelperIfRequested()
	os.Exit(cli.Run(context.Background(), os.Args[1:], cli.Env{
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, Up: up,
	}))
}

// up adapts the CLI's `gust up` options to the node.
func up(ctx context.Context, o cli.UpOptions, stdout, stderr io.Writer) error {
	uo := node.UpOptions{
		Listen:       o.Listen,
		DataDir:      o.DataDir,
		GraceTimeout: o.GraceTimeout,
		Verbose:      o.Verbose,
		IdleTimeout:  o.IdleTimeout,
		MemoryMB:     o.MemoryMB,
		Prices:       meter.Prices{PerRequest: o.PricePerRequest, PerGBSecond: o.PricePerGBSecond},
	}
	if o.Examples {
		uo.ExamplesDir = "examples"
	}
	return node.Up(ctx, uo, stdout, stderr)
}
