package node_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/gustfaas/gust/internal/node"
)

var fuzzNode struct {
	once sync.Once
	n    *node.Node
	err  error
}

// FuzzLambdaAPI sends signed requests with arbitrary bodies to every API
// operation of one real node: each answer is a well-formed response (never
// a 5xx or a dropped connection), and the node keeps serving.
func FuzzLambdaAPI(f *testing.F) {
	buildGuests(f)
	fuzzNode.once.Do(func() {
		dir, err := mkTemp()
		if err != nil {
			fuzzNode.err = err
			return
		}
		fuzzNode.n, fuzzNode.err = node.Start(context.Background(), node.Config{Listen: "127.0.0.1:0", DataDir: dir})
		if fuzzNode.err == nil {
			c := lambdaClientNoCleanup(f, fuzzNode.n)
			_, fuzzNode.err = createHello(c)
		}
	})
	if fuzzNode.err != nil {
		f.Fatal(fuzzNode.err)
	}
	n := fuzzNode.n
	id, secret := n.AdminKey()
	signer := v4.NewSigner()
	ops := []struct{ method, path string }{
		{"POST", "/2015-03-31/functions"},
		{"PUT", "/2015-03-31/functions/hello/configuration"},
		{"PUT", "/2015-03-31/functions/hello/code"},
		{"POST", "/2015-03-31/functions/hello/invocations"},
		{"GET", "/2015-03-31/functions/"},
		{"GET", "/2015-03-31/functions/%s"},
		{"DELETE", "/2015-03-31/functions/%s"},
	}
	f.Add(uint8(0), "", []byte(`{"FunctionName":"x","Runtime":"wasm","Code":{"ZipFile":"AGFzbQEAAAA="}}`))
	f.Add(uint8(0), "", []byte(`{"FunctionName":"x","Runtime":"wasm","Code":{"ZipFile":"not base64"}}`))
	f.Add(uint8(0), "", []byte(`{"FunctionName":5}`))
	f.Add(uint8(1), "", []byte(`{"MemorySize":-5,"Timeout":100000}`))
	f.Add(uint8(1), "", []byte(`{"Environment":{"Variables":{"1bad":"x"}}}`))
	f.Add(uint8(2), "", []byte(`{"ZipFile":"UEsDBA=="}`))
	f.Add(uint8(3), "", []byte(`{"name":"fuzz"}`))
	f.Add(uint8(3), "", []byte(`{"name":`))
	f.Add(uint8(4), "MaxItems=0&Marker=zz", []byte(nil))
	f.Add(uint8(5), "", []byte("arn:aws:lambda:us-east-1:000000000000:function:nope:1"))
	f.Add(uint8(6), "", []byte("../../x"))
	f.Fuzz(func(t *testing.T, op uint8, query string, body []byte) {
		o := ops[int(op)%len(ops)]
		path := o.path
		if strings.Contains(path, "%s") {
			// The body names the target; never the hello function itself.
			name := string(body)
			if name == "hello" || strings.HasPrefix(name, "hello:") {
				name = "other"
			}
			path = strings.Replace(path, "%s", escapeAll(name), 1)
			body = nil
		}
		if o.method == "PUT" && bytes.Contains(body, []byte("ZipFile")) {
			// Never replace hello's code with something that works
			// differently; refusals are what is being tested.
			body = bytes.ReplaceAll(body, []byte("AGFzbQ"), []byte("BGFzbQ"))
		}
		req, err := http.NewRequest(o.method, n.URL()+path, bytes.NewReader(body))
		if err != nil {
			return
		}
		req.URL.RawQuery = query
		sum := sha256.Sum256(body)
		if err := signer.SignHTTP(context.Background(), aws.Credentials{AccessKeyID: id, SecretAccessKey: secret},
			req, hex.EncodeToString(sum[:]), "lambda", "us-east-1", time.Now()); err != nil {
			return
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", o.method, path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Fatalf("%s %s %q -> %d %s", o.method, path, body, resp.StatusCode, b)
		}
		if resp.StatusCode >= 400 {
			var e struct{ Message string }
			if resp.Header.Get("X-Amzn-Errortype") == "" || json.Unmarshal(b, &e) != nil || e.Message == "" {
				t.Fatalf("%s %s -> %d without Lambda's error shape: %s", o.method, path, resp.StatusCode, b)
			}
		}
		// The node still serves its function.
		r2, err := http.Get(n.URL() + "/fn/hello")
		if err != nil {
			t.Fatalf("hello after fuzz input: %v", err)
		}
		io.Copy(io.Discard, r2.Body)
		r2.Body.Close()
		if r2.StatusCode != 200 {
			t.Fatalf("hello after fuzz input = %d", r2.StatusCode)
		}
	})
}

func escapeAll(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			b.WriteByte(c)
		} else {
			b.WriteString("%" + strings.ToUpper(hex.EncodeToString([]byte{c})))
		}
	}
	if b.Len() == 0 {
		return "x"
	}
	return b.String()
}
