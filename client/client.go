// Package client is the public Go client of a Gust node's HTTP API: the
// subset of the AWS Lambda management and Invoke API that Gust serves
// (including reserved and provisioned concurrency), plus Gust's log stream
// and usage reports. Every request is signed with AWS Signature Version 4
// (service "lambda"), as AWS SDKs sign, so the same key works for this
// client, the AWS CLI and AWS SDKs.
//
// Wire shapes are those of package api. API failures are returned as
// *api.Error, whose Code is the Lambda exception name; use errors.As.
//
// A Client is safe for concurrent use by multiple goroutines.
package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/gustfaas/gust/api"
)

// DefaultRegion is the region requests are signed for unless WithRegion
// says otherwise. A Gust node accepts any region.
const DefaultRegion = "us-east-1"

// signingService is the service name in the credential scope.
const signingService = "lambda"

// maxErrorBody caps how much of an error response is read.
const maxErrorBody = 1 << 20

// Credentials is the access key pair requests are signed with.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
}

// Option configures a Client.
type Option func(*Client)

// WithRegion sets the region requests are signed for.
func WithRegion(region string) Option { return func(c *Client) { c.region = region } }

// WithHTTPClient sets the HTTP client requests are sent with
// (http.DefaultClient by default).
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.http = hc } }

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// Client talks to one Gust node.
type Client struct {
	endpoint  *url.URL
	err       error // from parsing the endpoint; returned by every call
	creds     aws.Credentials
	region    string
	http      *http.Client
	userAgent string
	signer    *v4.Signer
}

