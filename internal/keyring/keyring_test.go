package keyring_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/internal/creds"
	"github.com/gustfaas/gust/internal/keyring"
	"github.com/gustfaas/gust/internal/registry"
	"github.com/gustfaas/gust/internal/substrate"
)

func openSubstrate(t *testing.T, dir string) *substrate.Substrate {
	t.Helper()
	sub, err := substrate.Open(context.Background(), substrate.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Close() })
	return sub
}

func openKeyring(t *testing.T, st keyring.Store, dir string) *keyring.Keyring {
	t.Helper()
	k, err := keyring.Open(context.Background(), st, dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { k.Close() })
	return k
}

func gen() (string, string, error) {
	k, err := creds.Generate()
	return k.AccessKeyID, k.SecretAccessKey, err
}

// checkFor polls cond until it holds or the deadline passes.
func checkFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// onDisk reports the files under dir that hold b.
func onDisk(t *testing.T, dir string, b []byte) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(data, b) {
			found = append(found, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

func rawValue(t *testing.T, sub *substrate.Substrate, id string) []byte {
	t.Helper()
	kv, err := sub.JetStream().KeyValue(context.Background(), keyring.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("get %s: %v", id, err)
	}
	return e.Value()
}

func TestKeySealedAtRest(t *testing.T) {
	dir := t.TempDir()
	sub := openSubstrate(t, dir)
	k := openKeyring(t, sub, dir)
	ctx := context.Background()

	fi, err := os.Stat(filepath.Join(dir, keyring.MasterKeyFile))
	if err != nil {
		t.Fatalf("master key file: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("master key file mode = %04o, want 0600", fi.Mode().Perm())
	}
	admin, created, err := k.Admin(ctx, gen)
	if err != nil || !created || admin.SecretAccessKey == "" {
		t.Fatalf("Admin = %+v, %v, %v; want a new key with its secret", admin, created, err)
	}
	key, err := k.Create(ctx, api.CreateKeyRequest{Scope: api.ScopeInvoke, Functions: []string{"b", "a", "b"}, Description: "ci"})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if key.SecretAccessKey == "" || !strings.HasPrefix(key.AccessKeyID, creds.AccessKeyPrefix) {
		t.Fatalf("Create = %+v, want an id and a secret", key)
	}
	if got := strings.Join(key.Functions, ","); got != "a,b" {
		t.Errorf("Create functions = %s, want a,b (sorted, without duplicates)", got)
	}
	for _, s := range []struct{ id, secret string }{{admin.AccessKeyID, admin.SecretAccessKey}, {key.AccessKeyID, key.SecretAccessKey}} {
		if got, ok := k.Secret(s.id); !ok || got != s.secret {
			t.Errorf("Secret(%s) = %q, %v; want the secret", s.id, got, ok)
		}
		if v := rawValue(t, sub, s.id); bytes.Contains(v, []byte(s.secret)) {
			t.Errorf("KV value of %s holds the secret in plain text: %s", s.id, v)
		}
		if files := onDisk(t, filepath.Join(dir, "jetstream"), []byte(s.secret)); len(files) > 0 {
			t.Errorf("secret of %s found in plain text in %v", s.id, files)
		}
	}
	list, err := k.List(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("List = %+v, %v; want 2 keys", list, err)
	}
	for _, l := range list {
		if l.SecretAccessKey != "" {
			t.Errorf("List shows the secret of %s", l.AccessKeyID)
		}
	}

	// Reopened, with the same master key file: keys still work, and the
	// admin key is the same one.
	k.Close()
	k2 := openKeyring(t, sub, dir)
	if got, ok := k2.Secret(key.AccessKeyID); !ok || got != key.SecretAccessKey {
		t.Errorf("after reopen Secret(%s) = %q, %v", key.AccessKeyID, got, ok)
	}
	again, created, err := k2.Admin(ctx, gen)
	if err != nil || created || again.AccessKeyID != admin.AccessKeyID || again.SecretAccessKey != admin.SecretAccessKey {
		t.Errorf("Admin after reopen = %+v, %v, %v; want %s unchanged", again, created, err, admin.AccessKeyID)
	}
}

func TestKeyAllowed(t *testing.T) {
	dir := t.TempDir()
	k := openKeyring(t, openSubstrate(t, dir), dir)
	ctx := context.Background()
	admin, _, err := k.Admin(ctx, gen)
	if err != nil {
		t.Fatal(err)
	}
	all, err := k.Create(ctx, api.CreateKeyRequest{Scope: api.ScopeInvoke})
	if err != nil {
		t.Fatal(err)
	}
	onlyA, err := k.Create(ctx, api.CreateKeyRequest{Scope: api.ScopeInvoke, Functions: []string{"a"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, key, action, function string
		want                        bool
	}{
		{"admin invokes", admin.AccessKeyID, keyring.ActionInvoke, "a", true},
		{"admin creates", admin.AccessKeyID, "lambda:CreateFunction", "", true},
		{"admin manages keys", admin.AccessKeyID, "gust:CreateKey", "", true},
		{"invoke key invokes any", all.AccessKeyID, keyring.ActionInvoke, "b", true},
		{"invoke key lists", all.AccessKeyID, "lambda:ListFunctions", "", false},
		{"invoke key gets", all.AccessKeyID, "lambda:GetFunction", "a", false},
		{"invoke key deletes", all.AccessKeyID, "lambda:DeleteFunction", "a", false},
		{"invoke key reads logs", all.AccessKeyID, "gust:ReadLogs", "a", false},
		{"invoke key manages keys", all.AccessKeyID, "gust:ListKeys", "", false},
		{"limited key invokes its function", onlyA.AccessKeyID, keyring.ActionInvoke, "a", true},
		{"limited key invokes another", onlyA.AccessKeyID, keyring.ActionInvoke, "b", false},
		{"limited key invokes none", onlyA.AccessKeyID, keyring.ActionInvoke, "", false},
		{"unknown key", "GKUNKNOWN0000000000", keyring.ActionInvoke, "a", false},
		{"malformed key", "not.a*key", keyring.ActionInvoke, "a", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := k.Allowed(c.key, c.action, c.function); got != c.want {
				t.Errorf("Allowed(%s, %s, %q) = %v, want %v", c.key, c.action, c.function, got, c.want)
			}
		})
	}
}

func TestKeyCreateInvalid(t *testing.T) {
	dir := t.TempDir()
	k := openKeyring(t, openSubstrate(t, dir), dir)
	many := make([]string, keyring.MaxFunctions+1)
	for i := range many {
		many[i] = "f" + strings.Repeat("x", i%10)
	}
	for _, c := range []struct {
		name string
		req  api.CreateKeyRequest
		want string // in the message
	}{
		{"no scope", api.CreateKeyRequest{}, "scope is required"},
		{"unknown scope", api.CreateKeyRequest{Scope: "root"}, `scope "root" is not valid`},
		{"functions on admin", api.CreateKeyRequest{Scope: api.ScopeAdmin, Functions: []string{"a"}}, "functions can only limit a key of scope invoke"},
		{"bad function name", api.CreateKeyRequest{Scope: api.ScopeInvoke, Functions: []string{"a", "no/slash"}}, `function name "no/slash" is not valid`},
		{"empty function name", api.CreateKeyRequest{Scope: api.ScopeInvoke, Functions: []string{""}}, `function name "" is not valid`},
		{"too many functions", api.CreateKeyRequest{Scope: api.ScopeInvoke, Functions: many}, "at most 100 functions"},
		{"long description", api.CreateKeyRequest{Scope: api.ScopeInvoke, Description: strings.Repeat("d", 257)}, "at most 256"},
		{"multi-line description", api.CreateKeyRequest{Scope: api.ScopeInvoke, Description: "a\nb"}, "one line"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := k.Create(context.Background(), c.req)
			var ve *registry.ValidationError
			if !errors.As(err, &ve) || !strings.Contains(ve.Message, c.want) {
				t.Errorf("Create(%+v) = %v, want a ValidationError saying %q", c.req, err, c.want)
			}
		})
	}
	if list, _ := k.List(context.Background()); len(list) != 0 {
		t.Errorf("refused requests stored keys: %+v", list)
	}
}

func TestKeyRevoke(t *testing.T) {
	dir := t.TempDir()
	sub := openSubstrate(t, dir)
	k := openKeyring(t, sub, dir)
	// A second keyring on the same bucket stands for another node.
	other := openKeyring(t, sub, dir)
	ctx := context.Background()
	admin, _, err := k.Admin(ctx, gen)
	if err != nil {
		t.Fatal(err)
	}
	inv, err := k.Create(ctx, api.CreateKeyRequest{Scope: api.ScopeInvoke})
	if err != nil {
		t.Fatal(err)
	}
	// Known to the other node at once (from the bucket if its watch lags).
	if _, ok := other.Secret(inv.AccessKeyID); !ok {
		t.Fatalf("other node does not know %s", inv.AccessKeyID)
	}

	if err := k.Revoke(ctx, inv.AccessKeyID); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if _, ok := k.Secret(inv.AccessKeyID); ok {
		t.Errorf("Secret(%s) after Revoke still known", inv.AccessKeyID)
	}
	if k.Allowed(inv.AccessKeyID, keyring.ActionInvoke, "a") {
		t.Errorf("Allowed(%s) after Revoke", inv.AccessKeyID)
	}
	checkFor(t, "the other node drops the revoked key", func() bool {
		_, ok := other.Secret(inv.AccessKeyID)
		return !ok
	})

	for _, c := range []struct {
		name, id string
		want     error
	}{
		{"revoked again", inv.AccessKeyID, keyring.ErrNotFound},
		{"unknown", "GKNOSUCHKEY00000000", keyring.ErrNotFound},
		{"malformed", "a.b>", keyring.ErrNotFound},
		{"last admin", admin.AccessKeyID, keyring.ErrLastAdmin},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := k.Revoke(ctx, c.id); !errors.Is(err, c.want) {
				t.Errorf("Revoke(%q) = %v, want %v", c.id, err, c.want)
			}
		})
	}
	if _, ok := k.Secret(admin.AccessKeyID); !ok {
		t.Fatal("the last admin key was revoked")
	}

	// With a second admin key, the first may go; then the second is the last.
	admin2, err := k.Create(ctx, api.CreateKeyRequest{Scope: api.ScopeAdmin})
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Revoke(ctx, admin.AccessKeyID); err != nil {
		t.Fatalf("Revoke first admin with a second one present: %v", err)
	}
	if err := k.Revoke(ctx, admin2.AccessKeyID); !errors.Is(err, keyring.ErrLastAdmin) {
		t.Errorf("Revoke(last admin %s) = %v, want ErrLastAdmin", admin2.AccessKeyID, err)
	}
	got, created, err := k.Admin(ctx, gen)
	if err != nil || created || got.AccessKeyID != admin2.AccessKeyID {
		t.Errorf("Admin = %s, %v, %v; want the remaining admin key %s", got.AccessKeyID, created, err, admin2.AccessKeyID)
	}
}

// TestKeyLegacyPlainText: records an older node wrote with the secret in
// plain text are sealed on Open, and no plain-text copy stays on disk.
func TestKeyLegacyPlainText(t *testing.T) {
	dir := t.TempDir()
	sub := openSubstrate(t, dir)
	ctx := context.Background()
	kv, err := sub.KeyValue(ctx, jetstream.KeyValueConfig{Bucket: keyring.Bucket, History: 1})
	if err != nil {
		t.Fatal(err)
	}
	old, err := creds.Generate()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]any{"accessKeyId": old.AccessKeyID, "secretAccessKey": old.SecretAccessKey,
		"created": time.Now().UTC(), "admin": true})
	if _, err := kv.Create(ctx, old.AccessKeyID, b); err != nil {
		t.Fatal(err)
	}
	if files := onDisk(t, filepath.Join(dir, "jetstream"), []byte(old.SecretAccessKey)); len(files) == 0 {
		t.Fatal("test setup: the plain-text record is not on disk")
	}

	k := openKeyring(t, sub, dir)
	if v := rawValue(t, sub, old.AccessKeyID); bytes.Contains(v, []byte(old.SecretAccessKey)) {
		t.Errorf("after Open the record is still plain text: %s", v)
	}
	if files := onDisk(t, filepath.Join(dir, "jetstream"), []byte(old.SecretAccessKey)); len(files) > 0 {
		t.Errorf("after Open the plain-text secret is still on disk in %v", files)
	}
	if got, ok := k.Secret(old.AccessKeyID); !ok || got != old.SecretAccessKey {
		t.Errorf("Secret(%s) = %q, %v; want the old secret", old.AccessKeyID, got, ok)
	}
	if !k.Allowed(old.AccessKeyID, "lambda:CreateFunction", "") {
		t.Errorf("the old admin key lost its scope")
	}
	admin, created, err := k.Admin(ctx, gen)
	if err != nil || created || admin.AccessKeyID != old.AccessKeyID || admin.SecretAccessKey != old.SecretAccessKey {
		t.Errorf("Admin = %+v, %v, %v; want the old admin key", admin, created, err)
	}
	st, err := kv.Status(ctx)
	if err != nil || st.History() != 1 {
		t.Errorf("bucket history after sealing = %v, %v; want 1", st, err)
	}
}

