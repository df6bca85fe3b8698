// Package registry owns functions: their validation, their durable storage
// (configuration in a JetStream KV bucket, code in a JetStream object store
// keyed by sha256) and the in-memory view every node keeps current with a
// KV watch. The invoke path reads only that view.
package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gustfaas/gust/internal/kvwatch"
)

// Bucket names.
const (
	FunctionsBucket = "gust_functions"
	CodeBucket      = "gust_code"
)

var (
	// ErrNotFound: no function of that name.
	ErrNotFound = errors.New("function not found")
	// ErrConflict: the function already exists, or changed concurrently.
	ErrConflict = errors.New("function already exists")
	// ErrRevisionMismatch: the caller's RevisionId is not the current one.
	ErrRevisionMismatch = errors.New("revision id does not match")
)

// Store is what the registry needs from the substrate.
type Store interface {
	KeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error)
	ObjectStore(ctx context.Context, cfg jetstream.ObjectStoreConfig) (jetstream.ObjectStore, error)
}

// Change is one update to the view. For a function or one of its published
// versions, Old is nil when it is new and New is nil when it was deleted;
// for an alias, OldAlias and NewAlias are set the same way and Old and New
// are nil.
type Change struct {
	Old, New           *Function
	OldAlias, NewAlias *Alias
}

// Name is the function the change is about.
func (c Change) Name() string {
	switch {
	case c.New != nil:
		return c.New.Name
	case c.Old != nil:
		return c.Old.Name
	case c.NewAlias != nil:
		return c.NewAlias.Function
	case c.OldAlias != nil:
		return c.OldAlias.Function
	}
	return ""
}

// entry is everything stored about one function.
type entry struct {
	latest   *Function
	versions map[string]*Function
	aliases  map[string]*Alias
}

func (e *entry) empty() bool {
	return e.latest == nil && len(e.versions) == 0 && len(e.aliases) == 0
}

// Registry is the function store and its in-memory view. Safe for
// concurrent use.
type Registry struct {
	kv   jetstream.KeyValue
	code jetstream.ObjectStore

	mu       sync.RWMutex
	view     map[string]*entry
	revs     map[string]uint64 // last applied KV revision per key, deletes included
	onChange []func(Change)

	watch *kvwatch.Watch
}

// Keys in the functions bucket: NAME for $LATEST, NAME.v.N for published
// version N and NAME.a.ALIAS for an alias. Names, numbers and alias names
// never contain dots.
func latestKey(name string) string       { return name }
func versionKey(name, v string) string   { return name + ".v." + v }
func aliasKey(name, alias string) string { return name + ".a." + alias }
func versionPrefix(name string) string   { return name + ".v." }
func aliasPrefix(name string) string     { return name + ".a." }

// parseKey splits a bucket key into the function name, the kind of record
// ('l', 'v' or 'a') and the version or alias name.
func parseKey(key string) (name string, kind byte, sub string, ok bool) {
	parts := strings.Split(key, ".")
	switch {
	case len(parts) == 1:
		return parts[0], 'l', "", true
	case len(parts) == 3 && parts[1] == "v":
		return parts[0], 'v', parts[2], true
	case len(parts) == 3 && parts[1] == "a":
		return parts[0], 'a', parts[2], true
	}
	return "", 0, "", false
}

// Open creates or opens the buckets and loads the view. It returns once the
// view holds every stored function; a watch keeps it current until Close.
func Open(ctx context.Context, st Store) (*Registry, error) {
	kv, err := st.KeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      FunctionsBucket,
		Description: "Gust functions, versions and aliases",
		History:     1,
	})
	if err != nil {
		return nil, err
	}
	code, err := st.ObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      CodeBucket,
		Description: "Gust function code, named by sha256",
	})
	if err != nil {
		return nil, err
	}
	r := &Registry{
		kv:   kv,
		code: code,
		view: map[string]*entry{},
		revs: map[string]uint64{},
	}
	if r.watch, err = kvwatch.Follow(ctx, kv, "functions", func(e jetstream.KeyValueEntry) error {
		r.apply(e.Key(), e.Revision(), e.Operation(), e.Value())
		return nil
	}); err != nil {
		return nil, err
	}
	return r, nil
}

// OnChange registers fn to be called after every change to the view, in
// order, from the goroutine that applied it. fn must not block for long.
func (r *Registry) OnChange(fn func(Change)) {
	r.mu.Lock()
	r.onChange = append(r.onChange, fn)
	r.mu.Unlock()
}

