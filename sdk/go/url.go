package gust

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// URLRequest is a function URL (and API Gateway HTTP API) event, payload
// format version 2.0. Gust's gateway maps /fn/{name}/{path...} to RawPath
// "/{path...}": the function name prefix is stripped.
type URLRequest struct {
	Version               string            `json:"version"`
	RouteKey              string            `json:"routeKey,omitempty"`
	RawPath               string            `json:"rawPath"`
	RawQueryString        string            `json:"rawQueryString"`
	Cookies               []string          `json:"cookies,omitempty"`
	Headers               map[string]string `json:"headers,omitempty"`
	QueryStringParameters map[string]string `json:"queryStringParameters,omitempty"`
	PathParameters        map[string]string `json:"pathParameters,omitempty"`
	StageVariables        map[string]string `json:"stageVariables,omitempty"`
	RequestContext        URLRequestContext `json:"requestContext"`
	Body                  string            `json:"body,omitempty"`
	IsBase64Encoded       bool              `json:"isBase64Encoded"`
}

// URLRequestContext is the requestContext of a [URLRequest].
type URLRequestContext struct {
	AccountID    string         `json:"accountId,omitempty"`
	APIID        string         `json:"apiId,omitempty"`
	DomainName   string         `json:"domainName,omitempty"`
	DomainPrefix string         `json:"domainPrefix,omitempty"`
	HTTP         URLRequestHTTP `json:"http"`
	RequestID    string         `json:"requestId,omitempty"`
	RouteKey     string         `json:"routeKey,omitempty"`
	Stage        string         `json:"stage,omitempty"`
	Time         string         `json:"time,omitempty"`
	TimeEpoch    int64          `json:"timeEpoch,omitempty"`
}

// URLRequestHTTP describes the HTTP request inside a [URLRequestContext].
type URLRequestHTTP struct {
	Method    string `json:"method"`
	Path      string `json:"path"`
	Protocol  string `json:"protocol,omitempty"`
	SourceIP  string `json:"sourceIp,omitempty"`
	UserAgent string `json:"userAgent,omitempty"`
}

// URLResponse is a function URL response, payload format version 2.0.
type URLResponse struct {
	StatusCode      int               `json:"statusCode"`
	Headers         map[string]string `json:"headers,omitempty"`
	Cookies         []string          `json:"cookies,omitempty"`
	Body            string            `json:"body,omitempty"`
	IsBase64Encoded bool              `json:"isBase64Encoded"`
}

// HandleHTTP registers h as the function's handler for function URL
// events. Each event becomes an *http.Request (cookies joined into a Cookie
// header, a base64 body decoded) whose context carries the invocation (see
// [RequestID]); h writes to an in-memory ResponseWriter and the result is
// returned as a [URLResponse]: Set-Cookie headers become cookies, and a
// body that is not UTF-8 text is base64-encoded. Call HandleHTTP from an
// init function; the last registration wins.
func HandleHTTP(h http.Handler) {
	registered = func(ctx context.Context, payload []byte) ([]byte, error) {
		var ev URLRequest
		if err := json.Unmarshal(payload, &ev); err != nil {
			return nil, &FunctionError{Type: "Runtime.UnmarshalError", Message: "decoding function URL event: " + err.Error()}
		}
		req, err := NewHTTPRequest(ctx, &ev)
		if err != nil {
			return nil, &FunctionError{Type: "Runtime.InvalidEvent", Message: err.Error()}
		}
		w := newResponseWriter()
		h.ServeHTTP(w, req)
		b, err := json.Marshal(w.result())
		if err != nil {
			return nil, &FunctionError{Type: "Runtime.MarshalError", Message: err.Error()}
		}
		return b, nil
	}
}

