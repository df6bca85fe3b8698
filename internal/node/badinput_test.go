package node_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"
)

// TestBadDeploys: each refused deploy names its problem with the error
// type an SDK expects, stores nothing, and the node keeps serving.
func TestBadDeploys(t *testing.T) {
	buildGuests(t)
	n := startNode(t, t.TempDir())
	c := lambdaClient(t, n)
	ctx := context.Background()
	if _, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("hello"), Role: aws.String(role), Runtime: types.Runtime("wasm"),
		Code: &types.FunctionCode{ZipFile: guests.hello},
	}); err != nil {
		t.Fatalf("CreateFunction(hello): %v", err)
	}
	tests := []struct {
		name     string
		fn       string
		runtime  string
		code     []byte
		wantCode string
		wantMsg  string
	}{
		{"not wasm", "f1", "wasm", []byte("\x00asm\x01\x00\x00\x00garbage"), "InvalidParameterValueException", "WebAssembly"},
		{"neither zip nor wasm", "f2", "wasm", []byte("hello world"), "InvalidParameterValueException", "neither a zip"},
		{"zip without wasm", "f3", "wasm", zipOf(t, map[string][]byte{"README": []byte("hi")}), "InvalidParameterValueException", "no .wasm"},
		{"zip with two wasm", "f4", "wasm", zipOf(t, map[string][]byte{"a.wasm": guests.guest, "b.wasm": guests.guest}), "InvalidParameterValueException", "2 .wasm"},
		{"unknown runtime", "f5", "cobol85", guests.guest, "InvalidParameterValueException", "cobol85"},
		{"bad name", "no spaces allowed", "wasm", guests.guest, "InvalidParameterValueException", "functionName"},
		{"name too long", strings.Repeat("x", 65), "wasm", guests.guest, "InvalidParameterValueException", "64"},
		{"duplicate", "hello", "wasm", guests.guest, "ResourceConflictException", "hello"},
		{"module that is neither command nor sdk", "f6", "wasm", []byte{0, 'a', 's', 'm', 1, 0, 0, 0}, "InvalidParameterValueException", "_start"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{
				FunctionName: aws.String(tt.fn), Role: aws.String(role), Runtime: types.Runtime(tt.runtime),
				Code: &types.FunctionCode{ZipFile: tt.code},
			})
			var ae smithy.APIError
			if !errors.As(err, &ae) || ae.ErrorCode() != tt.wantCode {
				t.Fatalf("CreateFunction error = %v, want %s", err, tt.wantCode)
			}
			if !strings.Contains(ae.ErrorMessage(), tt.wantMsg) {
				t.Errorf("message = %q, want it to mention %q", ae.ErrorMessage(), tt.wantMsg)
			}
			// Typed exceptions decode into their SDK types.
			switch tt.wantCode {
			case "InvalidParameterValueException":
				var te *types.InvalidParameterValueException
				if !errors.As(err, &te) {
					t.Errorf("error %T does not decode to types.InvalidParameterValueException", err)
				}
			case "ResourceConflictException":
				var te *types.ResourceConflictException
				if !errors.As(err, &te) {
					t.Errorf("error %T does not decode to types.ResourceConflictException", err)
				}
			}
			if tt.fn != "hello" {
				if _, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(tt.fn)}); err == nil {
					t.Errorf("refused function %s was stored", tt.fn)
				}
			}
			assertHello(t, c)
		})
	}

	// A bad code update leaves the stored code running.
	_, err := c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("hello"), ZipFile: []byte("nope")})
	var ip *types.InvalidParameterValueException
	if !errors.As(err, &ip) {
		t.Errorf("UpdateFunctionCode(garbage) error = %v, want InvalidParameterValueException", err)
	}
	_, err = c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("hello"), MemorySize: aws.Int32(64)})
	if !errors.As(err, &ip) {
		t.Errorf("UpdateFunctionConfiguration(64 MB) error = %v, want InvalidParameterValueException", err)
	}
	_, err = c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("hello"),
		Environment: &types.Environment{Variables: map[string]string{"AWS_REGION": "x"}}})
	if !errors.As(err, &ip) || !strings.Contains(err.Error(), "AWS_REGION") {
		t.Errorf("UpdateFunctionConfiguration(reserved env) error = %v, want InvalidParameterValueException naming AWS_REGION", err)
	}
	assertHello(t, c)
}

// assertHello checks that the hello function still answers.
func assertHello(t *testing.T, c *lambda.Client) {
	t.Helper()
	out, err := c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("hello"), Payload: []byte(`{"name":"still"}`)})
	if err != nil || out.FunctionError != nil || !strings.Contains(string(out.Payload), "Hello, still!") {
		t.Fatalf("hello no longer answers: %v %s", err, out.Payload)
	}
}

