package sigv4

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const (
	testAKID   = "AKIDEXAMPLE"
	testSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
)

var signedAt = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func testLookup(akid string) (string, bool) {
	if akid == testAKID {
		return testSecret, true
	}
	return "", false
}

func hashHex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// result is what the verifying server saw.
type result struct {
	akid string
	err  error
}

// verifyingServer starts a server that verifies every request against
// now and reports the outcome on the returned channel.
func verifyingServer(t *testing.T, now time.Time) (*httptest.Server, <-chan result) {
	t.Helper()
	v := NewVerifier("lambda", testLookup)
	ch := make(chan result, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			ch <- result{err: err}
			return
		}
		akid, err := v.Verify(r, body, now)
		ch <- result{akid, err}
		if err != nil {
			code, status, msg := Describe(err)
			w.Header().Set("X-Amzn-Errortype", code)
			http.Error(w, msg, status)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return srv, ch
}

func TestVerifySignedBySDK(t *testing.T) {
	largeBody := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	tests := []struct {
		name    string
		method  string
		path    string // decoded path; escaped by net/url
		rawPath string // optional escaped form
		query   string
		header  http.Header
		body    []byte
		// service and region to sign for; akid overrides the key ID.
		service, region, akid string
		// payloadHash overrides hex(sha256(body)) when signing.
		payloadHash string
		// tamper runs after signing.
		tamper func(r *http.Request)
		// skew is added to the signing time to get the server's now.
		skew    time.Duration
		wantErr error
	}{
		{name: "get collection", method: "GET", path: "/2015-03-31/functions/"},
		{name: "root", method: "GET", path: "/"},
		{name: "post json", method: "POST", path: "/2015-03-31/functions", body: []byte(`{"FunctionName":"hello"}`),
			header: http.Header{"Content-Type": {"application/json"}}},
		{name: "arn with colons", method: "POST", path: "/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:hi/invocations",
			body: []byte(`{}`)},
		{name: "escaped colon", method: "GET", path: "/2015-03-31/functions/fn:live", rawPath: "/2015-03-31/functions/fn%3Alive"},
		{name: "percent in name", method: "GET", path: "/2015-03-31/functions/100%/configuration"},
		{name: "space in name", method: "GET", path: "/2015-03-31/functions/my fn"},
		{name: "encoded slash", method: "GET", path: "/a/b/c", rawPath: "/a%2Fb/c"},
		{name: "unicode", method: "GET", path: "/fn/héllo/☃"},
		{name: "query repeated keys", method: "GET", path: "/2015-03-31/functions/",
			query: "MaxItems=50&Marker=b&Marker=a&z=&sp=a%20b&plus=a%2Bb&tilde=~x"},
		{name: "query with semicolon value", method: "GET", path: "/x", query: "a=%3B&b=%2F&c=-"},
		{name: "empty body put", method: "PUT", path: "/2015-03-31/functions/f/code"},
		{name: "large body", method: "PUT", path: "/2015-03-31/functions/f/code", body: largeBody},
		{name: "other region", method: "GET", path: "/x", region: "eu-west-3"},
		{name: "extra signed headers", method: "POST", path: "/x", body: []byte("p"),
			header: http.Header{"X-Amz-Invocation-Type": {"Event"}, "X-Amz-Log-Type": {"Tail"}, "X-Custom": {"  a   b  "}}},
		{name: "repeated header", method: "GET", path: "/x", header: http.Header{"X-Multi": {"one", " two  three "}}},
		{name: "content sha256 header", method: "POST", path: "/x", body: []byte("hello"),
			header: http.Header{"X-Amz-Content-Sha256": {hashHex([]byte("hello"))}}},
		{name: "unsigned payload", method: "POST", path: "/x", body: []byte("hello"),
			header: http.Header{"X-Amz-Content-Sha256": {UnsignedPayload}}, payloadHash: UnsignedPayload},
		{name: "skew 14m past", method: "GET", path: "/x", skew: 14 * time.Minute},
		{name: "skew 14m future", method: "GET", path: "/x", skew: -14 * time.Minute},
		{name: "skew exactly 15m", method: "GET", path: "/x", skew: 15 * time.Minute},

		{name: "skew 16m past", method: "GET", path: "/x", skew: 16 * time.Minute, wantErr: ErrExpired},
		{name: "skew 16m future", method: "GET", path: "/x", skew: -16 * time.Minute, wantErr: ErrExpired},
		{name: "unknown key", method: "GET", path: "/x", akid: "AKIDUNKNOWN", wantErr: ErrUnknownKey},
		{name: "wrong service", method: "GET", path: "/x", service: "s3", wantErr: ErrScope},
		{name: "tampered body", method: "POST", path: "/x", body: []byte("hello"), wantErr: ErrSignatureMismatch,
			tamper: func(r *http.Request) { r.Body = io.NopCloser(strings.NewReader("jello")) }},
		{name: "tampered body with sha256 header", method: "POST", path: "/x", body: []byte("hello"),
			header:  http.Header{"X-Amz-Content-Sha256": {hashHex([]byte("hello"))}},
			wantErr: ErrSignatureMismatch,
			tamper:  func(r *http.Request) { r.Body = io.NopCloser(strings.NewReader("jello")) }},
		{name: "tampered path", method: "GET", path: "/2015-03-31/functions/a", wantErr: ErrSignatureMismatch,
			tamper: func(r *http.Request) { r.URL.Path = "/2015-03-31/functions/b" }},
		{name: "tampered escaping", method: "GET", path: "/f:x", wantErr: ErrSignatureMismatch,
			tamper: func(r *http.Request) { r.URL.RawPath = "/f%3Ax" }},
		{name: "tampered query", method: "GET", path: "/x", query: "a=1", wantErr: ErrSignatureMismatch,
			tamper: func(r *http.Request) { r.URL.RawQuery = "a=2" }},
		{name: "tampered method", method: "GET", path: "/x", wantErr: ErrSignatureMismatch,
			tamper: func(r *http.Request) { r.Method = "DELETE" }},
		{name: "tampered header", method: "GET", path: "/x", header: http.Header{"X-Custom": {"a"}}, wantErr: ErrSignatureMismatch,
			tamper: func(r *http.Request) { r.Header.Set("X-Custom", "b") }},
		{name: "dropped signed header", method: "GET", path: "/x", header: http.Header{"X-Custom": {"a"}}, wantErr: ErrSignatureMismatch,
			tamper: func(r *http.Request) { r.Header.Del("X-Custom") }},
		{name: "tampered host", method: "GET", path: "/x", wantErr: ErrSignatureMismatch,
			tamper: func(r *http.Request) { r.Host = "other.example" }},
		{name: "tampered date", method: "GET", path: "/x", wantErr: ErrSignatureMismatch,
			tamper: func(r *http.Request) { r.Header.Set(HeaderDate, signedAt.Add(time.Second).Format(TimeFormat)) }},
		{name: "date outside scope", method: "GET", path: "/x", wantErr: ErrScope, skew: 24 * time.Hour,
			tamper: func(r *http.Request) { r.Header.Set(HeaderDate, signedAt.Add(24*time.Hour).Format(TimeFormat)) }},
		{name: "bad date", method: "GET", path: "/x", wantErr: ErrMalformed,
			tamper: func(r *http.Request) { r.Header.Set(HeaderDate, "2026-11-27T12:00:00Z") }},
		{name: "missing date", method: "GET", path: "/x", wantErr: ErrMalformed,
			tamper: func(r *http.Request) { r.Header.Del(HeaderDate) }},
		{name: "tampered signature", method: "GET", path: "/x", wantErr: ErrSignatureMismatch,
			tamper: func(r *http.Request) {
				a := r.Header.Get(HeaderAuthorization)
				last := a[len(a)-1]
				last = "01"[(last+1)&1]
				r.Header.Set(HeaderAuthorization, a[:len(a)-1]+string(last))
			}},
		{name: "host not signed", method: "GET", path: "/x", wantErr: ErrMalformed,
			tamper: func(r *http.Request) {
				a := r.Header.Get(HeaderAuthorization)
				r.Header.Set(HeaderAuthorization, strings.Replace(a, "SignedHeaders=host;", "SignedHeaders=", 1))
			}},
		{name: "missing authorization", method: "GET", path: "/x", wantErr: ErrMissingAuth,
			tamper: func(r *http.Request) { r.Header.Del(HeaderAuthorization) }},
		{name: "other scheme", method: "GET", path: "/x", wantErr: ErrMalformed,
			tamper: func(r *http.Request) { r.Header.Set(HeaderAuthorization, "Bearer abc") }},
		{name: "wrong content sha256", method: "POST", path: "/x", body: []byte("hello"), wantErr: ErrSignatureMismatch,
			header: http.Header{"X-Amz-Content-Sha256": {hashHex([]byte("other"))}}},
		{name: "streaming content sha256", method: "POST", path: "/x", body: []byte("hello"), wantErr: ErrMalformed,
			header: http.Header{"X-Amz-Content-Sha256": {"STREAMING-AWS4-HMAC-SHA256-PAYLOAD"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, results := verifyingServer(t, signedAt.Add(tt.skew))
			u, err := url.Parse(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			u.Path, u.RawPath, u.RawQuery = tt.path, tt.rawPath, tt.query
			req, err := http.NewRequestWithContext(context.Background(), tt.method, u.String(), bytes.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if tt.body == nil {
				req.Body, req.ContentLength = http.NoBody, 0
			}
			for k, vs := range tt.header {
				req.Header[k] = vs
			}
			service, region, akid, hash := "lambda", "us-east-1", testAKID, hashHex(tt.body)
			if tt.service != "" {
				service = tt.service
			}
			if tt.region != "" {
				region = tt.region
			}
			if tt.akid != "" {
				akid = tt.akid
			}
			if tt.payloadHash != "" {
				hash = tt.payloadHash
			}
			creds := aws.Credentials{AccessKeyID: akid, SecretAccessKey: testSecret}
			if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hash, service, region, signedAt); err != nil {
				t.Fatal(err)
			}
			if tt.tamper != nil {
				tt.tamper(req)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			got := <-results
			if tt.wantErr == nil {
				if got.err != nil {
					t.Fatalf("Verify(%s %s) = %v, want success", req.Method, req.URL.RequestURI(), got.err)
				}
				if got.akid != akid {
					t.Errorf("Verify() access key = %q, want %q", got.akid, akid)
				}
				return
			}
			if !errors.Is(got.err, tt.wantErr) {
				t.Fatalf("Verify() = %v, want %v", got.err, tt.wantErr)
			}
			var e *Error
			if !errors.As(got.err, &e) {
				t.Fatalf("Verify() = %T, want *Error", got.err)
			}
			if resp.StatusCode != http.StatusForbidden || e.Status != http.StatusForbidden {
				t.Errorf("status = %d (error says %d), want 403", resp.StatusCode, e.Status)
			}
		})
	}
}

func TestErrorCodes(t *testing.T) {
	v := NewVerifier("lambda", testLookup)
	sign := func(akid string, mutate func(*http.Request)) *http.Request {
		r := httptest.NewRequest("GET", "http://gust.test/x", nil)
		creds := aws.Credentials{AccessKeyID: akid, SecretAccessKey: testSecret}
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, r, hashHex(nil), "lambda", "us-east-1", signedAt); err != nil {
			t.Fatal(err)
		}
		if mutate != nil {
			mutate(r)
		}
		return r
	}
	tests := []struct {
		name        string
		req         *http.Request
		now         time.Time
		wantCode    string
		wantMessage string
	}{
		{"missing", httptest.NewRequest("GET", "http://gust.test/x", nil), signedAt,
			CodeMissingAuthenticationToken, "Missing Authentication Token"},
		{"unknown key", sign("AKIDNOPE", nil), signedAt,
			CodeUnrecognizedClient, "The security token included in the request is invalid."},
		{"mismatch", sign(testAKID, func(r *http.Request) { r.Method = "POST" }), signedAt,
			CodeInvalidSignature, "The request signature we calculated does not match the signature you provided."},
		{"expired", sign(testAKID, nil), signedAt.Add(20 * time.Minute),
			CodeInvalidSignature, "Signature expired: 20261127T120000Z is now earlier than 20261127T120500Z (20261127T122000Z - 15 min.)"},
		{"not yet current", sign(testAKID, nil), signedAt.Add(-20 * time.Minute),
			CodeInvalidSignature, "Signature not yet current: 20261127T120000Z is still later than 20261127T115500Z (20261127T114000Z + 15 min.)"},
		{"incomplete", sign(testAKID, func(r *http.Request) {
			r.Header.Set(HeaderAuthorization, Algorithm+" Credential="+testAKID+"/20261127/us-east-1/lambda/aws4_request")
		}), signedAt, CodeIncompleteSignature, "Authorization header requires 'SignedHeaders' parameter."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(tt.req, nil, tt.now)
			code, status, msg := Describe(err)
			if code != tt.wantCode || status != http.StatusForbidden || !strings.HasPrefix(msg, tt.wantMessage) {
				t.Errorf("Describe(Verify()) = %q, %d, %q; want %q, 403, %q...", code, status, msg, tt.wantCode, tt.wantMessage)
			}
		})
	}
}

func TestParseAuthorization(t *testing.T) {
	sig := strings.Repeat("ab", 32)
	tests := []struct {
		name    string
		in      string
		want    Authorization
		wantErr bool
	}{
		{name: "sdk form", in: "AWS4-HMAC-SHA256 Credential=AK/20261127/us-east-1/lambda/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + sig,
			want: Authorization{AccessKeyID: "AK", Date: "20261127", Region: "us-east-1", Service: "lambda",
				SignedHeaders: []string{"host", "x-amz-date"}, Signature: sig}},
		{name: "no spaces", in: "AWS4-HMAC-SHA256 Credential=AK/20261127/r/lambda/aws4_request,SignedHeaders=host,Signature=" + sig,
			want: Authorization{AccessKeyID: "AK", Date: "20261127", Region: "r", Service: "lambda",
				SignedHeaders: []string{"host"}, Signature: sig}},
		{name: "empty", in: "", wantErr: true},
		{name: "other algorithm", in: "AWS4-ECDSA-P256-SHA256 Credential=AK/20261127/r/lambda/aws4_request, SignedHeaders=host, Signature=" + sig, wantErr: true},
		{name: "missing signature", in: "AWS4-HMAC-SHA256 Credential=AK/20261127/r/lambda/aws4_request, SignedHeaders=host", wantErr: true},
		{name: "duplicate", in: "AWS4-HMAC-SHA256 Credential=AK/20261127/r/lambda/aws4_request, Credential=AK/20261127/r/lambda/aws4_request, SignedHeaders=host, Signature=" + sig, wantErr: true},
		{name: "short credential", in: "AWS4-HMAC-SHA256 Credential=AK/20261127/lambda/aws4_request, SignedHeaders=host, Signature=" + sig, wantErr: true},
		{name: "bad terminator", in: "AWS4-HMAC-SHA256 Credential=AK/20261127/r/lambda/aws5_request, SignedHeaders=host, Signature=" + sig, wantErr: true},
		{name: "bad date", in: "AWS4-HMAC-SHA256 Credential=AK/2026-11-27/r/lambda/aws4_request, SignedHeaders=host, Signature=" + sig, wantErr: true},
		{name: "empty header name", in: "AWS4-HMAC-SHA256 Credential=AK/20261127/r/lambda/aws4_request, SignedHeaders=host;;x, Signature=" + sig, wantErr: true},
		{name: "short signature", in: "AWS4-HMAC-SHA256 Credential=AK/20261127/r/lambda/aws4_request, SignedHeaders=host, Signature=abc", wantErr: true},
		{name: "uppercase signature", in: "AWS4-HMAC-SHA256 Credential=AK/20261127/r/lambda/aws4_request, SignedHeaders=host, Signature=" + strings.ToUpper(sig), wantErr: true},
		{name: "no equals", in: "AWS4-HMAC-SHA256 Credential", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseAuthorization(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("ParseAuthorization(%q) = %+v, %v; want ErrMalformed", tt.in, got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseAuthorization(%q) = %v", tt.in, err)
			}
			if got.Scope() != tt.want.Scope() || got.AccessKeyID != tt.want.AccessKeyID || got.Signature != tt.want.Signature ||
				strings.Join(got.SignedHeaders, ";") != strings.Join(tt.want.SignedHeaders, ";") {
				t.Errorf("ParseAuthorization(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestEscapePath(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/", "/"},
		{"/a%3Ab", "/a%253Ab"},
		{"/a:b", "/a%3Ab"},
		{"/a%20b", "/a%2520b"},
		{"/A-z_0.9~", "/A-z_0.9~"},
	}
	for _, tt := range tests {
		if got := escapePath(tt.in); got != tt.want {
			t.Errorf("escapePath(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestStripExcessSpaces(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{" ", ""},
		{"a", "a"},
		{"  a  b   c  ", "a b c"},
		{"a\t\tb", "a\t\tb"},
	}
	for _, tt := range tests {
		if got := stripExcessSpaces(tt.in); got != tt.want {
			t.Errorf("stripExcessSpaces(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
