package gust

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestNewHTTPRequest(t *testing.T) {
	ev := &URLRequest{
		Version:        "2.0",
		RawPath:        "/todos/a%2Fb",
		RawQueryString: "x=1&y=two",
		Cookies:        []string{"a=1", "b=2"},
		Headers:        map[string]string{"content-type": "application/octet-stream", "host": "example.com", "x-multi": "1,2"},
		RequestContext: URLRequestContext{
			HTTP:      URLRequestHTTP{Method: "PUT", Path: "/todos/a%2Fb", Protocol: "HTTP/1.1", SourceIP: "10.0.0.1", UserAgent: "curl/8"},
			RequestID: "req-1",
		},
		Body:            base64.StdEncoding.EncodeToString([]byte{0, 1, 2, 0xff}),
		IsBase64Encoded: true,
	}
	req, err := NewHTTPRequest(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(req.Body)
	got := map[string]any{
		"method":  req.Method,
		"path":    req.URL.Path,
		"rawPath": req.URL.EscapedPath(),
		"query":   req.URL.Query().Get("y"),
		"host":    req.Host,
		"cookies": len(req.Cookies()),
		"cookieB": cookieValue(req, "b"),
		"ua":      req.UserAgent(),
		"ct":      req.Header.Get("Content-Type"),
		"multi":   req.Header.Get("X-Multi"),
		"remote":  req.RemoteAddr,
		"body":    string(body),
		"length":  req.ContentLength,
		"proto":   req.ProtoMajor*10 + req.ProtoMinor,
	}
	want := map[string]any{
		"method":  "PUT",
		"path":    "/todos/a/b",
		"rawPath": "/todos/a%2Fb",
		"query":   "two",
		"host":    "example.com",
		"cookies": 2,
		"cookieB": "2",
		"ua":      "curl/8",
		"ct":      "application/octet-stream",
		"multi":   "1,2",
		"remote":  "10.0.0.1",
		"body":    string([]byte{0, 1, 2, 0xff}),
		"length":  int64(4),
		"proto":   11,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("NewHTTPRequest() mismatch (-want +got):\n%s", diff)
	}
}

func cookieValue(r *http.Request, name string) string {
	c, err := r.Cookie(name)
	if err != nil {
		return ""
	}
	return c.Value
}

func TestNewHTTPRequestDefaults(t *testing.T) {
	req, err := NewHTTPRequest(context.Background(), &URLRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if req.Method != "GET" || req.URL.Path != "/" || req.Body != http.NoBody {
		t.Errorf("NewHTTPRequest(empty) = %s %s body %v, want GET / with no body", req.Method, req.URL.Path, req.Body)
	}
	if _, err := NewHTTPRequest(context.Background(), &URLRequest{Body: "%%%", IsBase64Encoded: true}); err == nil {
		t.Error("NewHTTPRequest(bad base64) = nil error")
	}
}

func TestHandleHTTP(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /text", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "s", Value: "1"})
		http.SetCookie(w, &http.Cookie{Name: "t", Value: "2"})
		w.Header().Add("X-Multi", "a")
		w.Header().Add("X-Multi", "b")
		io.WriteString(w, "hello "+RequestID(r.Context()))
	})
	mux.HandleFunc("GET /binary", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		w.Write([]byte{0x89, 'P', 'N', 'G'})
	})
	mux.HandleFunc("GET /json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTeapot)
		w.Header().Set("X-Late", "ignored") // after WriteHeader: not sent
		io.WriteString(w, `{"ok":true}`)
	})
	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		io.Copy(w, r.Body)
	})
	mux.HandleFunc("GET /empty", func(w http.ResponseWriter, r *http.Request) {})
	withHandler(t, func() { HandleHTTP(mux) })

	event := func(method, path, body string, b64 bool) string {
		b, _ := json.Marshal(URLRequest{
			Version: "2.0", RawPath: path,
			RequestContext: URLRequestContext{HTTP: URLRequestHTTP{Method: method, Path: path}},
			Body:           body, IsBase64Encoded: b64,
		})
		return string(b)
	}
	tests := []struct {
		name  string
		event string
		want  URLResponse
	}{
		{"text with cookies", event("GET", "/text", "", false), URLResponse{
			StatusCode: 200,
			Headers:    map[string]string{"content-type": "text/plain; charset=utf-8", "x-multi": "a,b"},
			Cookies:    []string{"s=1", "t=2"},
			Body:       "hello req-7",
		}},
		{"binary", event("GET", "/binary", "", false), URLResponse{
			StatusCode: 200, Headers: map[string]string{"content-type": "image/png"},
			Body: base64.StdEncoding.EncodeToString([]byte{0x89, 'P', 'N', 'G'}), IsBase64Encoded: true,
		}},
		{"status and json", event("GET", "/json", "", false), URLResponse{
			StatusCode: 418, Headers: map[string]string{"content-type": "application/json"}, Body: `{"ok":true}`,
		}},
		{"base64 body in and out", event("POST", "/echo", base64.StdEncoding.EncodeToString([]byte{0xff, 0}), true), URLResponse{
			StatusCode: 200, Headers: map[string]string{"content-type": "application/octet-stream"},
			Body: base64.StdEncoding.EncodeToString([]byte{0xff, 0}), IsBase64Encoded: true,
		}},
		{"empty", event("GET", "/empty", "", false), URLResponse{StatusCode: 200}},
		{"not found", event("GET", "/nope", "", false), URLResponse{
			StatusCode: 404,
			Headers:    map[string]string{"content-type": "text/plain; charset=utf-8", "x-content-type-options": "nosniff"},
			Body:       "404 page not found\n",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, status := invokeFrame(t, "req-7", tt.event, time.Time{})
			if status != statusOK {
				t.Fatalf("dispatch() status %d: %s", status, out)
			}
			var got URLResponse
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("response %s: %v", out, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("response mismatch (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("bad event", func(t *testing.T) {
		out, status := invokeFrame(t, "r", `[1,2]`, time.Time{})
		if status != statusFunctionError {
			t.Errorf("dispatch(bad event) = %d %s, want a function error", status, out)
		}
	})
}

func TestIsText(t *testing.T) {
	for ct, want := range map[string]bool{
		"":                         true,
		"text/html; charset=utf-8": true,
		"application/json":         true,
		"application/problem+json": true,
		"image/svg+xml":            true,
		"application/octet-stream": false,
		"image/png":                false,
		"not a media type; ;":      false,
	} {
		if got := isText(ct); got != want {
			t.Errorf("isText(%q) = %v, want %v", ct, got, want)
		}
	}
}
