package keyring

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// Seal encrypts data (a secret kept in JetStream, such as a database
// DSN) under the master key with AES-256-GCM. purpose binds the result to
// its use (for example "trigger-dsn:orders"): Open with another purpose
// fails, so a sealed value cannot be moved to another record.
func (k *Keyring) Seal(purpose string, data []byte) []byte {
	ns := k.aead.NonceSize()
	out := make([]byte, ns, ns+len(data)+k.aead.Overhead())
	if _, err := rand.Read(out); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return k.aead.Seal(out, out[:ns], data, []byte("gust-data:"+purpose))
}

// Open decrypts what Seal returned for the same purpose.
func (k *Keyring) Open(purpose string, sealed []byte) ([]byte, error) {
	ns := k.aead.NonceSize()
	if len(sealed) < ns+k.aead.Overhead() {
		return nil, errors.New("keyring: sealed value is truncated")
	}
	b, err := k.aead.Open(nil, sealed[:ns], sealed[ns:], []byte("gust-data:"+purpose))
	if err != nil {
		return nil, fmt.Errorf("keyring: cannot open sealed %s (sealed under another master key?): %w", purpose, err)
	}
	return b, nil
}

// FunctionTokenPrefix starts every function token.
const FunctionTokenPrefix = "gft1."

// FunctionToken returns the bearer token a function's code uses to reach
// the node's API with the function's grants (injected in a process
// function's environment as GUST_TOKEN). function is the function's name,
// or NAME:VERSION to bind the token to one version's grants. It is
// derived from the master key and that name, so every node sharing the
// master key accepts it and nothing is stored; what it allows is read
// from the function's grants at each request.
func (k *Keyring) FunctionToken(function string) string {
	return FunctionTokenPrefix + function + "." + base64.RawURLEncoding.EncodeToString(k.tokenMAC(function))
}

// VerifyFunctionToken returns the function a token was issued for.
func (k *Keyring) VerifyFunctionToken(token string) (string, error) {
	rest, ok := strings.CutPrefix(token, FunctionTokenPrefix)
	if !ok {
		return "", errors.New("not a Gust function token")
	}
	i := strings.LastIndexByte(rest, '.')
	if i <= 0 {
		return "", errors.New("malformed function token")
	}
	fn, sig := rest[:i], rest[i+1:]
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || subtle.ConstantTimeCompare(got, k.tokenMAC(fn)) != 1 {
		return "", errors.New("function token is not valid on this node (made under another master key?)")
	}
	return fn, nil
}

func (k *Keyring) tokenMAC(function string) []byte {
	m := hmac.New(sha256.New, k.tokenKey)
	m.Write([]byte(function))
	return m.Sum(nil)
}

// deriveKey derives a purpose-specific key from the master key.
func deriveKey(mk []byte, purpose string) []byte {
	m := hmac.New(sha256.New, mk)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}