// apply folds one KV entry into the view unless a newer one was applied.
func (r *Registry) apply(key string, rev uint64, op jetstream.KeyValueOp, value []byte) {
	name, kind, sub, ok := parseKey(key)
	if !ok {
		return
	}
	put := op == jetstream.KeyValuePut
	var nf *Function
	var na *Alias
	if put {
		// A value this node cannot read is left out of the view rather
		// than taking the node down; it stays in the bucket untouched.
		if kind == 'a' {
			na = new(Alias)
			if json.Unmarshal(value, na) != nil {
				return
			}
		} else {
			nf = new(Function)
			if json.Unmarshal(value, nf) != nil {
				return
			}
			if kind == 'v' {
				nf.Version = sub
			} else {
				nf.Version = ""
			}
		}
	}
	r.mu.Lock()
	if rev <= r.revs[key] {
		r.mu.Unlock()
		return
	}
	r.revs[key] = rev
	e := r.view[name]
	if e == nil {
		e = &entry{versions: map[string]*Function{}, aliases: map[string]*Alias{}}
		r.view[name] = e
	}
	var ch Change
	switch kind {
	case 'l':
		ch = Change{Old: e.latest, New: nf}
		e.latest = nf
	case 'v':
		ch = Change{Old: e.versions[sub], New: nf}
		if nf != nil {
			e.versions[sub] = nf
		} else {
			delete(e.versions, sub)
		}
	case 'a':
		ch = Change{OldAlias: e.aliases[sub], NewAlias: na}
		if na != nil {
			e.aliases[sub] = na
		} else {
			delete(e.aliases, sub)
		}
	}
	if e.empty() {
		delete(r.view, name)
	}
	hooks := r.onChange
	r.mu.Unlock()
	if ch.Old == nil && ch.New == nil && ch.OldAlias == nil && ch.NewAlias == nil {
		return
	}
	for _, h := range hooks {
		h(ch)
	}
}

// Get returns the function's $LATEST from the view. The result must not be
// modified.
func (r *Registry) Get(name string) (*Function, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if e := r.view[name]; e != nil && e.latest != nil {
		return e.latest, true
	}
	return nil, false
}

