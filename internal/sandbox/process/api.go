//go:build linux

package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/gustfaas/gust/internal/sandbox"
)

// The Runtime API (version 2018-06-01), as Lambda serves it to a runtime.
const apiPrefix = "/2018-06-01/runtime"

// instListener is one instance's Runtime API listener. It tags the
// connections it returns with the instance, and when uid is not -1 it
// returns only connections whose client socket belongs to uid (see
// peerUID): any other is reset before a byte of it is read. Connections
// are kept alive, so the check is once per connection.
type instListener struct {
	net.Listener
	inst *instance
	uid  int
}

func (l *instListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.uid == -1 {
			return &instConn{Conn: c, inst: l.inst}, nil
		}
		if uid, err := peerUID(c); err == nil && uid == l.uid {
			return &instConn{Conn: c, inst: l.inst}, nil
		}
		l.inst.refused.Add(1)
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // reset: no TIME_WAIT left behind
		}
		c.Close()
	}
}

type instConn struct {
	net.Conn
	inst *instance
}

type instKey struct{}

func connContext(ctx context.Context, c net.Conn) context.Context {
	if ic, ok := c.(*instConn); ok {
		return context.WithValue(ctx, instKey{}, ic.inst)
	}
	return ctx
}

func (rt *Runtime) apiHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+apiPrefix+"/invocation/next", withInstance(handleNext))
	mux.HandleFunc("POST "+apiPrefix+"/invocation/{id}/response", withInstance(handleResponse))
	mux.HandleFunc("POST "+apiPrefix+"/invocation/{id}/error", withInstance(handleError))
	mux.HandleFunc("POST "+apiPrefix+"/init/error", withInstance(handleInitError))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		apiError(w, http.StatusNotFound, "InvalidRequest", "unknown Runtime API path "+r.Method+" "+r.URL.Path)
	})
	return mux
}

func withInstance(h func(*instance, http.ResponseWriter, *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		in, ok := r.Context().Value(instKey{}).(*instance)
		if !ok {
			apiError(w, http.StatusInternalServerError, "Runtime.Unknown", "connection of no instance")
			return
		}
		h(in, w, r)
	}
}

func apiError(w http.ResponseWriter, code int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(sandbox.FunctionError{Type: typ, Message: msg})
}

func accepted(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, `{"status":"OK"}`+"\n")
}

// handleNext long-polls for the next invocation. The first call ends the
// instance's initialisation.
func handleNext(in *instance, w http.ResponseWriter, r *http.Request) {
	in.markReady()
	in.mu.Lock()
	if cur := in.cur; cur != nil {
		// The runtime gave up on an invocation without answering it.
		in.cur = nil
		in.lastID = cur.req.RequestID
		cur.done <- result{err: &sandbox.FunctionError{Type: "Runtime.InvalidResponse",
			Message: "RequestId: " + cur.req.RequestID + " Error: the runtime asked for the next invocation without answering this one"}}
	}
	in.mu.Unlock()
	var inv *invocation
	select {
	case inv = <-in.next:
	case <-in.exited:
		return
	case <-r.Context().Done():
		return
	}
	in.mu.Lock()
	in.cur = inv
	in.mu.Unlock()
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Lambda-Runtime-Aws-Request-Id", inv.req.RequestID)
	h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(inv.req.Deadline.UnixMilli(), 10))
	h.Set("Lambda-Runtime-Invoked-Function-Arn", in.arn)
	h.Set("Lambda-Runtime-Trace-Id", inv.trace)
	h.Set("Content-Length", strconv.Itoa(len(inv.req.Payload)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(inv.req.Payload)
}

// take claims the current invocation for an answer, or writes the error
// Lambda gives for a wrong or repeated request id.
func (in *instance) take(w http.ResponseWriter, id string) *invocation {
	in.mu.Lock()
	defer in.mu.Unlock()
	if cur := in.cur; cur != nil && cur.req.RequestID == id {
		in.cur = nil
		in.lastID = id
		return cur
	}
	if id == in.lastID && id != "" {
		apiError(w, http.StatusForbidden, "InvalidStateTransition", "State transition from Ready to InvocationResponse failed for runtime. Error: State transition is not allowed")
		return nil
	}
	apiError(w, http.StatusBadRequest, "InvalidRequestID", "Invalid request ID: "+strconv.Quote(id))
	return nil
}

// readBody reads a posted payload up to MaxPayloadBytes; ok is false when
// it was larger.
func readBody(w http.ResponseWriter, r *http.Request) (body []byte, ok bool, err error) {
	body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, MaxPayloadBytes))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, false, nil
	}
	return body, true, err
}

func handleResponse(in *instance, w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	body, ok, err := readBody(w, r)
	if err != nil {
		apiError(w, http.StatusBadRequest, "InvalidRequest", "reading the response: "+err.Error())
		return
	}
	inv := in.take(w, id)
	if inv == nil {
		return
	}
	if !ok {
		msg := fmt.Sprintf("Response payload size exceeded maximum allowed payload size (%d bytes).", MaxPayloadBytes)
		inv.done <- result{err: &sandbox.FunctionError{Type: "Function.ResponseSizeTooLarge", Message: msg}}
		apiError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", msg)
		return
	}
	inv.done <- result{payload: body}
	accepted(w)
}

func handleError(in *instance, w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	body, _, err := readBody(w, r)
	if err != nil {
		apiError(w, http.StatusBadRequest, "InvalidRequest", "reading the error: "+err.Error())
		return
	}
	inv := in.take(w, id)
	if inv == nil {
		return
	}
	inv.done <- result{err: parseFunctionError(r.Header.Get("Lambda-Runtime-Function-Error-Type"), body)}
	accepted(w)
}

func handleInitError(in *instance, w http.ResponseWriter, r *http.Request) {
	body, _, err := readBody(w, r)
	if err != nil {
		apiError(w, http.StatusBadRequest, "InvalidRequest", "reading the error: "+err.Error())
		return
	}
	select {
	case <-in.ready:
		apiError(w, http.StatusForbidden, "InvalidStateTransition", "State transition from Ready to InitError failed for runtime. Error: State transition is not allowed")
		return
	default:
	}
	in.mu.Lock()
	if in.initErr == nil {
		in.initErr = parseFunctionError(r.Header.Get("Lambda-Runtime-Function-Error-Type"), body)
		close(in.initDone)
	}
	in.mu.Unlock()
	accepted(w)
}

// parseFunctionError reads an error a runtime posted. Anything that is not
// Lambda's JSON error shape is kept as the message of a Runtime.Unknown
// error.
func parseFunctionError(header string, body []byte) *sandbox.FunctionError {
	var fe sandbox.FunctionError
	if err := json.Unmarshal(body, &fe); err != nil || (fe.Type == "" && fe.Message == "") {
		msg := body
		if len(msg) > 1024 {
			msg = msg[:1024]
		}
		fe = sandbox.FunctionError{Type: "Runtime.Unknown", Message: string(msg)}
		if !utf8.Valid(msg) {
			fe.Message = fmt.Sprintf("%q", msg)
		}
	}
	if fe.Type == "" {
		fe.Type = header
	}
	if fe.Type == "" {
		fe.Type = "Runtime.Unknown"
	}
	return &fe
}
