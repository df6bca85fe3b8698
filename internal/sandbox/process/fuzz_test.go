//go:build linux

package process

import (
	"archive/zip"
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzUnpack feeds arbitrary bytes to the bundle extractor: it must never
// write outside its directory, and never panic.
func FuzzUnpack(f *testing.F) {
	f.Add(zipOf(f, map[string]zfile{"bootstrap": {mode: 0o755, data: "#!/bin/sh\n"}}))
	f.Add(zipOf(f, map[string]zfile{"a/b/c.txt": {data: "x"}, "../up": {data: "y"}}))
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	h := &zip.FileHeader{Name: "link"}
	h.SetMode(os.ModeSymlink | 0o777)
	w, _ := zw.CreateHeader(h)
	w.Write([]byte("../../etc"))
	w, _ = zw.Create("link/passwd")
	w.Write([]byte("x"))
	zw.Close()
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, code []byte) {
		parent := t.TempDir()
		rt := &Runtime{codeDir: filepath.Join(parent, "code"), code: map[string]int{}}
		if err := os.Mkdir(rt.codeDir, 0o700); err != nil {
			t.Fatal(err)
		}
		if _, err := rt.unpack("d", code); err == nil {
			rt.release("d")
		}
		entries, _ := os.ReadDir(parent)
		if len(entries) != 1 {
			t.Fatalf("extraction wrote outside its directory: %v", entries)
		}
	})
}

// FuzzParseFunctionError: whatever a runtime posts as an error yields a
// typed error.
func FuzzParseFunctionError(f *testing.F) {
	f.Add("", []byte(`{"errorType":"E","errorMessage":"m","stackTrace":["a"]}`))
	f.Add("Header.Type", []byte("garbage\xff"))
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		if fe := parseFunctionError(header, body); fe == nil || fe.Type == "" {
			t.Fatalf("parseFunctionError(%q, %q) = %+v", header, body, fe)
		}
	})
}
