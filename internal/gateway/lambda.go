package gateway

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/internal/logs"
	"github.com/gustfaas/gust/internal/registry"
)

// configuration renders a stored function as Lambda's FunctionConfiguration.
func (g *Gateway) configuration(f *registry.Function) api.FunctionConfiguration {
	sha := f.CodeDigest
	if raw, err := hex.DecodeString(f.CodeDigest); err == nil {
		sha = base64.StdEncoding.EncodeToString(raw)
	}
	c := api.FunctionConfiguration{
		FunctionName:     f.Name,
		FunctionArn:      g.qualifiedArn(f.Name, f.Version),
		Runtime:          f.Runtime,
		Role:             f.Role,
		Handler:          f.Handler,
		CodeSize:         f.CodeSize,
		Description:      f.Description,
		Timeout:          int32(f.TimeoutSec),
		MemorySize:       int32(f.MemoryMB),
		LastModified:     f.LastModified.Format(api.TimeLayout),
		CodeSha256:       sha,
		Version:          f.Qualifier(),
		RevisionID:       f.RevisionID,
		State:            "Active",
		LastUpdateStatus: "Successful",
		PackageType:      "Zip",
		Architectures:    []string{"x86_64"},
		GustKind:         f.Kind,
		GustIdleTimeout:  int32(f.IdleTimeoutSec),
		DeadLetterConfig: deadLetterConfig(f),
	}
	if len(f.Env) > 0 {
		c.Environment = &api.EnvironmentResponse{Variables: f.Env}
	}
	if g.cfg.Isolation != nil {
		c.GustIsolation = g.cfg.Isolation(f.Runtime)
	}
	if !f.Grants.Empty() {
		c.GustGrants = &api.Grants{KV: f.Grants.KV, Objects: f.Grants.Objects, Hosts: f.Grants.Hosts}
	}
	return c
}

// grantsOf converts the API's grants (nil: none).
func grantsOf(g *api.Grants) *registry.Grants {
	if g == nil {
		return nil
	}
	return &registry.Grants{KV: slices.Clone(g.KV), Objects: slices.Clone(g.Objects), Hosts: slices.Clone(g.Hosts)}
}

// decodeJSON decodes a request body, answering Lambda's error on failure.
func (g *Gateway) decodeJSON(w http.ResponseWriter, r *http.Request, body []byte, v any) bool {
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	if err := json.Unmarshal(body, v); err != nil {
		g.writeError(w, r, &api.Error{Code: api.ErrInvalidRequestContent, Status: http.StatusBadRequest,
			Message: "Could not parse request body into json: " + err.Error()})
		return false
	}
	return true
}

func (g *Gateway) createFunction(w http.ResponseWriter, r *http.Request, body []byte) {
	var req api.CreateFunctionRequest
	if !g.decodeJSON(w, r, body, &req) {
		return
	}
	name, q, err := registry.ParseName(req.FunctionName)
	if err == nil && q != "" {
		err = &registry.ValidationError{Field: "functionName", Message: "FunctionName must not carry a qualifier on CreateFunction"}
	}
	if err != nil {
		g.writeError(w, r, g.apiError(err, req.FunctionName))
		return
	}
	if req.Code == nil || (len(req.Code.ZipFile) == 0 && req.Code.S3Bucket == "" && req.Code.ImageURI == "") {
		g.writeError(w, r, &api.Error{Code: api.ErrInvalidParameterValue, Status: http.StatusBadRequest,
			Message: "Code is required: send Code.ZipFile holding a zip with one .wasm file, or a wasm module"})
		return
	}
	if req.Code.S3Bucket != "" || req.Code.ImageURI != "" {
		g.writeError(w, r, &api.Error{Code: api.ErrInvalidParameterValue, Status: http.StatusBadRequest,
			Message: "Gust takes code only as Code.ZipFile; S3 and container image code are not supported"})
		return
	}
	if req.PackageType != "" && req.PackageType != "Zip" {
		g.writeError(w, r, &api.Error{Code: api.ErrInvalidParameterValue, Status: http.StatusBadRequest,
			Message: fmt.Sprintf("PackageType %s is not supported: Gust runs Zip packages", req.PackageType)})
		return
	}
	fn := &registry.Function{
		Name:        name,
		Runtime:     req.Runtime,
		Handler:     req.Handler,
		Role:        req.Role,
		Description: req.Description,
		Tags:        req.Tags,
	}
	if req.MemorySize != nil {
		fn.MemoryMB = int(*req.MemorySize)
		if fn.MemoryMB == 0 {
			fn.MemoryMB = -1 // explicit zero is invalid, not "default"
		}
	}
	if req.Timeout != nil {
		fn.TimeoutSec = int(*req.Timeout)
		if fn.TimeoutSec == 0 {
			fn.TimeoutSec = -1
		}
	}
	if req.Environment != nil {
		fn.Env = req.Environment.Variables
	}
	if req.GustIdleTimeout != nil {
		fn.IdleTimeoutSec = int(*req.GustIdleTimeout)
	}
	fn.Grants = grantsOf(req.GustGrants)
	if err := g.setDeadLetter(fn, req.DeadLetterConfig); err != nil {
		g.writeError(w, r, g.apiError(err, name))
		return
	}
	stored, err := g.cfg.Control.Create(r.Context(), fn, req.Code.ZipFile)
	if err == nil && req.Publish {
		stored, err = g.cfg.Control.Publish(r.Context(), name, "", "", "")
	}
	if err != nil {
		g.writeError(w, r, g.apiError(err, name))
		return
	}
	writeJSON(w, http.StatusCreated, g.configuration(stored))
}

