package registry

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestValidateHostPattern(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: "api.example.com", want: "api.example.com"},
		{in: "API.Example.com", want: "api.example.com"},
		{in: "api.example.com:8443", want: "api.example.com:8443"},
		{in: "*.example.com", want: "*.example.com"},
		{in: "127.0.0.1", want: "127.0.0.1"},
		{in: "127.0.0.1:9000", want: "127.0.0.1:9000"},
		{in: "[::1]:80", want: "[::1]:80"},
		{in: "::1", want: "[::1]"},
		{in: "", err: "empty"},
		{in: "https://api.example.com", err: "without scheme"},
		{in: "api.example.com/path", err: "without scheme"},
		{in: "api.example.com:0", err: "port"},
		{in: "api.example.com:http", err: "port"},
		{in: "api.*.com", err: "wildcard"},
		{in: "-bad.example.com", err: "DNS label"},
		{in: "a..b", err: "DNS label"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ValidateHostPattern(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ValidateHostPattern(%q) = %q, %v; want an error containing %q", tc.in, got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ValidateHostPattern(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestGrantsNormalize(t *testing.T) {
	f := &Function{Name: "f", Runtime: "wasm", Grants: &Grants{
		KV: []string{"items", "cache", "items"}, Hosts: []string{"B.example.com", "a.example.com"}}}
	if err := Normalize(f); err != nil {
		t.Fatal(err)
	}
	want := &Grants{KV: []string{"cache", "items"}, Hosts: []string{"a.example.com", "b.example.com"}}
	if diff := cmp.Diff(want, f.Grants); diff != "" {
		t.Errorf("normalized grants (-want +got):\n%s", diff)
	}
	if !f.GrantsKV("items") || f.GrantsKV("other") || f.GrantsObjects("items") {
		t.Errorf("GrantsKV/GrantsObjects disagree with %+v", f.Grants)
	}

	empty := &Function{Name: "f", Runtime: "wasm", Grants: &Grants{}}
	if err := Normalize(empty); err != nil || empty.Grants != nil {
		t.Errorf("Normalize(empty grants) = %v, grants %+v; want nil grants", err, empty.Grants)
	}

	for _, tc := range []struct {
		name  string
		g     Grants
		field string
	}{
		{"bad bucket", Grants{KV: []string{"no/slash"}}, "grants.kv"},
		{"bad object bucket", Grants{Objects: []string{""}}, "grants.objects"},
		{"bad host", Grants{Hosts: []string{"http://x"}}, "grants.hosts"},
		{"too many", Grants{KV: make([]string, MaxGrants+1)}, "grants.kv"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := tc.g
			err := Normalize(&Function{Name: "f", Runtime: "wasm", Grants: &g})
			ve, ok := err.(*ValidationError)
			if !ok || ve.Field != tc.field {
				t.Fatalf("Normalize = %v, want a ValidationError on %s", err, tc.field)
			}
		})
	}

	a := &Function{Name: "f", Runtime: "wasm", CodeDigest: "x"}
	b := a.Clone()
	b.Grants = &Grants{Hosts: []string{"x.example"}}
	if SameProgram(a, b) {
		t.Error("SameProgram ignores a change of grants")
	}
	if c := b.Clone(); c.Grants == b.Grants || !c.Grants.Equal(b.Grants) {
		t.Error("Clone does not deep-copy grants")
	}
}