// Version returns a published version (or $LATEST) from the view.
func (r *Registry) Version(name, version string) (*Function, bool) {
	if version == "" || version == Latest {
		return r.Get(name)
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	e := r.view[name]
	if e == nil || e.latest == nil {
		return nil, false
	}
	f, ok := e.versions[version]
	return f, ok
}

// Alias returns an alias from the view.
func (r *Registry) Alias(name, alias string) (*Alias, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e := r.view[name]
	if e == nil || e.latest == nil {
		return nil, false
	}
	a, ok := e.aliases[alias]
	return a, ok
}

// Versions returns the function's published versions, oldest first.
func (r *Registry) Versions(name string) []*Function {
	r.mu.RLock()
	e := r.view[name]
	var out []*Function
	if e != nil {
		for _, f := range e.versions {
			out = append(out, f)
		}
	}
	r.mu.RUnlock()
	slices.SortFunc(out, func(a, b *Function) int { return versionNumber(a.Version) - versionNumber(b.Version) })
	return out
}

// Aliases returns the function's aliases, by name.
func (r *Registry) Aliases(name string) []*Alias {
	r.mu.RLock()
	e := r.view[name]
	var out []*Alias
	if e != nil {
		for _, a := range e.aliases {
			out = append(out, a)
		}
	}
	r.mu.RUnlock()
	slices.SortFunc(out, func(a, b *Alias) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func versionNumber(v string) int {
	n, _ := strconv.Atoi(v)
	return n
}

// Resolve finds what one invocation of name:qualifier runs: $LATEST (for
// an empty qualifier), a published version, or the version an alias picks
// with r, uniform in [0, 1). The alias is returned when one was used.
func (r *Registry) Resolve(name, qualifier string, rnd float64) (*Function, *Alias, error) {
	if qualifier == "" || qualifier == Latest || IsVersionNumber(qualifier) {
		f, ok := r.Version(name, qualifier)
		if !ok {
			return nil, nil, r.missing(name, qualifier)
		}
		return f, nil, nil
	}
	a, ok := r.Alias(name, qualifier)
	if !ok {
		return nil, nil, r.missing(name, qualifier)
	}
	f, ok := r.Version(name, a.Pick(rnd))
	if !ok {
		return nil, nil, &NotFoundError{What: fmt.Sprintf("version %s of %s (alias %s)", a.Pick(rnd), name, qualifier)}
	}
	return f, a, nil
}

func (r *Registry) missing(name, qualifier string) error {
	if _, ok := r.Get(name); !ok || qualifier == "" || qualifier == Latest {
		return fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	if IsVersionNumber(qualifier) {
		return &NotFoundError{What: fmt.Sprintf("version %s of %s", qualifier, name)}
	}
	return &NotFoundError{What: fmt.Sprintf("alias %s of %s", qualifier, name)}
}

// List returns every function's $LATEST in the view, sorted by name.
func (r *Registry) List() []*Function {
	r.mu.RLock()
	out := make([]*Function, 0, len(r.view))
	for _, e := range r.view {
		if e.latest != nil {
			out = append(out, e.latest)
		}
	}
	r.mu.RUnlock()
	slices.SortFunc(out, func(a, b *Function) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Digest returns the lowercase hex sha256 of code.
func Digest(code []byte) string {
	sum := sha256.Sum256(code)
	return hex.EncodeToString(sum[:])
}

// PutCode stores code under its digest (once) and returns the digest.
func (r *Registry) PutCode(ctx context.Context, code []byte) (string, error) {
	d := Digest(code)
	if _, err := r.code.GetInfo(ctx, d); err == nil {
		return d, nil
	} else if !errors.Is(err, jetstream.ErrObjectNotFound) {
		return "", fmt.Errorf("look up code %s: %w", d, err)
	}
	if _, err := r.code.PutBytes(ctx, d, code); err != nil {
		return "", fmt.Errorf("store code %s: %w", d, err)
	}
	return d, nil
}

// Code fetches code by digest and checks it.
func (r *Registry) Code(ctx context.Context, digest string) ([]byte, error) {
	b, err := r.code.GetBytes(ctx, digest)
	if err != nil {
		return nil, fmt.Errorf("fetch code %s: %w", digest, err)
	}
	if Digest(b) != digest {
		return nil, fmt.Errorf("code %s is corrupt: digest mismatch", digest)
	}
	return b, nil
}

// ConflictError is a change refused because of the state of something
// else (a version an alias uses, an alias that exists); its message names
// it. It matches ErrConflict.
type ConflictError struct{ Message string }

func (e *ConflictError) Error() string { return e.Message }

// Is makes a ConflictError match ErrConflict.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// Create stores a new function whose code was stored with PutCode. f is
// normalised first; the stored copy is returned.
func (r *Registry) Create(ctx context.Context, f *Function) (*Function, error) {
	f = f.Clone()
	f.Version, f.LastVersion = "", 0
	if err := Normalize(f); err != nil {
		return nil, err
	}
	f.RevisionID = uuid.NewString()
	f.LastModified = time.Now().UTC()
	b, err := json.Marshal(f)
	if err != nil {
		return nil, err
	}
	rev, err := r.kv.Create(ctx, latestKey(f.Name), b)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return nil, fmt.Errorf("%w: %s", ErrConflict, f.Name)
		}
		return nil, fmt.Errorf("store function %s: %w", f.Name, err)
	}
	r.apply(latestKey(f.Name), rev, jetstream.KeyValuePut, b)
	return f, nil
}

// read fetches a stored record and its KV revision.
func read[T any](ctx context.Context, r *Registry, key string, missing func() error) (*T, uint64, error) {
	e, err := r.kv.Get(ctx, key)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, 0, missing()
		}
		return nil, 0, fmt.Errorf("read %s: %w", key, err)
	}
	v := new(T)
	if err := json.Unmarshal(e.Value(), v); err != nil {
		return nil, 0, fmt.Errorf("decode %s: %w", key, err)
	}
	return v, e.Revision(), nil
}

// casLoop runs one compare-and-set update of key, retrying when the key
// changed underneath.
func (r *Registry) casLoop(ctx context.Context, what string, try func() (key string, b []byte, last uint64, done bool, err error)) error {
	for attempt := 0; attempt < 10; attempt++ {
		key, b, last, done, err := try()
		if err != nil || done {
			return err
		}
		rev, err := r.kv.Update(ctx, key, b, last)
		if err != nil {
			if errors.Is(err, jetstream.ErrKeyExists) {
				continue // changed underneath us: read again
			}
			return fmt.Errorf("store %s: %w", what, err)
		}
		r.apply(key, rev, jetstream.KeyValuePut, b)
		return nil
	}
	return &ConflictError{Message: fmt.Sprintf("%s is being updated concurrently, try again", what)}
}

// Update applies change to the function's $LATEST with compare-and-set and
// returns the stored result. change sees a private copy; returning an error
// aborts. If revisionID is non-empty it must match the current RevisionID.
func (r *Registry) Update(ctx context.Context, name, revisionID string, change func(*Function) error) (*Function, error) {
	return r.update(ctx, name, revisionID, false, change)
}

// UpdateSettings applies change to function-level settings that are not
// part of any version (tags, reserved concurrency, the URL configuration)
// without a new RevisionID, as Lambda leaves it alone for those: a client
// holding the revision of the code and configuration can still publish.
func (r *Registry) UpdateSettings(ctx context.Context, name string, change func(*Function) error) (*Function, error) {
	return r.update(ctx, name, "", true, change)
}

func (r *Registry) update(ctx context.Context, name, revisionID string, keepRevision bool, change func(*Function) error) (*Function, error) {
	var next *Function
	err := r.casLoop(ctx, "function "+name, func() (string, []byte, uint64, bool, error) {
		cur, last, err := read[Function](ctx, r, latestKey(name), func() error { return fmt.Errorf("%w: %s", ErrNotFound, name) })
		if err != nil {
			return "", nil, 0, false, err
		}
		if revisionID != "" && revisionID != cur.RevisionID {
			return "", nil, 0, false, fmt.Errorf("%w: the revision id for %s is %s", ErrRevisionMismatch, name, cur.RevisionID)
		}
		next = cur.Clone()
		if err := change(next); err != nil {
			return "", nil, 0, false, err
		}
		next.Name, next.Version, next.LastVersion = cur.Name, "", cur.LastVersion
		if err := Normalize(next); err != nil {
			return "", nil, 0, false, err
		}
		if keepRevision {
			if !SameProgram(cur, next) || cur.Description != next.Description {
				return "", nil, 0, false, errors.New("registry: a settings update changed the function's code or configuration")
			}
		} else {
			next.RevisionID = uuid.NewString()
			next.LastModified = time.Now().UTC()
		}
		b, err := json.Marshal(next)
		return latestKey(name), b, last, false, err
	})
	if err != nil {
		return nil, err
	}
	return next, nil
}

// Publish creates a version from $LATEST. codeDigest (hex), if set, must
// be $LATEST's code; revisionID, if set, its RevisionID. When $LATEST runs
// the same program as the newest version, that version is returned and
// nothing is published, as Lambda does.
func (r *Registry) Publish(ctx context.Context, name, codeDigest, revisionID, description string) (*Function, error) {
	var version *Function
	var existing bool
	err := r.casLoop(ctx, "function "+name, func() (string, []byte, uint64, bool, error) {
		cur, last, err := read[Function](ctx, r, latestKey(name), func() error { return fmt.Errorf("%w: %s", ErrNotFound, name) })
		if err != nil {
			return "", nil, 0, false, err
		}
		if revisionID != "" && revisionID != cur.RevisionID {
			return "", nil, 0, false, fmt.Errorf("%w: the revision id for %s is %s", ErrRevisionMismatch, name, cur.RevisionID)
		}
		if codeDigest != "" && codeDigest != cur.CodeDigest {
			return "", nil, 0, false, &ValidationError{Field: "codeSha256", Message: fmt.Sprintf("CodeSha256 (%s) is different from the current CodeSha256 in $LATEST (%s): update the code first, or publish without CodeSha256", codeDigest, cur.CodeDigest)}
		}
		if cur.LastVersion > 0 {
			if newest, ok := r.Version(name, strconv.Itoa(cur.LastVersion)); ok && SameProgram(newest, cur) {
				version, existing = newest, true
				return "", nil, 0, true, nil
			}
		}
		next := cur.Clone()
		next.LastVersion++
		b, err := json.Marshal(next)
		if err != nil {
			return "", nil, 0, false, err
		}
		v := cur.Clone()
		v.Version = strconv.Itoa(next.LastVersion)
		v.LastVersion = 0
		v.URL = nil
		v.EventInvoke = nil // function-level, read from $LATEST
		v.Tags = nil
		v.ReservedConcurrency = nil
		v.ProvisionedConcurrency = 0
		if description != "" {
			v.Description = description
		}
		v.RevisionID = uuid.NewString()
		v.LastModified = time.Now().UTC()
		version = v
		return latestKey(name), b, last, false, nil
	})
	if err != nil || existing {
		return version, err
	}
	b, err := json.Marshal(version)
	if err != nil {
		return nil, err
	}
	key := versionKey(name, version.Version)
	rev, err := r.kv.Create(ctx, key, b)
	if err != nil {
		return nil, fmt.Errorf("store version %s of %s: %w", version.Version, name, err)
	}
	r.apply(key, rev, jetstream.KeyValuePut, b)
	return version, nil
}

// UpdateVersion changes a published version's mutable settings
// (provisioned concurrency); change must not touch anything else.
func (r *Registry) UpdateVersion(ctx context.Context, name, version string, change func(*Function) error) (*Function, error) {
	if version == "" || version == Latest {
		return r.Update(ctx, name, "", change)
	}
	var next *Function
	err := r.casLoop(ctx, fmt.Sprintf("version %s of %s", version, name), func() (string, []byte, uint64, bool, error) {
		cur, last, err := read[Function](ctx, r, versionKey(name, version), func() error { return r.missing(name, version) })
		if err != nil {
			return "", nil, 0, false, err
		}
		cur.Version = version
		next = cur.Clone()
		if err := change(next); err != nil {
			return "", nil, 0, false, err
		}
		if err := Normalize(next); err != nil {
			return "", nil, 0, false, err
		}
		if !SameProgram(cur, next) {
			return "", nil, 0, false, &ValidationError{Field: "qualifier", Message: fmt.Sprintf("version %s of %s is immutable: change $LATEST and publish a new version", version, name)}
		}
		next.RevisionID = uuid.NewString()
		b, err := json.Marshal(next)
		return versionKey(name, version), b, last, false, err
	})
	if err != nil {
		return nil, err
	}
	return next, nil
}

// DeleteVersion removes a published version. A version an alias routes to
// cannot be deleted.
func (r *Registry) DeleteVersion(ctx context.Context, name, version string) error {
	if !IsVersionNumber(version) {
		return &ValidationError{Field: "qualifier", Message: fmt.Sprintf("cannot delete version %s: only published versions can be deleted with a qualifier (delete the function to delete $LATEST)", version)}
	}
	var users []string
	for _, a := range r.Aliases(name) {
		if a.References(version) {
			users = append(users, a.Name)
		}
	}
	if len(users) > 0 {
		return &ConflictError{Message: fmt.Sprintf("Unable to delete version because the following aliases reference it: [%s]", strings.Join(users, ", "))}
	}
	f, ok := r.Version(name, version)
	if !ok {
		return r.missing(name, version)
	}
	if err := r.deleteKey(ctx, versionKey(name, version)); err != nil {
		return err
	}
	return r.collectCode(ctx, f.CodeDigest)
}

// deleteKey deletes one key and applies the deletion to the view.
func (r *Registry) deleteKey(ctx context.Context, key string) error {
	e, err := r.kv.Get(ctx, key)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil
		}
		return fmt.Errorf("read %s: %w", key, err)
	}
	if err := r.kv.Delete(ctx, key, jetstream.LastRevision(e.Revision())); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return &ConflictError{Message: fmt.Sprintf("%s changed while being deleted, try again", key)}
		}
		return fmt.Errorf("delete %s: %w", key, err)
	}
	// The delete marker's revision is the stream's next; applying the
	// deletion now with a revision just above the last put keeps the view
	// consistent for this caller; the watch delivers the real one after.
	r.apply(key, e.Revision()+1, jetstream.KeyValueDelete, nil)
	return nil
}

