// Package keyring owns the node's API keys (SigV4 access key pairs) and
// their scopes. Keys live in the JetStream KV bucket gust_keys, by access
// key id; their secrets are sealed there with AES-256-GCM under a master
// key that never enters JetStream: it is a file in the node's data
// directory (MasterKeyFile, mode 0600, made on first start). Nodes that
// share the bucket must share that file.
//
// A KV watch keeps an in-memory view of every key, so the signature check
// (Secret) and the scope check (Allowed) touch no disk or network, and a
// revocation, made on this node or any other sharing the bucket, takes
// effect as soon as the watch delivers it.
package keyring

import (
	"bytes"
	"cmp"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/internal/creds"
	"github.com/gustfaas/gust/internal/kvwatch"
	"github.com/gustfaas/gust/internal/registry"
)

// Bucket is the KV bucket holding keys, by access key id.
const Bucket = "gust_keys"

// MasterKeyFile is the name of the master key file in the data directory.
const MasterKeyFile = "keyring.key"

// ActionInvoke is the only action an invoke-scoped key may perform: the IAM
// action of Invoke and of function URLs whose AuthType is AWS_IAM.
const ActionInvoke = "lambda:InvokeFunction"

// Bounds on what a key may carry.
const (
	// MaxFunctions bounds the function names an invoke key may be
	// limited to.
	MaxFunctions = 100
	// MaxDescription bounds a key's description, in bytes.
	MaxDescription = 256
)

// ErrNotFound is returned (wrapped) by Revoke for an access key id that
// names no key.
var ErrNotFound = errors.New("access key not found")

// ErrLastAdmin is returned (wrapped) by Revoke for the only admin key: a
// node without an admin key could not be managed any more.
var ErrLastAdmin = errors.New("cannot revoke the last admin key")

// Key is a key pair with its secret, as Admin returns it.
type Key struct {
	AccessKeyID     string
	SecretAccessKey string
	Created         time.Time
	Admin           bool
}

// Store is what the keyring needs from the substrate.
type Store interface {
	// KeyValue creates or opens (and reconfigures) a KV bucket.
	KeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error)
	// JetStream finds and deletes buckets (to seal plain-text records).
	JetStream() jetstream.JetStream
}

// record is a key as stored in the bucket. Records written by older nodes
// hold SecretAccessKey in plain text and Admin instead of Scope; Open seals
// them.
type record struct {
	AccessKeyID string    `json:"accessKeyId"`
	Created     time.Time `json:"created"`
	Scope       string    `json:"scope,omitempty"`
	Functions   []string  `json:"functions,omitempty"`
	Description string    `json:"description,omitempty"`
	// Sealed is the secret: a 12-byte nonce, then the AES-256-GCM
	// ciphertext with the access key id as additional data.
	Sealed []byte `json:"sealedSecret,omitempty"`
	// MasterKey is the fingerprint of the master key that sealed it.
	MasterKey string `json:"masterKey,omitempty"`

	// Legacy fields.
	SecretAccessKey string `json:"secretAccessKey,omitempty"`
	Admin           bool   `json:"admin,omitempty"`
}

// scope returns the record's scope, reading legacy records too (older
// nodes made admin keys only).
func (r *record) scope() string {
	if r.Scope != "" {
		return r.Scope
	}
	if r.Admin {
		return api.ScopeAdmin
	}
	return api.ScopeInvoke
}

// entry is one key in the view.
type entry struct {
	rec    record
	secret string
	usable bool // secret is known (sealed with this node's master key, or legacy)
}

func (e *entry) admin() bool { return e.rec.scope() == api.ScopeAdmin }

// Keyring is safe for concurrent use. Close stops its watch.
type Keyring struct {
	st   Store
	kv   jetstream.KeyValue
	aead cipher.AEAD
	mkID string // fingerprint of the master key
	// tokenKey signs function tokens (derived from the master key).
	tokenKey []byte
	watch    *kvwatch.Watch

	// admin serialises this node's changes that must keep an admin key.
	admin sync.Mutex

	mu   sync.RWMutex
	view map[string]*entry
	revs map[string]uint64 // last applied revision per id, deletes included
}

