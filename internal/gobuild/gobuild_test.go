package gobuild

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

// exports lists the names of a module's exported functions, read from its
// export section.
func exports(t *testing.T, code []byte) map[string]bool {
	t.Helper()
	if !bytes.HasPrefix(code, []byte("\x00asm\x01\x00\x00\x00")) {
		t.Fatalf("output is not a wasm module: %.8x", code)
	}
	leb := func(b []byte, i int) (int, int) {
		var v, shift int
		for {
			c := b[i]
			i++
			v |= int(c&0x7f) << shift
			shift += 7
			if c < 0x80 {
				return v, i
			}
		}
	}
	got := map[string]bool{}
	for i := 8; i < len(code); {
		id := code[i]
		size, j := leb(code, i+1)
		if id == 7 {
			n, k := leb(code, j)
			for range n {
				l, k2 := leb(code, k)
				name := string(code[k2 : k2+l])
				kind := code[k2+l]
				_, k = leb(code, k2+l+1)
				if kind == 0 {
					got[name] = true
				}
			}
		}
		i = j + size
	}
	return got
}

func TestBuild(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		build   func(context.Context, string) ([]byte, error)
		dir     string
		want    []string
		notWant string
	}{
		{"reactor", Build, "../../examples/hello", []string{"_initialize", "gust_alloc", "gust_invoke"}, "_start"},
		{"command", BuildCommand, "testdata/cmd", []string{"_start"}, "_initialize"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, err := tt.build(ctx, tt.dir)
			if errors.Is(err, ErrNoGo) {
				t.Skip(err)
			}
			if err != nil {
				t.Fatalf("build(%s) = %v", tt.dir, err)
			}
			got := exports(t, code)
			for _, name := range tt.want {
				if !got[name] {
					t.Errorf("build(%s) exports no %s", tt.dir, name)
				}
			}
			if got[tt.notWant] {
				t.Errorf("build(%s) exports %s", tt.dir, tt.notWant)
			}
		})
	}
}

func TestBuildErrors(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		dir  string
		want string
	}{
		{"compile error", "testdata/broken", "undefined: undefinedFunction"},
		{"missing dir", "testdata/missing", "no such file"},
		{"not a dir", "gobuild.go", "not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Build(ctx, tt.dir)
			if errors.Is(err, ErrNoGo) {
				t.Skip(err)
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Build(%s) = %v, want an error mentioning %q", tt.dir, err, tt.want)
			}
		})
	}
}

func TestBuildWithoutGo(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := Build(context.Background(), "testdata/cmd")
	if !errors.Is(err, ErrNoGo) {
		t.Errorf("Build() with no go on PATH = %v, want ErrNoGo", err)
	}
}