// New returns a client of the node at endpoint (for example
// "http://127.0.0.1:8080"), signing with creds. An endpoint that does not
// parse makes every call fail with that error.
func New(endpoint string, creds Credentials, opts ...Option) *Client {
	c := &Client{
		creds: aws.Credentials{
			AccessKeyID:     creds.AccessKeyID,
			SecretAccessKey: creds.SecretAccessKey,
			Source:          "gust",
		},
		region:    DefaultRegion,
		http:      http.DefaultClient,
		userAgent: "gust-client",
		signer:    v4.NewSigner(),
	}
	u, err := url.Parse(strings.TrimRight(endpoint, "/"))
	switch {
	case err != nil:
		c.err = fmt.Errorf("client: endpoint: %w", err)
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		c.err = fmt.Errorf("client: endpoint %q: want http://host[:port] or https://host[:port]", endpoint)
	default:
		u.RawQuery, u.Fragment = "", ""
		c.endpoint = u
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Endpoint returns the endpoint the client was made with, without a
// trailing slash.
func (c *Client) Endpoint() string {
	if c.endpoint == nil {
		return ""
	}
	return c.endpoint.String()
}

// CreateFunction creates a function.
func (c *Client) CreateFunction(ctx context.Context, in api.CreateFunctionRequest) (api.FunctionConfiguration, error) {
	var out api.FunctionConfiguration
	err := c.doJSON(ctx, http.MethodPost, []string{"2015-03-31", "functions"}, nil, in, &out)
	return out, err
}

// GetFunction returns a function's configuration and code location.
func (c *Client) GetFunction(ctx context.Context, name string) (api.GetFunctionResponse, error) {
	var out api.GetFunctionResponse
	if err := checkName(name); err != nil {
		return out, err
	}
	err := c.doJSON(ctx, http.MethodGet, functionPath(name), nil, nil, &out)
	return out, err
}

// GetFunctionConfiguration returns a function's configuration.
func (c *Client) GetFunctionConfiguration(ctx context.Context, name string) (api.FunctionConfiguration, error) {
	var out api.FunctionConfiguration
	if err := checkName(name); err != nil {
		return out, err
	}
	err := c.doJSON(ctx, http.MethodGet, functionPath(name, "configuration"), nil, nil, &out)
	return out, err
}

// listPageSize is the MaxItems asked for on each ListFunctions page.
const listPageSize = 50

// ListFunctions returns every function, following NextMarker across
// pages.
func (c *Client) ListFunctions(ctx context.Context) ([]api.FunctionConfiguration, error) {
	all := []api.FunctionConfiguration{}
	marker := ""
	seen := map[string]bool{}
	for {
		q := url.Values{"MaxItems": {strconv.Itoa(listPageSize)}}
		if marker != "" {
			q.Set("Marker", marker)
		}
		var page api.ListFunctionsResponse
		// Lambda's collection path for listing ends with a slash.
		if err := c.doJSON(ctx, http.MethodGet, []string{"2015-03-31", "functions", ""}, q, nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Functions...)
		if page.NextMarker == nil || *page.NextMarker == "" {
			return all, nil
		}
		marker = *page.NextMarker
		if seen[marker] {
			return nil, fmt.Errorf("list functions: server repeated marker %q", marker)
		}
		seen[marker] = true
	}
}

// UpdateFunctionCode replaces a function's code.
func (c *Client) UpdateFunctionCode(ctx context.Context, name string, in api.UpdateFunctionCodeRequest) (api.FunctionConfiguration, error) {
	var out api.FunctionConfiguration
	if err := checkName(name); err != nil {
		return out, err
	}
	err := c.doJSON(ctx, http.MethodPut, functionPath(name, "code"), nil, in, &out)
	return out, err
}

// UpdateFunctionConfiguration changes a function's configuration; nil
// fields of in are left unchanged.
func (c *Client) UpdateFunctionConfiguration(ctx context.Context, name string, in api.UpdateFunctionConfigurationRequest) (api.FunctionConfiguration, error) {
	var out api.FunctionConfiguration
	if err := checkName(name); err != nil {
		return out, err
	}
	err := c.doJSON(ctx, http.MethodPut, functionPath(name, "configuration"), nil, in, &out)
	return out, err
}

// DeleteFunction deletes a function.
func (c *Client) DeleteFunction(ctx context.Context, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	return c.doJSON(ctx, http.MethodDelete, functionPath(name), nil, nil, nil)
}

// PutFunctionConcurrency reserves n concurrent executions for a function:
// it never runs more than n at once, and n are kept out of the node's
// shared pool for it.
func (c *Client) PutFunctionConcurrency(ctx context.Context, name string, n int32) error {
	if err := checkName(name); err != nil {
		return err
	}
	in := api.Concurrency{ReservedConcurrentExecutions: &n}
	return c.doJSON(ctx, http.MethodPut, concurrencyPath(name), nil, in, nil)
}

// DeleteFunctionConcurrency removes a function's reserved concurrency.
func (c *Client) DeleteFunctionConcurrency(ctx context.Context, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	return c.doJSON(ctx, http.MethodDelete, concurrencyPath(name), nil, nil, nil)
}

// latestQualifier selects $LATEST, the only version Gust provisions.
func latestQualifier() url.Values { return url.Values{"Qualifier": {"$LATEST"}} }

// PutProvisionedConcurrency asks the node to keep n instances of the
// function's $LATEST version warm. The returned state is the node's answer
// at the time of the call; instances may still be starting.
func (c *Client) PutProvisionedConcurrency(ctx context.Context, name string, n int32) (api.ProvisionedConcurrencyConfig, error) {
	var out api.ProvisionedConcurrencyConfig
	if err := checkName(name); err != nil {
		return out, err
	}
	in := api.PutProvisionedConcurrencyConfigRequest{ProvisionedConcurrentExecutions: &n}
	err := c.doJSON(ctx, http.MethodPut, provisionedPath(name), latestQualifier(), in, &out)
	return out, err
}

// DeleteProvisionedConcurrency removes the provisioned concurrency of the
// function's $LATEST version.
func (c *Client) DeleteProvisionedConcurrency(ctx context.Context, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	return c.doJSON(ctx, http.MethodDelete, provisionedPath(name), latestQualifier(), nil, nil)
}

// Usage returns metered usage since the given time, per function version
// and in total, priced with the node's price table. A zero since leaves
// the start to the node (24 hours ago); an empty function means all
// functions.
func (c *Client) Usage(ctx context.Context, since time.Time, function string) (api.UsageReport, error) {
	var out api.UsageReport
	q := url.Values{}
	if !since.IsZero() {
		q.Set("since", since.UTC().Format(time.RFC3339Nano))
	}
	if function != "" {
		q.Set("function", function)
	}
	err := c.doJSON(ctx, http.MethodGet, strings.Split(strings.TrimPrefix(api.UsagePath, "/"), "/"), q, nil, &out)
	return out, err
}

// InvokeOptions are the optional parts of an invocation.
type InvokeOptions struct {
	// InvocationType is api.InvocationRequestResponse (the default),
	// api.InvocationEvent or api.InvocationDryRun.
	InvocationType string
	// LogTail asks for the tail of the invocation's log in
	// InvokeResult.LogResult (synchronous invocations only).
	LogTail bool
	// Qualifier selects a version or alias.
	Qualifier string
}

// InvokeResult is the outcome of an invocation that reached the function.
// A function that returned an error is not a Go error: FunctionError is
// set and Payload holds the error document.
type InvokeResult struct {
	// StatusCode is 200 for RequestResponse, 202 for Event, 204 for DryRun.
	StatusCode int
	// Payload is the function's response (or error document).
	Payload []byte
	// FunctionError is "Unhandled" or "Handled" when the function failed.
	FunctionError string
	// LogResult is the decoded log tail, when LogTail was asked for.
	LogResult string
	// ExecutedVersion is the version that ran.
	ExecutedVersion string
	// RequestID is the invocation's request ID.
	RequestID string
}

// Invoke invokes a function with payload (normally JSON).
func (c *Client) Invoke(ctx context.Context, name string, payload []byte, o InvokeOptions) (InvokeResult, error) {
	if err := checkName(name); err != nil {
		return InvokeResult{}, err
	}
	var q url.Values
	if o.Qualifier != "" {
		q = url.Values{"Qualifier": {o.Qualifier}}
	}
	h := http.Header{"Content-Type": {"application/octet-stream"}}
	if o.InvocationType != "" {
		h.Set(api.HeaderInvocationType, o.InvocationType)
	}
	if o.LogTail {
		h.Set(api.HeaderLogType, "Tail")
	}
	resp, err := c.do(ctx, http.MethodPost, functionPath(name, "invocations"), q, h, payload)
	if err != nil {
		return InvokeResult{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, api.MaxPayload+1<<20))
	if err != nil {
		return InvokeResult{}, fmt.Errorf("invoke %s: read response: %w", name, err)
	}
	res := InvokeResult{
		StatusCode:      resp.StatusCode,
		Payload:         body,
		FunctionError:   resp.Header.Get(api.HeaderFunctionError),
		ExecutedVersion: resp.Header.Get(api.HeaderExecutedVersion),
		RequestID:       resp.Header.Get(api.HeaderRequestID),
	}
	if lr := resp.Header.Get(api.HeaderLogResult); lr != "" {
		if dec, err := base64.StdEncoding.DecodeString(lr); err == nil {
			res.LogResult = string(dec)
		} else {
			res.LogResult = lr
		}
	}
	return res, nil
}

// LogsOptions select which log events Logs delivers.
type LogsOptions struct {
	// Since, when not zero, skips events before it.
	Since time.Time
	// Follow keeps the stream open for new events until ctx ends.
	Follow bool
}

// Logs streams a function's log events to fn, in order. It returns nil
// when the server ends the stream, ctx's error when ctx ends first, and
// fn's error (unwrapped) when fn fails, which stops the stream.
func (c *Client) Logs(ctx context.Context, name string, o LogsOptions, fn func(api.LogEvent) error) error {
	if err := checkName(name); err != nil {
		return err
	}
	q := url.Values{}
	if !o.Since.IsZero() {
		q.Set("since", o.Since.UTC().Format(time.RFC3339Nano))
	}
	if o.Follow {
		q.Set("follow", "1")
	}
	segs := append(strings.Split(strings.TrimPrefix(api.LogsPath, "/"), "/"), name)
	resp, err := c.do(ctx, http.MethodGet, segs, q, http.Header{"Accept": {"application/x-ndjson"}}, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var ev api.LogEvent
		err := dec.Decode(&ev)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("logs %s: %w", name, err)
		}
		if err := fn(ev); err != nil {
			return err
		}
	}
}

// checkName refuses names that would address another resource.
func checkName(name string) error {
	if name == "" {
		return errors.New("client: function name is empty")
	}
	return nil
}

// functionPath returns the path segments of a function resource.
func functionPath(name string, rest ...string) []string {
	return append([]string{"2015-03-31", "functions", name}, rest...)
}

// concurrencyPath returns the path segments of a function's reserved
// concurrency (API version 2017-10-31, as Lambda serves it).
func concurrencyPath(name string) []string {
	return []string{"2017-10-31", "functions", name, "concurrency"}
}

// provisionedPath returns the path segments of a function's provisioned
// concurrency (API version 2019-09-30).
func provisionedPath(name string) []string {
	return []string{"2019-09-30", "functions", name, "provisioned-concurrency"}
}

// doJSON sends in (when not nil) as JSON and decodes a 2xx response into
// out (when not nil).
func (c *Client) doJSON(ctx context.Context, method string, segs []string, q url.Values, in, out any) error {
	var body []byte
	h := http.Header{}
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("client: encode request: %w", err)
		}
		body = b
		h.Set("Content-Type", "application/json")
	}
	resp, err := c.do(ctx, method, segs, q, h, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode response: %w", method, "/"+strings.Join(segs, "/"), err)
	}
	return nil
}