func (g *Gateway) listFunctions(w http.ResponseWriter, r *http.Request, _ []byte) {
	all := g.cfg.Functions.List()
	q := r.URL.Query()
	max := 50
	if s := q.Get("MaxItems"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 10000 {
			g.writeError(w, r, &api.Error{Code: api.ErrInvalidParameterValue, Status: http.StatusBadRequest,
				Message: fmt.Sprintf("MaxItems %q must be a number between 1 and 10000", s)})
			return
		}
		max = n
	}
	start := 0
	if m := q.Get("Marker"); m != "" {
		// The marker is the last name returned; continue after it.
		start = len(all)
		for i, f := range all {
			if f.Name > m {
				start = i
				break
			}
		}
	}
	resp := api.ListFunctionsResponse{Functions: []api.FunctionConfiguration{}}
	end := min(start+max, len(all))
	for _, f := range all[start:end] {
		resp.Functions = append(resp.Functions, g.configuration(f))
	}
	if end < len(all) {
		m := all[end-1].Name
		resp.NextMarker = &m
	}
	writeJSON(w, http.StatusOK, resp)
}

func (g *Gateway) getFunction(w http.ResponseWriter, r *http.Request, _ []byte) {
	fn, aerr := g.resolve(r.PathValue("name"), r.URL.Query().Get("Qualifier"))
	if aerr != nil {
		g.writeError(w, r, aerr)
		return
	}
	writeJSON(w, http.StatusOK, api.GetFunctionResponse{
		Configuration: g.configuration(fn),
		Code:          api.FunctionCodeLocation{RepositoryType: "Gust"},
		Tags:          fn.Tags,
		Concurrency:   g.concurrencyOf(fn),
	})
}

func (g *Gateway) getFunctionConfiguration(w http.ResponseWriter, r *http.Request, _ []byte) {
	fn, aerr := g.resolve(r.PathValue("name"), r.URL.Query().Get("Qualifier"))
	if aerr != nil {
		g.writeError(w, r, aerr)
		return
	}
	writeJSON(w, http.StatusOK, g.configuration(fn))
}

