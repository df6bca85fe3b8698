package wasm

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gustfaas/gust/internal/sandbox"
)

// scriptedHost answers host calls from a script, recording what the
// guest sent. It tests the ABI between the runtime and the SDK; the real
// operations (package hostcall) are tested on their own and end to end
// on a node.
type scriptedHost struct {
	mu                sync.Mutex
	function, version string
	ops               []string
	deadlines         []time.Time
	written           int
	writes            int
	left              int // of the object being read
	released, closed  int
}

func (h *scriptedHost) Call(ctx context.Context, op string, args [][]byte) ([][]byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, op)
	if d, ok := ctx.Deadline(); ok {
		h.deadlines = append(h.deadlines, d)
	}
	n := func(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }
	switch op {
	case "kv.get":
		switch {
		case string(args[0]) == "denied":
			return nil, &sandbox.HostError{Code: "AccessDenied", Message: "not granted the kv bucket denied"}
		case string(args[1]) == "missing":
			return nil, &sandbox.HostError{Code: "NotFound", Message: "key missing: not found"}
		case string(args[1]) == "big":
			return [][]byte{bytes.Repeat([]byte("b"), 3<<20), n(9)}, nil
		}
		return [][]byte{[]byte("value-of-" + string(args[1])), n(7)}, nil
	case "kv.cas":
		if binary.LittleEndian.Uint64(args[3]) == 5 {
			return [][]byte{n(6)}, nil
		}
		return nil, &sandbox.HostError{Code: "Conflict", Message: "revision moved"}
	case "kv.list":
		if string(args[2]) == "" {
			return [][]byte{[]byte("b"), []byte("a"), []byte("b")}, nil
		}
		return [][]byte{nil, []byte("c")}, nil
	case "obj.put.open":
		h.written, h.writes = 0, 0
		return [][]byte{n(1)}, nil
	case "obj.put.write":
		h.written += len(args[1])
		h.writes++
		return nil, nil
	case "obj.put.close":
		return [][]byte{n(uint64(h.written)), []byte("application/x-zeros"), []byte("digest")}, nil
	case "obj.get.open":
		h.left = 700000
		return [][]byte{n(2), n(700000), []byte("ct"), []byte("digest")}, nil
	case "obj.get.read":
		k := min(int(binary.LittleEndian.Uint64(args[1])), h.left)
		h.left -= k
		return [][]byte{make([]byte, k)}, nil
	case "obj.get.close":
		return nil, nil
	case "http.do":
		return [][]byte{n(202), []byte("X-Reply: " + string(args[0]) + "\r\n"), []byte("got " + string(args[3]) + " at " + string(args[1]))}, nil
	}
	return nil, &sandbox.HostError{Code: "UnknownOperation", Message: op}
}

func (h *scriptedHost) Release() { h.mu.Lock(); h.released++; h.mu.Unlock() }
func (h *scriptedHost) Close()   { h.mu.Lock(); h.closed++; h.mu.Unlock() }

