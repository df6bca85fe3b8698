package gateway

import (
	"context"
	"fmt"
	"net/http"

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
