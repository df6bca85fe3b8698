package registry

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestValidateRouting(t *testing.T) {
	exists := func(v string) bool { return v == Latest || v == "1" || v == "2" || v == "3" }
	tests := []struct {
		name    string
		alias   Alias
		wantErr string // substring; empty: valid
		missing bool   // a NotFoundError
	}{
		{"plain", Alias{Version: "1"}, "", false},
		{"latest", Alias{Version: Latest}, "", false},
		{"split", Alias{Version: "1", Weights: map[string]float64{"2": 0.25}}, "", false},
		{"zero weight", Alias{Version: "1", Weights: map[string]float64{"2": 0}}, "", false},
		{"empty weights dropped", Alias{Version: "1", Weights: map[string]float64{}}, "", false},
		{"no version", Alias{}, "FunctionVersion is required", false},
		{"bad version", Alias{Version: "v1"}, "functionVersion", false},
		{"missing version", Alias{Version: "9"}, "version 9", true},
		{"weight above one", Alias{Version: "1", Weights: map[string]float64{"2": 1.01}}, "less than or equal to 1.0", false},
		{"negative weight", Alias{Version: "1", Weights: map[string]float64{"2": -0.5}}, "greater than or equal to 0.0", false},
		{"NaN weight", Alias{Version: "1", Weights: map[string]float64{"2": math.NaN()}}, "routingConfig", false},
		{"third version", Alias{Version: "1", Weights: map[string]float64{"2": 0.1, "3": 0.1}}, "at most two versions", false},
		{"weight on itself", Alias{Version: "1", Weights: map[string]float64{"1": 0.1}}, "already the alias's FunctionVersion", false},
		{"latest with weights", Alias{Version: Latest, Weights: map[string]float64{"2": 0.1}}, "$LATEST", false},
		{"weight on latest", Alias{Version: "1", Weights: map[string]float64{Latest: 0.1}}, "not a published version", false},
		{"weight on missing", Alias{Version: "1", Weights: map[string]float64{"8": 0.1}}, "version 8", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := tc.alias
			a.Function = "f"
			err := validateRouting(&a, exists)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error = %v, want one mentioning %q", err, tc.wantErr)
			case tc.wantErr != "" && tc.missing != errors.Is(err, ErrNotFound):
				t.Fatalf("error %v: not-found = %v, want %v", err, errors.Is(err, ErrNotFound), tc.missing)
			}
		})
	}
}

func TestAliasPickAndShare(t *testing.T) {
	a := &Alias{Version: "1", Weights: map[string]float64{"2": 0.3}}
	for _, tc := range []struct {
		r    float64
		want string
	}{{0, "2"}, {0.29, "2"}, {0.3, "1"}, {0.99, "1"}, {1, "1"}} {
		if got := a.Pick(tc.r); got != tc.want {
			t.Errorf("Pick(%v) = %s, want %s", tc.r, got, tc.want)
		}
	}
	if s1, s2, s3 := a.Share("1"), a.Share("2"), a.Share("3"); math.Abs(s1-0.7) > 1e-9 || s2 != 0.3 || s3 != 0 {
		t.Errorf("shares: %v %v %v", s1, s2, s3)
	}
	if !a.References("2") || a.References("3") {
		t.Error("References")
	}
}

func TestQualifiersAndAliasNames(t *testing.T) {
	for _, q := range []string{Latest, "1", "42", "live", "blue-green_2"} {
		if err := ValidateQualifier(q); err != nil {
			t.Errorf("ValidateQualifier(%q): %v", q, err)
		}
	}
	for _, q := range []string{"", "a.b", "$latest", "x y", strings.Repeat("a", 129)} {
		if err := ValidateQualifier(q); err == nil {
			t.Errorf("ValidateQualifier(%q) accepted", q)
		}
	}
	for _, n := range []string{"123", "", "a:b"} {
		if err := ValidateAliasName(n); err == nil {
			t.Errorf("ValidateAliasName(%q) accepted", n)
		}
	}
}

func TestParseKey(t *testing.T) {
	for _, tc := range []struct {
		key       string
		name, sub string
		kind      byte
		ok        bool
	}{
		{"hello", "hello", "", 'l', true},
		{"hello.v.3", "hello", "3", 'v', true},
		{"hello.a.live", "hello", "live", 'a', true},
		{"hello.x.y", "", "", 0, false},
		{"a.b", "", "", 0, false},
	} {
		name, kind, sub, ok := parseKey(tc.key)
		if name != tc.name || kind != tc.kind || sub != tc.sub || ok != tc.ok {
			t.Errorf("parseKey(%q) = %q %c %q %v", tc.key, name, kind, sub, ok)
		}
	}
}
