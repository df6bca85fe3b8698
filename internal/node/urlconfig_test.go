package node_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// signedDo sends a request signed with SigV4 (service lambda) by the key
// id/secret, as an AWS client calling an AWS_IAM function URL does.
func signedDo(t *testing.T, method, url, body, id, secret string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	sum := sha256.Sum256([]byte(body))
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: id, SecretAccessKey: secret},
		req, hex.EncodeToString(sum[:]), "lambda", "eu-west-3", time.Now()); err != nil {
		t.Fatalf("sign %s %s: %v", method, url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// wantAPIError checks that err is the SDK's typed error T.
func wantAPIError[T error](t *testing.T, what string, err error) {
	t.Helper()
	var target T
	if !errors.As(err, &target) {
		t.Errorf("%s: error = %v, want %T", what, err, target)
	}
}

// urlMessage decodes a function URL's {"Message": ...} error body.
func urlMessage(t *testing.T, body string) string {
	t.Helper()
	var m struct{ Message string }
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Errorf("error body %q is not {\"Message\":...}: %v", body, err)
	}
	return m.Message
}

// TestFunctionURLConfig drives function URL configuration through the
// official SDK and checks what it does to /fn/ requests: auth, CORS,
// qualifiers and the executed version.
func TestFunctionURLConfig(t *testing.T) {
	buildGuests(t)
	n := startNode(t, t.TempDir())
	c := lambdaClient(t, n)
	ctx := context.Background()
	if _, err := createHello(c); err != nil {
		t.Fatalf("create hello: %v", err)
	}
	base := n.URL()
	adminID, adminSecret := n.AdminKey()
	const hello = `{"message":"Hello, world!"}`

	// Without a configuration the URL is public and Get finds nothing.
	_, err := c.GetFunctionUrlConfig(ctx, &lambda.GetFunctionUrlConfigInput{FunctionName: aws.String("hello")})
	wantAPIError[*types.ResourceNotFoundException](t, "GetFunctionUrlConfig before any", err)
	if resp, body := do(t, "GET", base+"/fn/hello", "", nil); resp.StatusCode != 200 || body != hello {
		t.Fatalf("GET /fn/hello without configuration = %d %s, want 200 %s", resp.StatusCode, body, hello)
	}

	cors := &types.Cors{
		AllowOrigins:     []string{"https://app.example.com", "https://*.preview.example.com"},
		AllowMethods:     []string{"GET", "POST"},
		AllowHeaders:     []string{"content-type"},
		ExposeHeaders:    []string{"x-total"},
		MaxAge:           aws.Int32(600),
		AllowCredentials: aws.Bool(true),
	}
	created, err := c.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{
		FunctionName: aws.String("hello"), AuthType: types.FunctionUrlAuthTypeNone, Cors: cors,
	})
	if err != nil {
		t.Fatalf("CreateFunctionUrlConfig: %v", err)
	}
	if got, want := aws.ToString(created.FunctionUrl), base+"/fn/hello/"; got != want {
		t.Errorf("FunctionUrl = %q, want %q", got, want)
	}
	if got := aws.ToString(created.FunctionArn); !strings.HasSuffix(got, ":000000000000:function:hello") {
		t.Errorf("FunctionArn = %q, want the unqualified function ARN", got)
	}
	if created.AuthType != types.FunctionUrlAuthTypeNone || created.InvokeMode != types.InvokeModeBuffered || aws.ToString(created.CreationTime) == "" {
		t.Errorf("created = AuthType %q InvokeMode %q CreationTime %q, want NONE BUFFERED set", created.AuthType, created.InvokeMode, aws.ToString(created.CreationTime))
	}
	opts := cmpopts.IgnoreUnexported(types.Cors{})
	if diff := cmp.Diff(cors, created.Cors, opts); diff != "" {
		t.Errorf("created Cors (-want +got):\n%s", diff)
	}

	_, err = c.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("hello"), AuthType: types.FunctionUrlAuthTypeNone})
	wantAPIError[*types.ResourceConflictException](t, "second CreateFunctionUrlConfig", err)

	got, err := c.GetFunctionUrlConfig(ctx, &lambda.GetFunctionUrlConfigInput{FunctionName: aws.String("hello")})
	if err != nil {
		t.Fatalf("GetFunctionUrlConfig: %v", err)
	}
	if aws.ToString(got.FunctionUrl) != base+"/fn/hello/" || got.AuthType != types.FunctionUrlAuthTypeNone ||
		aws.ToString(got.CreationTime) != aws.ToString(created.CreationTime) || aws.ToString(got.LastModifiedTime) == "" {
		t.Errorf("GetFunctionUrlConfig = %q %q created %q modified %q", aws.ToString(got.FunctionUrl), got.AuthType, aws.ToString(got.CreationTime), aws.ToString(got.LastModifiedTime))
	}
	if diff := cmp.Diff(cors, got.Cors, opts); diff != "" {
		t.Errorf("got Cors (-want +got):\n%s", diff)
	}

	checkCORS := func(t *testing.T) {
		t.Helper()
		// A preflight is answered from the configuration, without
		// running the function or asking for a signature.
		resp, _ := do(t, "OPTIONS", base+"/fn/hello/", "", map[string]string{
			"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type",
		})
		want := map[string]string{
			"Access-Control-Allow-Origin":      "https://app.example.com",
			"Access-Control-Allow-Methods":     "GET, POST",
			"Access-Control-Allow-Headers":     "content-type",
			"Access-Control-Allow-Credentials": "true",
			"Access-Control-Max-Age":           "600",
			"Vary":                             "Origin",
			"X-Amz-Executed-Version":           "",
		}
		if resp.StatusCode != 200 {
			t.Errorf("preflight = %d, want 200", resp.StatusCode)
		}
		for k, v := range want {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("preflight %s = %q, want %q", k, got, v)
			}
		}
		// A preflight from an origin not allowed gets no permission.
		resp, _ = do(t, "OPTIONS", base+"/fn/hello/", "", map[string]string{"Origin": "https://evil.example.net", "Access-Control-Request-Method": "GET"})
		if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("preflight from another origin = %d Allow-Origin %q, want 200 and none", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
		}
	}
	t.Run("CORS", func(t *testing.T) {
		checkCORS(t)
		// An actual response from a wildcard-matched origin.
		resp, body := do(t, "GET", base+"/fn/hello/", "", map[string]string{"Origin": "https://pr-7.preview.example.com"})
		want := map[string]string{
			"Access-Control-Allow-Origin":      "https://pr-7.preview.example.com",
			"Access-Control-Allow-Credentials": "true",
			"Access-Control-Expose-Headers":    "x-total",
			"Access-Control-Max-Age":           "",
			"Vary":                             "Origin",
			"X-Amz-Executed-Version":           "$LATEST",
		}
		if resp.StatusCode != 200 || body != hello {
			t.Errorf("GET with Origin = %d %s, want 200 %s", resp.StatusCode, body, hello)
		}
		for k, v := range want {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("GET with Origin: %s = %q, want %q", k, got, v)
			}
		}
		resp, _ = do(t, "GET", base+"/fn/hello/", "", map[string]string{"Origin": "https://preview.example.com.evil.net"})
		if got := resp.Header.Get("Access-Control-Allow-Origin"); resp.StatusCode != 200 || got != "" {
			t.Errorf("GET from an origin not allowed = %d Allow-Origin %q, want 200 and none", resp.StatusCode, got)
		}
	})

	// Update changes only what it is given: AuthType, keeping CORS.
	updated, err := c.UpdateFunctionUrlConfig(ctx, &lambda.UpdateFunctionUrlConfigInput{FunctionName: aws.String("hello"), AuthType: types.FunctionUrlAuthTypeAwsIam})
	if err != nil {
		t.Fatalf("UpdateFunctionUrlConfig: %v", err)
	}
	if updated.AuthType != types.FunctionUrlAuthTypeAwsIam || aws.ToString(updated.CreationTime) != aws.ToString(created.CreationTime) || aws.ToString(updated.LastModifiedTime) == "" {
		t.Errorf("updated = %q created %q modified %q, want AWS_IAM, the same creation time, a modification time",
			updated.AuthType, aws.ToString(updated.CreationTime), aws.ToString(updated.LastModifiedTime))
	}
	if diff := cmp.Diff(cors, updated.Cors, opts); diff != "" {
		t.Errorf("updated Cors (-want +got):\n%s", diff)
	}

	t.Run("AWS_IAM", func(t *testing.T) {
		resp, body := do(t, "GET", base+"/fn/hello", "", nil)
		if resp.StatusCode != http.StatusForbidden || urlMessage(t, body) != "Forbidden" || resp.Header.Get("X-Amzn-Errortype") != "MissingAuthenticationTokenException" {
			t.Errorf("unsigned GET = %d %s %q, want 403 Forbidden MissingAuthenticationTokenException", resp.StatusCode, body, resp.Header.Get("X-Amzn-Errortype"))
		}
		resp, body = signedDo(t, "GET", base+"/fn/hello", "", adminID, "not-the-secret", nil)
		if resp.StatusCode != http.StatusForbidden || urlMessage(t, body) != "Forbidden" || resp.Header.Get("X-Amzn-Errortype") != "InvalidSignatureException" {
			t.Errorf("GET signed with a wrong secret = %d %s %q, want 403 Forbidden InvalidSignatureException", resp.StatusCode, body, resp.Header.Get("X-Amzn-Errortype"))
		}
		resp, body = signedDo(t, "GET", base+"/fn/hello?name=Ada", "", adminID, adminSecret, nil)
		if resp.StatusCode != 200 || body != `{"message":"Hello, Ada!"}` {
			t.Errorf("signed GET = %d %s, want 200", resp.StatusCode, body)
		}
		resp, body = signedDo(t, "POST", base+"/fn/hello/some/path", `{"name":"x"}`, adminID, adminSecret, map[string]string{"Content-Type": "application/json", "Origin": "https://app.example.com"})
		if resp.StatusCode != 200 || body != hello || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
			t.Errorf("signed POST with a body = %d %s Allow-Origin %q, want 200 with CORS", resp.StatusCode, body, resp.Header.Get("Access-Control-Allow-Origin"))
		}
		// Preflights need no signature.
		checkCORS(t)
	})

	t.Run("bad input", func(t *testing.T) {
		_, err := c.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("nobody"), AuthType: types.FunctionUrlAuthTypeNone})
		wantAPIError[*types.ResourceNotFoundException](t, "Create on a missing function", err)
		_, err = c.UpdateFunctionUrlConfig(ctx, &lambda.UpdateFunctionUrlConfigInput{FunctionName: aws.String("hello"), AuthType: "PASSWORD"})
		wantAPIError[*types.InvalidParameterValueException](t, "Update with AuthType PASSWORD", err)
		_, err = c.UpdateFunctionUrlConfig(ctx, &lambda.UpdateFunctionUrlConfigInput{FunctionName: aws.String("hello"), Cors: &types.Cors{AllowMethods: []string{"FETCH"}}})
		wantAPIError[*types.InvalidParameterValueException](t, "Update with Cors.AllowMethods FETCH", err)
		_, err = c.UpdateFunctionUrlConfig(ctx, &lambda.UpdateFunctionUrlConfigInput{FunctionName: aws.String("hello"), Cors: &types.Cors{AllowOrigins: []string{"*"}, MaxAge: aws.Int32(86401)}})
		wantAPIError[*types.InvalidParameterValueException](t, "Update with Cors.MaxAge 86401", err)
		_, err = c.GetFunctionUrlConfig(ctx, &lambda.GetFunctionUrlConfigInput{FunctionName: aws.String("hello"), Qualifier: aws.String("nope")})
		wantAPIError[*types.ResourceNotFoundException](t, "Get with a missing alias", err)
		// Nothing above changed the configuration.
		got, err := c.GetFunctionUrlConfig(ctx, &lambda.GetFunctionUrlConfigInput{FunctionName: aws.String("hello"), Qualifier: aws.String("$LATEST")})
		if err != nil || got.AuthType != types.FunctionUrlAuthTypeAwsIam || len(got.Cors.AllowMethods) != 2 {
			t.Errorf("Get ($LATEST) after refused changes = %+v, %v; want AWS_IAM with the CORS set at creation", got, err)
		}
	})

	// Versions: a version URL follows the function's configuration.
	if _, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("hello")}); err != nil {
		t.Fatalf("PublishVersion: %v", err)
	}
	_, err = c.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("hello"), Qualifier: aws.String("1"), AuthType: types.FunctionUrlAuthTypeNone})
	wantAPIError[*types.InvalidParameterValueException](t, "Create for version 1", err)
	t.Run("qualifiers", func(t *testing.T) {
		if resp, body := do(t, "GET", base+"/fn/hello:1/", "", nil); resp.StatusCode != http.StatusForbidden {
			t.Errorf("unsigned GET /fn/hello:1/ of a private function = %d %s, want 403", resp.StatusCode, body)
		}
		for _, tc := range []struct{ path, version string }{
			{"/fn/hello:1/", "1"}, {"/fn/hello:1", "1"}, {"/fn/hello:$LATEST/x", "$LATEST"}, {"/fn/hello", "$LATEST"},
		} {
			resp, body := signedDo(t, "GET", base+tc.path, "", adminID, adminSecret, nil)
			if resp.StatusCode != 200 || body != hello || resp.Header.Get("X-Amz-Executed-Version") != tc.version {
				t.Errorf("signed GET %s = %d %s version %q, want 200 version %s", tc.path, resp.StatusCode, body, resp.Header.Get("X-Amz-Executed-Version"), tc.version)
			}
		}
		for _, tc := range []struct{ path, names string }{
			{"/fn/hello:7/", "7"}, {"/fn/hello:nope", "nope"}, {"/fn/hello:/", "hello:"}, {"/fn/hello:a.b/", "a.b"},
		} {
			resp, body := do(t, "GET", base+tc.path, "", nil)
			if resp.StatusCode != http.StatusNotFound || !strings.Contains(urlMessage(t, body), tc.names) {
				t.Errorf("GET %s = %d %s, want 404 naming %q", tc.path, resp.StatusCode, body, tc.names)
			}
		}
	})

	// Aliases: the function's configuration until the alias has its own.
	if _, err := c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("hello"), Name: aws.String("live"), FunctionVersion: aws.String("1")}); err != nil {
		t.Fatalf("CreateAlias: %v", err)
	}
	if resp, body := do(t, "GET", base+"/fn/hello:live/", "", nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("unsigned GET /fn/hello:live/ before the alias has a configuration = %d %s, want 403", resp.StatusCode, body)
	}
	live, err := c.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("hello"), Qualifier: aws.String("live"), AuthType: types.FunctionUrlAuthTypeNone})
	if err != nil {
		t.Fatalf("CreateFunctionUrlConfig(live): %v", err)
	}
	if aws.ToString(live.FunctionUrl) != base+"/fn/hello:live/" || !strings.HasSuffix(aws.ToString(live.FunctionArn), ":function:hello:live") || live.Cors != nil {
		t.Errorf("alias URL = %q %q cors %+v, want /fn/hello:live/, the alias ARN, no CORS", aws.ToString(live.FunctionUrl), aws.ToString(live.FunctionArn), live.Cors)
	}
	t.Run("alias", func(t *testing.T) {
		resp, body := do(t, "GET", base+"/fn/hello:live/", "", map[string]string{"Origin": "https://app.example.com"})
		if resp.StatusCode != 200 || body != hello || resp.Header.Get("X-Amz-Executed-Version") != "1" || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("GET /fn/hello:live/ = %d %s version %q Allow-Origin %q, want 200, version 1, no CORS",
				resp.StatusCode, body, resp.Header.Get("X-Amz-Executed-Version"), resp.Header.Get("Access-Control-Allow-Origin"))
		}
		if resp, _ := do(t, "GET", base+"/fn/hello", "", nil); resp.StatusCode != http.StatusForbidden {
			t.Errorf("unsigned GET /fn/hello = %d, want 403: the alias's configuration is its own", resp.StatusCode)
		}
		// Qualified by ARN, not by ?Qualifier=.
		got, err := c.GetFunctionUrlConfig(ctx, &lambda.GetFunctionUrlConfigInput{FunctionName: aws.String("hello:live")})
		if err != nil || got.AuthType != types.FunctionUrlAuthTypeNone {
			t.Errorf("GetFunctionUrlConfig(hello:live) = %+v, %v; want NONE", got, err)
		}
	})

	t.Run("list", func(t *testing.T) {
		all, err := c.ListFunctionUrlConfigs(ctx, &lambda.ListFunctionUrlConfigsInput{FunctionName: aws.String("hello")})
		if err != nil {
			t.Fatalf("ListFunctionUrlConfigs: %v", err)
		}
		var urls []string
		for _, u := range all.FunctionUrlConfigs {
			urls = append(urls, aws.ToString(u.FunctionUrl)+" "+string(u.AuthType))
		}
		want := []string{base + "/fn/hello/ AWS_IAM", base + "/fn/hello:live/ NONE"}
		if diff := cmp.Diff(want, urls); diff != "" || all.NextMarker != nil {
			t.Errorf("ListFunctionUrlConfigs (-want +got):\n%s next %v", diff, all.NextMarker)
		}
		first, err := c.ListFunctionUrlConfigs(ctx, &lambda.ListFunctionUrlConfigsInput{FunctionName: aws.String("hello"), MaxItems: aws.Int32(1)})
		if err != nil || len(first.FunctionUrlConfigs) != 1 || first.NextMarker == nil {
			t.Fatalf("ListFunctionUrlConfigs(MaxItems 1) = %+v, %v; want one and a marker", first, err)
		}
		second, err := c.ListFunctionUrlConfigs(ctx, &lambda.ListFunctionUrlConfigsInput{FunctionName: aws.String("hello"), MaxItems: aws.Int32(1), Marker: first.NextMarker})
		if err != nil || len(second.FunctionUrlConfigs) != 1 || aws.ToString(second.FunctionUrlConfigs[0].FunctionUrl) != base+"/fn/hello:live/" || second.NextMarker != nil {
			t.Errorf("ListFunctionUrlConfigs second page = %+v, %v; want the alias's URL and no marker", second, err)
		}
	})

	// Keys scoped to invoke some functions only (internal/keyring).
	t.Run("scoped keys", func(t *testing.T) {
		key := func(functions ...string) (id, secret string) {
			b, _ := json.Marshal(map[string]any{"scope": "invoke", "functions": functions})
			resp, body := signedDo(t, "POST", base+"/gust/v1/keys", string(b), adminID, adminSecret, map[string]string{"Content-Type": "application/json"})
			var k struct{ AccessKeyID, SecretAccessKey string }
			if err := json.Unmarshal([]byte(body), &k); resp.StatusCode != http.StatusCreated || err != nil || k.SecretAccessKey == "" {
				t.Fatalf("create an invoke key for %v = %d %s", functions, resp.StatusCode, body)
			}
			return k.AccessKeyID, k.SecretAccessKey
		}
		otherID, otherSecret := key("other")
		resp, body := signedDo(t, "GET", base+"/fn/hello", "", otherID, otherSecret, nil)
		if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Amzn-Errortype") != "AccessDeniedException" || !strings.Contains(urlMessage(t, body), "lambda:InvokeFunction") {
			t.Errorf("GET /fn/hello signed by a key for another function = %d %s %q, want 403 AccessDeniedException", resp.StatusCode, body, resp.Header.Get("X-Amzn-Errortype"))
		}
		helloID, helloSecret := key("hello")
		if resp, body := signedDo(t, "GET", base+"/fn/hello:1", "", helloID, helloSecret, nil); resp.StatusCode != 200 || body != hello {
			t.Errorf("GET /fn/hello:1 signed by a key for hello = %d %s, want 200", resp.StatusCode, body)
		}
	})

	// Delete: the alias's URL, then the function's, which is public again.
	if _, err := c.DeleteFunctionUrlConfig(ctx, &lambda.DeleteFunctionUrlConfigInput{FunctionName: aws.String("hello"), Qualifier: aws.String("live")}); err != nil {
		t.Fatalf("DeleteFunctionUrlConfig(live): %v", err)
	}
	_, err = c.GetFunctionUrlConfig(ctx, &lambda.GetFunctionUrlConfigInput{FunctionName: aws.String("hello"), Qualifier: aws.String("live")})
	wantAPIError[*types.ResourceNotFoundException](t, "Get after Delete(live)", err)
	if resp, _ := do(t, "GET", base+"/fn/hello:live", "", nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("unsigned GET /fn/hello:live after its configuration is deleted = %d, want 403 (the function's)", resp.StatusCode)
	}
	if _, err := c.DeleteFunctionUrlConfig(ctx, &lambda.DeleteFunctionUrlConfigInput{FunctionName: aws.String("hello")}); err != nil {
		t.Fatalf("DeleteFunctionUrlConfig: %v", err)
	}
	_, err = c.DeleteFunctionUrlConfig(ctx, &lambda.DeleteFunctionUrlConfigInput{FunctionName: aws.String("hello")})
	wantAPIError[*types.ResourceNotFoundException](t, "second DeleteFunctionUrlConfig", err)
	resp, body := do(t, "GET", base+"/fn/hello", "", map[string]string{"Origin": "https://app.example.com"})
	if resp.StatusCode != 200 || body != hello || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("GET /fn/hello after Delete = %d %s Allow-Origin %q, want public again without CORS", resp.StatusCode, body, resp.Header.Get("Access-Control-Allow-Origin"))
	}
	list, err := c.ListFunctionUrlConfigs(ctx, &lambda.ListFunctionUrlConfigsInput{FunctionName: aws.String("hello")})
	if err != nil || len(list.FunctionUrlConfigs) != 0 {
		t.Errorf("ListFunctionUrlConfigs after Delete = %+v, %v; want none", list, err)
	}
}
