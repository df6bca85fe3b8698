package cli

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/internal/creds"
	"github.com/gustfaas/gust/internal/sigv4"
)

var testKey = creds.Key{AccessKeyID: "GKCLITESTCLITEST0001", SecretAccessKey: "Y2xpdGVzdGNsaXRlc3RjbGl0ZXN0Y2xpdGVzdA=="}

// fakeNode is a canned, in-memory Lambda API behind the real SigV4
// verifier: enough of a node for the CLI's unit tests.
type fakeNode struct {
	t   *testing.T
	srv *httptest.Server

	mu    sync.Mutex
	fns   map[string]*fakeFunction
	calls []string // "METHOD /path" of every verified request
	// usageQuery is the query of the last usage request.
	usageQuery url.Values
}

type fakeFunction struct {
	cfg         api.FunctionConfiguration
	code        []byte
	reserved    *int32
	provisioned int32
}

func newFakeNode(t *testing.T) *fakeNode {
	t.Helper()
	n := &fakeNode{t: t, fns: map[string]*fakeFunction{}}
	v := sigv4.NewVerifier("lambda", func(id string) (string, bool) {
		if id == testKey.AccessKeyID {
			return testKey.SecretAccessKey, true
		}
		return "", false
	})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /2015-03-31/functions", n.create)
	mux.HandleFunc("GET /2015-03-31/functions/{$}", n.list)
	mux.HandleFunc("GET /2015-03-31/functions/{name}", n.get)
	mux.HandleFunc("GET /2015-03-31/functions/{name}/configuration", n.getConfig)
	mux.HandleFunc("PUT /2015-03-31/functions/{name}/code", n.updateCode)
	mux.HandleFunc("PUT /2015-03-31/functions/{name}/configuration", n.updateConfig)
	mux.HandleFunc("DELETE /2015-03-31/functions/{name}", n.delete)
	mux.HandleFunc("POST /2015-03-31/functions/{name}/invocations", n.invoke)
	mux.HandleFunc("GET "+api.LogsPath+"/{name}", n.logs)
	mux.HandleFunc("PUT /2017-10-31/functions/{name}/concurrency", n.putConcurrency)
	mux.HandleFunc("DELETE /2017-10-31/functions/{name}/concurrency", n.deleteConcurrency)
	mux.HandleFunc("PUT /2019-09-30/functions/{name}/provisioned-concurrency", n.putProvisioned)
	mux.HandleFunc("DELETE /2019-09-30/functions/{name}/provisioned-concurrency", n.deleteProvisioned)
	mux.HandleFunc("GET "+api.UsagePath, n.usage)
	n.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		if _, err := v.Verify(r, body, time.Now()); err != nil {
			code, status, msg := sigv4.Describe(err)
			writeAPIError(w, status, code, msg)
			return
		}
		n.mu.Lock()
		n.calls = append(n.calls, r.Method+" "+r.URL.Path)
		n.mu.Unlock()
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(n.srv.Close)
	return n
}

func (n *fakeNode) add(name string, code []byte) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.fns[name] = &fakeFunction{cfg: n.config(name, code, 128, 3), code: code}
}

func (n *fakeNode) config(name string, code []byte, mem, timeout int32) api.FunctionConfiguration {
	sum := sha256.Sum256(code)
	return api.FunctionConfiguration{
		FunctionName: name, FunctionArn: "arn:aws:lambda:us-east-1:000000000000:function:" + name,
		Runtime: "wasm", CodeSize: int64(len(code)), CodeSha256: base64.StdEncoding.EncodeToString(sum[:]),
		MemorySize: mem, Timeout: timeout, Version: "$LATEST", State: "Active", LastUpdateStatus: "Successful",
		LastModified: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC).Format(api.TimeLayout),
		PackageType:  "Zip", Architectures: []string{"x86_64"}, GustKind: "wasi-command",
	}
}

