// Package keyring stores the node's API keys (SigV4 access key pairs) in a
// JetStream KV bucket and answers secret look-ups for signature checks from
// memory.
package keyring

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Bucket is the KV bucket holding keys, by access key id.
const Bucket = "gust_keys"

// Key is a stored key pair.
type Key struct {
	AccessKeyID     string    `json:"accessKeyId"`
	SecretAccessKey string    `json:"secretAccessKey"`
	Created         time.Time `json:"created"`
	Admin           bool      `json:"admin"`
}

// Store is what the keyring needs from the substrate.
type Store interface {
	KeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error)
}

// Keyring is safe for concurrent use.
type Keyring struct {
	kv jetstream.KeyValue

	mu    sync.RWMutex
	cache map[string]string
}

// Open creates or opens the key bucket.
func Open(ctx context.Context, st Store) (*Keyring, error) {
	kv, err := st.KeyValue(ctx, jetstream.KeyValueConfig{Bucket: Bucket, Description: "Gust API keys", History: 1})
	if err != nil {
		return nil, err
	}
	return &Keyring{kv: kv, cache: map[string]string{}}, nil
}

// Admin returns the first admin key, creating one with gen when there is
// none. created reports whether it was made now.
func (k *Keyring) Admin(ctx context.Context, gen func() (id, secret string, err error)) (key Key, created bool, err error) {
	lister, err := k.kv.ListKeys(ctx)
	if err != nil {
		return Key{}, false, fmt.Errorf("list keys: %w", err)
	}
	for id := range lister.Keys() {
		e, err := k.kv.Get(ctx, id)
		if err != nil {
			continue
		}
		var kk Key
		if json.Unmarshal(e.Value(), &kk) == nil && kk.Admin {
			_ = lister.Stop()
			return kk, false, nil
		}
	}
	id, secret, err := gen()
	if err != nil {
		return Key{}, false, err
	}
	key = Key{AccessKeyID: id, SecretAccessKey: secret, Created: time.Now().UTC(), Admin: true}
	b, _ := json.Marshal(key)
	if _, err := k.kv.Create(ctx, id, b); err != nil {
		return Key{}, false, fmt.Errorf("store admin key: %w", err)
	}
	return key, true, nil
}

// Secret looks up the secret for an access key id.
func (k *Keyring) Secret(id string) (string, bool) {
	k.mu.RLock()
	s, ok := k.cache[id]
	k.mu.RUnlock()
	if ok {
		return s, true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Unknown, malformed (not a valid key) or unreadable: no secret.
	e, err := k.kv.Get(ctx, id)
	if err != nil {
		return "", false
	}
	var kk Key
	if json.Unmarshal(e.Value(), &kk) != nil {
		return "", false
	}
	k.mu.Lock()
	k.cache[id] = kk.SecretAccessKey
	k.mu.Unlock()
	return kk.SecretAccessKey, true
}