func kvConfig(bucket string) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{Bucket: bucket, Description: "Gust API keys (secrets sealed with the nodes' keyring.key)", History: 1}
}

// Open loads (or makes) the master key in dataDir, creates or opens the
// key bucket and loads every key. Records left in plain text by older nodes
// are sealed, and no plain-text copy is left in the store (see
// sealPlainText). Open fails when a stored key was sealed under another
// master key: every node sharing the bucket must hold the same
// MasterKeyFile.
func Open(ctx context.Context, st Store, dataDir string) (*Keyring, error) {
	if dataDir == "" {
		return nil, errors.New("keyring: a data directory is required for the master key")
	}
	mkPath := filepath.Join(dataDir, MasterKeyFile)
	mk, err := loadMasterKey(mkPath)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(mk)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	k := &Keyring{st: st, aead: aead, mkID: fingerprint(mk), tokenKey: deriveKey(mk, "gust function tokens"),
		view: map[string]*entry{}, revs: map[string]uint64{}}
	if k.kv, err = st.KeyValue(ctx, kvConfig(Bucket)); err != nil {
		return nil, err
	}
	if err := k.sealPlainText(ctx); err != nil {
		return nil, err
	}

	// A key sealed with another master key stops the loading: this node
	// could not open it. (One such node writes later is kept, listed but
	// unusable, as decode does.)
	if k.watch, err = kvwatch.Follow(ctx, k.kv, "keys", func(e jetstream.KeyValueEntry) error {
		k.apply(e)
		var rec record
		if e.Operation() == jetstream.KeyValuePut && json.Unmarshal(e.Value(), &rec) == nil &&
			rec.AccessKeyID != "" && rec.SecretAccessKey == "" && rec.MasterKey != k.mkID {
			return fmt.Errorf("keyring: key %s was sealed with master key %s, but %s holds master key %s: "+
				"every node sharing the %s bucket needs the same %s (copy it from a node that has it, or restore it from a backup)",
				e.Key(), rec.MasterKey, mkPath, k.mkID, Bucket, MasterKeyFile)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	return k, nil
}

// Close stops the watch. The keyring keeps answering from its last view.
func (k *Keyring) Close() error { return k.watch.Stop() }

// apply folds one KV entry into the view unless a newer one was applied.
func (k *Keyring) apply(e jetstream.KeyValueEntry) {
	var ent *entry
	if e.Operation() == jetstream.KeyValuePut {
		ent = k.decode(e.Value())
	}
	k.set(e.Key(), e.Revision(), ent)
}

// set records id at revision rev: ent, or gone when ent is nil. It reports
// whether rev was newer than what the view held.
func (k *Keyring) set(id string, rev uint64, ent *entry) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if rev <= k.revs[id] {
		return false
	}
	k.revs[id] = rev
	if ent == nil {
		delete(k.view, id)
	} else {
		k.view[id] = ent
	}
	return true
}

// decode reads a stored record. A value that is not a key is nil; a key
// whose secret this node cannot open is kept (it is listed) but unusable.
func (k *Keyring) decode(b []byte) *entry {
	var rec record
	if json.Unmarshal(b, &rec) != nil || rec.AccessKeyID == "" {
		return nil
	}
	ent := &entry{rec: rec}
	if rec.SecretAccessKey != "" {
		ent.secret, ent.usable = rec.SecretAccessKey, true
	} else if s, err := k.open(rec); err == nil {
		ent.secret, ent.usable = s, true
	}
	ent.rec.SecretAccessKey, ent.rec.Sealed = "", nil
	return ent
}

// lookup returns id's entry from the view; an id the view does not hold yet
// (made on another node a moment ago) is read from the bucket.
func (k *Keyring) lookup(id string) (*entry, bool) {
	k.mu.RLock()
	ent, ok := k.view[id]
	k.mu.RUnlock()
	if ok {
		return ent, true
	}
	if !validID(id) {
		return nil, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e, err := k.kv.Get(ctx, id)
	if err != nil {
		return nil, false
	}
	if ent = k.decode(e.Value()); ent == nil {
		return nil, false
	}
	// A revocation applied meanwhile has a newer revision and wins.
	if !k.set(id, e.Revision(), ent) {
		k.mu.RLock()
		ent, ok = k.view[id]
		k.mu.RUnlock()
		return ent, ok
	}
	return ent, true
}

// Secret looks up the secret for an access key id. Revoked keys, unknown
// keys and keys sealed under another master key have none.
func (k *Keyring) Secret(id string) (string, bool) {
	ent, ok := k.lookup(id)
	if !ok || !ent.usable {
		return "", false
	}
	return ent.secret, true
}

// Allowed reports whether the key may perform action (an IAM action name)
// on function (a bare function name; empty when the action is on no single
// function). An admin key may do everything; an invoke key only
// ActionInvoke, and when it names functions, only on those; an unknown or
// revoked key nothing.
func (k *Keyring) Allowed(keyID, action, function string) bool {
	ent, ok := k.lookup(keyID)
	if !ok {
		return false
	}
	switch ent.rec.scope() {
	case api.ScopeAdmin:
		return true
	case api.ScopeInvoke:
		if action != ActionInvoke {
			return false
		}
		return len(ent.rec.Functions) == 0 || slices.Contains(ent.rec.Functions, function)
	}
	return false
}

// Admin returns the oldest admin key this node can use, creating one with
// gen when there is none. created reports whether it was made now. The
// returned key carries its secret.
func (k *Keyring) Admin(ctx context.Context, gen func() (id, secret string, err error)) (key Key, created bool, err error) {
	k.admin.Lock()
	defer k.admin.Unlock()
	k.mu.RLock()
	var best *entry
	for _, ent := range k.view {
		if !ent.admin() || !ent.usable {
			continue
		}
		if best == nil || ent.rec.Created.Before(best.rec.Created) ||
			ent.rec.Created.Equal(best.rec.Created) && ent.rec.AccessKeyID < best.rec.AccessKeyID {
			best = ent
		}
	}
	k.mu.RUnlock()
	if best != nil {
		return Key{AccessKeyID: best.rec.AccessKeyID, SecretAccessKey: best.secret, Created: best.rec.Created, Admin: true}, false, nil
	}
	id, secret, err := gen()
	if err != nil {
		return Key{}, false, err
	}
	rec := record{AccessKeyID: id, Created: time.Now().UTC(), Scope: api.ScopeAdmin, Description: "made by the node on its first start"}
	if err := k.store(ctx, rec, secret); err != nil {
		return Key{}, false, fmt.Errorf("store admin key: %w", err)
	}
	return Key{AccessKeyID: id, SecretAccessKey: secret, Created: rec.Created, Admin: true}, true, nil
}

// Create issues a new key pair with req's scope. The answer is the only
// place its secret is ever shown. Invalid requests are refused with a
// *registry.ValidationError naming the problem.
func (k *Keyring) Create(ctx context.Context, req api.CreateKeyRequest) (api.AccessKey, error) {
	rec, err := validate(req)
	if err != nil {
		return api.AccessKey{}, err
	}
	for attempt := 0; ; attempt++ {
		gk, err := creds.Generate()
		if err != nil {
			return api.AccessKey{}, err
		}
		rec.AccessKeyID, rec.Created = gk.AccessKeyID, time.Now().UTC()
		err = k.store(ctx, rec, gk.SecretAccessKey)
		if errors.Is(err, jetstream.ErrKeyExists) && attempt < 3 {
			continue // an id drawn twice: draw again
		}
		if err != nil {
			return api.AccessKey{}, fmt.Errorf("store key: %w", err)
		}
		out := describe(rec)
		out.SecretAccessKey = gk.SecretAccessKey
		return out, nil
	}
}

// validate checks a creation request and returns the record it makes
// (without id, time or secret).
func validate(req api.CreateKeyRequest) (record, error) {
	invalid := func(field, format string, args ...any) (record, error) {
		return record{}, &registry.ValidationError{Field: field, Message: fmt.Sprintf(format, args...)}
	}
	switch req.Scope {
	case api.ScopeAdmin:
		if len(req.Functions) > 0 {
			return invalid("functions", "functions can only limit a key of scope %s: a key of scope %s may do everything on every function", api.ScopeInvoke, api.ScopeAdmin)
		}
	case api.ScopeInvoke:
	case "":
		return invalid("scope", "scope is required: %s (every operation) or %s (Invoke and AWS_IAM function URLs only)", api.ScopeAdmin, api.ScopeInvoke)
	default:
		return invalid("scope", "scope %q is not valid: want %s (every operation) or %s (Invoke and AWS_IAM function URLs only)", req.Scope, api.ScopeAdmin, api.ScopeInvoke)
	}
	if len(req.Functions) > MaxFunctions {
		return invalid("functions", "a key may be limited to at most %d functions, not %d", MaxFunctions, len(req.Functions))
	}
	var fns []string
	for _, f := range req.Functions {
		if err := registry.ValidateName(f); err != nil {
			return invalid("functions", "function name %q is not valid: names are 1 to %d letters, digits, hyphens and underscores", f, registry.MaxNameLen)
		}
		if !slices.Contains(fns, f) {
			fns = append(fns, f)
		}
	}
	slices.Sort(fns)
	if len(req.Description) > MaxDescription {
		return invalid("description", "description is %d bytes long: at most %d are allowed", len(req.Description), MaxDescription)
	}
	if strings.IndexFunc(req.Description, unicode.IsControl) >= 0 {
		return invalid("description", "description must be one line of text without control characters")
	}
	return record{Scope: req.Scope, Functions: fns, Description: req.Description}, nil
}

// store seals secret into rec, creates the record (failing if the id is
// taken) and adds it to the view at once.
func (k *Keyring) store(ctx context.Context, rec record, secret string) error {
	rec.Sealed, rec.MasterKey = k.seal(rec.AccessKeyID, secret), k.mkID
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	rev, err := k.kv.Create(ctx, rec.AccessKeyID, b)
	if err != nil {
		return err
	}
	rec.Sealed = nil
	k.set(rec.AccessKeyID, rev, &entry{rec: rec, secret: secret, usable: true})
	return nil
}

// List describes every key, oldest first, without secrets.
func (k *Keyring) List(ctx context.Context) ([]api.AccessKey, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	k.mu.RLock()
	recs := make([]record, 0, len(k.view))
	for _, ent := range k.view {
		recs = append(recs, ent.rec)
	}
	k.mu.RUnlock()
	slices.SortFunc(recs, func(a, b record) int {
		return cmp.Or(a.Created.Compare(b.Created), strings.Compare(a.AccessKeyID, b.AccessKeyID))
	})
	out := make([]api.AccessKey, 0, len(recs))
	for _, r := range recs {
		out = append(out, describe(r))
	}
	return out, nil
}

// describe is a record's public description, without its secret.
func describe(r record) api.AccessKey {
	return api.AccessKey{
		AccessKeyID: r.AccessKeyID,
		Scope:       r.scope(),
		Functions:   slices.Clone(r.Functions),
		Description: r.Description,
		Created:     r.Created.Format(api.TimeLayout),
	}
}

// Revoke deletes a key; requests signed with it fail from then on, on every
// node sharing the bucket once its watch delivers the deletion. An unknown
// id is ErrNotFound; the last admin key this node can use is ErrLastAdmin.
func (k *Keyring) Revoke(ctx context.Context, id string) error {
	k.admin.Lock()
	defer k.admin.Unlock()
	if !validID(id) {
		return fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	e, err := k.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return fmt.Errorf("revoke %s: %w", id, err)
	}
	ent := k.decode(e.Value())
	isAdmin := ent != nil && ent.admin() && ent.usable
	if isAdmin && k.admins(id) == 0 {
		return fmt.Errorf("%w: %s is the only admin key; create another admin key first", ErrLastAdmin, id)
	}
	if err := k.kv.Delete(ctx, id, jetstream.LastRevision(e.Revision())); err != nil {
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return fmt.Errorf("revoke %s: the key changed meanwhile; try again", id)
		}
		return fmt.Errorf("revoke %s: %w", id, err)
	}
	// The watch removes it from the view; do it now so that the answer to
	// this request already holds here.
	k.mu.Lock()
	delete(k.view, id)
	k.mu.Unlock()
	if isAdmin {
		// Another node may have revoked the other admin keys meanwhile:
		// if none is left, put this one back.
		if n, err := k.storedAdmins(ctx); err == nil && n == 0 {
			if rev, err := k.kv.Create(ctx, id, e.Value()); err == nil {
				k.set(id, rev, ent)
				return fmt.Errorf("%w: %s is the only admin key left (another was revoked at the same time); create another admin key first", ErrLastAdmin, id)
			}
		}
	}
	return nil
}

// admins counts the usable admin keys in the view other than except.
func (k *Keyring) admins(except string) int {
	k.mu.RLock()
	defer k.mu.RUnlock()
	n := 0
	for id, ent := range k.view {
		if id != except && ent.admin() && ent.usable {
			n++
		}
	}
	return n
}

// storedAdmins counts the usable admin keys in the bucket itself.
func (k *Keyring) storedAdmins(ctx context.Context) (int, error) {
	lister, err := k.kv.ListKeys(ctx)
	if err != nil {
		return 0, err
	}
	defer lister.Stop()
	n := 0
	for id := range lister.Keys() {
		e, err := k.kv.Get(ctx, id)
		if err != nil {
			continue
		}
		if ent := k.decode(e.Value()); ent != nil && ent.admin() && ent.usable {
			n++
		}
	}
	return n, nil
}

// sealingBucket holds the sealed records while sealPlainText rebuilds
// Bucket; it exists only during that rebuild (or after one was cut short).
const sealingBucket = Bucket + "_sealing"

// sealPlainText seals the records older nodes wrote with the secret in
// plain text. Rewriting a record is not enough: JetStream keeps the bytes
// of a replaced message in its block file until the block is compacted.
// So the bucket is rebuilt: every record, sealed, is copied to
// sealingBucket, Bucket is deleted (its files with it) and filled again
// from the copy, and the copy is deleted. A rebuild cut short is finished
// by the next Open. It runs before this node serves any request; other
// nodes sharing the bucket must be stopped while an upgraded node first
// starts (older versions did not share buckets).
func (k *Keyring) sealPlainText(ctx context.Context) error {
	js := k.st.JetStream()
	if tmp, err := js.KeyValue(ctx, sealingBucket); err == nil {
		// A rebuild was cut short: put back what Bucket lost.
		if err := copyRecords(ctx, tmp, k.kv); err != nil {
			return fmt.Errorf("keyring: finish sealing plain-text keys: %w", err)
		}
		if err := js.DeleteKeyValue(ctx, sealingBucket); err != nil {
			return fmt.Errorf("keyring: finish sealing plain-text keys: %w", err)
		}
	} else if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return fmt.Errorf("keyring: %w", err)
	}

	stored, err := readRecords(ctx, k.kv)
	if err != nil {
		return fmt.Errorf("keyring: read keys: %w", err)
	}
	plain := false
	sealed := make(map[string][]byte, len(stored))
	for id, v := range stored {
		sealed[id] = v
		var rec record
		if json.Unmarshal(v, &rec) != nil || rec.SecretAccessKey == "" {
			continue
		}
		plain = true
		secret := rec.SecretAccessKey
		rec.Scope, rec.Admin, rec.SecretAccessKey = rec.scope(), false, ""
		rec.Sealed, rec.MasterKey = k.seal(rec.AccessKeyID, secret), k.mkID
		if sealed[id], err = json.Marshal(rec); err != nil {
			return err
		}
	}
	if !plain {
		return nil
	}
	tmp, err := k.st.KeyValue(ctx, kvConfig(sealingBucket))
	if err != nil {
		return fmt.Errorf("keyring: seal plain-text keys: %w", err)
	}
	for id, v := range sealed {
		if _, err := tmp.Put(ctx, id, v); err != nil {
			return fmt.Errorf("keyring: seal plain-text keys: %w", err)
		}
	}
	if err := js.DeleteKeyValue(ctx, Bucket); err != nil {
		return fmt.Errorf("keyring: seal plain-text keys: %w", err)
	}
	if k.kv, err = k.st.KeyValue(ctx, kvConfig(Bucket)); err != nil {
		return fmt.Errorf("keyring: seal plain-text keys: %w", err)
	}
	if err := copyRecords(ctx, tmp, k.kv); err != nil {
		return fmt.Errorf("keyring: seal plain-text keys: %w", err)
	}
	if err := js.DeleteKeyValue(ctx, sealingBucket); err != nil {
		return fmt.Errorf("keyring: seal plain-text keys: %w", err)
	}
	return nil
}

// readRecords returns every stored value of kv, by key.
func readRecords(ctx context.Context, kv jetstream.KeyValue) (map[string][]byte, error) {
	lister, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	defer lister.Stop()
	out := map[string][]byte{}
	for id := range lister.Keys() {
		e, err := kv.Get(ctx, id)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		out[id] = e.Value()
	}
	return out, nil
}

// copyRecords creates in dst every record of src that dst lacks.
func copyRecords(ctx context.Context, src, dst jetstream.KeyValue) error {
	recs, err := readRecords(ctx, src)
	if err != nil {
		return err
	}
	for id, v := range recs {
		if _, err := dst.Create(ctx, id, v); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
			return err
		}
	}
	return nil
}