// fakeIsolation is what the fake node reports of the sandbox of a
// function of runtime rt: nothing for wasm, as the node does, and a
// process runtime's measures otherwise.
func fakeIsolation(rt string) []string {
	if rt == "wasm" {
		return nil
	}
	return []string{"on: pid namespace", "off: network namespace: shared with the host"}
}

func writeAPIError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set(api.HeaderErrorType, code)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(api.Error{Type: "User", Message: msg})
}

func writeJSONResponse(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (n *fakeNode) lookup(w http.ResponseWriter, r *http.Request) *fakeFunction {
	name := r.PathValue("name")
	f := n.fns[name]
	if f == nil {
		writeAPIError(w, 404, api.ErrResourceNotFound, "Function not found: arn:aws:lambda:us-east-1:000000000000:function:"+name)
	}
	return f
}

func (n *fakeNode) create(w http.ResponseWriter, r *http.Request) {
	var in api.CreateFunctionRequest
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Code == nil {
		writeAPIError(w, 400, api.ErrInvalidRequestContent, "bad body")
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.fns[in.FunctionName] != nil {
		writeAPIError(w, 409, api.ErrResourceConflict, "Function already exist: "+in.FunctionName)
		return
	}
	mem, timeout := int32(128), int32(3)
	if in.MemorySize != nil {
		mem = *in.MemorySize
	}
	if in.Timeout != nil {
		timeout = *in.Timeout
	}
	f := &fakeFunction{cfg: n.config(in.FunctionName, in.Code.ZipFile, mem, timeout), code: in.Code.ZipFile}
	f.cfg.Description = in.Description
	if in.Runtime != "" {
		f.cfg.Runtime = in.Runtime
	}
	f.cfg.Handler = in.Handler
	f.cfg.GustIsolation = fakeIsolation(f.cfg.Runtime)
	if in.GustIdleTimeout != nil {
		f.cfg.GustIdleTimeout = *in.GustIdleTimeout
	}
	if in.Environment != nil {
		f.cfg.Environment = &api.EnvironmentResponse{Variables: in.Environment.Variables}
	}
	n.fns[in.FunctionName] = f
	writeJSONResponse(w, 201, f.cfg)
}

func (n *fakeNode) list(w http.ResponseWriter, r *http.Request) {
	n.mu.Lock()
	defer n.mu.Unlock()
	names := make([]string, 0, len(n.fns))
	for name := range n.fns {
		names = append(names, name)
	}
	slices.Sort(names)
	// Pages of two, to exercise the client's paging.
	start := 0
	if m := r.URL.Query().Get("Marker"); m != "" {
		start, _ = strconv.Atoi(m)
	}
	end := min(start+2, len(names))
	out := api.ListFunctionsResponse{Functions: []api.FunctionConfiguration{}}
	for _, name := range names[start:end] {
		out.Functions = append(out.Functions, n.fns[name].cfg)
	}
	if end < len(names) {
		next := strconv.Itoa(end)
		out.NextMarker = &next
	}
	writeJSONResponse(w, 200, out)
}

func (n *fakeNode) get(w http.ResponseWriter, r *http.Request) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if f := n.lookup(w, r); f != nil {
		res := api.GetFunctionResponse{Configuration: f.cfg, Code: api.FunctionCodeLocation{RepositoryType: "S3"}}
		if f.reserved != nil {
			res.Concurrency = &api.Concurrency{ReservedConcurrentExecutions: f.reserved}
		}
		writeJSONResponse(w, 200, res)
	}
}

func (n *fakeNode) getConfig(w http.ResponseWriter, r *http.Request) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if f := n.lookup(w, r); f != nil {
		writeJSONResponse(w, 200, f.cfg)
	}
}

func (n *fakeNode) updateCode(w http.ResponseWriter, r *http.Request) {
	var in api.UpdateFunctionCodeRequest
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		writeAPIError(w, 400, api.ErrInvalidRequestContent, "bad body")
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if f := n.lookup(w, r); f != nil {
		next := n.config(f.cfg.FunctionName, in.ZipFile, f.cfg.MemorySize, f.cfg.Timeout)
		next.Description, next.Environment, next.GustIdleTimeout = f.cfg.Description, f.cfg.Environment, f.cfg.GustIdleTimeout
		next.Runtime, next.Handler, next.GustIsolation = f.cfg.Runtime, f.cfg.Handler, f.cfg.GustIsolation
		f.cfg, f.code = next, in.ZipFile
		writeJSONResponse(w, 200, f.cfg)
	}
}

