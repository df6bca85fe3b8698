package gateway

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
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

// urlNotFound answers a function URL that does not exist.
func urlNotFound(w http.ResponseWriter, msg string) {
	w.Header().Set(api.HeaderErrorType, api.ErrResourceNotFound)
	writeJSON(w, http.StatusNotFound, map[string]string{"Message": msg})
}

// urlTargetOf resolves the path segment of a function URL, NAME or
// NAME:QUALIFIER (QUALIFIER is $LATEST, a version number or an alias), to
// the version this request runs and the URL configuration that governs
// it: an alias's own if it has one, else the function's. A version number
// uses the function's configuration, so a private function is never
// reachable unsigned through a version URL. ok false means the answer has
// been written.
func (g *Gateway) urlTargetOf(w http.ResponseWriter, segment string) (fn *registry.Function, cfg *registry.URLConfig, ok bool) {
	name, qualifier, qualified := strings.Cut(segment, ":")
	if err := registry.ValidateName(name); err != nil {
		http.Error(w, "Not Found: "+err.Error(), http.StatusNotFound)
		return nil, nil, false
	}
	latest, found := g.cfg.Functions.Get(name)
	if !found {
		urlNotFound(w, "function "+name+" not found")
		return nil, nil, false
	}
	if !qualified {
		return latest, latest.URL, true
	}
	if qualifier == "" || registry.ValidateQualifier(qualifier) != nil {
		urlNotFound(w, fmt.Sprintf("function URL /fn/%s not found: a qualifier is $LATEST, a version number or an alias name", segment))
		return nil, nil, false
	}
	fn, alias, err := g.cfg.Functions.Resolve(name, qualifier, rand.Float64())
	switch {
	case err == nil:
	case errors.Is(err, registry.ErrNotFound) && registry.IsVersionNumber(qualifier):
		urlNotFound(w, fmt.Sprintf("function %s has no version %s", name, qualifier))
		return nil, nil, false
	case errors.Is(err, registry.ErrNotFound):
		var nf *registry.NotFoundError
		if errors.As(err, &nf) && strings.HasPrefix(nf.What, "version ") {
			urlNotFound(w, nf.Error()) // the alias routes to a version being deleted
		} else {
			urlNotFound(w, fmt.Sprintf("function %s has no alias %s", name, qualifier))
		}
		return nil, nil, false
	default:
		e := g.apiError(err, name)
		w.Header().Set(api.HeaderErrorType, e.Code)
		writeJSON(w, e.Status, map[string]string{"Message": e.Message})
		return nil, nil, false
	}
	cfg = latest.URL
	if alias != nil && alias.URL != nil {
		cfg = alias.URL
	}
	return fn, cfg, true
}

// urlAuthorized checks an AWS_IAM function URL request: a valid SigV4
// signature (service lambda, any region) by a key allowed to invoke the
// function. Without an authenticator nothing is allowed. ok false means
// the 403 has been written.
func (g *Gateway) urlAuthorized(w http.ResponseWriter, r *http.Request, body []byte, fn *registry.Function, qualifier string) bool {
	if g.cfg.Auth == nil {
		w.Header().Set(api.HeaderErrorType, api.ErrMissingAuthentication)
		writeJSON(w, http.StatusForbidden, map[string]string{"Message": "Forbidden"})
		return false
	}
	keyID, err := g.cfg.Auth.Verify(r, body, g.cfg.Now())
	if err != nil {
		code := api.ErrInvalidSignature
		if g.cfg.AuthError != nil {
			code, _, _ = g.cfg.AuthError(err)
		}
		w.Header().Set(api.HeaderErrorType, code)
		writeJSON(w, http.StatusForbidden, map[string]string{"Message": "Forbidden"})
		return false
	}
	if g.cfg.Policy != nil && !g.cfg.Policy.Allowed(keyID, ActionInvoke, fn.Name) {
		e := g.accessDenied(keyID, ActionInvoke, g.qualifiedArn(fn.Name, qualifier))
		w.Header().Set(api.HeaderErrorType, e.Code)
		writeJSON(w, e.Status, map[string]string{"Message": e.Message})
		return false
	}
	return true
}

// functionURL serves /fn/{name} and /fn/{name}/{path...}, where {name} may
// be NAME:QUALIFIER. The URL's configuration decides: AuthType NONE (or no
// configuration) needs no credentials, AWS_IAM a SigV4 signature by a key
// allowed to invoke; with CORS settings the gateway answers preflights
// itself (without auth, as Lambda does) and sets the CORS headers of every
// response. Responses carry X-Amz-Executed-Version.
func (g *Gateway) functionURL(w http.ResponseWriter, r *http.Request) {
	segment := r.PathValue("name")
	fn, cfg, ok := g.urlTargetOf(w, segment)
	if !ok {
		return
	}
	name := fn.Name
	_, qualifier, _ := strings.Cut(segment, ":")
	if cfg != nil && cfg.Cors != nil {
		if isPreflight(r) {
			setPreflightHeaders(w.Header(), cfg.Cors, r)
			w.WriteHeader(http.StatusOK)
			return
		}
		w = &corsWriter{ResponseWriter: w, cors: cfg.Cors, origin: r.Header.Get("Origin")}
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
	if cfg != nil && cfg.AuthType == registry.AuthAWSIAM && !g.urlAuthorized(w, r, body, fn, qualifier) {
		return
	}
	rawPath := "/" + r.PathValue("path")
	// Keep the client's escaping of the path, as Lambda does.
	if ep := r.URL.EscapedPath(); strings.HasPrefix(ep, "/fn/") {
		if i := strings.IndexByte(ep[len("/fn/"):], '/'); i >= 0 {
			rawPath = ep[len("/fn/")+i:]
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
	if r.Header.Get(HeaderGustInvocationType) == api.InvocationEvent {
		g.urlEvent(w, r, fn, qualifier, rid, payload)
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
	version := res.Version
	if version == "" {
		version = fn.Qualifier()
	}
	w.Header().Set(api.HeaderExecutedVersion, version)
	if res.Err != nil {
		w.Header().Set(api.HeaderFunctionError, "Unhandled")
		writeJSON(w, http.StatusBadGateway, map[string]string{"Message": "Internal Server Error"})
		return
	}
	if err := WriteURLResponse(w, res.Payload); err != nil {
		g.log.Warn("bad function URL response", "function", name, "version", version, "err", err)
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