// seal encrypts secret for the record of id.
func (k *Keyring) seal(id, secret string) []byte {
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(secret)+k.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return k.aead.Seal(nonce, nonce, []byte(secret), additionalData(id))
}

// open decrypts a record's sealed secret.
func (k *Keyring) open(rec record) (string, error) {
	if rec.MasterKey != k.mkID {
		return "", fmt.Errorf("key %s is sealed with master key %s, not %s", rec.AccessKeyID, rec.MasterKey, k.mkID)
	}
	ns := k.aead.NonceSize()
	if len(rec.Sealed) < ns+k.aead.Overhead() {
		return "", fmt.Errorf("key %s: sealed secret is truncated", rec.AccessKeyID)
	}
	b, err := k.aead.Open(nil, rec.Sealed[:ns], rec.Sealed[ns:], additionalData(rec.AccessKeyID))
	if err != nil {
		return "", fmt.Errorf("key %s: %w", rec.AccessKeyID, err)
	}
	return string(b), nil
}

// additionalData binds a sealed secret to its access key id, so that it
// cannot be moved to another record.
func additionalData(id string) []byte { return []byte("gust-key:" + id) }

// fingerprint names a master key without revealing it.
func fingerprint(mk []byte) string {
	sum := sha256.Sum256(append([]byte("gust keyring master key\x00"), mk...))
	return hex.EncodeToString(sum[:8])
}