func (n *fakeNode) updateConfig(w http.ResponseWriter, r *http.Request) {
	var in api.UpdateFunctionConfigurationRequest
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		writeAPIError(w, 400, api.ErrInvalidRequestContent, "bad body")
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if f := n.lookup(w, r); f != nil {
		if in.Runtime != nil {
			f.cfg.Runtime = *in.Runtime
			f.cfg.GustIsolation = fakeIsolation(f.cfg.Runtime)
		}
		if in.Handler != nil {
			f.cfg.Handler = *in.Handler
		}
		if in.MemorySize != nil {
			f.cfg.MemorySize = *in.MemorySize
		}
		if in.Timeout != nil {
			f.cfg.Timeout = *in.Timeout
		}
		if in.Description != nil {
			f.cfg.Description = *in.Description
		}
		if in.GustIdleTimeout != nil {
			f.cfg.GustIdleTimeout = *in.GustIdleTimeout
		}
		if in.Environment != nil {
			f.cfg.Environment = &api.EnvironmentResponse{Variables: in.Environment.Variables}
		}
		writeJSONResponse(w, 200, f.cfg)
	}
}

func (n *fakeNode) delete(w http.ResponseWriter, r *http.Request) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if f := n.lookup(w, r); f != nil {
		delete(n.fns, f.cfg.FunctionName)
		w.WriteHeader(204)
	}
}

// invoke echoes the payload; a payload with "fail" makes a function error.
func (n *fakeNode) invoke(w http.ResponseWriter, r *http.Request) {
	n.mu.Lock()
	f := n.lookup(w, r)
	n.mu.Unlock()
	if f == nil {
		return
	}
	payload, _ := io.ReadAll(r.Body)
	if r.Header.Get(api.HeaderInvocationType) == api.InvocationEvent {
		w.Header().Set(api.HeaderRequestID, "r1")
		w.WriteHeader(202)
		return
	}
	if r.Header.Get(api.HeaderLogType) == "Tail" {
		w.Header().Set(api.HeaderLogResult, base64.StdEncoding.EncodeToString([]byte("START RequestId: r1\nlog line\nEND RequestId: r1\n")))
	}
	w.Header().Set(api.HeaderExecutedVersion, "$LATEST")
	w.Header().Set(api.HeaderRequestID, "r1")
	if strings.Contains(string(payload), "fail") {
		w.Header().Set(api.HeaderFunctionError, "Unhandled")
		w.WriteHeader(200)
		io.WriteString(w, `{"errorMessage":"it failed","errorType":"Error"}`)
		return
	}
	w.WriteHeader(200)
	fmt.Fprintf(w, `{"echo":%s}`, payload)
}

func (n *fakeNode) logs(w http.ResponseWriter, r *http.Request) {
	n.mu.Lock()
	f := n.lookup(w, r)
	n.mu.Unlock()
	if f == nil {
		return
	}
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	if s := r.URL.Query().Get("since"); s != "" {
		if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
			writeAPIError(w, 400, api.ErrInvalidParameterValue, "bad since")
			return
		}
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	enc.Encode(api.LogEvent{Time: t0, Function: f.cfg.FunctionName, RequestID: "r1", Text: "START RequestId: r1\nhello\nEND RequestId: r1"})
	enc.Encode(api.LogEvent{Time: t0.Add(time.Second), Function: f.cfg.FunctionName, RequestID: "r2", Text: "START RequestId: r2\n"})
	if r.URL.Query().Get("follow") == "1" {
		w.(http.Flusher).Flush()
		<-r.Context().Done() // until the client goes away
	}
}

