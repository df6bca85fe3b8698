package gateway

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/internal/keyring"
)

// Actions of access key management; only admin keys may perform them.
const (
	ActionCreateKey = "gust:CreateKey"
	ActionListKeys  = "gust:ListKeys"
	ActionDeleteKey = "gust:DeleteKey"
)

// keyRoutes registers access key management at api.KeysPath.
func (g *Gateway) keyRoutes(route func(pattern, action string, limit int64, h func(http.ResponseWriter, *http.Request, []byte))) {
	route("POST "+api.KeysPath, ActionCreateKey, 0, g.createKey)
	route("GET "+api.KeysPath, ActionListKeys, 0, g.listKeys)
	route("DELETE "+api.KeysPath+"/{id}", ActionDeleteKey, 0, g.deleteKey)
}

// createKey answers 201 with the new key, its secret included: the only
// time the node shows it.
func (g *Gateway) createKey(w http.ResponseWriter, r *http.Request, body []byte) {
	var req api.CreateKeyRequest
	if !g.decodeJSON(w, r, body, &req) {
		return
	}
	key, err := g.cfg.Keys.Create(r.Context(), req)
	if err != nil {
		g.writeError(w, r, g.keyError(err, ""))
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, key)
}

func (g *Gateway) listKeys(w http.ResponseWriter, r *http.Request, _ []byte) {
	keys, err := g.cfg.Keys.List(r.Context())
	if err != nil {
		g.writeError(w, r, g.keyError(err, ""))
		return
	}
	for i := range keys {
		keys[i].SecretAccessKey = "" // never shown again, whatever the manager returns
	}
	writeJSON(w, http.StatusOK, api.ListKeysResponse{Keys: keys})
}

func (g *Gateway) deleteKey(w http.ResponseWriter, r *http.Request, _ []byte) {
	id := r.PathValue("id")
	if err := g.cfg.Keys.Revoke(r.Context(), id); err != nil {
		g.writeError(w, r, g.keyError(err, id))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// keyError maps a key manager's error to Lambda's.
func (g *Gateway) keyError(err error, id string) *api.Error {
	switch {
	case errors.Is(err, keyring.ErrNotFound):
		return &api.Error{Code: api.ErrResourceNotFound, Status: http.StatusNotFound,
			Message: fmt.Sprintf("Access key not found: %q", id)}
	case errors.Is(err, keyring.ErrLastAdmin):
		return &api.Error{Code: api.ErrResourceConflict, Status: http.StatusConflict, Message: err.Error()}
	}
	return g.apiError(err, "")
}
