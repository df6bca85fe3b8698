// Package sigv4 verifies AWS Signature Version 4 (AWS4-HMAC-SHA256) on
// incoming HTTP requests, so that AWS SDKs and the gust CLI can authenticate
// to a Gust node with an access key pair.
//
// Only header-based authentication is supported (an Authorization header and
// X-Amz-Date); presigned URLs are not. The canonical request is built as AWS
// SDKs build it for services other than S3: the path as sent on the wire is
// escaped once more (so "%3A" becomes "%253A"), the query is re-encoded and
// sorted, and the payload hash is the hex SHA-256 of the body unless the
// request carries X-Amz-Content-Sha256.
//
// Failures are returned as *Error values that carry the Lambda exception
// name, HTTP status and message a gateway should answer with; errors.Is
// tells the kinds apart (ErrMissingAuth, ErrMalformed, ErrScope,
// ErrUnknownKey, ErrExpired, ErrSignatureMismatch).
package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Algorithm is the only signing algorithm accepted.
const Algorithm = "AWS4-HMAC-SHA256"

// MaxSkew is how far X-Amz-Date may be from the verifier's clock, in either
// direction.
const MaxSkew = 15 * time.Minute

// UnsignedPayload is the X-Amz-Content-Sha256 value that leaves the body
// out of the signature.
const UnsignedPayload = "UNSIGNED-PAYLOAD"

// TimeFormat is the layout of X-Amz-Date (ISO 8601 basic format, UTC).
const TimeFormat = "20060102T150405Z"

// DateFormat is the layout of the date in a credential scope.
const DateFormat = "20060102"

// Header names read by the verifier.
const (
	HeaderAuthorization = "Authorization"
	HeaderDate          = "X-Amz-Date"
	HeaderContentSHA256 = "X-Amz-Content-Sha256"
)

// Lambda exception names carried by *Error.
const (
	CodeMissingAuthenticationToken = "MissingAuthenticationTokenException"
	CodeUnrecognizedClient         = "UnrecognizedClientException"
	CodeInvalidSignature           = "InvalidSignatureException"
	CodeIncompleteSignature        = "IncompleteSignatureException"
)

// Kinds of verification failure, for errors.Is. Every *Error unwraps to
// exactly one of them.
var (
	// ErrMissingAuth: the request carries no Authorization header.
	ErrMissingAuth = errors.New("missing authentication token")
	// ErrMalformed: the Authorization header or X-Amz-Date cannot be used.
	ErrMalformed = errors.New("malformed signature")
	// ErrScope: the credential scope names another service or date.
	ErrScope = errors.New("wrong credential scope")
	// ErrUnknownKey: the access key ID is not known.
	ErrUnknownKey = errors.New("unknown access key")
	// ErrExpired: X-Amz-Date is more than MaxSkew away from now.
	ErrExpired = errors.New("signature expired")
	// ErrSignatureMismatch: the signature (or payload hash) does not match.
	ErrSignatureMismatch = errors.New("signature mismatch")
)

// Error is a verification failure in the shape a Lambda-compatible gateway
// answers with.
type Error struct {
	// Kind is one of the Err* sentinels of this package.
	Kind error
	// Code is the Lambda exception name (for example
	// InvalidSignatureException).
	Code string
	// Status is the HTTP status to answer with.
	Status int
	// Message is the message to answer with, worded as AWS words it.
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Unwrap returns e.Kind.
func (e *Error) Unwrap() error { return e.Kind }

// Describe maps an error returned by Verify to the Lambda exception name,
// HTTP status and message to answer with. Errors that are not *Error (which
// Verify does not return) map to a 403 InvalidSignatureException carrying
// err's text.
func Describe(err error) (code string, status int, message string) {
	var e *Error
	if errors.As(err, &e) {
		return e.Code, e.Status, e.Message
	}
	return CodeInvalidSignature, http.StatusForbidden, err.Error()
}

func newError(kind error, code, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: code, Status: http.StatusForbidden, Message: fmt.Sprintf(format, args...)}
}

const mismatchMessage = "The request signature we calculated does not match the signature you provided. " +
	"Check your AWS Secret Access Key and signing method. Consult the service documentation for details."

// Lookup returns the secret access key of an access key ID, and whether the
// key is known. It is called once per verified request, possibly from many
// goroutines at once.
type Lookup func(accessKeyID string) (secret string, ok bool)

