package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/client"
	"github.com/gustfaas/gust/internal/cli"
	"github.com/gustfaas/gust/internal/keyring"
	"github.com/gustfaas/gust/internal/node"
	"github.com/gustfaas/gust/internal/substrate"
)

// keyLambda is the official AWS SDK client pointed at n, signing with the
// key pair given.
func keyLambda(t *testing.T, n interface{ URL() string }, id, secret string) *lambda.Client {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(id, secret, "")))
	if err != nil {
		t.Fatal(err)
	}
	return lambda.NewFromConfig(cfg, func(o *lambda.Options) { o.BaseEndpoint = aws.String(n.URL()); o.RetryMaxAttempts = 1 })
}

// adminClient is a Gust client of n signing with its admin key.
func adminClient(n *node.Node) *client.Client {
	id, secret := n.AdminKey()
	return client.New(n.URL(), client.Credentials{AccessKeyID: id, SecretAccessKey: secret})
}

// errorCode is the Lambda exception name and HTTP status of an SDK error
// ("" when err is nil).
func errorCode(err error) (string, int) {
	if err == nil {
		return "", 0
	}
	code, status := "not an API error: "+err.Error(), 0
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	return code, status
}

// mustCreateKey issues a key through the API with the node's admin key.
func mustCreateKey(t *testing.T, n *node.Node, req api.CreateKeyRequest) api.AccessKey {
	t.Helper()
	k, err := adminClient(n).CreateKey(context.Background(), req)
	if err != nil {
		t.Fatalf("CreateKey(%+v): %v", req, err)
	}
	if k.AccessKeyID == "" || k.SecretAccessKey == "" || k.Scope != req.Scope {
		t.Fatalf("CreateKey(%+v) = %+v, want an id, a secret and the scope", req, k)
	}
	return k
}

// snapshot is what the admin sees of the deployed functions: any change
// to code or configuration changes it.
func snapshot(t *testing.T, c *lambda.Client) string {
	t.Helper()
	ctx := context.Background()
	out, err := c.ListFunctions(ctx, &lambda.ListFunctionsInput{})
	if err != nil {
		t.Fatalf("ListFunctions (admin): %v", err)
	}
	var b strings.Builder
	for _, f := range out.Functions {
		fmt := func(p *string) string { return aws.ToString(p) }
		b.WriteString(fmt(f.FunctionName) + " " + fmt(f.CodeSha256) + " " + fmt(f.RevisionId) + " " + fmt(f.LastModified) + "\n")
	}
	return b.String()
}

