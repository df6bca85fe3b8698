package node

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/internal/async"
	"github.com/gustfaas/gust/internal/destination"
	"github.com/gustfaas/gust/internal/engine"
	"github.com/gustfaas/gust/internal/registry"
	"github.com/gustfaas/gust/internal/trigger/manager"
)

// triggerFunctions tells the trigger manager which functions exist.
type triggerFunctions struct{ reg *registry.Registry }

func (f triggerFunctions) Exists(name, qualifier string) bool {
	_, _, err := f.reg.Resolve(name, qualifier, 0)
	return err == nil
}

// triggerInvoker runs a trigger's batches synchronously.
type triggerInvoker struct {
	reg *registry.Registry
	eng *engine.Engine
}

func (t triggerInvoker) Invoke(ctx context.Context, function, qualifier string, payload []byte) ([]byte, error) {
	fn, _, err := t.reg.Resolve(function, qualifier, rand.Float64())
	if err != nil {
		return nil, err
	}
	res, err := t.eng.Invoke(ctx, fn, uuid.NewString(), payload)
	if err != nil {
		return nil, err
	}
	if res.Err != nil {
		return nil, &manager.FunctionError{Type: res.Err.Type, Message: res.Err.Message}
	}
	return res.Payload, nil
}

// triggerQueue makes bucket changes asynchronous invocations.
type triggerQueue struct{ q *async.Queue }

func (t triggerQueue) Enqueue(ctx context.Context, function, qualifier string, payload []byte, dedupID, source string) (string, error) {
	a, err := t.q.Enqueue(ctx, async.Request{Function: function, Qualifier: qualifier, Payload: payload, DedupID: dedupID, Source: source})
	return a.RequestID, err
}

// triggerDeadLetters sends what a trigger could not deliver where the
// function's failure destinations say, else to Gust's dead-letter queue.
type triggerDeadLetters struct{ r *destination.Router }

func (t triggerDeadLetters) DeadLetter(ctx context.Context, tr api.Trigger, payload []byte, attempts int, cause error) error {
	o := destination.Outcome{
		RequestID: uuid.NewString(), Function: tr.Function, Qualifier: tr.Qualifier, Payload: payload,
		Enqueued: time.Now(), Source: "trigger:" + tr.Name, Attempts: attempts,
		Condition: destination.ConditionRetriesExhausted, Error: cause.Error(),
	}
	var fe *manager.FunctionError
	if errors.As(cause, &fe) {
		o.Executed, o.FunctionError = true, "Unhandled"
	}
	return t.r.Deliver(ctx, o)
}

// functionCredentials gives a process function's instances the node's
// API address and a token bound to the function version. The token
// allows only what the version's grants allow, checked at each request,
// so a function without grants can do nothing with it, and a grant added
// later needs no new token.
func (n *Node) functionCredentials(function, version string) map[string]string {
	if n.keys == nil || n.ln == nil {
		return nil
	}
	if version == "" {
		version = registry.Latest
	}
	return map[string]string{
		"GUST_API_URL": n.URL(),
		"GUST_TOKEN":   n.keys.FunctionToken(function + ":" + version),
	}
}