// do signs and sends a request, returning the response when its status is
// 2xx and an *api.Error otherwise. segs are unescaped path segments.
func (c *Client) do(ctx context.Context, method string, segs []string, q url.Values, h http.Header, body []byte) (*http.Response, error) {
	sum := sha256.Sum256(body)
	return c.send(ctx, method, segs, q, h, bytes.NewReader(body), int64(len(body)), hex.EncodeToString(sum[:]))
}

// send sends a request of size bytes (-1: unknown) read from body, signed
// with payloadHash (the body's hex SHA-256, or unsignedPayload), and
// returns the response of a 2xx answer; any other is decoded into an
// error.
func (c *Client) send(ctx context.Context, method string, segs []string, q url.Values, h http.Header, body io.Reader, size int64, payloadHash string) (*http.Response, error) {
	if c.err != nil {
		return nil, c.err
	}
	u := *c.endpoint
	var p, raw strings.Builder
	p.WriteString(strings.TrimRight(u.Path, "/"))
	raw.WriteString(strings.TrimRight(u.EscapedPath(), "/"))
	for _, s := range segs {
		p.WriteString("/" + s)
		raw.WriteString("/" + escapeSegment(s))
	}
	u.Path, u.RawPath = p.String(), raw.String()
	if q != nil {
		u.RawQuery = q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	switch {
	case size == 0:
		req.Body, req.ContentLength = http.NoBody, 0
	case size > 0:
		req.ContentLength = size
	default:
		req.ContentLength = -1
	}
	// The string form of u may re-escape the path; keep exactly ours.
	req.URL.Path, req.URL.RawPath = u.Path, u.RawPath
	for k, vs := range h {
		req.Header[k] = vs
	}
	req.Header.Set("User-Agent", c.userAgent)
	if err := c.signer.SignHTTP(ctx, c.creds, req, payloadHash, signingService, c.region, time.Now()); err != nil {
		return nil, fmt.Errorf("client: sign request: %w", err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, req.URL.Path, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, decodeError(resp)
}

// escapeSegment percent-encodes every byte of a path segment except the
// RFC 3986 unreserved characters, as AWS SDKs do.
func escapeSegment(s string) string {
	const upperhex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(upperhex[c>>4])
		b.WriteByte(upperhex[c&15])
	}
	return b.String()
}

// decodeError turns a non-2xx response into an *api.Error. The code comes
// from X-Amzn-ErrorType (without any ":..." suffix), else the body's
// __type, Type or code (without any "namespace#" prefix); the message from
// the body's message or Message, else the body text or the status text.
func decodeError(resp *http.Response) *api.Error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var doc struct {
		Type1    string `json:"__type"`
		Type2    string `json:"Type"`
		Code     string `json:"code"`
		Message1 string `json:"message"`
		Message2 string `json:"Message"`
		Reason   string `json:"Reason"`
	}
	isJSON := json.Unmarshal(body, &doc) == nil
	e := &api.Error{Status: resp.StatusCode, Reason: doc.Reason}
	code := resp.Header.Get(api.HeaderErrorType)
	if code == "" {
		code = firstNonEmpty(doc.Type1, doc.Type2, doc.Code)
		if i := strings.LastIndexByte(code, '#'); i >= 0 {
			code = code[i+1:]
		}
	}
	if i := strings.IndexByte(code, ':'); i >= 0 {
		code = code[:i]
	}
	e.Code = strings.TrimSpace(code)
	if e.Code == "" {
		e.Code = "HTTP" + strconv.Itoa(resp.StatusCode)
	}
	e.Type = doc.Type2
	e.Message = firstNonEmpty(doc.Message1, doc.Message2)
	if e.Message == "" && !isJSON {
		e.Message = strings.TrimSpace(string(body))
		if len(e.Message) > 512 {
			e.Message = e.Message[:512] + "..."
		}
	}
	if e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	return e
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
