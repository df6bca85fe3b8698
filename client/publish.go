package client

// Publishing messages on the node's NATS, and the queue streams queue
// triggers read.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/gustfaas/gust/api"
)

// Publish publishes data on subject, with headers (NATS headers: names
// keep their case). When a stream stores the subject, the result names
// the stream and the message's sequence; otherwise the message went to
// core NATS (Stream is empty). A bad subject (a wildcard, an empty
// token, white space, a subject of Gust's own) is an *api.Error with Code
// InvalidParameterValueException and a message naming the problem.
func (c *Client) Publish(ctx context.Context, subject string, data []byte, headers map[string][]string) (api.PublishResult, error) {
	var out api.PublishResult
	if subject == "" {
		return out, errors.New("client: subject is empty")
	}
	var q url.Values
	if len(headers) > 0 {
		q = url.Values{}
		keys := make([]string, 0, len(headers))
		for k := range headers {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if k == "" || strings.Contains(k, ":") {
				return out, fmt.Errorf("client: header name %q: want a name without ':'", k)
			}
			for _, v := range headers[k] {
				q.Add(api.PublishHeaderParam, k+":"+v)
			}
		}
	}
	segs := append(pathSegments(api.PublishPath), subject)
	resp, err := c.do(ctx, http.MethodPost, segs, q, http.Header{"Content-Type": {"application/octet-stream"}}, data)
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxErrorBody)).Decode(&out); err != nil {
		return out, fmt.Errorf("publish %s: decode response: %w", subject, err)
	}
	return out, nil
}

// pathSegments splits an API path constant into segments.
func pathSegments(p string) []string { return strings.Split(strings.TrimPrefix(p, "/"), "/") }

func streamsPath(name ...string) []string { return append(pathSegments(api.StreamsPath), name...) }

func checkStreamName(name string) error {
	if name == "" {
		return errors.New("client: stream name is empty")
	}
	return nil
}

// PutStream creates a queue stream, or updates its subjects and max
// age. A name or subject the node refuses is an *api.Error with Code
// InvalidParameterValueException; subjects another stream stores, or a
// name of Gust's own streams, ResourceConflictException.
func (c *Client) PutStream(ctx context.Context, name string, in api.PutStreamRequest) (api.Stream, error) {
	var out api.Stream
	if err := checkStreamName(name); err != nil {
		return out, err
	}
	err := c.doJSON(ctx, http.MethodPut, streamsPath(name), nil, in, &out)
	return out, err
}

// GetStream returns a queue stream; a missing one is an *api.Error with
// Code ResourceNotFoundException.
func (c *Client) GetStream(ctx context.Context, name string) (api.Stream, error) {
	var out api.Stream
	if err := checkStreamName(name); err != nil {
		return out, err
	}
	err := c.doJSON(ctx, http.MethodGet, streamsPath(name), nil, nil, &out)
	return out, err
}

// ListStreams returns every queue stream, sorted by name.
func (c *Client) ListStreams(ctx context.Context) ([]api.Stream, error) {
	var out api.StreamList
	if err := c.doJSON(ctx, http.MethodGet, streamsPath(), nil, nil, &out); err != nil {
		return nil, err
	}
	if out.Streams == nil {
		out.Streams = []api.Stream{}
	}
	return out.Streams, nil
}

// DeleteStream deletes a queue stream and its messages.
func (c *Client) DeleteStream(ctx context.Context, name string) error {
	if err := checkStreamName(name); err != nil {
		return err
	}
	return c.doJSON(ctx, http.MethodDelete, streamsPath(name), nil, nil, nil)
}
