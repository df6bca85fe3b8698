package gust

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"strings"
)

// maxRequestBody bounds an outbound request's body, which is sent in one
// host call.
const maxRequestBody = 6 << 20

// Transport is an http.RoundTripper that sends requests through the
// host. Inside a Gust wasm function http.DefaultTransport is a Transport,
// so http.Get and http.DefaultClient work unchanged. Only the hosts the
// function's configuration allows (grants.hosts in gust.yaml) are
// reachable; others fail with an error matching ErrAccessDenied. A
// request's time is bounded by the invocation's deadline, and the
// response body by the node's limit (ErrTooLarge).
type Transport struct{}

// RoundTrip implements http.RoundTripper.
func (Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		defer req.Body.Close()
	}
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	if req.URL == nil || req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		return nil, fmt.Errorf("gust: unsupported URL %v: only http and https", req.URL)
	}
	var body []byte
	if req.Body != nil {
		var err error
		if body, err = io.ReadAll(io.LimitReader(req.Body, maxRequestBody+1)); err != nil {
			return nil, err
		}
		if len(body) > maxRequestBody {
			return nil, &HostError{Code: "TooLarge", Message: fmt.Sprintf("gust: request body over %d bytes", maxRequestBody)}
		}
	}
	var hdr bytes.Buffer
	h := req.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	if req.Host != "" && req.Host != req.URL.Host {
		h.Set("Host", req.Host)
	}
	if err := h.Write(&hdr); err != nil {
		return nil, err
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	f, err := hostCall("http.do", []byte(method), []byte(req.URL.String()), hdr.Bytes(), body)
	if err == nil {
		err = want("http.do", f, 3)
	}
	if err != nil {
		return nil, err
	}
	status, err := num(f[0])
	if err != nil {
		return nil, err
	}
	rh, err := textproto.NewReader(bufio.NewReader(io.MultiReader(bytes.NewReader(f[1]), strings.NewReader("\r\n")))).ReadMIMEHeader()
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("gust: response headers: %w", err)
	}
	return &http.Response{
		Status:        fmt.Sprintf("%d %s", status, http.StatusText(int(status))),
		StatusCode:    int(status),
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header(rh),
		Body:          io.NopCloser(bytes.NewReader(f[2])),
		ContentLength: int64(len(f[2])),
		Request:       req,
	}, nil
}
