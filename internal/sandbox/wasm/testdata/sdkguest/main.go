// Command sdkguest is a Gust SDK function used by the wasm runtime's tests.
// Its event picks an operation: {"op":"count"} and so on; see handle.
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	gust "github.com/gustfaas/gust/sdk/go"
)

type event struct {
	Op     string `json:"op"`
	N      int    `json:"n"`
	Bucket string `json:"bucket"`
	Key    string `json:"key"`
	URL    string `json:"url"`
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

// initErr is what a host call made while initialising answered.
var initErr error

func init() {
	fmt.Println("sdkguest initialising")
	_, initErr = gust.KV("b").Get(context.Background(), "k")
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
	case "initerr":
		return result{}, initErr
	case "kv.get":
		e, err := gust.KV(ev.Bucket).Get(ctx, ev.Key)
		if err != nil {
			return result{}, err
		}
		return result{Lines: []string{string(e.Value), strconv.FormatUint(e.Revision, 10)}, Size: len(e.Value)}, nil
	case "kv.cas":
		rev, err := gust.KV(ev.Bucket).CompareAndSet(ctx, ev.Key, []byte("v"), uint64(ev.N))
		if errors.Is(err, gust.ErrConflict) {
			return result{Lines: []string{"conflict"}}, nil
		}
		return result{Lines: []string{strconv.FormatUint(rev, 10)}}, err
	case "kv.list":
		keys, err := gust.KV(ev.Bucket).List(ctx, ev.Key)
		return result{Lines: keys}, err
	case "obj.put":
		info, err := gust.Objects(ev.Bucket).Put(ctx, ev.Key, io.LimitReader(zeros{}, int64(ev.N)), "application/x-zeros")
		return result{Size: int(info.Size), Lines: []string{info.ContentType}}, err
	case "obj.get":
		r, err := gust.Objects(ev.Bucket).Get(ctx, ev.Key)
		if err != nil {
			return result{}, err
		}
		defer r.Close()
		n, err := io.Copy(io.Discard, r)
		return result{Size: int(n), Lines: []string{strconv.FormatInt(r.Info.Size, 10)}}, err
	case "obj.leak":
		// Opens a read and leaves it open.
		_, err := gust.Objects(ev.Bucket).Get(ctx, ev.Key)
		return result{}, err
	case "http":
		resp, err := http.Post(ev.URL, "text/plain", bytes.NewReader([]byte("ping")))
		if err != nil {
			return result{}, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return result{Lines: []string{resp.Status, resp.Header.Get("X-Reply"), string(body)}}, err
	}
	return result{}, gust.Error("Test.UnknownOp", "unknown op "+ev.Op)
}

// zeros yields zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func main() {}
