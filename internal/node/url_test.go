package node_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

func deploy(t *testing.T, c *lambda.Client, name string, code []byte) {
	t.Helper()
	if _, err := c.CreateFunction(context.Background(), &lambda.CreateFunctionInput{
		FunctionName: aws.String(name), Role: aws.String(role), Runtime: types.Runtime("wasm"), Code: &types.FunctionCode{ZipFile: code},
	}); err != nil {
		t.Fatalf("CreateFunction(%s): %v", name, err)
	}
}

func do(t *testing.T, method, url, body string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestFunctionURLs calls functions over plain HTTP, without credentials.
func TestFunctionURLs(t *testing.T) {
	buildGuests(t)
	n := startNode(t, t.TempDir())
	c := lambdaClient(t, n)
	deploy(t, c, "hello", guests.hello)
	deploy(t, c, "httpapi", guests.httpapi)
	deploy(t, c, "guest", guests.guest)
	base := n.URL()

	// A typed handler's plain JSON result is a 200 application/json body.
	resp, body := do(t, "GET", base+"/fn/hello?name=Ada", "", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || body != `{"message":"Hello, Ada!"}` {
		t.Errorf("GET /fn/hello = %d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}

	// The net/http adapter: status, headers, body, path and query.
	resp, body = do(t, "POST", base+"/fn/httpapi/todos", `{"title":"write tests"}`, map[string]string{"Content-Type": "application/json"})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /todos = %d %s, want 201", resp.StatusCode, body)
	}
	var todo struct {
		ID    int    `json:"id"`
		Title string `json:"title"`
	}
	if err := json.Unmarshal([]byte(body), &todo); err != nil || todo.Title != "write tests" {
		t.Fatalf("POST /todos body = %s", body)
	}
	resp, body = do(t, "GET", base+"/fn/httpapi/todos", "", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "write tests") {
		t.Errorf("GET /todos = %d %s, want the todo (state kept in the warm instance)", resp.StatusCode, body)
	}
	resp, _ = do(t, "GET", base+"/fn/httpapi/todos/999", "", nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /todos/999 = %d, want 404 from the handler", resp.StatusCode)
	}

	// The event a command guest receives is the function-URL event 2.0,
	// and its structured response maps back to HTTP.
	resp, body = do(t, "PUT", base+"/fn/guest/a/b%20c?x=1&x=2&y=3", `{"hello":"there"}`, map[string]string{
		"Content-Type": "application/json", "Cookie": "a=1; b=2", "X-Thing": "v",
	})
	if resp.StatusCode != 203 || resp.Header.Get("X-Guest") != "yes" {
		t.Fatalf("PUT /fn/guest = %d %v %s, want 203 with x-guest", resp.StatusCode, resp.Header, body)
	}
	if got := resp.Header.Values("Set-Cookie"); strings.Join(got, "|") != "session=abc; Path=/|theme=dark" {
		t.Errorf("Set-Cookie = %q", got)
	}
	var ev struct {
		Version               string            `json:"version"`
		RawPath               string            `json:"rawPath"`
		RawQueryString        string            `json:"rawQueryString"`
		Cookies               []string          `json:"cookies"`
		Headers               map[string]string `json:"headers"`
		QueryStringParameters map[string]string `json:"queryStringParameters"`
		RequestContext        struct {
			HTTP struct {
				Method, Path string
			} `json:"http"`
			RequestID string `json:"requestId"`
		} `json:"requestContext"`
		Body            string `json:"body"`
		IsBase64Encoded bool   `json:"isBase64Encoded"`
	}
	if err := json.Unmarshal([]byte(body), &ev); err != nil {
		t.Fatalf("event %s: %v", body, err)
	}
	checks := []struct{ what, got, want string }{
		{"version", ev.Version, "2.0"},
		{"rawPath", ev.RawPath, "/a/b%20c"},
		{"rawQueryString", ev.RawQueryString, "x=1&x=2&y=3"},
		{"cookies", strings.Join(ev.Cookies, ";"), "a=1;b=2"},
		{"headers[x-thing]", ev.Headers["x-thing"], "v"},
		{"query x", ev.QueryStringParameters["x"], "1,2"},
		{"query y", ev.QueryStringParameters["y"], "3"},
		{"method", ev.RequestContext.HTTP.Method, "PUT"},
		{"body", ev.Body, `{"hello":"there"}`},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("event %s = %q, want %q", c.what, c.got, c.want)
		}
	}
	if ev.IsBase64Encoded || ev.RequestContext.RequestID == "" || ev.Headers["cookie"] != "" {
		t.Errorf("event = base64 %v, requestId %q, cookie header %q; want false, set, none", ev.IsBase64Encoded, ev.RequestContext.RequestID, ev.Headers["cookie"])
	}
	// A binary body travels base64.
	_, body = do(t, "POST", base+"/fn/guest", "\xff\x00\x01", map[string]string{"Content-Type": "application/octet-stream"})
	if err := json.Unmarshal([]byte(body), &ev); err != nil || !ev.IsBase64Encoded || ev.Body != "/wAB" {
		t.Errorf("binary body event = %s, want isBase64Encoded and /wAB", body)
	}

	// Unknown function: 404; payload too large: 413.
	resp, _ = do(t, "GET", base+"/fn/nobody", "", nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /fn/nobody = %d, want 404", resp.StatusCode)
	}
	resp, _ = do(t, "POST", base+"/fn/hello", strings.Repeat("a", 6<<20+1), nil)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("POST 6 MB+ to /fn/hello = %d, want 413", resp.StatusCode)
	}
	// A function error is a 502, as on Lambda.
	deploy(t, c, "trap", trapWasm)
	resp, _ = do(t, "POST", base+"/fn/trap", "", nil)
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("function URL of a failing function = %d, want 502", resp.StatusCode)
	}
}
