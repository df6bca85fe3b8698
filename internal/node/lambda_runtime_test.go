package node_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

var lambdaZips struct {
	once       sync.Once
	err        error
	goFn, urlF []byte
}

// goBootstrapZip builds a Go main package for Linux as `bootstrap` and
// zips it, as Lambda's custom runtimes expect.
func goBootstrapZip(dir string) ([]byte, error) {
	out, err := os.MkdirTemp("", "gust-bootstrap-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(out)
	bin := filepath.Join(out, "bootstrap")
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+runtime.GOARCH, "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, errors.New(string(b))
	}
	code, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	return zipWithModes(map[string][]byte{"bootstrap": code}, 0o755)
}

func zipWithModes(files map[string][]byte, mode os.FileMode) ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, b := range files {
		h := &zip.FileHeader{Name: name, Method: zip.Deflate}
		h.SetMode(mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			return nil, err
		}
		w.Write(b)
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func buildLambdaZips(t *testing.T) {
	t.Helper()
	lambdaZips.once.Do(func() {
		root := repoRoot(t)
		if lambdaZips.goFn, lambdaZips.err = goBootstrapZip(filepath.Join(root, "examples", "lambda-go")); lambdaZips.err != nil {
			return
		}
		lambdaZips.urlF, lambdaZips.err = goBootstrapZip(filepath.Join(root, "internal", "sandbox", "process", "testdata", "urlfn"))
	})
	if lambdaZips.err != nil {
		t.Fatalf("build Lambda functions: %v", lambdaZips.err)
	}
}

func readExample(t *testing.T, parts ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(append([]string{repoRoot(t), "examples"}, parts...)...))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestLambdaRuntimes runs unmodified Lambda functions (Go with
// aws-lambda-go, Node.js, Python) through the Lambda API and function URLs.
func TestLambdaRuntimes(t *testing.T) {
	buildLambdaZips(t)
	dataDir := t.TempDir()
	n := startNode(t, dataDir)
	c := lambdaClient(t, n)
	ctx := context.Background()
	nodeZip, _ := zipWithModes(map[string][]byte{"index.mjs": readExample(t, "lambda-node", "index.mjs")}, 0o644)
	pyZip, _ := zipWithModes(map[string][]byte{"app.py": readExample(t, "lambda-python", "app.py")}, 0o644)
	fns := []struct {
		name, runtime, handler string
		code                   []byte
	}{
		{"go", "provided.al2023", "", lambdaZips.goFn},
		{"gourl", "provided.al2", "", lambdaZips.urlF},
		{"node", "nodejs20.x", "index.handler", nodeZip},
		{"py", "python3.11", "app.handler", pyZip},
	}
	for _, f := range fns {
		in := &lambda.CreateFunctionInput{FunctionName: aws.String(f.name), Role: aws.String(role),
			Runtime: types.Runtime(f.runtime), Code: &types.FunctionCode{ZipFile: f.code}, Timeout: aws.Int32(10)}
		if f.handler != "" {
			in.Handler = aws.String(f.handler)
		}
		if _, err := c.CreateFunction(ctx, in); err != nil {
			t.Fatalf("CreateFunction(%s, %s): %v", f.name, f.runtime, err)
		}
	}
	for _, name := range []string{"go", "node", "py"} {
		t.Run(name+" via Invoke", func(t *testing.T) {
			out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(name), Payload: []byte(`{"name":"Ada"}`), LogType: types.LogTypeTail})
			if err != nil {
				t.Fatal(err)
			}
			if out.FunctionError != nil {
				t.Fatalf("function error: %s", out.Payload)
			}
			var body struct{ Message, RequestID string }
			if err := json.Unmarshal(out.Payload, &body); err != nil || body.Message != "Hello, Ada!" || body.RequestID == "" {
				t.Errorf("payload = %s, want Hello, Ada! and a request id", out.Payload)
			}
			logTail := decodeLog(t, out.LogResult)
			if !strings.Contains(logTail, "greeting Ada") || !strings.Contains(logTail, "Init Duration") {
				t.Errorf("log = %q, want the function's line and an Init Duration", logTail)
			}
		})
		t.Run(name+" via function URL", func(t *testing.T) {
			resp, body := do(t, "GET", n.URL()+"/fn/"+name+"?name=Bo", "", nil)
			if resp.StatusCode != 200 || !strings.Contains(body, "Hello, Bo!") {
				t.Errorf("GET /fn/%s = %d %s", name, resp.StatusCode, body)
			}
		})
	}
	t.Run("events.LambdaFunctionURLRequest handler", func(t *testing.T) {
		resp, body := do(t, "POST", n.URL()+"/fn/gourl/some/path?x=1", "hi", nil)
		if resp.StatusCode/100 != 2 || body == "" {
			t.Errorf("POST /fn/gourl = %d %s", resp.StatusCode, body)
		}
	})

	t.Run("refused at CreateFunction", func(t *testing.T) {
		tests := []struct {
			name, runtime, handler string
			code                   []byte
			want                   string
		}{
			{"nobootstrap", "provided.al2023", "", mustZip(t, map[string][]byte{"main": []byte("x")}, 0o755), "bootstrap"},
			{"notexec", "provided.al2023", "", mustZip(t, map[string][]byte{"bootstrap": []byte("#!/bin/sh\necho\n")}, 0o644), "executable"},
			{"nohandler", "nodejs20.x", "", nodeZip, "Handler"},
			{"nomodule", "nodejs20.x", "missing.handler", nodeZip, "missing"},
			{"nopymodule", "python3.11", "nope.handler", pyZip, "nope"},
			{"notzip", "python3.11", "app.handler", []byte("def handler(e, c): pass"), "zip"},
			{"unsupported", "nodejs22.x", "index.handler", nodeZip, "nodejs22.x"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				in := &lambda.CreateFunctionInput{FunctionName: aws.String(tt.name), Role: aws.String(role),
					Runtime: types.Runtime(tt.runtime), Code: &types.FunctionCode{ZipFile: tt.code}}
				if tt.handler != "" {
					in.Handler = aws.String(tt.handler)
				}
				_, err := c.CreateFunction(ctx, in)
				var ip *types.InvalidParameterValueException
				if !errors.As(err, &ip) || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("CreateFunction error = %v, want InvalidParameterValueException mentioning %q", err, tt.want)
				}
			})
		}
	})
	t.Run("isolation is reported", func(t *testing.T) {
		code, out, errs := gust(t, n, dataDir, "", "get", "go", "-o", "json")
		var got struct {
			Configuration struct{ GustIsolation []string }
		}
		if code != 0 || json.Unmarshal([]byte(out), &got) != nil || len(got.Configuration.GustIsolation) == 0 {
			t.Fatalf("gust get go = %d %s %s, want isolation lines", code, out, errs)
		}
		joined := strings.Join(got.Configuration.GustIsolation, "\n")
		for _, want := range []string{"pid", "cgroup", "no_new_privs"} {
			if !strings.Contains(joined, want) {
				t.Errorf("isolation lines lack %q:\n%s", want, joined)
			}
		}
	})
	assertGoStillAnswers(t, c)
}

func mustZip(t *testing.T, files map[string][]byte, mode os.FileMode) []byte {
	t.Helper()
	b, err := zipWithModes(files, mode)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decodeLog(t *testing.T, s *string) string {
	t.Helper()
	b, err := base64Decode(aws.ToString(s))
	if err != nil {
		t.Fatalf("log result: %v", err)
	}
	return string(b)
}

func assertGoStillAnswers(t *testing.T, c *lambda.Client) {
	t.Helper()
	out, err := c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("go"), Payload: []byte(`{"name":"again"}`)})
	if err != nil || out.FunctionError != nil || !strings.Contains(string(out.Payload), "Hello, again!") {
		t.Fatalf("go function no longer answers: %v %s", err, out.Payload)
	}
}
