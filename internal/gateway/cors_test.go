package gateway

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/gustfaas/gust/internal/registry"
)

func TestMatchOrigin(t *testing.T) {
	tests := []struct {
		pattern, origin string
		want            bool
	}{
		{"*", "https://example.com", true},
		{"*", "null", true},
		{"https://example.com", "https://example.com", true},
		{"https://example.com", "HTTPS://Example.COM", true},
		{"https://example.com", "http://example.com", false},
		{"https://example.com", "https://example.com:8443", false},
		{"https://example.com", "https://example.com.evil.net", false},
		{"https://*.example.com", "https://api.example.com", true},
		{"https://*.example.com", "https://a.b.example.com", true},
		{"https://*.example.com", "https://example.com", false},
		{"https://*.example.com", "https://api.example.com.evil.net", false},
		{"https://*.example.com", "https://evil.net/.example.com", false},
		{"https://*.example.com", "http://api.example.com", false},
		{"http://localhost:*", "http://localhost:3000", true},
		{"http://localhost:*", "http://localhost", false},
		{"*://example.com", "https://example.com", true},
		{"https://*-*.example.com", "https://a-b.example.com", true},
		{"https://*-*.example.com", "https://ab.example.com", false},
		{"https://*", "https://anything.at.all", true},
		{"https://*", "https://x/y", false},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+"~"+tt.origin, func(t *testing.T) {
			if got := matchOrigin(tt.pattern, tt.origin); got != tt.want {
				t.Errorf("matchOrigin(%q, %q) = %v, want %v", tt.pattern, tt.origin, got, tt.want)
			}
		})
	}
}

func TestCorsAllowOrigin(t *testing.T) {
	tests := []struct {
		name   string
		cors   registry.Cors
		origin string
		want   string
	}{
		{"no origin", registry.Cors{AllowOrigins: []string{"*"}}, "", ""},
		{"star", registry.Cors{AllowOrigins: []string{"*"}}, "https://a.com", "*"},
		{"star with credentials echoes", registry.Cors{AllowOrigins: []string{"*"}, AllowCredentials: true}, "https://a.com", "https://a.com"},
		{"exact echoes", registry.Cors{AllowOrigins: []string{"https://b.com", "https://a.com"}}, "https://a.com", "https://a.com"},
		{"wildcard echoes", registry.Cors{AllowOrigins: []string{"https://*.a.com"}}, "https://x.a.com", "https://x.a.com"},
		{"not listed", registry.Cors{AllowOrigins: []string{"https://a.com"}}, "https://b.com", ""},
		{"no origins configured", registry.Cors{AllowMethods: []string{"GET"}}, "https://a.com", ""},
		{"header injection", registry.Cors{AllowOrigins: []string{"*"}, AllowCredentials: true}, "https://a.com\r\nX: y", ""},
		{"too long", registry.Cors{AllowOrigins: []string{"*"}}, "https://" + strings.Repeat("a", maxOriginLen), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := corsAllowOrigin(&tt.cors, tt.origin); got != tt.want {
				t.Errorf("corsAllowOrigin(%+v, %q) = %q, want %q", tt.cors, tt.origin, got, tt.want)
			}
		})
	}
}