// masterKeyLen is the size of an AES-256 key.
const masterKeyLen = 32

// loadMasterKey reads the master key at path (base64 text), making it
// when the file does not exist. A file others may read is refused.
func loadMasterKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return createMasterKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("keyring: read master key: %w", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("keyring: read master key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("keyring: master key %s is accessible to other users (mode %04o): run chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	mk, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(b)))
	if err != nil || len(mk) != masterKeyLen {
		return nil, fmt.Errorf("keyring: master key %s is not %d bytes in base64: restore it from a backup or from another node sharing the %s bucket", path, masterKeyLen, Bucket)
	}
	return mk, nil
}

// createMasterKey writes a new random master key to path, atomically and
// without replacing a file another process wrote meanwhile.
func createMasterKey(path string) ([]byte, error) {
	mk := make([]byte, masterKeyLen)
	if _, err := rand.Read(mk); err != nil {
		return nil, fmt.Errorf("keyring: make master key: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	tmp, err := os.CreateTemp(dir, MasterKeyFile+".tmp*")
	if err != nil {
		return nil, fmt.Errorf("keyring: write master key: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(base64.StdEncoding.EncodeToString(mk) + "\n")
	if err == nil {
		err = tmp.Chmod(0o600)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("keyring: write master key: %w", err)
	}
	if err := os.Link(tmp.Name(), path); errors.Is(err, fs.ErrExist) {
		return loadMasterKey(path)
	} else if err != nil {
		return nil, fmt.Errorf("keyring: write master key: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return mk, nil
}

// validID reports whether id can name a key (and a KV key).
func validID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, c := range id {
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}
