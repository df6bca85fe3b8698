package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/internal/sigv4"
)

var testCreds = Credentials{AccessKeyID: "GKTESTTESTTESTTEST00", SecretAccessKey: "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}

// request is what the test server saw of one verified request.
type request struct {
	Method     string
	Path       string // decoded
	RequestURI string
	Header     http.Header
	Body       []byte
}

// newServer starts a server that verifies each request's signature (with
// the real clock) and then hands it to handle. Unsigned or badly signed
// requests get the verifier's error, as a gateway would answer.
func newServer(t *testing.T, handle func(w http.ResponseWriter, r request)) *Client {
	t.Helper()
	v := sigv4.NewVerifier("lambda", func(id string) (string, bool) {
		if id == testCreds.AccessKeyID {
			return testCreds.SecretAccessKey, true
		}
		return "", false
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("read body: %v", err)
			return
		}
		if _, err := v.Verify(r, body, time.Now()); err != nil {
			code, status, msg := sigv4.Describe(err)
			writeError(w, status, code, msg)
			return
		}
		handle(w, request{Method: r.Method, Path: r.URL.Path, RequestURI: r.RequestURI, Header: r.Header, Body: body})
	}))
	t.Cleanup(srv.Close)
	return New(srv.URL, testCreds, WithHTTPClient(srv.Client()), WithRegion("eu-west-1"))
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set(api.HeaderErrorType, code)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(api.Error{Type: "User", Message: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func i32(v int32) *int32 { return &v }

var helloConfig = api.FunctionConfiguration{
	FunctionName: "hello", FunctionArn: "arn:aws:lambda:us-east-1:000000000000:function:hello",
	Runtime: "wasm", CodeSize: 3, MemorySize: 128, Timeout: 3, CodeSha256: "abc", Version: "$LATEST",
	State: "Active", LastUpdateStatus: "Successful", PackageType: "Zip", Architectures: []string{"wasm32"},
}

func TestCalls(t *testing.T) {
	ctx := context.Background()
	provisioned := api.ProvisionedConcurrencyConfig{RequestedProvisionedConcurrentExecutions: 2,
		AllocatedProvisionedConcurrentExecutions: 1, AvailableProvisionedConcurrentExecutions: 1,
		Status: "IN_PROGRESS", LastModified: "2026-11-27T12:00:00.000+0000"}
	line := api.UsageLine{Function: "hello", Version: "$LATEST", Requests: 10, Errors: 1, ColdStarts: 2,
		BilledMs: 100, MBMs: 12800, GBSeconds: 0.0125, Cost: api.Cost{Requests: 0.000002, Compute: 0.000208, Total: 0.00021}}
	total := line
	total.Function, total.Version = "", ""
	usage := api.UsageReport{
		Since:     time.Date(2026, 11, 27, 11, 0, 0, 0, time.UTC),
		Until:     time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC),
		Prices:    api.Prices{PerRequest: 0.0000002, PerGBSecond: 0.0000166667},
		Functions: []api.UsageLine{line},
		Total:     total,
	}
	tests := []struct {
		name string
		// call runs the method and returns its result for comparison.
		call       func(c *Client) (any, error)
		wantMethod string
		wantURI    string
		wantBody   string // JSON, compared semantically when not empty
		status     int
		respond    any
		want       any
	}{
		{name: "CreateFunction",
			call: func(c *Client) (any, error) {
				return c.CreateFunction(ctx, api.CreateFunctionRequest{FunctionName: "hello", Runtime: "wasm",
					Code: &api.FunctionCode{ZipFile: []byte("abc")}, MemorySize: i32(256)})
			},
			wantMethod: "POST", wantURI: "/2015-03-31/functions",
			wantBody: `{"FunctionName":"hello","Runtime":"wasm","Code":{"ZipFile":"YWJj"},"MemorySize":256}`,
			status:   201, respond: helloConfig, want: helloConfig},
		{name: "GetFunction",
			call:       func(c *Client) (any, error) { return c.GetFunction(ctx, "hello") },
			wantMethod: "GET", wantURI: "/2015-03-31/functions/hello",
			status: 200, respond: api.GetFunctionResponse{Configuration: helloConfig, Code: api.FunctionCodeLocation{RepositoryType: "S3"}},
			want: api.GetFunctionResponse{Configuration: helloConfig, Code: api.FunctionCodeLocation{RepositoryType: "S3"}}},
		{name: "GetFunction arn",
			call: func(c *Client) (any, error) {
				return c.GetFunction(ctx, "arn:aws:lambda:us-east-1:000000000000:function:hello")
			},
			wantMethod: "GET", wantURI: "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Ahello",
			status: 200, respond: api.GetFunctionResponse{Configuration: helloConfig},
			want: api.GetFunctionResponse{Configuration: helloConfig}},
		{name: "GetFunctionConfiguration odd name",
			call:       func(c *Client) (any, error) { return c.GetFunctionConfiguration(ctx, "a b/c%") },
			wantMethod: "GET", wantURI: "/2015-03-31/functions/a%20b%2Fc%25/configuration",
			status: 200, respond: helloConfig, want: helloConfig},
		{name: "UpdateFunctionCode",
			call: func(c *Client) (any, error) {
				return c.UpdateFunctionCode(ctx, "hello", api.UpdateFunctionCodeRequest{ZipFile: []byte("xyz")})
			},
			wantMethod: "PUT", wantURI: "/2015-03-31/functions/hello/code", wantBody: `{"ZipFile":"eHl6"}`,
			status: 200, respond: helloConfig, want: helloConfig},
		{name: "UpdateFunctionConfiguration",
			call: func(c *Client) (any, error) {
				return c.UpdateFunctionConfiguration(ctx, "hello", api.UpdateFunctionConfigurationRequest{Timeout: i32(10),
					Environment: &api.Environment{Variables: map[string]string{"A": "1"}}})
			},
			wantMethod: "PUT", wantURI: "/2015-03-31/functions/hello/configuration",
			wantBody: `{"Timeout":10,"Environment":{"Variables":{"A":"1"}}}`,
			status:   200, respond: helloConfig, want: helloConfig},
		{name: "DeleteFunction",
			call:       func(c *Client) (any, error) { return nil, c.DeleteFunction(ctx, "hello") },
			wantMethod: "DELETE", wantURI: "/2015-03-31/functions/hello", status: 204},
		{name: "PutFunctionConcurrency",
			call:       func(c *Client) (any, error) { return nil, c.PutFunctionConcurrency(ctx, "hello", 5) },
			wantMethod: "PUT", wantURI: "/2017-10-31/functions/hello/concurrency",
			wantBody: `{"ReservedConcurrentExecutions":5}`,
			status:   200, respond: api.Concurrency{ReservedConcurrentExecutions: i32(5)}},
		{name: "PutFunctionConcurrency zero",
			call:       func(c *Client) (any, error) { return nil, c.PutFunctionConcurrency(ctx, "hello", 0) },
			wantMethod: "PUT", wantURI: "/2017-10-31/functions/hello/concurrency",
			wantBody: `{"ReservedConcurrentExecutions":0}`,
			status:   200, respond: api.Concurrency{ReservedConcurrentExecutions: i32(0)}},
		{name: "DeleteFunctionConcurrency",
			call:       func(c *Client) (any, error) { return nil, c.DeleteFunctionConcurrency(ctx, "hello") },
			wantMethod: "DELETE", wantURI: "/2017-10-31/functions/hello/concurrency", status: 204},
		{name: "PutProvisionedConcurrency",
			call:       func(c *Client) (any, error) { return c.PutProvisionedConcurrency(ctx, "hello", 2) },
			wantMethod: "PUT", wantURI: "/2019-09-30/functions/hello/provisioned-concurrency?Qualifier=%24LATEST",
			wantBody: `{"ProvisionedConcurrentExecutions":2}`,
			status:   202, respond: provisioned, want: provisioned},
		{name: "DeleteProvisionedConcurrency",
			call:       func(c *Client) (any, error) { return nil, c.DeleteProvisionedConcurrency(ctx, "hello") },
			wantMethod: "DELETE", wantURI: "/2019-09-30/functions/hello/provisioned-concurrency?Qualifier=%24LATEST", status: 204},
		{name: "Usage",
			call: func(c *Client) (any, error) {
				return c.Usage(ctx, time.Date(2026, 11, 27, 11, 0, 0, 5, time.FixedZone("x", 3600)), "hello")
			},
			wantMethod: "GET", wantURI: api.UsagePath + "?function=hello&since=2026-11-27T10%3A00%3A00.000000005Z",
			status: 200, respond: usage, want: usage},
		{name: "Usage all functions",
			call: func(c *Client) (any, error) {
				return c.Usage(ctx, time.Date(2026, 11, 27, 11, 0, 0, 0, time.UTC), "")
			},
			wantMethod: "GET", wantURI: api.UsagePath + "?since=2026-11-27T11%3A00%3A00Z",
			status: 200, respond: usage, want: usage},
		{name: "Usage default since",
			call:       func(c *Client) (any, error) { return c.Usage(ctx, time.Time{}, "") },
			wantMethod: "GET", wantURI: api.UsagePath,
			status: 200, respond: usage, want: usage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var seen request
			c := newServer(t, func(w http.ResponseWriter, r request) {
				seen = r
				if tt.respond == nil {
					w.WriteHeader(tt.status)
					return
				}
				writeJSON(w, tt.status, tt.respond)
			})
			got, err := tt.call(c)
			if err != nil {
				t.Fatalf("%s() = %v", tt.name, err)
			}
			if seen.Method != tt.wantMethod || seen.RequestURI != tt.wantURI {
				t.Errorf("request = %s %s, want %s %s", seen.Method, seen.RequestURI, tt.wantMethod, tt.wantURI)
			}
			if tt.wantBody != "" {
				var gotBody, wantBody any
				if err := json.Unmarshal(seen.Body, &gotBody); err != nil {
					t.Fatalf("request body %q: %v", seen.Body, err)
				}
				if err := json.Unmarshal([]byte(tt.wantBody), &wantBody); err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(wantBody, gotBody); diff != "" {
					t.Errorf("request body (-want +got):\n%s", diff)
				}
				if ct := seen.Header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type = %q, want application/json", ct)
				}
			}
			if tt.want != nil {
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("%s() (-want +got):\n%s", tt.name, diff)
				}
			}
		})
	}
}