// Verifier checks request signatures for one service. It is safe for
// concurrent use.
type Verifier struct {
	service string
	lookup  Lookup
}

// NewVerifier returns a Verifier that accepts requests signed for service
// (Gust uses "lambda") in any region, with keys found by lookup.
func NewVerifier(service string, lookup Lookup) *Verifier {
	return &Verifier{service: service, lookup: lookup}
}

// Authorization is a parsed AWS4-HMAC-SHA256 Authorization header.
type Authorization struct {
	AccessKeyID string
	// Date is the credential scope's date, YYYYMMDD.
	Date    string
	Region  string
	Service string
	// SignedHeaders are the header names as listed, in order.
	SignedHeaders []string
	// Signature is the lowercase hex signature.
	Signature string
}

// Scope returns the credential scope, date/region/service/aws4_request.
func (a Authorization) Scope() string {
	return a.Date + "/" + a.Region + "/" + a.Service + "/aws4_request"
}

// ParseAuthorization parses the value of an Authorization header of the
// form
//
//	AWS4-HMAC-SHA256 Credential=AKID/YYYYMMDD/REGION/SERVICE/aws4_request, SignedHeaders=a;b, Signature=hex
//
// Errors are *Error values of kind ErrMalformed.
func ParseAuthorization(header string) (Authorization, error) {
	var a Authorization
	h := strings.TrimSpace(header)
	alg, rest, _ := strings.Cut(h, " ")
	if alg != Algorithm {
		return a, newError(ErrMalformed, CodeIncompleteSignature,
			"Unsupported Authorization scheme %q: only %s is supported.", truncate(alg, 64), Algorithm)
	}
	var credential, signedHeaders, signature string
	var seen [3]bool
	for part := range strings.SplitSeq(rest, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return a, newError(ErrMalformed, CodeIncompleteSignature,
				"Authorization header component %q is not a key=value pair.", truncate(part, 64))
		}
		var i int
		switch k {
		case "Credential":
			i, credential = 0, v
		case "SignedHeaders":
			i, signedHeaders = 1, v
		case "Signature":
			i, signature = 2, v
		default:
			return a, newError(ErrMalformed, CodeIncompleteSignature,
				"Authorization header has an unknown component %q.", truncate(k, 64))
		}
		if seen[i] {
			return a, newError(ErrMalformed, CodeIncompleteSignature,
				"Authorization header has more than one %q component.", k)
		}
		seen[i] = true
	}
	var missing []string
	for i, name := range []string{"Credential", "SignedHeaders", "Signature"} {
		if !seen[i] {
			missing = append(missing, fmt.Sprintf("Authorization header requires '%s' parameter.", name))
		}
	}
	if missing != nil {
		return a, newError(ErrMalformed, CodeIncompleteSignature, "%s", strings.Join(missing, " "))
	}

	parts := strings.Split(credential, "/")
	if len(parts) != 5 {
		return a, newError(ErrMalformed, CodeIncompleteSignature,
			"Credential must have the form AKID/YYYYMMDD/REGION/SERVICE/aws4_request, got %d slash-separated parts.", len(parts))
	}
	if parts[4] != "aws4_request" {
		return a, newError(ErrMalformed, CodeIncompleteSignature,
			"Credential should be scoped with a valid terminator: 'aws4_request', not '%s'.", truncate(parts[4], 64))
	}
	if parts[0] == "" {
		return a, newError(ErrMalformed, CodeIncompleteSignature, "Credential has an empty access key ID.")
	}
	if _, err := time.Parse(DateFormat, parts[1]); err != nil || len(parts[1]) != len(DateFormat) {
		return a, newError(ErrMalformed, CodeIncompleteSignature,
			"Credential should be scoped to a valid date (YYYYMMDD), not '%s'.", truncate(parts[1], 64))
	}
	if parts[2] == "" {
		return a, newError(ErrMalformed, CodeIncompleteSignature, "Credential should be scoped to a valid region.")
	}
	if parts[3] == "" {
		return a, newError(ErrMalformed, CodeIncompleteSignature, "Credential should be scoped to a valid service.")
	}
	a.AccessKeyID, a.Date, a.Region, a.Service = parts[0], parts[1], parts[2], parts[3]

	if signedHeaders == "" {
		return a, newError(ErrMalformed, CodeIncompleteSignature, "SignedHeaders is empty.")
	}
	a.SignedHeaders = strings.Split(signedHeaders, ";")
	for _, name := range a.SignedHeaders {
		if name == "" || strings.ContainsAny(name, " \t") {
			return a, newError(ErrMalformed, CodeIncompleteSignature,
				"SignedHeaders %q has an empty or invalid header name.", truncate(signedHeaders, 128))
		}
	}

	if len(signature) != sha256.Size*2 || !isLowerHex(signature) {
		return a, newError(ErrMalformed, CodeIncompleteSignature,
			"Signature must be %d lowercase hexadecimal characters.", sha256.Size*2)
	}
	a.Signature = signature
	return a, nil
}