// TestKeyScopes: what admin, invoke and function-limited invoke keys may
// do through the official AWS SDK, and that refusals change nothing.
func TestKeyScopes(t *testing.T) {
	buildGuests(t)
	n := startNode(t, t.TempDir())
	ctx := context.Background()
	admin := lambdaClient(t, n)
	if _, err := createHello(admin); err != nil {
		t.Fatalf("create hello: %v", err)
	}
	if _, err := admin.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("other"), Role: aws.String(role), Runtime: types.Runtime("wasm"),
		Code: &types.FunctionCode{ZipFile: guests.hello},
	}); err != nil {
		t.Fatalf("create other: %v", err)
	}
	before := snapshot(t, admin)

	invokeAll := mustCreateKey(t, n, api.CreateKeyRequest{Scope: api.ScopeInvoke, Description: "any function"})
	invokeHello := mustCreateKey(t, n, api.CreateKeyRequest{Scope: api.ScopeInvoke, Functions: []string{"hello"}})
	admin2 := mustCreateKey(t, n, api.CreateKeyRequest{Scope: api.ScopeAdmin})

	type op struct {
		name string
		do   func(c *lambda.Client) error
	}
	invoke := func(fn string) op {
		return op{"Invoke " + fn, func(c *lambda.Client) error {
			out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(fn), Payload: []byte(`{"name":"Ada"}`)})
			if err == nil && !bytes.Contains(out.Payload, []byte("Hello, Ada!")) {
				return errors.New("unexpected payload " + string(out.Payload))
			}
			return err
		}}
	}
	// Operations that change something act on names that do not exist or
	// would fail anyway for an admin, so the table can run them for every
	// key; each refused one must leave the functions as they were.
	ops := map[string]op{
		"invoke hello":        invoke("hello"),
		"invoke other":        invoke("other"),
		"invoke hello by ARN": invoke("arn:aws:lambda:us-east-1:000000000000:function:hello"),
		"list": {"ListFunctions", func(c *lambda.Client) error {
			_, err := c.ListFunctions(ctx, &lambda.ListFunctionsInput{})
			return err
		}},
		"get": {"GetFunction", func(c *lambda.Client) error {
			_, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("hello")})
			return err
		}},
		"create": {"CreateFunction", func(c *lambda.Client) error {
			_, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{
				FunctionName: aws.String("hello"), Role: aws.String(role), Runtime: types.Runtime("wasm"),
				Code: &types.FunctionCode{ZipFile: guests.hello},
			})
			return err
		}},
		"update": {"UpdateFunctionConfiguration", func(c *lambda.Client) error {
			_, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
				FunctionName: aws.String("hello"), MemorySize: aws.Int32(1)})
			return err
		}},
		"delete": {"DeleteFunction", func(c *lambda.Client) error {
			_, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("nosuchfunction")})
			return err
		}},
	}
	const ok, denied = "", api.ErrAccessDenied
	for _, tc := range []struct {
		key  string
		id   string
		sec  string
		want map[string]string // op -> error code ("" for success)
	}{
		{"invoke", invokeAll.AccessKeyID, invokeAll.SecretAccessKey, map[string]string{
			"invoke hello": ok, "invoke other": ok, "invoke hello by ARN": ok,
			"list": denied, "get": denied, "create": denied, "update": denied, "delete": denied}},
		{"invoke hello only", invokeHello.AccessKeyID, invokeHello.SecretAccessKey, map[string]string{
			"invoke hello": ok, "invoke other": denied, "invoke hello by ARN": ok,
			"list": denied, "get": denied, "create": denied, "update": denied, "delete": denied}},
		{"admin", admin2.AccessKeyID, admin2.SecretAccessKey, map[string]string{
			"invoke hello": ok, "invoke other": ok, "invoke hello by ARN": ok, "list": ok, "get": ok,
			"create": api.ErrResourceConflict, "update": api.ErrInvalidParameterValue, "delete": api.ErrResourceNotFound}},
	} {
		c := keyLambda(t, n, tc.id, tc.sec)
		for name, want := range tc.want {
			t.Run(tc.key+"/"+name, func(t *testing.T) {
				err := ops[name].do(c)
				code, status := errorCode(err)
				if code != want {
					t.Fatalf("%s with a %s key: error %v, want %q", ops[name].name, tc.key, err, want)
				}
				if want == denied {
					if status != http.StatusForbidden {
						t.Errorf("%s refused with status %d, want 403", ops[name].name, status)
					}
					if !strings.Contains(err.Error(), "is not authorized to perform") || !strings.Contains(err.Error(), tc.id) {
						t.Errorf("%s refusal %q does not say which key may not do what", ops[name].name, err)
					}
				}
			})
		}
	}
	if after := snapshot(t, admin); after != before {
		t.Errorf("refused requests changed the functions:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	// Key management is for admin keys only.
	inv := client.New(n.URL(), client.Credentials{AccessKeyID: invokeAll.AccessKeyID, SecretAccessKey: invokeAll.SecretAccessKey})
	for name, do := range map[string]func() error{
		"create": func() error {
			_, err := inv.CreateKey(ctx, api.CreateKeyRequest{Scope: api.ScopeAdmin})
			return err
		},
		"list":   func() error { _, err := inv.ListKeys(ctx); return err },
		"revoke": func() error { return inv.RevokeKey(ctx, admin2.AccessKeyID) },
	} {
		var ae *api.Error
		if err := do(); !errors.As(err, &ae) || ae.Code != api.ErrAccessDenied || ae.Status != http.StatusForbidden {
			t.Errorf("%s keys with an invoke key = %v, want 403 %s", name, err, api.ErrAccessDenied)
		}
	}
	// The admin key made through the API manages keys too.
	a2 := client.New(n.URL(), client.Credentials{AccessKeyID: admin2.AccessKeyID, SecretAccessKey: admin2.SecretAccessKey})
	if keys, err := a2.ListKeys(ctx); err != nil || len(keys) != 4 {
		t.Errorf("ListKeys with the second admin key = %d keys, %v; want 4", len(keys), err)
	}

	// Revocation takes effect at once: the very next request is refused
	// with the error SDKs report for an unknown key.
	if err := adminClient(n).RevokeKey(ctx, invokeAll.AccessKeyID); err != nil {
		t.Fatalf("RevokeKey: %v", err)
	}
	revoked := keyLambda(t, n, invokeAll.AccessKeyID, invokeAll.SecretAccessKey)
	_, err := revoked.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("hello")})
	if code, status := errorCode(err); code != "UnrecognizedClientException" || status != http.StatusForbidden {
		t.Errorf("Invoke with a revoked key: %v (%s, %d), want 403 UnrecognizedClientException", err, code, status)
	} else if !strings.Contains(err.Error(), "The security token included in the request is invalid") {
		t.Errorf("revoked key message = %v", err)
	}
	// Other keys are unaffected.
	if err := invoke("hello").do(keyLambda(t, n, invokeHello.AccessKeyID, invokeHello.SecretAccessKey)); err != nil {
		t.Errorf("Invoke with another invoke key after a revocation: %v", err)
	}
	if after := snapshot(t, admin); after != before {
		t.Errorf("key management changed the functions:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// TestKeyBadInput: refused key requests name their problem with Lambda's
// error codes, and store nothing.
func TestKeyBadInput(t *testing.T) {
	n := startNode(t, t.TempDir())
	ctx := context.Background()
	c := adminClient(n)
	adminID, _ := n.AdminKey()
	for _, tc := range []struct {
		name       string
		do         func() error
		wantCode   string
		wantStatus int
		wantMsg    string
	}{
		{"unknown scope", func() error {
			_, err := c.CreateKey(ctx, api.CreateKeyRequest{Scope: "root"})
			return err
		}, api.ErrInvalidParameterValue, 400, `scope "root" is not valid`},
		{"no scope", func() error {
			_, err := c.CreateKey(ctx, api.CreateKeyRequest{})
			return err
		}, api.ErrInvalidParameterValue, 400, "scope is required"},
		{"functions with admin scope", func() error {
			_, err := c.CreateKey(ctx, api.CreateKeyRequest{Scope: api.ScopeAdmin, Functions: []string{"hello"}})
			return err
		}, api.ErrInvalidParameterValue, 400, "functions can only limit a key of scope invoke"},
		{"bad function name", func() error {
			_, err := c.CreateKey(ctx, api.CreateKeyRequest{Scope: api.ScopeInvoke, Functions: []string{"hello world"}})
			return err
		}, api.ErrInvalidParameterValue, 400, `function name "hello world" is not valid`},
		{"revoke unknown id", func() error { return c.RevokeKey(ctx, "GKNOSUCHKEY000000000") }, api.ErrResourceNotFound, 404, "GKNOSUCHKEY000000000"},
		{"revoke malformed id", func() error { return c.RevokeKey(ctx, "a.b*c") }, api.ErrResourceNotFound, 404, "not found"},
		{"revoke the last admin key", func() error { return c.RevokeKey(ctx, adminID) }, api.ErrResourceConflict, 409, "last admin key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ae *api.Error
			err := tc.do()
			if !errors.As(err, &ae) || ae.Code != tc.wantCode || ae.Status != tc.wantStatus || !strings.Contains(ae.Message, tc.wantMsg) {
				t.Errorf("error = %v, want %d %s mentioning %q", err, tc.wantStatus, tc.wantCode, tc.wantMsg)
			}
		})
	}
	keys, err := c.ListKeys(ctx)
	if err != nil || len(keys) != 1 || keys[0].AccessKeyID != adminID || keys[0].Scope != api.ScopeAdmin {
		t.Errorf("ListKeys after refused requests = %+v, %v; want only the admin key", keys, err)
	}
	// The admin key still works.
	_, adminSecret := n.AdminKey()
	if _, err := keyLambda(t, n, adminID, adminSecret).ListFunctions(ctx, &lambda.ListFunctionsInput{}); err != nil {
		t.Errorf("the admin key stopped working: %v", err)
	}
}

// filesHolding lists the files under dir whose bytes contain b.
func filesHolding(t *testing.T, dir string, b []byte) []string {
	t.Helper()
	var found []string
	if err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(data, b) {
			found = append(found, p)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return found
}

// TestKeySecretsAtRestAndRestart: secrets never reach JetStream in plain
// text, the master key stays outside it, and keys survive a restart.
func TestKeySecretsAtRestAndRestart(t *testing.T) {
	buildGuests(t)
	dir := t.TempDir()
	ctx := context.Background()
	cfg := node.Config{Listen: "127.0.0.1:0", DataDir: dir, CacheDir: sharedCache,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	n1, err := node.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := createHello(lambdaClient(t, n1)); err != nil {
		t.Fatal(err)
	}
	inv := mustCreateKey(t, n1, api.CreateKeyRequest{Scope: api.ScopeInvoke, Functions: []string{"hello"}, Description: "at rest"})
	adminID, adminSecret := n1.AdminKey()

	js := filepath.Join(dir, "jetstream")
	for _, s := range []struct{ what, secret string }{{"invoke key", inv.SecretAccessKey}, {"admin key", adminSecret}} {
		if files := filesHolding(t, js, []byte(s.secret)); len(files) > 0 {
			t.Errorf("the %s's secret is in plain text in %v", s.what, files)
		}
	}
	mk := filepath.Join(dir, keyring.MasterKeyFile)
	if fi, err := os.Stat(mk); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("master key file %s: %v, %v; want mode 0600", mk, fi, err)
	}
	mkBytes, _ := os.ReadFile(mk)
	if files := filesHolding(t, js, bytes.TrimSpace(mkBytes)); len(mkBytes) == 0 || len(files) > 0 {
		t.Errorf("master key found in JetStream files %v", files)
	}
	if err := n1.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}

	// The stored records, read straight from the bucket.
	sub, err := substrate.Open(ctx, substrate.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	kv, err := sub.JetStream().KeyValue(ctx, keyring.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct{ id, secret string }{{inv.AccessKeyID, inv.SecretAccessKey}, {adminID, adminSecret}} {
		e, err := kv.Get(ctx, s.id)
		if err != nil {
			t.Fatalf("get %s: %v", s.id, err)
		}
		var rec map[string]any
		if err := json.Unmarshal(e.Value(), &rec); err != nil {
			t.Fatalf("record %s: %v", s.id, err)
		}
		if bytes.Contains(e.Value(), []byte(s.secret)) || rec["secretAccessKey"] != nil || rec["sealedSecret"] == nil {
			t.Errorf("record of %s is not sealed: %s", s.id, e.Value())
		}
	}
	sub.Close()

	// After a restart every key works as before, with its scope.
	n2 := startNode(t, dir)
	if id, secret := n2.AdminKey(); id != adminID || secret != adminSecret {
		t.Errorf("admin key after restart = %s, want %s with the same secret", id, adminID)
	}
	c := keyLambda(t, n2, inv.AccessKeyID, inv.SecretAccessKey)
	if out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("hello"), Payload: []byte(`{"name":"Ada"}`)}); err != nil || !bytes.Contains(out.Payload, []byte("Hello, Ada!")) {
		t.Errorf("Invoke with the invoke key after restart: %v", err)
	}
	if _, err := c.ListFunctions(ctx, &lambda.ListFunctionsInput{}); func() string { code, _ := errorCode(err); return code }() != api.ErrAccessDenied {
		t.Errorf("ListFunctions with the invoke key after restart: %v, want %s", err, api.ErrAccessDenied)
	}
	keys, err := adminClient(n2).ListKeys(ctx)
	if err != nil || len(keys) != 2 {
		t.Fatalf("ListKeys after restart = %+v, %v; want 2 keys", keys, err)
	}
	for _, k := range keys {
		if k.SecretAccessKey != "" {
			t.Errorf("ListKeys shows the secret of %s", k.AccessKeyID)
		}
		if k.AccessKeyID == inv.AccessKeyID && (k.Description != "at rest" || strings.Join(k.Functions, ",") != "hello") {
			t.Errorf("invoke key after restart = %+v, want its description and functions", k)
		}
	}
}

// gustAs runs the CLI against n with extra environment variables.
func gustAs(t *testing.T, n interface{ URL() string }, dataDir string, extra map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := map[string]string{"GUST_SERVER": n.URL(), "HOME": t.TempDir()}
	for k, v := range extra {
		env[k] = v
	}
	code := cli.Run(context.Background(), append([]string{"--data", dataDir}, args...), cli.Env{
		Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return env[k] },
	})
	return code, out.String(), errb.String()
}