func TestCorsResponseHeaders(t *testing.T) {
	full := registry.Cors{AllowOrigins: []string{"https://a.com"}, AllowCredentials: true,
		ExposeHeaders: []string{"X-Total", "X-Page"}, AllowMethods: []string{"GET"}, MaxAge: 60}
	tests := []struct {
		name     string
		cors     registry.Cors
		origin   string
		function http.Header // what the function set
		want     http.Header
	}{
		{"allowed", full, "https://a.com", http.Header{"Content-Type": {"text/plain"}}, http.Header{
			"Content-Type":                     {"text/plain"},
			"Vary":                             {"Origin"},
			"Access-Control-Allow-Origin":      {"https://a.com"},
			"Access-Control-Allow-Credentials": {"true"},
			"Access-Control-Expose-Headers":    {"X-Total, X-Page"},
		}},
		{"function's CORS headers are replaced", full, "https://a.com", http.Header{
			"Access-Control-Allow-Origin":  {"*"},
			"Access-Control-Allow-Methods": {"DELETE"},
			"Vary":                         {"Accept-Encoding"},
		}, http.Header{
			"Vary":                             {"Accept-Encoding", "Origin"},
			"Access-Control-Allow-Origin":      {"https://a.com"},
			"Access-Control-Allow-Credentials": {"true"},
			"Access-Control-Expose-Headers":    {"X-Total, X-Page"},
		}},
		{"other origin gets none, even the function's", full, "https://evil.com", http.Header{
			"Access-Control-Allow-Origin": {"*"},
		}, http.Header{"Vary": {"Origin"}}},
		{"no origin", full, "", http.Header{}, http.Header{"Vary": {"Origin"}}},
		{"vary kept once", registry.Cors{AllowOrigins: []string{"*"}}, "https://x.com", http.Header{"Vary": {"origin"}}, http.Header{
			"Vary":                        {"origin"},
			"Access-Control-Allow-Origin": {"*"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.function.Clone()
			setCORSHeaders(h, &tt.cors, tt.origin)
			if diff := cmp.Diff(tt.want, h); diff != "" {
				t.Errorf("setCORSHeaders(%+v, %q) headers (-want +got):\n%s", tt.cors, tt.origin, diff)
			}
		})
	}
}

func TestPreflightHeaders(t *testing.T) {
	tests := []struct {
		name    string
		cors    registry.Cors
		request http.Header
		want    http.Header
	}{
		{"listed", registry.Cors{AllowOrigins: []string{"https://a.com"}, AllowMethods: []string{"get", "POST"},
			AllowHeaders: []string{"Content-Type", "X-Api"}, MaxAge: 300, ExposeHeaders: []string{"X-Total"}},
			http.Header{"Origin": {"https://a.com"}, "Access-Control-Request-Method": {"POST"}}, http.Header{
				"Vary":                         {"Origin"},
				"Access-Control-Allow-Origin":  {"https://a.com"},
				"Access-Control-Allow-Methods": {"GET, POST"},
				"Access-Control-Allow-Headers": {"Content-Type, X-Api"},
				"Access-Control-Max-Age":       {"300"},
			}},
		{"stars echo the request", registry.Cors{AllowOrigins: []string{"*"}, AllowMethods: []string{"*"}, AllowHeaders: []string{"*"}, AllowCredentials: true},
			http.Header{"Origin": {"https://b.com"}, "Access-Control-Request-Method": {"delete"}, "Access-Control-Request-Headers": {"x-a, x-b"}}, http.Header{
				"Vary":                             {"Origin"},
				"Access-Control-Allow-Origin":      {"https://b.com"},
				"Access-Control-Allow-Credentials": {"true"},
				"Access-Control-Allow-Methods":     {"DELETE"},
				"Access-Control-Allow-Headers":     {"x-a, x-b"},
			}},
		{"origin not allowed", registry.Cors{AllowOrigins: []string{"https://a.com"}, AllowMethods: []string{"*"}},
			http.Header{"Origin": {"https://b.com"}, "Access-Control-Request-Method": {"GET"}}, http.Header{"Vary": {"Origin"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodOptions, "/fn/x", nil)
			r.Header = tt.request
			if !isPreflight(r) {
				t.Fatalf("isPreflight(%v) = false, want true", tt.request)
			}
			h := http.Header{}
			setPreflightHeaders(h, &tt.cors, r)
			if diff := cmp.Diff(tt.want, h); diff != "" {
				t.Errorf("setPreflightHeaders headers (-want +got):\n%s", diff)
			}
		})
	}
}

func TestIsPreflight(t *testing.T) {
	tests := []struct {
		name   string
		method string
		header http.Header
		want   bool
	}{
		{"preflight", "OPTIONS", http.Header{"Origin": {"https://a.com"}, "Access-Control-Request-Method": {"PUT"}}, true},
		{"no request method", "OPTIONS", http.Header{"Origin": {"https://a.com"}}, false},
		{"no origin", "OPTIONS", http.Header{"Access-Control-Request-Method": {"PUT"}}, false},
		{"not OPTIONS", "GET", http.Header{"Origin": {"https://a.com"}, "Access-Control-Request-Method": {"PUT"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "/fn/x", nil)
			r.Header = tt.header
			if got := isPreflight(r); got != tt.want {
				t.Errorf("isPreflight(%s %v) = %v, want %v", tt.method, tt.header, got, tt.want)
			}
		})
	}
}

// TestCorsWriter: the CORS headers are applied after the function's,
// however the response is written.
func TestCorsWriter(t *testing.T) {
	c := &registry.Cors{AllowOrigins: []string{"*"}}
	for _, name := range []string{"WriteURLResponse", "Write only"} {
		t.Run(name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			w := &corsWriter{ResponseWriter: rec, cors: c, origin: "https://a.com"}
			if name == "Write only" {
				w.Header().Set("Access-Control-Allow-Origin", "https://nope.com")
				w.Write([]byte("x"))
			} else if err := WriteURLResponse(w, []byte(`{"statusCode":201,"headers":{"Access-Control-Allow-Origin":"https://nope.com"}}`)); err != nil {
				t.Fatal(err)
			}
			if got := rec.Header().Get("Access-Control-Allow-Origin"); got != "*" {
				t.Errorf("Access-Control-Allow-Origin = %q, want *", got)
			}
		})
	}
}

// FuzzMatchOrigin: any pattern and Origin header are matched without
// panicking, in bounded time; a pattern without '*' matches only itself.
func FuzzMatchOrigin(f *testing.F) {
	f.Add("https://*.example.com", "https://api.example.com")
	f.Add("*", "null")
	f.Add("**a*b*c**", "xxaxxbxxcxx")
	f.Add("http://localhost:*", "http://localhost:3000")
	f.Fuzz(func(t *testing.T, pattern, origin string) {
		got := matchOrigin(pattern, origin)
		if !strings.Contains(pattern, "*") && got != strings.EqualFold(pattern, origin) {
			t.Fatalf("matchOrigin(%q, %q) = %v without a wildcard", pattern, origin, got)
		}
		if pattern == origin && !got {
			t.Fatalf("matchOrigin(%q, itself) = false", pattern)
		}
	})
}