// Verify checks the signature of r, whose body has already been read into
// body, against the clock reading now. It returns the access key ID that
// signed the request, or an *Error.
//
// Verify does not read r.Body. The path is taken from r.RequestURI (the
// request target as received) when it is in origin form, else from r.URL.
func (v *Verifier) Verify(r *http.Request, body []byte, now time.Time) (accessKeyID string, err error) {
	values := r.Header.Values(HeaderAuthorization)
	if len(values) == 0 || strings.TrimSpace(values[0]) == "" {
		return "", newError(ErrMissingAuth, CodeMissingAuthenticationToken, "Missing Authentication Token")
	}
	if len(values) > 1 {
		return "", newError(ErrMalformed, CodeIncompleteSignature, "The request has more than one Authorization header.")
	}
	a, err := ParseAuthorization(values[0])
	if err != nil {
		return "", err
	}
	if !slices.ContainsFunc(a.SignedHeaders, func(name string) bool { return strings.EqualFold(name, "host") }) {
		return "", newError(ErrMalformed, CodeIncompleteSignature, "The 'host' header must be signed (SignedHeaders is %q).",
			truncate(strings.Join(a.SignedHeaders, ";"), 128))
	}
	if a.Service != v.service {
		return "", newError(ErrScope, CodeInvalidSignature, "Credential should be scoped to correct service: '%s'.", v.service)
	}

	amzDate := r.Header.Get(HeaderDate)
	if amzDate == "" {
		return "", newError(ErrMalformed, CodeIncompleteSignature,
			"Authorization header requires existence of a '%s' header.", HeaderDate)
	}
	signedAt, err := time.Parse(TimeFormat, amzDate)
	if err != nil || len(amzDate) != len(TimeFormat) {
		return "", newError(ErrMalformed, CodeIncompleteSignature,
			"X-Amz-Date must be in the ISO-8601 basic format 'YYYYMMDDTHHMMSSZ', got '%s'.", truncate(amzDate, 64))
	}
	if amzDate[:8] != a.Date {
		return "", newError(ErrScope, CodeInvalidSignature,
			"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.",
			a.Date, amzDate[:8], amzDate)
	}
	now = now.UTC()
	if signedAt.Before(now.Add(-MaxSkew)) {
		return "", newError(ErrExpired, CodeInvalidSignature, "Signature expired: %s is now earlier than %s (%s - 15 min.)",
			amzDate, now.Add(-MaxSkew).Format(TimeFormat), now.Format(TimeFormat))
	}
	if signedAt.After(now.Add(MaxSkew)) {
		return "", newError(ErrExpired, CodeInvalidSignature, "Signature not yet current: %s is still later than %s (%s + 15 min.)",
			amzDate, now.Add(MaxSkew).Format(TimeFormat), now.Format(TimeFormat))
	}

	secret, ok := v.lookup(a.AccessKeyID)
	if !ok {
		return "", newError(ErrUnknownKey, CodeUnrecognizedClient, "The security token included in the request is invalid.")
	}

	payloadHash, err := payloadHash(r.Header.Get(HeaderContentSHA256), body)
	if err != nil {
		return "", err
	}

	canonical := canonicalRequest(r, a.SignedHeaders, payloadHash)
	sum := sha256.Sum256([]byte(canonical))
	stringToSign := Algorithm + "\n" + amzDate + "\n" + a.Scope() + "\n" + hex.EncodeToString(sum[:])
	key := signingKey(secret, a.Date, a.Region, a.Service)
	want := hex.EncodeToString(hmacSHA256(key, []byte(stringToSign)))
	if !hmac.Equal([]byte(want), []byte(a.Signature)) {
		return "", newError(ErrSignatureMismatch, CodeInvalidSignature, "%s", mismatchMessage)
	}
	return a.AccessKeyID, nil
}