// TestKeysCLI: gust keys create, ls and rm against a real node.
func TestKeysCLI(t *testing.T) {
	buildGuests(t)
	dir := t.TempDir()
	n := startNode(t, dir)
	ctx := context.Background()
	if _, err := createHello(lambdaClient(t, n)); err != nil {
		t.Fatal(err)
	}

	// create prints an AWS credentials profile, once.
	code, out, errs := gust(t, n, dir, "", "keys", "create", "--scope", "invoke", "--function", "hello", "--description", "ci deploys")
	if code != 0 {
		t.Fatalf("keys create = %d\n%s%s", code, out, errs)
	}
	if !strings.Contains(out, "will not show it again") {
		t.Errorf("keys create does not say the secret is shown once:\n%s", out)
	}
	credFile := filepath.Join(t.TempDir(), "credentials")
	if err := os.WriteFile(credFile, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	var id string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "[") {
			id = strings.Trim(l, "[]")
		}
	}
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion("us-east-1"),
		config.WithSharedCredentialsFiles([]string{credFile}),
		config.WithSharedConfigFiles([]string{filepath.Join(t.TempDir(), "none")}),
		config.WithSharedConfigProfile(id))
	if err != nil {
		t.Fatalf("the printed profile does not load: %v\n%s", err, out)
	}
	sdk := lambda.NewFromConfig(cfg, func(o *lambda.Options) { o.BaseEndpoint = aws.String(n.URL()); o.RetryMaxAttempts = 1 })
	if res, err := sdk.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("hello"), Payload: []byte(`{"name":"Ada"}`)}); err != nil || !bytes.Contains(res.Payload, []byte("Hello, Ada!")) {
		t.Errorf("Invoke with the printed profile [%s]: %v", id, err)
	}
	secret := ""
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, "aws_secret_access_key = "); ok {
			secret = v
		}
	}

	// create -o json prints the key, secret included.
	code, out, errs = gust(t, n, dir, "", "keys", "create", "--scope", "admin", "-o", "json")
	var made api.AccessKey
	if code != 0 || json.Unmarshal([]byte(out), &made) != nil || made.SecretAccessKey == "" || made.Scope != api.ScopeAdmin {
		t.Fatalf("keys create -o json = %d %s %s", code, out, errs)
	}

	// ls shows every key, never a secret.
	code, out, errs = gust(t, n, dir, "", "keys", "ls")
	adminID, _ := n.AdminKey()
	if code != 0 {
		t.Fatalf("keys ls = %d %s", code, errs)
	}
	for _, want := range []string{"ACCESS KEY ID", "SCOPE", id, adminID, made.AccessKeyID, "invoke", "hello", "ci deploys", "(all)"} {
		if !strings.Contains(out, want) {
			t.Errorf("keys ls lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = gust(t, n, dir, "", "keys", "ls", "-o", "json")
	var list []api.AccessKey
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 3 {
		t.Fatalf("keys ls -o json = %d %s", code, out)
	}
	if strings.Contains(out, secret) || strings.Contains(out, made.SecretAccessKey) || strings.Contains(out, "secretAccessKey") {
		t.Errorf("keys ls -o json shows a secret:\n%s", out)
	}

	// An invoke key cannot manage keys.
	code, _, errs = gustAs(t, n, dir, map[string]string{"AWS_ACCESS_KEY_ID": id, "AWS_SECRET_ACCESS_KEY": secret}, "keys", "ls")
	if code != cli.ExitFailure || !strings.Contains(errs, api.ErrAccessDenied) {
		t.Errorf("keys ls with an invoke key = %d %q, want 1 and %s", code, errs, api.ErrAccessDenied)
	}

	// Bad input: usage errors exit 2, refusals by the node 1; each names
	// its problem.
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no scope", []string{"keys", "create"}, cli.ExitUsage, "--scope is required"},
		{"unknown scope", []string{"keys", "create", "--scope", "root"}, cli.ExitUsage, `--scope "root" is not a scope`},
		{"function with admin scope", []string{"keys", "create", "--scope", "admin", "--function", "hello"}, cli.ExitUsage, "--function limits keys of scope invoke only"},
		{"bad function name", []string{"keys", "create", "--scope", "invoke", "--function", "no spaces"}, cli.ExitFailure, `function name "no spaces" is not valid`},
		{"rm without id", []string{"keys", "rm"}, cli.ExitUsage, "ID"},
		{"rm unknown id", []string{"keys", "rm", "GKNOSUCHKEY000000000"}, cli.ExitFailure, api.ErrResourceNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := gust(t, n, dir, "", tc.args...)
			if code != tc.code || !strings.Contains(errs, tc.want) {
				t.Errorf("gust %s = %d %q %q, want %d and %q", strings.Join(tc.args, " "), code, out, errs, tc.code, tc.want)
			}
		})
	}

	// rm revokes at once; the last admin key cannot go.
	code, out, errs = gust(t, n, dir, "", "keys", "rm", id)
	if code != 0 || !strings.Contains(out, "revoked "+id) {
		t.Errorf("keys rm = %d %q %q", code, out, errs)
	}
	if _, err := sdk.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("hello")}); func() string { c, _ := errorCode(err); return c }() != "UnrecognizedClientException" {
		t.Errorf("Invoke with the key rm revoked: %v, want UnrecognizedClientException", err)
	}
	code, out, errs = gust(t, n, dir, "", "keys", "rm", made.AccessKeyID, "-o", "json")
	var rm struct {
		AccessKeyID string `json:"accessKeyId"`
		Revoked     bool   `json:"revoked"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &rm) != nil || rm.AccessKeyID != made.AccessKeyID || !rm.Revoked {
		t.Errorf("keys rm -o json = %d %q %q", code, out, errs)
	}
	code, _, errs = gust(t, n, dir, "", "keys", "rm", adminID)
	if code != cli.ExitFailure || !strings.Contains(errs, "last admin key") {
		t.Errorf("keys rm of the last admin key = %d %q, want 1 and a message naming the last admin key", code, errs)
	}
	if code, _, errs := gust(t, n, dir, "", "keys", "ls"); code != 0 {
		t.Errorf("keys ls with the admin key after refusing its revocation = %d %q", code, errs)
	}
}
