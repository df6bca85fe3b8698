package gust

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
)

// Outside a Gust wasm runtime every host call fails clearly, matching
// ErrUnavailable, so code using storage still builds and tests anywhere.
func TestHostCallsOutsideGust(t *testing.T) {
	ctx := context.Background()
	_, err := KV("b").Get(ctx, "k")
	if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "wasip1") {
		t.Errorf("KV.Get = %v, want ErrUnavailable naming wasip1", err)
	}
	var he *HostError
	if !errors.As(err, &he) || he.ErrorType() != "Host.Unavailable" {
		t.Errorf("error type of %v, want Host.Unavailable", err)
	}
	if _, err := Objects("o").Put(ctx, "x", strings.NewReader("y"), ""); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Objects.Put = %v, want ErrUnavailable", err)
	}
	req, _ := http.NewRequest("GET", "http://example.com/", nil)
	if _, err := (Transport{}).RoundTrip(req); !errors.Is(err, ErrUnavailable) {
		t.Errorf("RoundTrip = %v, want ErrUnavailable", err)
	}
	req, _ = http.NewRequest("GET", "ftp://example.com/", nil)
	if _, err := (Transport{}).RoundTrip(req); err == nil || !strings.Contains(err.Error(), "only http and https") {
		t.Errorf("RoundTrip(ftp) = %v, want refused", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := KV("b").Put(ctx, "k", nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Put with a cancelled context = %v", err)
	}
}

func TestSplitFields(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		ok   bool
	}{
		{"", nil, true},
		{"\x02\x00\x00\x00ab\x00\x00\x00\x00", []string{"ab", ""}, true},
		{"\x02\x00", nil, false},
		{"\x05\x00\x00\x00ab", nil, false},
	}
	for _, tt := range tests {
		got, err := splitFields([]byte(tt.in))
		if (err == nil) != tt.ok || len(got) != len(tt.want) {
			t.Errorf("splitFields(%q) = %q, %v", tt.in, got, err)
			continue
		}
		for i := range got {
			if string(got[i]) != tt.want[i] {
				t.Errorf("splitFields(%q)[%d] = %q, want %q", tt.in, i, got[i], tt.want[i])
			}
		}
	}
}
