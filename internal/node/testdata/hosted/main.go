// Command hosted is a Gust SDK function for the node's tests of host
// calls: its event names a storage or HTTP operation to perform through
// the SDK, and it answers what happened.
package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"

	gust "github.com/gustfaas/gust/sdk/go"
)

type event struct {
	Op     string `json:"op"`
	Bucket string `json:"bucket"`
	Key    string `json:"key"`
	Value  string `json:"value"`
	URL    string `json:"url"`
}

type result struct {
	Value  string   `json:"value,omitempty"`
	Keys   []string `json:"keys,omitempty"`
	Status int      `json:"status,omitempty"`
	Size   int64    `json:"size,omitempty"`
}

func init() { gust.Handle(handle) }

func handle(ctx context.Context, ev event) (result, error) {
	kv, objects := gust.KV(ev.Bucket), gust.Objects(ev.Bucket)
	switch ev.Op {
	case "kv.put":
		_, err := kv.Put(ctx, ev.Key, []byte(ev.Value))
		return result{}, err
	case "kv.get":
		e, err := kv.Get(ctx, ev.Key)
		return result{Value: string(e.Value)}, err
	case "kv.list":
		keys, err := kv.List(ctx, "")
		return result{Keys: keys}, err
	case "obj.put":
		info, err := objects.Put(ctx, ev.Key, strings.NewReader(ev.Value), "text/plain")
		return result{Size: info.Size}, err
	case "obj.get":
		r, err := objects.Get(ctx, ev.Key)
		if err != nil {
			return result{}, err
		}
		defer r.Close()
		b, err := io.ReadAll(r)
		return result{Value: string(b), Size: r.Info.Size}, err
	case "http.get":
		resp, err := http.Get(ev.URL)
		if err != nil {
			// The SDK's error, unwrapped from *url.Error, keeps its type
			// (Host.AccessDenied and so on) for the caller.
			var he *gust.HostError
			if errors.As(err, &he) {
				return result{}, he
			}
			return result{}, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return result{Status: resp.StatusCode, Value: string(b)}, err
	}
	return result{}, gust.Error("Test.UnknownOp", "unknown op "+ev.Op)
}

func main() {}
