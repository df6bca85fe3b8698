package keyring_test

import (
	"bytes"
	"strings"
	"testing"
)

func TestSealAndFunctionTokens(t *testing.T) {
	dir := t.TempDir()
	sub := openSubstrate(t, dir)
	k := openKeyring(t, sub, dir)

	secret := []byte("postgres://app:hunter2@db/orders")
	sealed := k.Seal("trigger-dsn:orders", secret)
	if bytes.Contains(sealed, []byte("hunter2")) {
		t.Fatal("sealed value holds the secret in clear")
	}
	if got, err := k.Open("trigger-dsn:orders", sealed); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Open = %q, %v; want the secret", got, err)
	}
	if _, err := k.Open("trigger-dsn:other", sealed); err == nil {
		t.Error("Open with another purpose succeeded")
	}
	if _, err := k.Open("trigger-dsn:orders", sealed[:10]); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("Open(truncated) = %v, want truncated", err)
	}

	tok := k.FunctionToken("thumbnail")
	if fn, err := k.VerifyFunctionToken(tok); err != nil || fn != "thumbnail" {
		t.Fatalf("VerifyFunctionToken(own) = %q, %v", fn, err)
	}
	other := openKeyring(t, openSubstrate(t, t.TempDir()), t.TempDir())
	for name, bad := range map[string]string{
		"other master key": other.FunctionToken("thumbnail"),
		"renamed":          strings.Replace(tok, "thumbnail", "thumbnai1", 1),
		"no prefix":        strings.TrimPrefix(tok, "gft1."),
		"no signature":     "gft1.thumbnail",
		"bad base64":       tok + "!",
	} {
		if fn, err := k.VerifyFunctionToken(bad); err == nil {
			t.Errorf("VerifyFunctionToken(%s) = %q, want an error", name, fn)
		}
	}
}
