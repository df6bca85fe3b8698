package gust

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// invokeFrame runs the registered handler as the host would.
func invokeFrame(t *testing.T, requestID, payload string, deadline time.Time) (string, uint32) {
	t.Helper()
	var ms int64
	if !deadline.IsZero() {
		ms = deadline.UnixMilli()
	}
	out, status := dispatch(appendFrame(nil, frame{
		deadlineMS: ms, requestID: []byte(requestID), function: []byte("fn"), payload: []byte(payload),
	}))
	return string(out), status
}

// withHandler registers a handler for one test.
func withHandler(t *testing.T, register func()) {
	t.Helper()
	saved := registered
	t.Cleanup(func() { registered = saved })
	register()
}

type greetIn struct {
	Name string `json:"name"`
}

type greetOut struct {
	Message string `json:"message"`
}

type customErr struct{}

func (customErr) Error() string { return "custom" }

func TestHandle(t *testing.T) {
	withHandler(t, func() {
		Handle(func(ctx context.Context, in greetIn) (greetOut, error) {
			switch in.Name {
			case "typed":
				return greetOut{}, fmt.Errorf("wrapped: %w", Error("Custom.Type", "typed failure"))
			case "plain":
				return greetOut{}, errors.New("plain failure")
			case "value":
				return greetOut{}, customErr{}
			case "panic":
				panic("boom")
			case "ctx":
				d, _ := ctx.Deadline()
				return greetOut{Message: RequestID(ctx) + " " + FunctionName(ctx) + " " + fmt.Sprint(d.UnixMilli())}, nil
			}
			return greetOut{Message: "Hello, " + in.Name + "!"}, nil
		})
	})
	deadline := time.UnixMilli(1700000000123)
	tests := []struct {
		name       string
		payload    string
		want       string
		wantStatus uint32
		wantType   string
	}{
		{"ok", `{"name":"Ada"}`, `{"message":"Hello, Ada!"}`, statusOK, ""},
		{"empty payload", ``, `{"message":"Hello, !"}`, statusOK, ""},
		{"context", `{"name":"ctx"}`, `{"message":"req-9 fn 1700000000123"}`, statusOK, ""},
		{"typed error", `{"name":"typed"}`, "", statusFunctionError, "Custom.Type"},
		{"plain error", `{"name":"plain"}`, "", statusFunctionError, "*errors.errorString"},
		{"value error", `{"name":"value"}`, "", statusFunctionError, "gust.customErr"},
		{"panic", `{"name":"panic"}`, "", statusFunctionError, "string"},
		{"bad json", `{"name":`, "", statusFunctionError, "Runtime.UnmarshalError"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, status := invokeFrame(t, "req-9", tt.payload, deadline)
			if status != tt.wantStatus {
				t.Fatalf("dispatch(%s) status = %d (%s), want %d", tt.payload, status, out, tt.wantStatus)
			}
			if status == statusOK {
				if out != tt.want {
					t.Errorf("dispatch(%s) = %s, want %s", tt.payload, out, tt.want)
				}
				return
			}
			var e errorPayload
			if err := json.Unmarshal([]byte(out), &e); err != nil {
				t.Fatalf("error payload %s: %v", out, err)
			}
			if e.Type != tt.wantType || e.Message == "" {
				t.Errorf("dispatch(%s) error = %+v, want type %s", tt.payload, e, tt.wantType)
			}
		})
	}
}

func TestDispatchWithoutHandler(t *testing.T) {
	withHandler(t, func() { registered = nil })
	out, status := invokeFrame(t, "r", "{}", time.Time{})
	if status != statusFunctionError || !strings.Contains(out, "Runtime.NoHandler") {
		t.Errorf("dispatch() = %d %s, want a Runtime.NoHandler error", status, out)
	}
}

func TestDispatchBadFrame(t *testing.T) {
	out, status := dispatch([]byte{9})
	if status != statusFunctionError || !strings.Contains(string(out), "Runtime.InvalidRequest") {
		t.Errorf("dispatch(bad frame) = %d %s, want Runtime.InvalidRequest", status, out)
	}
}

func TestStackLines(t *testing.T) {
	trace := []byte("goroutine 1 [running]:\nmain.f()\n\t/x/main.go:3 +0x1\nmain.main()\n\t/x/main.go:9 +0x2\n")
	want := []string{"main.f() /x/main.go:3 +0x1", "main.main() /x/main.go:9 +0x2"}
	if diff := cmp.Diff(want, stackLines(trace)); diff != "" {
		t.Errorf("stackLines() mismatch (-want +got):\n%s", diff)
	}
}
