// Command sdkguest is a Gust SDK function used by the wasm runtime's tests.
// Its event picks an operation: {"op":"count"} and so on; see handle.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	gust "github.com/gustfaas/gust/sdk/go"
)

type event struct {
	Op string `json:"op"`
	N  int    `json:"n"`
}

type result struct {
	Count     int      `json:"count,omitempty"`
	RequestID string   `json:"requestId,omitempty"`
	Function  string   `json:"function,omitempty"`
	Deadline  int64    `json:"deadline,omitempty"`
	Lines     []string `json:"lines,omitempty"`
	Size      int      `json:"size,omitempty"`
}

var (
	count int
	sink  [][]byte
)

func init() {
	fmt.Println("sdkguest initialising")
	gust.Handle(handle)
}

func handle(ctx context.Context, ev event) (result, error) {
	switch ev.Op {
	case "count":
		count++
		return result{Count: count}, nil
	case "ctx":
		r := result{RequestID: gust.RequestID(ctx), Function: gust.FunctionName(ctx)}
		if d, ok := ctx.Deadline(); ok {
			r.Deadline = d.UnixMilli()
		}
		return r, nil
	case "typed":
		return result{}, gust.Error("Custom.Error", "it went wrong")
	case "plain":
		return result{}, errors.New("plain failure")
	case "panic":
		var s []int
		_ = s[ev.N] // index out of range
		return result{}, nil
	case "exit":
		os.Exit(3)
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
			b := make([]byte, 1<<20)
			for i := range b {
				b[i] = 1
			}
			sink = append(sink, b)
		}
	case "env":
		env := os.Environ()
		slices.Sort(env)
		return result{Lines: env}, nil
	case "fs":
		var lines []string
		for _, p := range []string{"/etc/passwd", "/", "."} {
			if _, err := os.Open(p); err != nil {
				lines = append(lines, p+": error")
			} else {
				lines = append(lines, p+": ok")
			}
		}
		return result{Lines: lines}, nil
	case "log":
		fmt.Fprint(os.Stderr, strings.Repeat("x", ev.N))
		return result{Size: ev.N}, nil
	case "big":
		return result{Lines: []string{strings.Repeat("z", ev.N)}}, nil
	}
	return result{}, gust.Error("Test.UnknownOp", "unknown op "+ev.Op)
}

func main() {}