func TestListFunctionsPages(t *testing.T) {
	var uris []string
	c := newServer(t, func(w http.ResponseWriter, r request) {
		uris = append(uris, r.RequestURI)
		page := api.ListFunctionsResponse{Functions: []api.FunctionConfiguration{}}
		switch {
		case r.RequestURI == "/2015-03-31/functions/?MaxItems=50":
			next := "m 1"
			page.Functions = append(page.Functions, api.FunctionConfiguration{FunctionName: "a"}, api.FunctionConfiguration{FunctionName: "b"})
			page.NextMarker = &next
		case strings.Contains(r.RequestURI, "Marker=m%201"):
			next := "m2"
			page.Functions = append(page.Functions, api.FunctionConfiguration{FunctionName: "c"})
			page.NextMarker = &next
		case strings.Contains(r.RequestURI, "Marker=m2"):
			// last page: no marker
		default:
			writeError(w, 400, api.ErrInvalidParameterValue, "unexpected "+r.RequestURI)
			return
		}
		writeJSON(w, 200, page)
	})
	got, err := c.ListFunctions(context.Background())
	if err != nil {
		t.Fatalf("ListFunctions() = %v", err)
	}
	var names []string
	for _, f := range got {
		names = append(names, f.FunctionName)
	}
	if diff := cmp.Diff([]string{"a", "b", "c"}, names); diff != "" {
		t.Errorf("ListFunctions() names (-want +got):\n%s", diff)
	}
	if len(uris) != 3 {
		t.Errorf("ListFunctions() made %d requests (%q), want 3", len(uris), uris)
	}
}