// NewHTTPRequest converts a function URL event into an *http.Request with
// context ctx, as [HandleHTTP] does.
func NewHTTPRequest(ctx context.Context, ev *URLRequest) (*http.Request, error) {
	method := ev.RequestContext.HTTP.Method
	if method == "" {
		method = http.MethodGet
	}
	path := ev.RawPath
	if path == "" {
		path = ev.RequestContext.HTTP.Path
	}
	if path == "" {
		path = "/"
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	uri := path
	if ev.RawQueryString != "" {
		uri += "?" + ev.RawQueryString
	}
	u, err := url.ParseRequestURI(uri)
	if err != nil {
		return nil, fmt.Errorf("gust: invalid request path %q: %w", uri, err)
	}

	var body []byte
	if ev.IsBase64Encoded {
		if body, err = base64.StdEncoding.DecodeString(ev.Body); err != nil {
			return nil, fmt.Errorf("gust: decoding base64 request body: %w", err)
		}
	} else {
		body = []byte(ev.Body)
	}

	header := make(http.Header, len(ev.Headers)+1)
	for k, v := range ev.Headers {
		header[http.CanonicalHeaderKey(k)] = []string{v}
	}
	if len(ev.Cookies) > 0 {
		header.Set("Cookie", strings.Join(ev.Cookies, "; "))
	}

	proto := ev.RequestContext.HTTP.Protocol
	if proto == "" {
		proto = "HTTP/1.1"
	}
	major, minor, ok := http.ParseHTTPVersion(proto)
	if !ok {
		major, minor = 1, 1
	}
	host := header.Get("Host")
	if host == "" {
		host = ev.RequestContext.DomainName
	}
	req := &http.Request{
		Method:        method,
		URL:           u,
		Proto:         proto,
		ProtoMajor:    major,
		ProtoMinor:    minor,
		Header:        header,
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Host:          host,
		RemoteAddr:    ev.RequestContext.HTTP.SourceIP,
		RequestURI:    uri,
	}
	if len(body) == 0 {
		req.Body = http.NoBody
	}
	if ua := ev.RequestContext.HTTP.UserAgent; ua != "" && header.Get("User-Agent") == "" {
		header.Set("User-Agent", ua)
	}
	return req.WithContext(ctx), nil
}

// responseWriter is the in-memory http.ResponseWriter HandleHTTP uses.
type responseWriter struct {
	header      http.Header
	written     http.Header // header as of WriteHeader
	status      int
	wroteHeader bool
	body        bytes.Buffer
}

func newResponseWriter() *responseWriter {
	return &responseWriter{header: make(http.Header)}
}

func (w *responseWriter) Header() http.Header { return w.header }

func (w *responseWriter) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	w.wroteHeader = true
	w.status = code
	w.written = w.header.Clone()
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		if w.header.Get("Content-Type") == "" && w.header.Get("Transfer-Encoding") == "" {
			w.header.Set("Content-Type", http.DetectContentType(p))
		}
		w.WriteHeader(http.StatusOK)
	}
	return w.body.Write(p)
}

// Flush implements http.Flusher; the response is sent when the handler
// returns.
func (w *responseWriter) Flush() {}

func (w *responseWriter) result() URLResponse {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	res := URLResponse{StatusCode: w.status}
	if len(w.written) > 0 {
		res.Headers = make(map[string]string, len(w.written))
	}
	for k, vs := range w.written {
		if k == "Set-Cookie" {
			res.Cookies = append(res.Cookies, vs...)
			continue
		}
		res.Headers[strings.ToLower(k)] = strings.Join(vs, ",")
	}
	if len(res.Headers) == 0 {
		res.Headers = nil
	}
	if w.body.Len() > 0 {
		b := w.body.Bytes()
		if utf8.Valid(b) && isText(w.written.Get("Content-Type")) {
			res.Body = string(b)
		} else {
			res.Body = base64.StdEncoding.EncodeToString(b)
			res.IsBase64Encoded = true
		}
	}
	return res
}

// isText reports whether a body of the given content type can travel as a
// JSON string.
func isText(contentType string) bool {
	if contentType == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	if strings.HasPrefix(mt, "text/") || strings.HasSuffix(mt, "+json") || strings.HasSuffix(mt, "+xml") {
		return true
	}
	switch mt {
	case "application/json", "application/xml", "application/javascript",
		"application/ecmascript", "application/x-www-form-urlencoded",
		"application/yaml", "application/x-yaml", "application/graphql",
		"image/svg+xml":
		return true
	}
	return false
}
