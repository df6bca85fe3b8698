package gateway

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/internal/logs"
	"github.com/gustfaas/gust/internal/registry"
	gust "github.com/gustfaas/gust/sdk/go"
)

// The function URL event and response are the SDK's types: one definition
// of the wire format for the gateway that writes the event and the guests
// that read it.
type (
	URLEvent          = gust.URLRequest
	URLRequestContext = gust.URLRequestContext
	URLResponse       = gust.URLResponse
)

// textual reports whether a body of this content type travels as text.
func textual(contentType string, body []byte) bool {
	if contentType == "" {
		return utf8.Valid(body)
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	switch {
	case strings.HasPrefix(mt, "text/"),
		mt == "application/json", strings.HasSuffix(mt, "+json"),
		mt == "application/xml", strings.HasSuffix(mt, "+xml"),
		mt == "application/javascript", mt == "application/x-www-form-urlencoded",
		mt == "application/graphql", mt == "application/yaml":
		return utf8.Valid(body)
	}
	return false
}

// BuildURLEvent maps an HTTP request for function name to the function URL
// event. rawPath is the part after /fn/{name}, always starting with "/".
func BuildURLEvent(r *http.Request, rawPath, requestID, account string, body []byte, now time.Time) *URLEvent {
	ev := &URLEvent{
		Version:        "2.0",
		RouteKey:       "$default",
		RawPath:        rawPath,
		RawQueryString: r.URL.RawQuery,
		Headers:        map[string]string{},
		RequestContext: URLRequestContext{
			AccountID:    account,
			APIID:        "gust",
			DomainName:   r.Host,
			DomainPrefix: strings.SplitN(r.Host, ".", 2)[0],
			HTTP: gust.URLRequestHTTP{
				Method:    r.Method,
				Path:      rawPath,
				Protocol:  r.Proto,
				SourceIP:  sourceIP(r),
				UserAgent: r.UserAgent(),
			},
			RequestID: requestID,
			RouteKey:  "$default",
			Stage:     "$default",
			Time:      now.UTC().Format("02/Jan/2006:15:04:05 -0700"),
			TimeEpoch: now.UnixMilli(),
		},
	}
	keys := make([]string, 0, len(r.Header))
	for k := range r.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		lk := strings.ToLower(k)
		if lk == "cookie" {
			for _, line := range r.Header[k] {
				for _, c := range strings.Split(line, ";") {
					if c = strings.TrimSpace(c); c != "" {
						ev.Cookies = append(ev.Cookies, c)
					}
				}
			}
			continue
		}
		ev.Headers[lk] = strings.Join(r.Header[k], ",")
	}
	if r.Host != "" {
		ev.Headers["host"] = r.Host
	}
	if q, err := url.ParseQuery(r.URL.RawQuery); err == nil && len(q) > 0 {
		ev.QueryStringParameters = make(map[string]string, len(q))
		for k, vs := range q {
			ev.QueryStringParameters[k] = strings.Join(vs, ",")
		}
	}
	if len(body) > 0 {
		if textual(r.Header.Get("Content-Type"), body) {
			ev.Body = string(body)
		} else {
			ev.Body = base64.StdEncoding.EncodeToString(body)
			ev.IsBase64Encoded = true
		}
	}
	return ev
}

func sourceIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// WriteURLResponse maps a function's result to HTTP as function URLs do: an
// object with statusCode shapes the response; any other JSON value is a 200
// application/json body. It returns an error for a malformed structured
// response (the caller answers 502).
func WriteURLResponse(w http.ResponseWriter, payload []byte) error {
	var probe map[string]json.RawMessage
	// Only an object that mentions statusCode can be a structured
	// response; skip decoding everything else.
	if structured(payload) && json.Unmarshal(payload, &probe) == nil {
		if _, ok := probe["statusCode"]; ok {
			var resp URLResponse
			if err := json.Unmarshal(payload, &resp); err != nil {
				return fmt.Errorf("function returned a malformed response: %w", err)
			}
			if resp.StatusCode < 100 || resp.StatusCode > 599 {
				return fmt.Errorf("function returned an invalid statusCode %d", resp.StatusCode)
			}
			body := []byte(resp.Body)
			if resp.IsBase64Encoded {
				b, err := base64.StdEncoding.DecodeString(resp.Body)
				if err != nil {
					return fmt.Errorf("function returned isBase64Encoded with a body that is not base64: %w", err)
				}
				body = b
			}
			h := w.Header()
			for k, v := range resp.Headers {
				h.Set(k, v)
			}
			if h.Get("Content-Type") == "" {
				h.Set("Content-Type", "application/json")
			}
			for _, c := range resp.Cookies {
				h.Add("Set-Cookie", c)
			}
			w.WriteHeader(resp.StatusCode)
			w.Write(body)
			return nil
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(payload)
	return nil
}

// structured reports whether payload may be a structured response: a JSON
// object containing the key "statusCode".
func structured(payload []byte) bool {
	p := bytes.TrimLeft(payload, " \t\r\n")
	return len(p) > 0 && p[0] == '{' && bytes.Contains(p, []byte(`"statusCode"`))
}

// functionURL serves /fn/{name} and /fn/{name}/{path...}. It needs no
// credentials.
func (g *Gateway) functionURL(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := registry.ValidateName(name); err != nil {
		http.Error(w, "Not Found: "+err.Error(), http.StatusNotFound)
		return
	}
	fn, ok := g.cfg.Functions.Get(name)
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"Message": "function " + name + " not found"})
		return
	}
	body, err := readBody(r, api.MaxPayload)
	if err != nil {
		if errors.Is(err, errTooLarge) {
			writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"Message": fmt.Sprintf("Request must be smaller than %d bytes", api.MaxPayload)})
			return
		}
		writeJSON(w, http.StatusBadRequest, map[string]string{"Message": err.Error()})
		return
	}
	rawPath := "/" + r.PathValue("path")
	// Keep the client's escaping of the path, as Lambda does.
	prefix := "/fn/" + name
	if ep := r.URL.EscapedPath(); strings.HasPrefix(ep, prefix) {
		if rest := ep[len(prefix):]; rest != "" {
			rawPath = rest
		}
	}
	rid := requestID(r.Context())
	ev := BuildURLEvent(r, rawPath, rid, g.cfg.Account, body, g.cfg.Now())
	payload, err := json.Marshal(ev)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"Message": err.Error()})
		return
	}
	if len(payload) > api.MaxPayload {
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"Message": fmt.Sprintf("Request must be smaller than %d bytes once encoded as an event", api.MaxPayload)})
		return
	}
	res, err := g.cfg.Invoker.Invoke(r.Context(), fn, rid, payload)
	if err != nil {
		e := g.apiError(err, name)
		w.Header().Set(api.HeaderErrorType, e.Code)
		if e.Code == api.ErrTooManyRequests {
			w.Header().Set("Retry-After", retryAfter(e.RetryAfter))
		}
		writeJSON(w, e.Status, map[string]string{"Message": e.Message})
		return
	}
	if res.Err != nil {
		w.Header().Set(api.HeaderFunctionError, "Unhandled")
		writeJSON(w, http.StatusBadGateway, map[string]string{"Message": "Internal Server Error"})
		return
	}
	if err := WriteURLResponse(w, res.Payload); err != nil {
		g.log.Warn("bad function URL response", "function", name, "err", err)
		writeJSON(w, http.StatusBadGateway, map[string]string{"Message": "Internal Server Error"})
	}
}

// readLogs streams a function's logs as newline-delimited JSON.
func (g *Gateway) readLogs(w http.ResponseWriter, r *http.Request, _ []byte) {
	name := r.PathValue("name")
	if err := registry.ValidateName(name); err != nil {
		g.writeError(w, r, g.apiError(err, name))
		return
	}
	q := r.URL.Query()
	var o logs.ReadOptions
	if s := q.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			g.writeError(w, r, &api.Error{Code: api.ErrInvalidParameterValue, Status: http.StatusBadRequest,
				Message: fmt.Sprintf("since %q is not an RFC 3339 time", s)})
			return
		}
		o.Since = t
	}
	o.Follow = q.Get("follow") == "1" || q.Get("follow") == "true"
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	if fl != nil {
		fl.Flush()
	}
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	err := g.cfg.Logs.Read(r.Context(), name, o, func(ev api.LogEvent) error {
		if err := enc.Encode(ev); err != nil {
			return err
		}
		if o.Follow {
			if err := bw.Flush(); err != nil {
				return err
			}
			if fl != nil {
				fl.Flush()
			}
		}
		return nil
	})
	bw.Flush()
	if err != nil {
		g.log.Warn("read logs", "function", name, "err", err)
	}
}
