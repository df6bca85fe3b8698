package gateway

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/internal/registry"
)

// ActionInvoke is the IAM action of Invoke and of function URLs whose
// AuthType is AWS_IAM.
const ActionInvoke = "lambda:InvokeFunction"

// KeyPolicy says what an access key may do.
type KeyPolicy interface {
	// Allowed reports whether the key may perform action (an IAM action
	// name such as lambda:InvokeFunction) on function (empty when the
	// action is on no single function).
	Allowed(keyID, action, function string) bool
}

// KeyManager issues, lists and revokes access keys.
type KeyManager interface {
	Create(ctx context.Context, req api.CreateKeyRequest) (api.AccessKey, error)
	List(ctx context.Context) ([]api.AccessKey, error)
	Revoke(ctx context.Context, accessKeyID string) error
}

// authorize checks that keyID may perform action on the function the
// request's path names; the refusal is Lambda's AccessDeniedException.
func (g *Gateway) authorize(r *http.Request, keyID, action string) *api.Error {
	if g.cfg.Policy == nil {
		return nil
	}
	function, resource := "", "*"
	raw := r.PathValue("name")
	if raw == "" {
		raw = r.PathValue("arn")
	}
	if raw != "" {
		if name, _, err := registry.ParseName(raw); err == nil {
			function, resource = name, g.arn(name)
		}
	}
	if g.cfg.Policy.Allowed(keyID, action, function) {
		return nil
	}
	return g.accessDenied(keyID, action, resource)
}

func (g *Gateway) accessDenied(keyID, action, resource string) *api.Error {
	return &api.Error{Code: api.ErrAccessDenied, Status: http.StatusForbidden,
		Message: fmt.Sprintf("User: arn:aws:iam::%s:user/%s is not authorized to perform: %s on resource: %s", g.cfg.Account, keyID, action, resource)}
}

// FunctionTokens verifies a function's bearer token (keyring.Keyring).
type FunctionTokens interface {
	VerifyFunctionToken(token string) (function string, err error)
}

// Storage paths a function token may use, with the grant each needs.
const (
	kvPathPrefix      = "/gust/v1/kv/"
	objectsPathPrefix = "/gust/v1/objects/"
)

// bearerToken returns the request's bearer token, if it has one.
func bearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if len(h) < 7 || !strings.EqualFold(h[:7], "bearer ") {
		return "", false
	}
	return strings.TrimSpace(h[7:]), true
}

// authorizeFunctionToken lets a function's token read and write the
// buckets the function is granted now, and nothing else.
func (g *Gateway) authorizeFunctionToken(r *http.Request, tok, action string) *api.Error {
	name, err := g.cfg.FunctionTokens.VerifyFunctionToken(tok)
	if err != nil {
		return &api.Error{Code: "UnrecognizedClientException", Status: http.StatusForbidden, Message: "The security token included in the request is invalid: " + err.Error()}
	}
	principal := "function/" + name
	fnName, version, _ := strings.Cut(name, ":")
	var fn *registry.Function
	var ok bool
	if version == "" || version == registry.Latest {
		fn, ok = g.cfg.Functions.Get(fnName)
	} else {
		fn, ok = g.cfg.Functions.Version(fnName, version)
	}
	if !ok {
		return &api.Error{Code: "UnrecognizedClientException", Status: http.StatusForbidden, Message: fmt.Sprintf("The security token included in the request is invalid: function %s no longer exists", name)}
	}
	bucket := r.PathValue("bucket")
	if action != "gust:ReadBucket" && action != "gust:WriteBucket" || bucket == "" {
		return g.accessDenied(principal, action, "*")
	}
	switch {
	case strings.HasPrefix(r.URL.Path, kvPathPrefix) && fn.GrantsKV(bucket),
		strings.HasPrefix(r.URL.Path, objectsPathPrefix) && fn.GrantsObjects(bucket):
		return nil
	}
	return &api.Error{Code: api.ErrAccessDenied, Status: http.StatusForbidden,
		Message: fmt.Sprintf("function %s is not granted the bucket %s: add it to the function's grants", name, bucket)}
}