func TestHostCalls(t *testing.T) {
	var mu sync.Mutex
	var hosts []*scriptedHost
	rt, err := New(context.Background(), Options{CacheDir: testCacheDir, Host: func(function, version string) sandbox.Host {
		mu.Lock()
		defer mu.Unlock()
		h := &scriptedHost{function: function, version: version}
		hosts = append(hosts, h)
		return h
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(context.Background())
	p := load(t, rt, sandbox.Spec{Function: "hosted", Version: "3", Code: guest(t, "sdkguest")})
	in, err := p.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(hosts) != 1 || hosts[0].function != "hosted" || hosts[0].version != "3" {
		t.Fatalf("hosts opened: %+v; want one for hosted:3", hosts)
	}
	h := hosts[0]
	mu.Unlock()

	type result struct {
		Lines []string `json:"lines"`
		Size  int      `json:"size"`
	}
	tests := []struct {
		name, event string
		want        result
		errType     string
	}{
		{"kv get", `{"op":"kv.get","bucket":"b","key":"k"}`, result{Lines: []string{"value-of-k", "7"}, Size: 10}, ""},
		{"kv get of 3 MiB", `{"op":"kv.get","bucket":"b","key":"big"}`, result{Lines: []string{strings.Repeat("b", 3<<20), "9"}, Size: 3 << 20}, ""},
		{"not found", `{"op":"kv.get","bucket":"b","key":"missing"}`, result{}, "Host.NotFound"},
		{"denied", `{"op":"kv.get","bucket":"denied","key":"k"}`, result{}, "Host.AccessDenied"},
		{"cas", `{"op":"kv.cas","bucket":"b","key":"k","n":5}`, result{Lines: []string{"6"}}, ""},
		{"cas conflict", `{"op":"kv.cas","bucket":"b","key":"k","n":4}`, result{Lines: []string{"conflict"}}, ""},
		{"list pages", `{"op":"kv.list","bucket":"b"}`, result{Lines: []string{"a", "b", "c"}}, ""},
		{"object put streamed", `{"op":"obj.put","bucket":"o","key":"z","n":600000}`, result{Size: 600000, Lines: []string{"application/x-zeros"}}, ""},
		{"object get streamed", `{"op":"obj.get","bucket":"o","key":"z"}`, result{Size: 700000, Lines: []string{"700000"}}, ""},
		{"http through the host", `{"op":"http","url":"http://example.com/x"}`, result{Lines: []string{"202 Accepted", "POST", "got ping at http://example.com/x"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := invoke(t, in, tt.event)
			if tt.errType != "" {
				if resp.Err == nil || resp.Err.Type != tt.errType {
					t.Fatalf("error = %+v, want %s", resp.Err, tt.errType)
				}
				return
			}
			if resp.Err != nil {
				t.Fatalf("function error %+v (log %q)", resp.Err, resp.Log)
			}
			var got result
			if err := json.Unmarshal(resp.Payload, &got); err != nil {
				t.Fatal(err)
			}
			if got.Size != tt.want.Size || strings.Join(got.Lines, "|") != strings.Join(tt.want.Lines, "|") {
				t.Errorf("result = %.200v, want %.200v", got, tt.want)
			}
		})
	}
	h.mu.Lock()
	if h.writes < 3 {
		t.Errorf("a 600 000-byte put took %d writes, want it streamed in chunks", h.writes)
	}
	if h.released != len(tests) {
		t.Errorf("host released %d times after %d invocations, want once each", h.released, len(tests))
	}
	if len(h.deadlines) == 0 {
		t.Error("host calls carried no deadline")
	}
	h.mu.Unlock()

	if err := in.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	if h.closed != 1 {
		t.Errorf("host closed %d times with its instance, want 1", h.closed)
	}
	h.mu.Unlock()
}

// TestHostCallsUnavailable: on a runtime without a Host every host call
// fails with Unavailable, as a function error the caller sees.
func TestHostCallsUnavailable(t *testing.T) {
	p := load(t, nil, sandbox.Spec{Code: guest(t, "sdkguest")})
	in := start(t, p)
	resp := invoke(t, in, `{"op":"kv.get","bucket":"b","key":"k"}`)
	if resp.Err == nil || resp.Err.Type != "Host.Unavailable" {
		t.Fatalf("error = %+v, want Host.Unavailable", resp.Err)
	}
	// The instance still serves.
	if resp := invoke(t, in, `{"op":"count"}`); resp.Err != nil {
		t.Errorf("after a failed host call: %+v", resp.Err)
	}
	// A call made while the module initialised (before any invocation)
	// was answered Unavailable, with the reason.
	resp = invoke(t, in, `{"op":"initerr"}`)
	if resp.Err == nil || resp.Err.Type != "Host.Unavailable" || !strings.Contains(resp.Err.Message, "only while an SDK function serves an invocation") {
		t.Errorf("host call while initialising = %+v, want Host.Unavailable", resp.Err)
	}
}

func TestDecodeFields(t *testing.T) {
	field := func(s string) []byte {
		return append(binary.LittleEndian.AppendUint32(nil, uint32(len(s))), s...)
	}
	tests := []struct {
		name string
		in   []byte
		want []string
		ok   bool
	}{
		{"empty", nil, nil, true},
		{"two", append(field("kv.get"), field("")...), []string{"kv.get", ""}, true},
		{"truncated length", []byte{1, 0}, nil, false},
		{"length past the end", append(field("op"), 9, 0, 0, 0, 'x'), nil, false},
		{"huge length", []byte{0xff, 0xff, 0xff, 0xff}, nil, false},
	}
	for _, tt := range tests {
		got, err := decodeFields(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("%s: err = %v, want ok=%v", tt.name, err, tt.ok)
			continue
		}
		var s []string
		for _, f := range got {
			s = append(s, string(f))
		}
		if strings.Join(s, "|") != strings.Join(tt.want, "|") || len(s) != len(tt.want) {
			t.Errorf("%s: fields %q, want %q", tt.name, s, tt.want)
		}
	}
}
