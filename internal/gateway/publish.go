package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/internal/trigger/queue"
)

// Publisher publishes messages on the node's NATS and manages the queue
// streams queue triggers read (implemented by *queue.Publisher). Its
// errors are *queue.ValidationError, queue.ErrStreamNotFound,
// queue.ErrNotQueueStream and queue.ErrSubjectsOverlap (wrapped), or
// others.
type Publisher interface {
	Publish(ctx context.Context, subject string, data []byte, headers map[string][]string) (api.PublishResult, error)
	PutStream(ctx context.Context, name string, in api.PutStreamRequest) (api.Stream, error)
	Stream(ctx context.Context, name string) (api.Stream, error)
	Streams(ctx context.Context) ([]api.Stream, error)
	DeleteStream(ctx context.Context, name string) error
}

var _ Publisher = (*queue.Publisher)(nil)

// publishRoutes registers the publish and queue-stream endpoints (the
// path names a stream with {stream}: authorization reads {name} as a
// function).
func (g *Gateway) publishRoutes(route func(pattern, action string, limit int64, h func(http.ResponseWriter, *http.Request, []byte))) {
	if g.cfg.Publisher == nil {
		return
	}
	route("POST "+api.PublishPath+"/{subject...}", "gust:Publish", api.MaxPublishBytes, g.publish)
	p := api.StreamsPath
	route("GET "+p, "gust:ListStreams", 0, g.listStreams)
	route("GET "+p+"/{$}", "gust:ListStreams", 0, g.listStreams)
	route("GET "+p+"/{stream}", "gust:GetStream", 0, g.getStream)
	route("PUT "+p+"/{stream}", "gust:PutStream", 0, g.putStream)
	route("DELETE "+p+"/{stream}", "gust:DeleteStream", 0, g.deleteStream)
}

// publishError maps the publisher's errors to Lambda-style ones.
func (g *Gateway) publishError(err error, name string) *api.Error {
	var ve *queue.ValidationError
	switch {
	case errors.As(err, &ve):
		return &api.Error{Code: api.ErrInvalidParameterValue, Status: http.StatusBadRequest, Message: ve.Message}
	case errors.Is(err, queue.ErrStreamNotFound):
		return &api.Error{Code: api.ErrResourceNotFound, Status: http.StatusNotFound, Message: "Stream not found: " + name}
	case errors.Is(err, queue.ErrNotQueueStream), errors.Is(err, queue.ErrSubjectsOverlap):
		return &api.Error{Code: api.ErrResourceConflict, Status: http.StatusConflict, Message: err.Error()}
	}
	return g.apiError(err, name)
}

func (g *Gateway) publish(w http.ResponseWriter, r *http.Request, body []byte) {
	subject := r.PathValue("subject")
	var headers map[string][]string
	for _, h := range r.URL.Query()[api.PublishHeaderParam] {
		k, v, ok := strings.Cut(h, ":")
		if !ok || k == "" {
			g.writeError(w, r, &api.Error{Code: api.ErrInvalidParameterValue, Status: http.StatusBadRequest,
				Message: fmt.Sprintf("header %q: want %s=NAME:VALUE", h, api.PublishHeaderParam)})
			return
		}
		if headers == nil {
			headers = map[string][]string{}
		}
		headers[k] = append(headers[k], strings.TrimLeft(v, " "))
	}
	res, err := g.cfg.Publisher.Publish(r.Context(), subject, body, headers)
	if err != nil {
		g.writeError(w, r, g.publishError(err, ""))
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (g *Gateway) listStreams(w http.ResponseWriter, r *http.Request, _ []byte) {
	list, err := g.cfg.Publisher.Streams(r.Context())
	if err != nil {
		g.writeError(w, r, g.publishError(err, ""))
		return
	}
	if list == nil {
		list = []api.Stream{}
	}
	writeJSON(w, http.StatusOK, api.StreamList{Streams: list})
}

func (g *Gateway) getStream(w http.ResponseWriter, r *http.Request, _ []byte) {
	name := r.PathValue("stream")
	s, err := g.cfg.Publisher.Stream(r.Context(), name)
	if err != nil {
		g.writeError(w, r, g.publishError(err, name))
		return
	}
	writeJSON(w, http.StatusOK, s)
}

func (g *Gateway) putStream(w http.ResponseWriter, r *http.Request, body []byte) {
	name := r.PathValue("stream")
	var req api.PutStreamRequest
	if !g.decodeJSON(w, r, body, &req) {
		return
	}
	s, err := g.cfg.Publisher.PutStream(r.Context(), name, req)
	if err != nil {
		g.writeError(w, r, g.publishError(err, name))
		return
	}
	writeJSON(w, http.StatusOK, s)
}

func (g *Gateway) deleteStream(w http.ResponseWriter, r *http.Request, _ []byte) {
	name := r.PathValue("stream")
	if err := g.cfg.Publisher.DeleteStream(r.Context(), name); err != nil {
		g.writeError(w, r, g.publishError(err, name))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