// payloadHash returns the payload hash that goes into the canonical
// request, given the X-Amz-Content-Sha256 header (possibly empty).
func payloadHash(header string, body []byte) (string, error) {
	switch {
	case header == "":
		sum := sha256.Sum256(body)
		return hex.EncodeToString(sum[:]), nil
	case header == UnsignedPayload:
		return header, nil
	case len(header) == sha256.Size*2 && isHex(header):
		sum := sha256.Sum256(body)
		if !strings.EqualFold(header, hex.EncodeToString(sum[:])) {
			return "", newError(ErrSignatureMismatch, CodeInvalidSignature,
				"The provided 'x-amz-content-sha256' header does not match what was computed.")
		}
		return header, nil
	default:
		return "", newError(ErrMalformed, CodeIncompleteSignature,
			"Unsupported x-amz-content-sha256 value '%s': send the hex SHA-256 of the body or %s.", truncate(header, 64), UnsignedPayload)
	}
}

// canonicalRequest builds the SigV4 canonical request of r.
func canonicalRequest(r *http.Request, signedHeaders []string, payloadHash string) string {
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	b.WriteString(escapePath(requestPath(r)))
	b.WriteByte('\n')
	b.WriteString(canonicalQuery(r.URL.RawQuery))
	b.WriteByte('\n')
	for _, name := range signedHeaders {
		b.WriteString(name)
		b.WriteByte(':')
		b.WriteString(headerValue(r, name))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(signedHeaders, ";"))
	b.WriteByte('\n')
	b.WriteString(payloadHash)
	return b.String()
}

// requestPath returns the escaped path of r as the client sent it.
func requestPath(r *http.Request) string {
	p := ""
	if uri := r.RequestURI; strings.HasPrefix(uri, "/") {
		p, _, _ = strings.Cut(uri, "?")
	} else if r.URL != nil {
		p = r.URL.EscapedPath()
	}
	if p == "" {
		p = "/"
	}
	return p
}

// escapePath percent-encodes every byte of p except the RFC 3986
// unreserved characters and '/', as the SDKs do for non-S3 services.
func escapePath(p string) string {
	const upperhex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(p) + len(p)/2)
	for i := 0; i < len(p); i++ {
		c := p[i]
		if isUnreserved(c) || c == '/' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(upperhex[c>>4])
		b.WriteByte(upperhex[c&15])
	}
	return b.String()
}

func isUnreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// canonicalQuery decodes rawQuery and re-encodes it canonically: each name
// and value escaped (space as %20), pairs sorted by name then value.
func canonicalQuery(rawQuery string) string {
	if rawQuery == "" {
		return ""
	}
	values, _ := url.ParseQuery(rawQuery) // as the signer's URL.Query(), keep what parses
	type pair struct{ k, v string }
	pairs := make([]pair, 0, len(values))
	for k, vs := range values {
		ek := queryEscape(k)
		for _, v := range vs {
			pairs = append(pairs, pair{ek, queryEscape(v)})
		}
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.k)
		b.WriteByte('=')
		b.WriteString(p.v)
	}
	return b.String()
}

func queryEscape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

// headerValue returns the canonical value of the signed header name.
func headerValue(r *http.Request, name string) string {
	if strings.EqualFold(name, "host") {
		host := r.Host
		if host == "" && r.URL != nil {
			host = r.URL.Host
		}
		return stripExcessSpaces(host)
	}
	values := r.Header.Values(name)
	if len(values) == 0 && strings.EqualFold(name, "content-length") && r.ContentLength >= 0 {
		// A server keeps Content-Length in the header; requests built in
		// process may only have the field.
		values = []string{strconv.FormatInt(r.ContentLength, 10)}
	}
	var b strings.Builder
	for i, v := range values {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strings.TrimSpace(stripExcessSpaces(v)))
	}
	return b.String()
}

// stripExcessSpaces trims leading and trailing spaces and collapses runs of
// spaces into one.
func stripExcessSpaces(s string) string {
	s = strings.Trim(s, " ")
	if !strings.Contains(s, "  ") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ' ' {
			if space {
				continue
			}
			space = true
		} else {
			space = false
		}
		b.WriteByte(c)
	}
	return b.String()
}

func signingKey(secret, date, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), []byte(date))
	k = hmacSHA256(k, []byte(region))
	k = hmacSHA256(k, []byte(service))
	return hmacSHA256(k, []byte("aws4_request"))
}

func hmacSHA256(key, data []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(data)
	return h.Sum(nil)
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// truncate shortens s for inclusion in an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