func (g *Gateway) deleteFunction(w http.ResponseWriter, r *http.Request, _ []byte) {
	raw, qualifier := r.PathValue("name"), r.URL.Query().Get("Qualifier")
	name, q, err := registry.ParseName(raw)
	if err != nil {
		g.writeError(w, r, g.apiError(err, raw))
		return
	}
	if qualifier == "" {
		qualifier = q
	}
	switch {
	case qualifier == "":
		err = g.cfg.Control.Delete(r.Context(), name)
	case qualifier == registry.Latest:
		err = &registry.ValidationError{Field: "qualifier", Message: "$LATEST version cannot be deleted without deleting the function: omit the qualifier to delete the function with all its versions and aliases"}
	case registry.IsVersionNumber(qualifier):
		err = g.cfg.Control.DeleteVersion(r.Context(), name, qualifier)
	default:
		err = &registry.ValidationError{Field: "qualifier", Message: fmt.Sprintf("Qualifier %s is not a version number: delete an alias with DeleteAlias", qualifier)}
	}
	if err != nil {
		g.writeError(w, r, g.qualifiedNotFound(err, name, qualifier))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (g *Gateway) updateFunctionCode(w http.ResponseWriter, r *http.Request, body []byte) {
	fn, aerr := g.resolveUnqualified(r)
	if aerr != nil {
		g.writeError(w, r, aerr)
		return
	}
	var req api.UpdateFunctionCodeRequest
	if !g.decodeJSON(w, r, body, &req) {
		return
	}
	if req.S3Bucket != "" || req.ImageURI != "" {
		g.writeError(w, r, &api.Error{Code: api.ErrInvalidParameterValue, Status: http.StatusBadRequest,
			Message: "Gust takes code only as ZipFile; S3 and container image code are not supported"})
		return
	}
	if len(req.ZipFile) == 0 {
		g.writeError(w, r, &api.Error{Code: api.ErrInvalidParameterValue, Status: http.StatusBadRequest,
			Message: "ZipFile is required: a zip holding one .wasm file, or a wasm module"})
		return
	}
	stored, err := g.cfg.Control.UpdateCode(r.Context(), fn.Name, req.RevisionID, req.ZipFile, req.DryRun)
	if err == nil && req.Publish && !req.DryRun {
		stored, err = g.cfg.Control.Publish(r.Context(), fn.Name, stored.CodeDigest, "", "")
	}
	if err != nil {
		g.writeError(w, r, g.apiError(err, fn.Name))
		return
	}
	writeJSON(w, http.StatusOK, g.configuration(stored))
}

func (g *Gateway) updateFunctionConfiguration(w http.ResponseWriter, r *http.Request, body []byte) {
	fn, aerr := g.resolveUnqualified(r)
	if aerr != nil {
		g.writeError(w, r, aerr)
		return
	}
	var req api.UpdateFunctionConfigurationRequest
	if !g.decodeJSON(w, r, body, &req) {
		return
	}
	stored, err := g.cfg.Control.UpdateConfig(r.Context(), fn.Name, req.RevisionID, func(f *registry.Function) error {
		if req.Runtime != nil {
			f.Runtime = *req.Runtime
		}
		if req.Role != nil {
			f.Role = *req.Role
		}
		if req.Handler != nil {
			f.Handler = *req.Handler
		}
		if req.Description != nil {
			f.Description = *req.Description
		}
		if req.Timeout != nil {
			f.TimeoutSec = int(*req.Timeout)
			if f.TimeoutSec == 0 {
				f.TimeoutSec = -1
			}
		}
		if req.MemorySize != nil {
			f.MemoryMB = int(*req.MemorySize)
			if f.MemoryMB == 0 {
				f.MemoryMB = -1
			}
		}
		if req.Environment != nil {
			f.Env = req.Environment.Variables
		}
		if req.GustIdleTimeout != nil {
			f.IdleTimeoutSec = int(*req.GustIdleTimeout)
		}
		if req.GustGrants != nil {
			f.Grants = grantsOf(req.GustGrants)
		}
		return g.setDeadLetter(f, req.DeadLetterConfig)
	})
	if err != nil {
		g.writeError(w, r, g.apiError(err, fn.Name))
		return
	}
	writeJSON(w, http.StatusOK, g.configuration(stored))
}

func (g *Gateway) invoke(w http.ResponseWriter, r *http.Request, body []byte) {
	fn, _, aerr := g.resolveInvoke(r.PathValue("name"), r.URL.Query().Get("Qualifier"))
	if aerr != nil {
		g.writeError(w, r, aerr)
		return
	}
	switch t := r.Header.Get(api.HeaderInvocationType); t {
	case "", api.InvocationRequestResponse:
	case api.InvocationDryRun:
		w.Header().Set(api.HeaderExecutedVersion, fn.Qualifier())
		w.WriteHeader(http.StatusNoContent)
		return
	case api.InvocationEvent:
		g.invokeEvent(w, r, fn, body)
		return
	default:
		g.writeError(w, r, &api.Error{Code: api.ErrInvalidParameterValue, Status: http.StatusBadRequest,
			Message: fmt.Sprintf("1 validation error detected: Value '%s' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: [Event, RequestResponse, DryRun]", t)})
		return
	}
	logType := r.Header.Get(api.HeaderLogType)
	if logType != "" && logType != "None" && logType != "Tail" {
		g.writeError(w, r, &api.Error{Code: api.ErrInvalidParameterValue, Status: http.StatusBadRequest,
			Message: fmt.Sprintf("1 validation error detected: Value '%s' at 'logType' failed to satisfy constraint: Member must satisfy enum value set: [Tail, None]", logType)})
		return
	}
	payload := bytes.TrimSpace(body)
	if len(payload) == 0 {
		payload = []byte("{}")
	}
	if !json.Valid(payload) {
		g.writeError(w, r, &api.Error{Code: api.ErrInvalidRequestContent, Status: http.StatusBadRequest,
			Message: "Could not parse request body into json: the payload is not valid JSON"})
		return
	}
	res, err := g.cfg.Invoker.Invoke(r.Context(), fn, requestID(r.Context()), payload)
	if err != nil {
		g.writeError(w, r, g.apiError(err, fn.Name))
		return
	}
	h := w.Header()
	h.Set(api.HeaderExecutedVersion, res.Version)
	if logType == "Tail" {
		h.Set(api.HeaderLogResult, base64.StdEncoding.EncodeToString([]byte(logs.Tail(logs.Format(res.Record)))))
	}
	h.Set("Content-Type", "application/json")
	if res.Err != nil {
		h.Set(api.HeaderFunctionError, "Unhandled")
		b, _ := json.Marshal(res.Err)
		w.WriteHeader(http.StatusOK)
		w.Write(b)
		return
	}
	w.WriteHeader(http.StatusOK)
	w.Write(res.Payload)
}
