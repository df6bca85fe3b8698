// Command command is a WASI command used by the wasm runtime's tests. What
// it does is chosen by the MODE environment variable (default echo):
//
//	echo    copy stdin to stdout
//	exit3   write to stderr and exit with status 3
//	panic   panic (the Go runtime exits with status 2)
//	loop    spin forever
//	sleep   sleep for an hour
//	bomb    allocate memory until the runtime dies
//	env     print the environment, one KEY=value a line, sorted
//	fs      try to open, create and list files; print what happened
//	log     write stdin's length in bytes (a decimal number) of 'x' to stderr
//	bigout  write 7 MiB to stdout
package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

var sink [][]byte

func main() {
	switch mode := os.Getenv("MODE"); mode {
	case "", "echo":
		io.Copy(os.Stdout, os.Stdin)
	case "exit3":
		fmt.Fprintln(os.Stderr, "exiting with status 3")
		os.Exit(3)
	case "panic":
		panic("boom")
	case "loop":
		for i := 0; ; i++ {
			if i < 0 {
				fmt.Println(i)
			}
		}
	case "sleep":
		time.Sleep(time.Hour)
	case "bomb":
		for {
			sink = append(sink, make([]byte, 1<<20))
			for i := range sink[len(sink)-1] {
				sink[len(sink)-1][i] = 1
			}
		}
	case "env":
		env := os.Environ()
		slices.Sort(env)
		fmt.Print(strings.Join(env, "\n"))
	case "fs":
		fsProbe()
	case "log":
		in, _ := io.ReadAll(os.Stdin)
		n, _ := strconv.Atoi(strings.TrimSpace(string(in)))
		os.Stderr.Write([]byte(strings.Repeat("x", n)))
		fmt.Print("ok")
	case "bigout":
		chunk := []byte(strings.Repeat("y", 1<<20))
		for range 7 {
			if _, err := os.Stdout.Write(chunk); err != nil {
				fmt.Fprintln(os.Stderr, "write:", err)
				os.Exit(1)
			}
		}
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", mode)
		os.Exit(1)
	}
}

func fsProbe() {
	var results []string
	try := func(what string, err error) {
		if err != nil {
			results = append(results, what+": error")
		} else {
			results = append(results, what+": ok")
		}
	}
	_, err := os.Open("/etc/passwd")
	try("open /etc/passwd", err)
	_, err = os.Create("/tmp/x")
	try("create /tmp/x", err)
	_, err = os.ReadDir("/")
	try("readdir /", err)
	_, err = os.Open(".")
	try("open .", err)
	fmt.Print(strings.Join(results, "\n"))
}
