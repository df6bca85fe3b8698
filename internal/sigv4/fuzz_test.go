package sigv4

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

func FuzzParseAuthorization(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=AK/20261127/us-east-1/lambda/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + strings.Repeat("0", 64))
	f.Add("AWS4-HMAC-SHA256 Credential=AK/20261127/r/lambda/aws4_request,SignedHeaders=host,Signature=")
	f.Add("AWS4-HMAC-SHA256 ,,,=,")
	f.Add("Bearer x")
	f.Add("")
	f.Fuzz(func(t *testing.T, h string) {
		a, err := ParseAuthorization(h)
		if err != nil {
			return
		}
		if a.AccessKeyID == "" || len(a.Date) != 8 || a.Region == "" || a.Service == "" ||
			len(a.SignedHeaders) == 0 || len(a.Signature) != 64 {
			t.Fatalf("ParseAuthorization(%q) = %+v with nil error", h, a)
		}
		// The parsed value renders back into a header that parses the same.
		again, err := ParseAuthorization(Algorithm + " Credential=" + a.AccessKeyID + "/" + a.Scope() +
			", SignedHeaders=" + strings.Join(a.SignedHeaders, ";") + ", Signature=" + a.Signature)
		if err != nil || again.Scope() != a.Scope() || again.AccessKeyID != a.AccessKeyID {
			t.Fatalf("re-parse of %+v = %+v, %v", a, again, err)
		}
	})
}

// FuzzVerify checks that Verify never panics on arbitrary requests, and that
// any request the SDK signer signs verifies.
func FuzzVerify(f *testing.F) {
	f.Add("GET", "/2015-03-31/functions/", "MaxItems=1&Marker=a", "X-Custom", " a  b ", "", "", []byte(nil))
	f.Add("POST", "/2015-03-31/functions/arn:aws:lambda:us-east-1:1:function:f/invocations", "Qualifier=%24LATEST",
		"X-Amz-Invocation-Type", "Event", "", "20261127T120000Z", []byte(`{"a":1}`))
	f.Add("PUT", "/a%2Fb/ c/100%", "a=1&a=2&b", "X-Amz-Content-Sha256", UnsignedPayload,
		"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261127/us-east-1/lambda/aws4_request, SignedHeaders=host;x-amz-date, Signature="+strings.Repeat("a", 64),
		"20261127T120000Z", []byte("body"))
	v := NewVerifier("lambda", testLookup)
	f.Fuzz(func(t *testing.T, method, path, rawQuery, hname, hvalue, authz, amzDate string, body []byte) {
		// Arbitrary requests: must not panic.
		r := &http.Request{
			Method:     method,
			URL:        &url.URL{Path: path, RawQuery: rawQuery},
			Header:     http.Header{},
			Host:       "gust.test",
			RequestURI: path + "?" + rawQuery,
		}
		r.Header.Set(hname, hvalue)
		r.Header.Set(HeaderAuthorization, authz)
		r.Header.Set(HeaderDate, amzDate)
		_, _ = v.Verify(r, body, signedAt)

		// Requests signed by the SDK signer must verify.
		if !isToken(method) {
			method = "POST"
		}
		u := &url.URL{Scheme: "http", Host: "gust.test", Path: path, RawQuery: rawQuery}
		req, err := http.NewRequest(method, "http://gust.test/", bytes.NewReader(body))
		if err != nil {
			t.Skip()
		}
		req.URL = u
		switch http.CanonicalHeaderKey(hname) {
		case "Authorization", "X-Amz-Date", "X-Amz-Content-Sha256", "Host", "Content-Length", "X-Amz-Security-Token":
		default:
			if isToken(hname) && isFieldValue(hvalue) {
				req.Header.Set(hname, hvalue)
			}
		}
		creds := aws.Credentials{AccessKeyID: testAKID, SecretAccessKey: testSecret}
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hashHex(body), "lambda", "us-west-2", signedAt); err != nil {
			t.Fatal(err)
		}
		req.RequestURI = req.URL.RequestURI() // what the server would see
		if _, err := v.Verify(req, body, signedAt.Add(time.Minute)); err != nil {
			t.Fatalf("Verify(%s %q) of a signed request = %v", method, req.RequestURI, err)
		}
	})
}

// isToken reports whether s is an RFC 7230 token (a method or header name).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// isFieldValue reports whether s may be sent as a header value.
func isFieldValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