// CreateAlias stores a new alias. Its versions must exist.
func (r *Registry) CreateAlias(ctx context.Context, a *Alias) (*Alias, error) {
	a = a.Clone()
	if _, ok := r.Get(a.Function); !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, a.Function)
	}
	if err := ValidateAliasName(a.Name); err != nil {
		return nil, err
	}
	if err := validateRouting(a, r.has(a.Function)); err != nil {
		return nil, err
	}
	a.RevisionID = uuid.NewString()
	a.LastModified = time.Now().UTC()
	b, err := json.Marshal(a)
	if err != nil {
		return nil, err
	}
	key := aliasKey(a.Function, a.Name)
	rev, err := r.kv.Create(ctx, key, b)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return nil, &ConflictError{Message: fmt.Sprintf("Alias already exists: %s:%s", a.Function, a.Name)}
		}
		return nil, fmt.Errorf("store alias %s of %s: %w", a.Name, a.Function, err)
	}
	r.apply(key, rev, jetstream.KeyValuePut, b)
	return a, nil
}

func (r *Registry) has(name string) func(string) bool {
	return func(v string) bool { _, ok := r.Version(name, v); return ok }
}

// UpdateAlias applies change to an alias with compare-and-set. If
// revisionID is non-empty it must match the alias's RevisionID.
func (r *Registry) UpdateAlias(ctx context.Context, name, alias, revisionID string, change func(*Alias) error) (*Alias, error) {
	return r.updateAlias(ctx, name, alias, revisionID, false, change)
}