// TestBadInvocations: payloads and guests that misbehave fail only their
// own invocation.
func TestBadInvocations(t *testing.T) {
	buildGuests(t)
	n := startNode(t, t.TempDir())
	c := lambdaClient(t, n)
	ctx := context.Background()
	for name, code := range map[string][]byte{"hello": guests.hello, "guest": guests.guest, "trap": trapWasm, "loop": loopWasm, "big": guests.guest} {
		timeout := int32(1)
		if name == "big" {
			timeout = 60 // building 7 MB of output is slow under the race detector
		}
		if _, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{
			FunctionName: aws.String(name), Role: aws.String(role), Runtime: types.Runtime("wasm"),
			Code: &types.FunctionCode{ZipFile: code}, Timeout: aws.Int32(timeout), MemorySize: aws.Int32(128),
		}); err != nil {
			t.Fatalf("CreateFunction(%s): %v", name, err)
		}
	}

	t.Run("payload over 6 MB", func(t *testing.T) {
		big := append(append([]byte(`"`), bytes.Repeat([]byte("a"), 6<<20)...), '"')
		_, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("hello"), Payload: big})
		var tl *types.RequestTooLargeException
		if !errors.As(err, &tl) {
			t.Errorf("Invoke(6 MB+) error = %v, want RequestTooLargeException", err)
		}
	})
	t.Run("malformed JSON", func(t *testing.T) {
		_, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("hello"), Payload: []byte(`{"name":`)})
		var ic *types.InvalidRequestContentException
		if !errors.As(err, &ic) {
			t.Errorf("Invoke(bad JSON) error = %v, want InvalidRequestContentException", err)
		}
	})
	t.Run("unknown function", func(t *testing.T) {
		_, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("nobody")})
		var nf *types.ResourceNotFoundException
		if !errors.As(err, &nf) || !strings.Contains(err.Error(), "nobody") {
			t.Errorf("Invoke(unknown) error = %v, want ResourceNotFoundException naming it", err)
		}
	})

	guestErrs := []struct {
		name, fn, payload string
		wantMsg           string
		wantLog           string
	}{
		{"trap", "trap", `{}`, "unreachable", ""},
		{"exit non-zero", "guest", `{"exit":7}`, "7", "exiting with 7"},
		{"past its timeout", "loop", `{}`, "Task timed out after 1.00 seconds", ""},
		{"go guest past its timeout", "guest", `{"loop":true}`, "Task timed out after 1.00 seconds", ""},
		{"past its memory cap", "guest", `{"growMB":400}`, "", ""},
		{"response over 6 MB", "big", `{"outMB":7}`, "6291456", ""},
		{"log over the per-invocation limit", "guest", `{"logN":30000,"exit":1}`, "", "[gust: log truncated"},
	}
	for _, tt := range guestErrs {
		t.Run(tt.name, func(t *testing.T) {
			out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(tt.fn), Payload: []byte(tt.payload), LogType: types.LogTypeTail})
			if err != nil {
				t.Fatalf("Invoke: %v", err)
			}
			if aws.ToString(out.FunctionError) != "Unhandled" {
				t.Fatalf("FunctionError = %q (payload %s), want Unhandled", aws.ToString(out.FunctionError), out.Payload)
			}
			var fe struct {
				ErrorMessage string `json:"errorMessage"`
				ErrorType    string `json:"errorType"`
			}
			if err := json.Unmarshal(out.Payload, &fe); err != nil || fe.ErrorType == "" {
				t.Fatalf("error payload = %s, want errorType and errorMessage", out.Payload)
			}
			if !strings.Contains(fe.ErrorMessage, tt.wantMsg) {
				t.Errorf("errorMessage = %q, want it to contain %q", fe.ErrorMessage, tt.wantMsg)
			}
			logTail, _ := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
			if !strings.Contains(string(logTail), tt.wantLog) || !strings.Contains(string(logTail), "REPORT RequestId") {
				t.Errorf("log = %q, want REPORT and %q", logTail, tt.wantLog)
			}
			assertHello(t, c)
			// The failing function itself recovers for the next invocation.
			if tt.fn == "guest" {
				ok, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("guest"), Payload: []byte(`{"echo":1}`)})
				if err != nil || ok.FunctionError != nil || !strings.Contains(string(ok.Payload), `"echo":1`) {
					t.Errorf("guest after failure = %s, %v", ok.Payload, err)
				}
			}
		})
	}
}

// TestSignatures: the API refuses unsigned, wrongly signed and unknown-key
// requests, while function URLs need no credentials.
func TestSignatures(t *testing.T) {
	buildGuests(t)
	n := startNode(t, t.TempDir())
	ctx := context.Background()

	resp, err := http.Get(n.URL() + "/2015-03-31/functions/")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Amzn-Errortype") == "" {
		t.Errorf("unsigned ListFunctions = %d %q, want 403 with an error type", resp.StatusCode, resp.Header.Get("X-Amzn-Errortype"))
	}

	id, secret := n.AdminKey()
	tests := []struct {
		name, id, secret, wantCode string
	}{
		{"wrong secret", id, secret + "x", "InvalidSignatureException"},
		{"unknown key", "AKIDUNKNOWN000000000", secret, "UnrecognizedClientException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion("us-east-1"),
				config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(tt.id, tt.secret, "")))
			if err != nil {
				t.Fatal(err)
			}
			c := lambda.NewFromConfig(cfg, func(o *lambda.Options) { o.BaseEndpoint = aws.String(n.URL()); o.RetryMaxAttempts = 1 })
			_, err = c.ListFunctions(ctx, &lambda.ListFunctionsInput{})
			var ae smithy.APIError
			if !errors.As(err, &ae) || ae.ErrorCode() != tt.wantCode {
				t.Errorf("ListFunctions error = %v, want %s", err, tt.wantCode)
			}
		})
	}
}