func (n *fakeNode) putConcurrency(w http.ResponseWriter, r *http.Request) {
	var in api.Concurrency
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.ReservedConcurrentExecutions == nil {
		writeAPIError(w, 400, api.ErrInvalidParameterValue, "ReservedConcurrentExecutions is required")
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if f := n.lookup(w, r); f != nil {
		f.reserved = in.ReservedConcurrentExecutions
		writeJSONResponse(w, 200, in)
	}
}

func (n *fakeNode) deleteConcurrency(w http.ResponseWriter, r *http.Request) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if f := n.lookup(w, r); f != nil {
		f.reserved = nil
		w.WriteHeader(204)
	}
}

// provisionedQualifier answers a 400 unless the request is for $LATEST.
func provisionedQualifier(w http.ResponseWriter, r *http.Request) bool {
	if q := r.URL.Query().Get("Qualifier"); q != "$LATEST" {
		writeAPIError(w, 400, api.ErrInvalidParameterValue, "unsupported qualifier "+q)
		return false
	}
	return true
}

func (n *fakeNode) putProvisioned(w http.ResponseWriter, r *http.Request) {
	if !provisionedQualifier(w, r) {
		return
	}
	var in api.PutProvisionedConcurrencyConfigRequest
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.ProvisionedConcurrentExecutions == nil || *in.ProvisionedConcurrentExecutions < 1 {
		writeAPIError(w, 400, api.ErrInvalidParameterValue, "ProvisionedConcurrentExecutions must be at least 1")
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if f := n.lookup(w, r); f != nil {
		f.provisioned = *in.ProvisionedConcurrentExecutions
		writeJSONResponse(w, 202, api.ProvisionedConcurrencyConfig{
			RequestedProvisionedConcurrentExecutions: f.provisioned,
			Status:                                   "IN_PROGRESS",
			LastModified:                             f.cfg.LastModified,
		})
	}
}

func (n *fakeNode) deleteProvisioned(w http.ResponseWriter, r *http.Request) {
	if !provisionedQualifier(w, r) {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if f := n.lookup(w, r); f != nil {
		f.provisioned = 0
		w.WriteHeader(204)
	}
}

// fakePrices is the fake node's price table.
var fakePrices = api.Prices{PerRequest: 0.0000002, PerGBSecond: 0.0000166667}

// usage reports canned usage for every function (or the one asked for):
// ten requests of 100 ms at the function's memory, one error, two cold
// starts.
func (n *fakeNode) usage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	since, err := time.Parse(time.RFC3339Nano, q.Get("since"))
	if err != nil {
		writeAPIError(w, 400, api.ErrInvalidParameterValue, "bad since")
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.usageQuery = q
	names := make([]string, 0, len(n.fns))
	for name := range n.fns {
		if fn := q.Get("function"); fn == "" || fn == name {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	rep := api.UsageReport{Since: since, Until: since.Add(time.Hour), Prices: fakePrices, Functions: []api.UsageLine{}}
	for _, name := range names {
		l := api.UsageLine{Function: name, Version: "$LATEST", Requests: 10, Errors: 1, ColdStarts: 2, BilledMs: 1000,
			MBMs: 1000 * int64(n.fns[name].cfg.MemorySize)}
		l.GBSeconds = float64(l.MBMs) / 1024 / 1000
		l.Cost.Requests = float64(l.Requests) * fakePrices.PerRequest
		l.Cost.Compute = l.GBSeconds * fakePrices.PerGBSecond
		l.Cost.Total = l.Cost.Requests + l.Cost.Compute
		rep.Functions = append(rep.Functions, l)
		t := &rep.Total
		t.Requests += l.Requests
		t.Errors += l.Errors
		t.ColdStarts += l.ColdStarts
		t.BilledMs += l.BilledMs
		t.MBMs += l.MBMs
		t.GBSeconds += l.GBSeconds
		t.Cost.Requests += l.Cost.Requests
		t.Cost.Compute += l.Cost.Compute
		t.Cost.Total += l.Cost.Total
	}
	writeJSONResponse(w, 200, rep)
}