// UpdateAliasSettings changes an alias's settings that are not its routing
// (provisioned concurrency, the URL configuration) and keeps its
// RevisionId, as Lambda does.
func (r *Registry) UpdateAliasSettings(ctx context.Context, name, alias string, change func(*Alias) error) (*Alias, error) {
	return r.updateAlias(ctx, name, alias, "", true, change)
}

func (r *Registry) updateAlias(ctx context.Context, name, alias, revisionID string, keepRevision bool, change func(*Alias) error) (*Alias, error) {
	var next *Alias
	err := r.casLoop(ctx, fmt.Sprintf("alias %s of %s", alias, name), func() (string, []byte, uint64, bool, error) {
		cur, last, err := read[Alias](ctx, r, aliasKey(name, alias), func() error { return r.missing(name, alias) })
		if err != nil {
			return "", nil, 0, false, err
		}
		if revisionID != "" && revisionID != cur.RevisionID {
			return "", nil, 0, false, fmt.Errorf("%w: the revision id for alias %s of %s is %s", ErrRevisionMismatch, alias, name, cur.RevisionID)
		}
		next = cur.Clone()
		if err := change(next); err != nil {
			return "", nil, 0, false, err
		}
		next.Function, next.Name = cur.Function, cur.Name
		if keepRevision {
			if next.Version != cur.Version || next.Description != cur.Description || !maps.Equal(next.Weights, cur.Weights) {
				return "", nil, 0, false, errors.New("registry: an alias settings update changed its routing")
			}
		} else {
			if err := validateRouting(next, r.has(name)); err != nil {
				return "", nil, 0, false, err
			}
			next.RevisionID = uuid.NewString()
			next.LastModified = time.Now().UTC()
		}
		b, err := json.Marshal(next)
		return aliasKey(name, alias), b, last, false, err
	})
	if err != nil {
		return nil, err
	}
	return next, nil
}

