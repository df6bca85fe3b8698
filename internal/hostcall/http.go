package hostcall

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"

	"github.com/gustfaas/gust/internal/sandbox"
)

// MaxRequestBytes caps an outbound request's body: 6 MB, as responses.
const MaxRequestBytes = 6 << 20

// maxRedirects bounds the redirects an outbound request follows, each
// checked against the allow-list.
const maxRedirects = 10

// hostsKey carries a request's allow-list to checkRedirect.
type hostsKey struct{}

// Allowed reports whether u's host is in hosts, the canonical patterns of
// registry.Grants.Hosts: "example.com" (any port), "example.com:8443"
// (that port), "*.example.com" (any subdomain, any port; with a port,
// that port) or an IP address.
func Allowed(hosts []string, u *url.URL) bool {
	name := strings.ToLower(u.Hostname())
	port := u.Port()
	if port == "" {
		switch u.Scheme {
		case "http":
			port = "80"
		case "https":
			port = "443"
		}
	}
	for _, p := range hosts {
		pname, pport := p, ""
		if h, pt, err := net.SplitHostPort(p); err == nil {
			pname, pport = h, pt
		}
		pname = strings.TrimSuffix(strings.TrimPrefix(pname, "["), "]")
		if pport != "" && pport != port {
			continue
		}
		if sub, ok := strings.CutPrefix(pname, "*."); ok {
			if strings.HasSuffix(name, "."+sub) {
				return true
			}
			continue
		}
		if name == pname {
			return true
		}
	}
	return false
}

// checkRedirect follows a redirect only to an allowed host.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return fmt.Errorf("stopped after %d redirects", maxRedirects)
	}
	hosts, _ := req.Context().Value(hostsKey{}).([]string)
	if !Allowed(hosts, req.URL) {
		return &sandbox.HostError{Code: CodeAccessDenied, Message: fmt.Sprintf(
			"a redirect leads to %s, which is not in the function's allow-list (grants.hosts)", req.URL.Host)}
	}
	return nil
}

func (h *host) httpDo(ctx context.Context, a [][]byte) ([][]byte, error) {
	method, raw := string(a[0]), string(a[1])
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, &sandbox.HostError{Code: CodeInvalid, Message: fmt.Sprintf("outbound URL %q: want an absolute http or https URL", raw)}
	}
	f, err := h.fn()
	if err != nil {
		return nil, err
	}
	var hosts []string
	if f.Grants != nil {
		hosts = f.Grants.Hosts
	}
	if !Allowed(hosts, u) {
		return nil, h.denied("outbound host", u.Host, "grants.hosts")
	}
	if len(a[3]) > MaxRequestBytes {
		return nil, &sandbox.HostError{Code: CodeTooLarge, Message: fmt.Sprintf(
			"the body of %s %s is %d bytes, over the limit of %d", method, u.Redacted(), len(a[3]), MaxRequestBytes)}
	}
	hdr, err := textproto.NewReader(bufio.NewReader(io.MultiReader(bytes.NewReader(a[2]), strings.NewReader("\r\n")))).ReadMIMEHeader()
	if err != nil {
		return nil, &sandbox.HostError{Code: CodeInvalid, Message: "outbound request headers: " + err.Error()}
	}
	// ctx carries the invocation's deadline: the request cannot outlive
	// the invocation that made it.
	req, err := http.NewRequestWithContext(context.WithValue(ctx, hostsKey{}, hosts), method, u.String(), bytes.NewReader(a[3]))
	if err != nil {
		return nil, &sandbox.HostError{Code: CodeInvalid, Message: "outbound request: " + err.Error()}
	}
	req.Header = http.Header(hdr)
	if host := req.Header.Get("Host"); host != "" {
		req.Host = host
		req.Header.Del("Host")
	}
	resp, err := h.s.client.Do(req)
	if err != nil {
		var he *sandbox.HostError
		if errors.As(err, &he) {
			return nil, he
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s %s: %w", method, u.Redacted(), ctx.Err())
		}
		return nil, &sandbox.HostError{Code: CodeHTTP, Message: fmt.Sprintf("%s %s: %v", method, u.Redacted(), err)}
	}
	defer resp.Body.Close()
	limit := h.s.cfg.MaxResponseBytes
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("reading the response of %s %s: %w", method, u.Redacted(), ctx.Err())
		}
		return nil, &sandbox.HostError{Code: CodeHTTP, Message: fmt.Sprintf("reading the response of %s %s: %v", method, u.Redacted(), err)}
	}
	if int64(len(body)) > limit {
		return nil, &sandbox.HostError{Code: CodeTooLarge, Message: fmt.Sprintf(
			"the response of %s %s is over the limit of %d bytes", method, u.Redacted(), limit)}
	}
	var rh bytes.Buffer
	resp.Header.Del("Content-Length") // the body is handed over whole
	if err := resp.Header.Write(&rh); err != nil {
		return nil, err
	}
	return [][]byte{u64(uint64(resp.StatusCode)), rh.Bytes(), body}, nil
}
