package gateway

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/internal/registry"
)

// pageParams reads Lambda's Marker and MaxItems (default 50).
func (g *Gateway) pageParams(w http.ResponseWriter, r *http.Request) (marker string, max int, ok bool) {
	q := r.URL.Query()
	max = 50
	if s := q.Get("MaxItems"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 10000 {
			g.writeError(w, r, &api.Error{Code: api.ErrInvalidParameterValue, Status: http.StatusBadRequest,
				Message: fmt.Sprintf("MaxItems %q must be a number between 1 and 10000", s)})
			return "", 0, false
		}
		max = n
	}
	return q.Get("Marker"), max, true
}

// pageOf cuts one page out of items (sorted as the listing is): those
// after the one whose key is marker, at most max, and the next marker
// when more remain.
func pageOf[T any](items []T, key func(T) string, marker string, max int) ([]T, *string) {
	start := 0
	if marker != "" {
		start = len(items)
		for i, it := range items {
			if key(it) == marker {
				start = i + 1
				break
			}
		}
	}
	end := min(start+max, len(items))
	var next *string
	if end < len(items) {
		m := key(items[end-1])
		next = &m
	}
	return items[start:end], next
}

func (g *Gateway) publishVersion(w http.ResponseWriter, r *http.Request, body []byte) {
	fn, aerr := g.resolveUnqualified(r)
	if aerr != nil {
		g.writeError(w, r, aerr)
		return
	}
	var req api.PublishVersionRequest
	if !g.decodeJSON(w, r, body, &req) {
		return
	}
	digest := ""
	if req.CodeSha256 != "" {
		raw, err := base64.StdEncoding.DecodeString(req.CodeSha256)
		if err != nil || len(raw) != 32 {
			// Accept the hex form too, as `gust` prints it.
			if raw, err = hex.DecodeString(req.CodeSha256); err != nil || len(raw) != 32 {
				g.writeError(w, r, &api.Error{Code: api.ErrInvalidParameterValue, Status: http.StatusBadRequest,
					Message: fmt.Sprintf("CodeSha256 %q is not a base64 (or hex) SHA-256 digest", req.CodeSha256)})
				return
			}
		}
		digest = hex.EncodeToString(raw)
	}
	v, err := g.cfg.Control.Publish(r.Context(), fn.Name, digest, req.RevisionID, req.Description)
	if err != nil {
		g.writeError(w, r, g.apiError(err, fn.Name))
		return
	}
	writeJSON(w, http.StatusCreated, g.configuration(v))
}

func (g *Gateway) listVersions(w http.ResponseWriter, r *http.Request, _ []byte) {
	fn, aerr := g.resolveUnqualified(r)
	if aerr != nil {
		g.writeError(w, r, aerr)
		return
	}
	marker, max, ok := g.pageParams(w, r)
	if !ok {
		return
	}
	all := append([]*registry.Function{fn}, g.cfg.Functions.Versions(fn.Name)...)
	items, next := pageOf(all, (*registry.Function).Qualifier, marker, max)
	resp := api.ListVersionsResponse{Versions: []api.FunctionConfiguration{}, NextMarker: next}
	for _, f := range items {
		resp.Versions = append(resp.Versions, g.configuration(f))
	}
	writeJSON(w, http.StatusOK, resp)
}

// resolveUnqualified resolves {name} for operations on the function as a
// whole, which refuse a qualifier.
func (g *Gateway) resolveUnqualified(r *http.Request) (*registry.Function, *api.Error) {
	raw := r.PathValue("name")
	name, q, err := registry.ParseName(raw)
	if err != nil {
		return nil, g.apiError(err, raw)
	}
	if q != "" || r.URL.Query().Get("Qualifier") != "" {
		return nil, &api.Error{Code: api.ErrInvalidParameterValue, Status: http.StatusBadRequest,
			Message: fmt.Sprintf("%s takes an unqualified function name; remove the qualifier", raw)}
	}
	fn, ok := g.cfg.Functions.Get(name)
	if !ok {
		return nil, g.notFound(name)
	}
	return fn, nil
}