func TestListFunctionsRepeatedMarker(t *testing.T) {
	c := newServer(t, func(w http.ResponseWriter, r request) {
		next := "same"
		writeJSON(w, 200, api.ListFunctionsResponse{NextMarker: &next})
	})
	if _, err := c.ListFunctions(context.Background()); err == nil {
		t.Fatal("ListFunctions() with a looping server = nil error, want one")
	}
}

func TestInvoke(t *testing.T) {
	tests := []struct {
		name       string
		opts       InvokeOptions
		wantURI    string
		wantHeader map[string]string
		respond    func(w http.ResponseWriter)
		want       InvokeResult
	}{
		{name: "sync", wantURI: "/2015-03-31/functions/hello/invocations",
			respond: func(w http.ResponseWriter) {
				w.Header().Set(api.HeaderExecutedVersion, "$LATEST")
				w.Header().Set(api.HeaderRequestID, "req-1")
				w.WriteHeader(200)
				io.WriteString(w, `{"ok":true}`)
			},
			want: InvokeResult{StatusCode: 200, Payload: []byte(`{"ok":true}`), ExecutedVersion: "$LATEST", RequestID: "req-1"}},
		{name: "tail and qualifier", opts: InvokeOptions{LogTail: true, Qualifier: "$LATEST", InvocationType: api.InvocationRequestResponse},
			wantURI:    "/2015-03-31/functions/hello/invocations?Qualifier=%24LATEST",
			wantHeader: map[string]string{api.HeaderLogType: "Tail", api.HeaderInvocationType: "RequestResponse"},
			respond: func(w http.ResponseWriter) {
				w.Header().Set(api.HeaderLogResult, base64.StdEncoding.EncodeToString([]byte("START\nhello\nEND\n")))
				w.Header().Set(api.HeaderFunctionError, "Unhandled")
				w.WriteHeader(200)
				io.WriteString(w, `{"errorMessage":"boom","errorType":"Error"}`)
			},
			want: InvokeResult{StatusCode: 200, Payload: []byte(`{"errorMessage":"boom","errorType":"Error"}`),
				FunctionError: "Unhandled", LogResult: "START\nhello\nEND\n"}},
		{name: "event", opts: InvokeOptions{InvocationType: api.InvocationEvent},
			wantURI: "/2015-03-31/functions/hello/invocations", wantHeader: map[string]string{api.HeaderInvocationType: "Event"},
			respond: func(w http.ResponseWriter) { w.WriteHeader(202) },
			want:    InvokeResult{StatusCode: 202, Payload: []byte{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var seen request
			c := newServer(t, func(w http.ResponseWriter, r request) {
				seen = r
				tt.respond(w)
			})
			got, err := c.Invoke(context.Background(), "hello", []byte(`{"in":1}`), tt.opts)
			if err != nil {
				t.Fatalf("Invoke() = %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Invoke() (-want +got):\n%s", diff)
			}
			if seen.Method != "POST" || seen.RequestURI != tt.wantURI || string(seen.Body) != `{"in":1}` {
				t.Errorf("request = %s %s %q, want POST %s {\"in\":1}", seen.Method, seen.RequestURI, seen.Body, tt.wantURI)
			}
			for k, v := range tt.wantHeader {
				if got := seen.Header.Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name    string
		respond func(w http.ResponseWriter)
		want    *api.Error
	}{
		{name: "header with suffix",
			respond: func(w http.ResponseWriter) {
				w.Header().Set(api.HeaderErrorType, "ResourceNotFoundException:http://internal.amazon.com/coral/")
				w.WriteHeader(404)
				io.WriteString(w, `{"Type":"User","message":"Function not found: hello"}`)
			},
			want: &api.Error{Code: api.ErrResourceNotFound, Type: "User", Message: "Function not found: hello", Status: 404}},
		{name: "body __type with namespace and Message",
			respond: func(w http.ResponseWriter) {
				w.WriteHeader(409)
				io.WriteString(w, `{"__type":"com.amazonaws.lambda#ResourceConflictException","Message":"exists"}`)
			},
			want: &api.Error{Code: api.ErrResourceConflict, Message: "exists", Status: 409}},
		{name: "body Type",
			respond: func(w http.ResponseWriter) {
				w.WriteHeader(429)
				io.WriteString(w, `{"Type":"TooManyRequestsException","message":"slow down","Reason":"ReservedFunctionConcurrentInvocationLimitExceeded"}`)
			},
			want: &api.Error{Code: api.ErrTooManyRequests, Type: "TooManyRequestsException", Message: "slow down", Status: 429,
				Reason: "ReservedFunctionConcurrentInvocationLimitExceeded"}},
		{name: "plain text",
			respond: func(w http.ResponseWriter) { http.Error(w, "bad gateway upstream", 502) },
			want:    &api.Error{Code: "HTTP502", Message: "bad gateway upstream", Status: 502}},
		{name: "empty",
			respond: func(w http.ResponseWriter) { w.WriteHeader(500) },
			want:    &api.Error{Code: "HTTP500", Message: "Internal Server Error", Status: 500}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newServer(t, func(w http.ResponseWriter, r request) { tt.respond(w) })
			_, err := c.GetFunction(context.Background(), "hello")
			var got *api.Error
			if !errors.As(err, &got) {
				t.Fatalf("GetFunction() = %v, want *api.Error", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("GetFunction() error (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSignatureRejected(t *testing.T) {
	c := newServer(t, func(w http.ResponseWriter, r request) { t.Error("handler reached with a bad key") })
	bad := New(c.Endpoint(), Credentials{AccessKeyID: testCreds.AccessKeyID, SecretAccessKey: "wrong"}, WithHTTPClient(c.http))
	_, err := bad.GetFunction(context.Background(), "hello")
	var e *api.Error
	if !errors.As(err, &e) || e.Code != sigv4.CodeInvalidSignature || e.Status != 403 {
		t.Errorf("GetFunction() with a wrong secret = %v, want 403 %s", err, sigv4.CodeInvalidSignature)
	}
	unknown := New(c.Endpoint(), Credentials{AccessKeyID: "GKNOPE", SecretAccessKey: "x"}, WithHTTPClient(c.http))
	if _, err := unknown.GetFunction(context.Background(), "hello"); !errors.As(err, &e) || e.Code != sigv4.CodeUnrecognizedClient {
		t.Errorf("GetFunction() with an unknown key = %v, want %s", err, sigv4.CodeUnrecognizedClient)
	}
}

func TestBadInput(t *testing.T) {
	ctx := context.Background()
	for _, ep := range []string{"", "127.0.0.1:8080", "ftp://x", "http://%zz"} {
		if _, err := New(ep, testCreds).GetFunction(ctx, "f"); err == nil {
			t.Errorf("New(%q).GetFunction() = nil error, want one", ep)
		}
	}
	c := New("http://127.0.0.1:1", testCreds)
	if _, err := c.GetFunction(ctx, ""); err == nil {
		t.Error("GetFunction(\"\") = nil error, want one")
	}
	empty := map[string]func() error{
		"PutFunctionConcurrency":       func() error { return c.PutFunctionConcurrency(ctx, "", 1) },
		"DeleteFunctionConcurrency":    func() error { return c.DeleteFunctionConcurrency(ctx, "") },
		"PutProvisionedConcurrency":    func() error { _, err := c.PutProvisionedConcurrency(ctx, "", 1); return err },
		"DeleteProvisionedConcurrency": func() error { return c.DeleteProvisionedConcurrency(ctx, "") },
	}
	for name, call := range empty {
		if err := call(); err == nil {
			t.Errorf("%s(\"\") = nil error, want one", name)
		}
	}
}

func TestEndpointWithPathPrefix(t *testing.T) {
	var uri string
	c := newServer(t, func(w http.ResponseWriter, r request) {
		uri = r.RequestURI
		writeJSON(w, 200, helloConfig)
	})
	prefixed := New(c.Endpoint()+"/prefix/", testCreds, WithHTTPClient(c.http))
	if _, err := prefixed.GetFunctionConfiguration(context.Background(), "f:1"); err != nil {
		t.Fatalf("GetFunctionConfiguration() = %v", err)
	}
	if want := "/prefix/2015-03-31/functions/f%3A1/configuration"; uri != want {
		t.Errorf("request URI = %q, want %q", uri, want)
	}
}

func TestLogs(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	events := []api.LogEvent{
		{Time: t0, Function: "hello", RequestID: "r1", Text: "START RequestId: r1\n"},
		{Time: t0.Add(time.Second), Function: "hello", RequestID: "r1", Text: "hi\nEND\n"},
	}
	stream := func(w http.ResponseWriter, r request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(200)
		for _, ev := range events {
			b, _ := json.Marshal(ev)
			fmt.Fprintf(w, "%s\n", b)
		}
	}
	t.Run("all", func(t *testing.T) {
		var uri string
		c := newServer(t, func(w http.ResponseWriter, r request) { uri = r.RequestURI; stream(w, r) })
		var got []api.LogEvent
		err := c.Logs(context.Background(), "hello", LogsOptions{}, func(ev api.LogEvent) error {
			got = append(got, ev)
			return nil
		})
		if err != nil {
			t.Fatalf("Logs() = %v", err)
		}
		if diff := cmp.Diff(events, got); diff != "" {
			t.Errorf("Logs() events (-want +got):\n%s", diff)
		}
		if uri != api.LogsPath+"/hello" {
			t.Errorf("request URI = %q, want %q", uri, api.LogsPath+"/hello")
		}
	})
	t.Run("since and follow", func(t *testing.T) {
		var uri string
		c := newServer(t, func(w http.ResponseWriter, r request) { uri = r.RequestURI; stream(w, r) })
		since := time.Date(2026, 11, 27, 11, 50, 0, 5, time.FixedZone("x", 3600))
		if err := c.Logs(context.Background(), "hello", LogsOptions{Since: since, Follow: true}, func(api.LogEvent) error { return nil }); err != nil {
			t.Fatalf("Logs() = %v", err)
		}
		if want := api.LogsPath + "/hello?follow=1&since=2026-11-27T10%3A50%3A00.000000005Z"; uri != want {
			t.Errorf("request URI = %q, want %q", uri, want)
		}
	})
	t.Run("callback error stops", func(t *testing.T) {
		c := newServer(t, stream)
		stop := errors.New("stop")
		n := 0
		err := c.Logs(context.Background(), "hello", LogsOptions{}, func(api.LogEvent) error { n++; return stop })
		if err != stop || n != 1 {
			t.Errorf("Logs() = %v after %d events, want %v after 1", err, n, stop)
		}
	})
	t.Run("follow until cancelled", func(t *testing.T) {
		release := make(chan struct{})
		c := newServer(t, func(w http.ResponseWriter, r request) {
			stream(w, r)
			w.(http.Flusher).Flush()
			select {
			case <-release:
			case <-time.After(10 * time.Second):
			}
		})
		defer close(release)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		n := 0
		err := c.Logs(ctx, "hello", LogsOptions{Follow: true}, func(api.LogEvent) error {
			n++
			if n == len(events) {
				cancel() // both events arrived while the stream is still open
			}
			return nil
		})
		if !errors.Is(err, context.Canceled) || n != len(events) {
			t.Errorf("Logs() = %v after %d events, want context.Canceled after %d", err, n, len(events))
		}
	})
	t.Run("not found", func(t *testing.T) {
		c := newServer(t, func(w http.ResponseWriter, r request) {
			writeError(w, 404, api.ErrResourceNotFound, "Function not found: nope")
		})
		err := c.Logs(context.Background(), "nope", LogsOptions{}, func(api.LogEvent) error { return nil })
		var e *api.Error
		if !errors.As(err, &e) || e.Code != api.ErrResourceNotFound {
			t.Errorf("Logs() = %v, want %s", err, api.ErrResourceNotFound)
		}
	})
}