// DeleteAlias removes an alias.
func (r *Registry) DeleteAlias(ctx context.Context, name, alias string) error {
	if _, ok := r.Alias(name, alias); !ok {
		return r.missing(name, alias)
	}
	return r.deleteKey(ctx, aliasKey(name, alias))
}

// Delete removes a function with all its versions and aliases, and code no
// other function uses.
func (r *Registry) Delete(ctx context.Context, name string) error {
	latest, ok := r.Get(name)
	if !ok {
		// The view may lag a write made on another node: ask the bucket.
		if _, _, err := read[Function](ctx, r, latestKey(name), func() error { return fmt.Errorf("%w: %s", ErrNotFound, name) }); err != nil {
			return err
		}
	}
	digests := map[string]bool{}
	if latest != nil {
		digests[latest.CodeDigest] = true
	}
	for _, a := range r.Aliases(name) {
		if err := r.deleteKey(ctx, aliasKey(name, a.Name)); err != nil {
			return err
		}
	}
	for _, v := range r.Versions(name) {
		digests[v.CodeDigest] = true
		if err := r.deleteKey(ctx, versionKey(name, v.Version)); err != nil {
			return err
		}
	}
	if err := r.deleteKey(ctx, latestKey(name)); err != nil {
		return err
	}
	for d := range digests {
		if err := r.collectCode(ctx, d); err != nil {
			return err
		}
	}
	return nil
}

// collectCode deletes code no function or version uses any more.
func (r *Registry) collectCode(ctx context.Context, digest string) error {
	if digest == "" || r.codeInUse(digest) {
		return nil
	}
	if err := r.code.Delete(ctx, digest); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("delete code %s: %w", digest, err)
	}
	return nil
}

func (r *Registry) codeInUse(digest string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, e := range r.view {
		if e.latest != nil && e.latest.CodeDigest == digest {
			return true
		}
		for _, v := range e.versions {
			if v.CodeDigest == digest {
				return true
			}
		}
	}
	return false
}

// Close stops the watch.
func (r *Registry) Close() error { return r.watch.Stop() }