func TestKeyMasterKey(t *testing.T) {
	ctx := context.Background()
	t.Run("another master key", func(t *testing.T) {
		dir := t.TempDir()
		sub := openSubstrate(t, dir)
		k := openKeyring(t, sub, dir)
		if _, _, err := k.Admin(ctx, gen); err != nil {
			t.Fatal(err)
		}
		// A node sharing the bucket without the same keyring.key.
		_, err := keyring.Open(ctx, sub, t.TempDir())
		if err == nil || !strings.Contains(err.Error(), keyring.MasterKeyFile) {
			t.Errorf("Open with another master key = %v, want an error naming %s", err, keyring.MasterKeyFile)
		}
	})
	t.Run("readable by others", func(t *testing.T) {
		dir := t.TempDir()
		sub := openSubstrate(t, dir)
		openKeyring(t, sub, dir).Close()
		path := filepath.Join(dir, keyring.MasterKeyFile)
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := keyring.Open(ctx, sub, dir); err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("Open with a 0644 master key = %v, want an error saying to chmod it", err)
		}
	})
	t.Run("corrupt", func(t *testing.T) {
		dir := t.TempDir()
		sub := openSubstrate(t, dir)
		if err := os.WriteFile(filepath.Join(dir, keyring.MasterKeyFile), []byte("short\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := keyring.Open(ctx, sub, dir); err == nil || !strings.Contains(err.Error(), "32 bytes") {
			t.Errorf("Open with a corrupt master key = %v, want an error", err)
		}
	})
	t.Run("no data directory", func(t *testing.T) {
		dir := t.TempDir()
		if _, err := keyring.Open(ctx, openSubstrate(t, dir), ""); err == nil {
			t.Error("Open without a data directory succeeded")
		}
	})
}

