package archtest

import (
	"bytes"
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

type pkg struct {
	ImportPath   string
	Imports      []string
	TestImports  []string
	XTestImports []string
}

// listPackages runs `go list -json ./...` from the module root.
func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", "github.com/gustfaas/gust/...")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("go list: %v\n%s", err, errb.String())
	}
	var pkgs []pkg
	dec := json.NewDecoder(&out)
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	return pkgs
}

const mod = "github.com/gustfaas/gust"

func TestBoundaries(t *testing.T) {
	rules := []struct {
		name     string
		imported string // prefix of the guarded import path
		allowed  []string
		tests    bool // whether test imports are held to the rule too
	}{
		{"wazero only in the wasm runtime", "github.com/tetratelabs/wazero", []string{mod + "/internal/sandbox/wasm"}, true},
		{"nats-server only in the substrate", "github.com/nats-io/nats-server", []string{mod + "/internal/substrate"}, true},
		{"the node only in cmd and tests", mod + "/internal/node", []string{mod + "/cmd/gust", mod + "/internal/node", mod + "/bench"}, false},
		{"the CLI talks to a node only through the client", mod + "/internal/gateway", []string{mod + "/internal/node"}, false},
	}
	pkgs := listPackages(t)
	for _, r := range rules {
		t.Run(r.name, func(t *testing.T) {
			for _, p := range pkgs {
				imports := p.Imports
				if r.tests {
					imports = append(append(append([]string{}, imports...), p.TestImports...), p.XTestImports...)
				}
				for _, imp := range imports {
					if imp != r.imported && !strings.HasPrefix(imp, r.imported+"/") {
						continue
					}
					ok := false
					for _, a := range r.allowed {
						if p.ImportPath == a || strings.HasPrefix(p.ImportPath, a+"/") {
							ok = true
						}
					}
					if !ok {
						t.Errorf("%s imports %s", p.ImportPath, imp)
					}
				}
			}
		})
	}
}
