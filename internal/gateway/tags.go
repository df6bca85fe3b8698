package gateway

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/internal/control"
	"github.com/gustfaas/gust/internal/registry"
)

// Limits on tags, as on Lambda.
const (
	maxTags        = 50
	maxTagKeyLen   = 128
	maxTagValueLen = 256
)

// tagTarget resolves the {arn} of a tags operation: an unqualified
// function ARN (or name).
func (g *Gateway) tagTarget(r *http.Request) (*registry.Function, *api.Error) {
	raw := r.PathValue("arn")
	name, q, err := registry.ParseName(raw)
	if err != nil {
		return nil, g.apiError(err, raw)
	}
	if q != "" {
		return nil, &api.Error{Code: api.ErrInvalidParameterValue, Status: http.StatusBadRequest,
			Message: fmt.Sprintf("Tags apply to functions, not to versions or aliases: use the unqualified ARN %s", g.arn(name))}
	}
	fn, ok := g.cfg.Functions.Get(name)
	if !ok {
		return nil, g.notFound(name)
	}
	return fn, nil
}

func checkTag(k, v string) *api.Error {
	bad := func(msg string) *api.Error {
		return &api.Error{Code: api.ErrInvalidParameterValue, Status: http.StatusBadRequest, Message: msg}
	}
	switch {
	case k == "" || len(k) > maxTagKeyLen:
		return bad(fmt.Sprintf("tag key %q must be 1 to %d characters", k, maxTagKeyLen))
	case strings.HasPrefix(strings.ToLower(k), "aws:"):
		return bad(fmt.Sprintf("tag key %q uses the reserved prefix aws:", k))
	case len(v) > maxTagValueLen:
		return bad(fmt.Sprintf("the value of tag %q is %d characters; at most %d are allowed", k, len(v), maxTagValueLen))
	}
	return nil
}

func (g *Gateway) tagResource(w http.ResponseWriter, r *http.Request, body []byte) {
	fn, aerr := g.tagTarget(r)
	if aerr != nil {
		g.writeError(w, r, aerr)
		return
	}
	var req api.TagResourceRequest
	if !g.decodeJSON(w, r, body, &req) {
		return
	}
	if len(req.Tags) == 0 {
		g.writeError(w, r, &api.Error{Code: api.ErrInvalidParameterValue, Status: http.StatusBadRequest, Message: "Tags is required and must hold at least one tag"})
		return
	}
	for k, v := range req.Tags {
		if aerr := checkTag(k, v); aerr != nil {
			g.writeError(w, r, aerr)
			return
		}
	}
	_, err := g.cfg.Control.UpdateSettings(r.Context(), fn.Name, func(f *registry.Function) error {
		if f.Tags == nil {
			f.Tags = map[string]string{}
		}
		for k, v := range req.Tags {
			f.Tags[k] = v
		}
		if len(f.Tags) > maxTags {
			return &control.CodeError{Reason: fmt.Sprintf("a function has at most %d tags; this change would make %d", maxTags, len(f.Tags))}
		}
		return nil
	})
	if err != nil {
		g.writeError(w, r, g.apiError(err, fn.Name))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (g *Gateway) untagResource(w http.ResponseWriter, r *http.Request, _ []byte) {
	fn, aerr := g.tagTarget(r)
	if aerr != nil {
		g.writeError(w, r, aerr)
		return
	}
	keys := r.URL.Query()["tagKeys"]
	if len(keys) == 0 {
		g.writeError(w, r, &api.Error{Code: api.ErrInvalidParameterValue, Status: http.StatusBadRequest, Message: "tagKeys is required: name at least one tag to remove"})
		return
	}
	_, err := g.cfg.Control.UpdateSettings(r.Context(), fn.Name, func(f *registry.Function) error {
		for _, k := range keys {
			delete(f.Tags, k)
		}
		if len(f.Tags) == 0 {
			f.Tags = nil
		}
		return nil
	})
	if err != nil {
		g.writeError(w, r, g.apiError(err, fn.Name))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (g *Gateway) listTags(w http.ResponseWriter, r *http.Request, _ []byte) {
	fn, aerr := g.tagTarget(r)
	if aerr != nil {
		g.writeError(w, r, aerr)
		return
	}
	tags := fn.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	writeJSON(w, http.StatusOK, api.ListTagsResponse{Tags: tags})
}
