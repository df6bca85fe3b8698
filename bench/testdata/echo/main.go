// Command echo is the WASI command module the benchmarks cold-start: it
// copies its event from stdin to stdout.
package main

import (
	"io"
	"os"
)

func main() {
	io.Copy(os.Stdout, os.Stdin)
}