// TestKeySealingResumed: a rebuild of the bucket cut short after the key
// bucket was deleted is finished by the next Open.
func TestKeySealingResumed(t *testing.T) {
	dir := t.TempDir()
	sub := openSubstrate(t, dir)
	ctx := context.Background()
	k := openKeyring(t, sub, dir)
	key, err := k.Create(ctx, api.CreateKeyRequest{Scope: api.ScopeInvoke, Functions: []string{"a"}})
	if err != nil {
		t.Fatal(err)
	}
	k.Close()
	sealed := rawValue(t, sub, key.AccessKeyID)

	// The state a crash leaves between deleting and refilling the bucket.
	tmp, err := sub.KeyValue(ctx, jetstream.KeyValueConfig{Bucket: keyring.Bucket + "_sealing", History: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tmp.Put(ctx, key.AccessKeyID, sealed); err != nil {
		t.Fatal(err)
	}
	if err := sub.JetStream().DeleteKeyValue(ctx, keyring.Bucket); err != nil {
		t.Fatal(err)
	}

	k2 := openKeyring(t, sub, dir)
	if got, ok := k2.Secret(key.AccessKeyID); !ok || got != key.SecretAccessKey {
		t.Errorf("Secret(%s) after a resumed rebuild = %q, %v; want the secret", key.AccessKeyID, got, ok)
	}
	if !k2.Allowed(key.AccessKeyID, keyring.ActionInvoke, "a") || k2.Allowed(key.AccessKeyID, keyring.ActionInvoke, "b") {
		t.Errorf("the restored key lost its scope")
	}
	if _, err := sub.JetStream().KeyValue(ctx, keyring.Bucket+"_sealing"); !errors.Is(err, jetstream.ErrBucketNotFound) {
		t.Errorf("sealing bucket after Open: %v, want it deleted", err)
	}
}

// TestKeyConcurrentUse: look-ups run while keys come and go (run with
// -race).
func TestKeyConcurrentUse(t *testing.T) {
	dir := t.TempDir()
	k := openKeyring(t, openSubstrate(t, dir), dir)
	ctx := context.Background()
	if _, _, err := k.Admin(ctx, gen); err != nil {
		t.Fatal(err)
	}
	ids := make(chan string, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for id := range ids {
			for range 20 {
				k.Secret(id)
				k.Allowed(id, keyring.ActionInvoke, "a")
			}
		}
	}()
	for range 20 {
		key, err := k.Create(ctx, api.CreateKeyRequest{Scope: api.ScopeInvoke, Functions: []string{"a"}})
		if err != nil {
			t.Fatal(err)
		}
		ids <- key.AccessKeyID
		if err := k.Revoke(ctx, key.AccessKeyID); err != nil {
			t.Fatal(err)
		}
		if _, ok := k.Secret(key.AccessKeyID); ok {
			t.Fatalf("Secret(%s) right after Revoke still known", key.AccessKeyID)
		}
	}
	close(ids)
	<-done
	if list, err := k.List(ctx); err != nil || len(list) != 1 {
		t.Errorf("List = %d keys, %v; want only the admin key", len(list), err)
	}
}
