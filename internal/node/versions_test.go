package node_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"
)

// colorGuest deploys the test guest as name with COLOR=color; invoking it
// with {"env":"COLOR"} answers the color, so a response tells which
// version's configuration produced it.
func createColorGuest(t *testing.T, c *lambda.Client, name, color string) *lambda.CreateFunctionOutput {
	t.Helper()
	out, err := c.CreateFunction(context.Background(), &lambda.CreateFunctionInput{
		FunctionName: aws.String(name),
		Runtime:      types.Runtime("wasm"),
		Role:         aws.String("arn:aws:iam::000000000000:role/gust"),
		Code:         &types.FunctionCode{ZipFile: guests.guest},
		Environment:  &types.Environment{Variables: map[string]string{"COLOR": color}},
		Timeout:      aws.Int32(10),
	})
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	return out
}

func setColor(t *testing.T, c *lambda.Client, name, color string) {
	t.Helper()
	if _, err := c.UpdateFunctionConfiguration(context.Background(), &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String(name),
		Environment:  &types.Environment{Variables: map[string]string{"COLOR": color}},
	}); err != nil {
		t.Fatalf("set color of %s: %v", name, err)
	}
}

// colorOf invokes name:qualifier and returns the color the guest saw and
// the executed version the node reported.
func colorOf(ctx context.Context, c *lambda.Client, name, qualifier string) (color, version string, err error) {
	in := &lambda.InvokeInput{FunctionName: aws.String(name), Payload: []byte(`{"env":"COLOR","sleepMs":2}`)}
	if qualifier != "" {
		in.Qualifier = aws.String(qualifier)
	}
	out, err := c.Invoke(ctx, in)
	if err != nil {
		return "", "", err
	}
	if out.FunctionError != nil {
		return "", "", fmt.Errorf("function error: %s", out.Payload)
	}
	var res struct {
		Env string `json:"env"`
	}
	if err := json.Unmarshal(out.Payload, &res); err != nil {
		return "", "", fmt.Errorf("decode %s: %w", out.Payload, err)
	}
	return res.Env, aws.ToString(out.ExecutedVersion), nil
}

// wantAPIError checks that err is the exception code.
func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Errorf("%s: got %v, want %s", what, err, code)
		return
	}
	if ae.ErrorCode() != code {
		t.Errorf("%s: got %s (%s), want %s", what, ae.ErrorCode(), ae.ErrorMessage(), code)
	}
}

func TestVersionsAndAliases(t *testing.T) {
	buildGuests(t)
	n := startNode(t, t.TempDir())
	c := lambdaClient(t, n)
	ctx := context.Background()
	created := createColorGuest(t, c, "paint", "blue")

	// Publishing: version 1, then the same version again while nothing
	// changed, and the RevisionId and CodeSha256 checks.
	v1, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("paint"),
		CodeSha256: created.CodeSha256, RevisionId: created.RevisionId, Description: aws.String("first")})
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	if aws.ToString(v1.Version) != "1" || aws.ToString(v1.FunctionArn) != "arn:aws:lambda:us-east-1:000000000000:function:paint:1" ||
		aws.ToString(v1.Description) != "first" || aws.ToString(v1.CodeSha256) != aws.ToString(created.CodeSha256) {
		t.Errorf("version 1: version %q arn %q description %q sha %q", aws.ToString(v1.Version), aws.ToString(v1.FunctionArn), aws.ToString(v1.Description), aws.ToString(v1.CodeSha256))
	}
	again, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("paint")})
	if err != nil || aws.ToString(again.Version) != "1" {
		t.Errorf("publishing an unchanged function: version %v, err %v; want 1 again", aws.ToString(again.Version), err)
	}
	_, err = c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("paint"), RevisionId: aws.String("stale")})
	var pf *types.PreconditionFailedException
	if !errors.As(err, &pf) {
		t.Errorf("stale RevisionId: got %v, want PreconditionFailedException", err)
	}
	_, err = c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("paint"), CodeSha256: aws.String("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")})
	var ipv *types.InvalidParameterValueException
	if !errors.As(err, &ipv) {
		t.Errorf("wrong CodeSha256: got %v, want InvalidParameterValueException", err)
	}

	setColor(t, c, "paint", "green")
	v2, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("paint")})
	if err != nil || aws.ToString(v2.Version) != "2" {
		t.Fatalf("publish 2: %v %v", aws.ToString(v2.Version), err)
	}
	setColor(t, c, "paint", "red") // $LATEST moves on; versions stay

	list, err := c.ListVersionsByFunction(ctx, &lambda.ListVersionsByFunctionInput{FunctionName: aws.String("paint")})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range list.Versions {
		got = append(got, aws.ToString(v.Version)+"="+v.Environment.Variables["COLOR"])
	}
	if fmt.Sprint(got) != "[$LATEST=red 1=blue 2=green]" {
		t.Errorf("versions: %v", got)
	}
	// Paging one at a time walks the same list.
	var paged []string
	for marker := (*string)(nil); ; {
		p, err := c.ListVersionsByFunction(ctx, &lambda.ListVersionsByFunctionInput{FunctionName: aws.String("paint"), MaxItems: aws.Int32(1), Marker: marker})
		if err != nil || len(p.Versions) != 1 {
			t.Fatalf("page after %v: %+v %v", aws.ToString(marker), p, err)
		}
		paged = append(paged, aws.ToString(p.Versions[0].Version))
		if marker = p.NextMarker; marker == nil {
			break
		}
	}
	if fmt.Sprint(paged) != "[$LATEST 1 2]" {
		t.Errorf("paged versions: %v", paged)
	}

	// Each qualifier runs its own configuration and says so.
	for _, tc := range []struct{ qualifier, color, version string }{
		{"", "red", "$LATEST"}, {"$LATEST", "red", "$LATEST"}, {"1", "blue", "1"}, {"2", "green", "2"},
	} {
		color, version, err := colorOf(ctx, c, "paint", tc.qualifier)
		if err != nil || color != tc.color || version != tc.version {
			t.Errorf("invoke paint:%s: color %q version %q err %v; want %s from %s", tc.qualifier, color, version, err, tc.color, tc.version)
		}
	}
	if _, _, err := colorOf(ctx, c, "paint:2", ""); err != nil {
		t.Errorf("invoke by qualified name: %v", err)
	}
	for _, q := range []string{"9", "nosuch"} {
		_, _, err := colorOf(ctx, c, "paint", q)
		var nf *types.ResourceNotFoundException
		if !errors.As(err, &nf) {
			t.Errorf("invoke paint:%s: got %v, want ResourceNotFoundException", q, err)
		}
	}

	// Aliases.
	live, err := c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("paint"), Name: aws.String("live"), FunctionVersion: aws.String("1"), Description: aws.String("production")})
	if err != nil {
		t.Fatalf("create alias: %v", err)
	}
	if aws.ToString(live.AliasArn) != "arn:aws:lambda:us-east-1:000000000000:function:paint:live" || aws.ToString(live.FunctionVersion) != "1" || aws.ToString(live.RevisionId) == "" {
		t.Errorf("alias: %+v", live)
	}
	if color, version, err := colorOf(ctx, c, "paint", "live"); err != nil || color != "blue" || version != "1" {
		t.Errorf("invoke paint:live: %q %q %v", color, version, err)
	}
	_, err = c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("paint"), Name: aws.String("live"), FunctionVersion: aws.String("2")})
	var rc *types.ResourceConflictException
	if !errors.As(err, &rc) {
		t.Errorf("duplicate alias: got %v, want ResourceConflictException", err)
	}

	// Bad aliases are refused and change nothing.
	bad := []struct {
		name string
		in   *lambda.UpdateAliasInput
		code string
	}{
		{"weight above 1", &lambda.UpdateAliasInput{RoutingConfig: weights("2", 1.5)}, "InvalidParameterValueException"},
		{"negative weight", &lambda.UpdateAliasInput{RoutingConfig: weights("2", -0.1)}, "InvalidParameterValueException"},
		{"third version", &lambda.UpdateAliasInput{RoutingConfig: &types.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{"2": 0.1, "3": 0.1}}}, "InvalidParameterValueException"},
		{"missing version", &lambda.UpdateAliasInput{RoutingConfig: weights("7", 0.1)}, "ResourceNotFoundException"},
		{"weight on itself", &lambda.UpdateAliasInput{RoutingConfig: weights("1", 0.1)}, "InvalidParameterValueException"},
		{"$LATEST with weights", &lambda.UpdateAliasInput{FunctionVersion: aws.String("$LATEST"), RoutingConfig: weights("2", 0.1)}, "InvalidParameterValueException"},
		{"missing main version", &lambda.UpdateAliasInput{FunctionVersion: aws.String("8")}, "ResourceNotFoundException"},
		{"stale revision", &lambda.UpdateAliasInput{FunctionVersion: aws.String("2"), RevisionId: aws.String("stale")}, "PreconditionFailedException"},
	}
	for _, tc := range bad {
		tc.in.FunctionName, tc.in.Name = aws.String("paint"), aws.String("live")
		_, err := c.UpdateAlias(ctx, tc.in)
		wantCode(t, tc.name, err, tc.code)
	}
	_, err = c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("paint"), Name: aws.String("123"), FunctionVersion: aws.String("1")})
	wantCode(t, "numeric alias name", err, "InvalidParameterValueException")
	got1, err := c.GetAlias(ctx, &lambda.GetAliasInput{FunctionName: aws.String("paint"), Name: aws.String("live")})
	if err != nil || aws.ToString(got1.FunctionVersion) != "1" || got1.RoutingConfig != nil || aws.ToString(got1.RevisionId) != aws.ToString(live.RevisionId) {
		t.Fatalf("alias changed by refused updates: %+v %v", got1, err)
	}

	// A weighted split is honoured per invocation.
	split, err := c.UpdateAlias(ctx, &lambda.UpdateAliasInput{FunctionName: aws.String("paint"), Name: aws.String("live"),
		RoutingConfig: weights("2", 0.3), RevisionId: live.RevisionId})
	if err != nil || split.RoutingConfig == nil || split.RoutingConfig.AdditionalVersionWeights["2"] != 0.3 {
		t.Fatalf("split: %+v %v", split, err)
	}
	const N = 600
	counts := map[string]int{}
	for i := 0; i < N; i++ {
		color, version, err := colorOf(ctx, c, "paint", "live")
		if err != nil {
			t.Fatal(err)
		}
		if (version == "1") != (color == "blue") || (version == "2") != (color == "green") {
			t.Fatalf("executed version %s but the color is %s", version, color)
		}
		counts[version]++
	}
	// Binomial(600, 0.3): mean 180, sd 11.2; five sd either side.
	if sd := math.Sqrt(N * 0.3 * 0.7); math.Abs(float64(counts["2"])-N*0.3) > 5*sd || counts["1"]+counts["2"] != N {
		t.Errorf("weighted split over %d invocations: %v, want about 30%% on version 2", N, counts)
	}

	// Versions an alias uses cannot be deleted; others can.
	_, err = c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("paint"), Qualifier: aws.String("2")})
	if !errors.As(err, &rc) {
		t.Errorf("deleting a routed version: got %v, want ResourceConflictException", err)
	}
	_, err = c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("paint"), Qualifier: aws.String("$LATEST")})
	wantCode(t, "deleting $LATEST by qualifier", err, "InvalidParameterValueException")
	if _, err := c.UpdateAlias(ctx, &lambda.UpdateAliasInput{FunctionName: aws.String("paint"), Name: aws.String("live"),
		FunctionVersion: aws.String("2"), RoutingConfig: &types.AliasRoutingConfiguration{}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("paint"), Qualifier: aws.String("1")}); err != nil {
		t.Fatalf("delete version 1: %v", err)
	}
	if _, _, err := colorOf(ctx, c, "paint", "1"); err == nil {
		t.Error("version 1 still answers after its deletion")
	}
	if color, _, err := colorOf(ctx, c, "paint", "live"); err != nil || color != "green" {
		t.Errorf("live after the move: %q %v", color, err)
	}
	aliases, err := c.ListAliases(ctx, &lambda.ListAliasesInput{FunctionName: aws.String("paint")})
	if err != nil || len(aliases.Aliases) != 1 {
		t.Errorf("aliases: %+v %v", aliases, err)
	}

	// Provisioned concurrency on an alias keeps its version warm, and
	// leaves the alias's RevisionId alone, as on Lambda.
	before, err := c.GetAlias(ctx, &lambda.GetAliasInput{FunctionName: aws.String("paint"), Name: aws.String("live")})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := c.PutProvisionedConcurrencyConfig(ctx, &lambda.PutProvisionedConcurrencyConfigInput{FunctionName: aws.String("paint"),
		Qualifier: aws.String("live"), ProvisionedConcurrentExecutions: aws.Int32(2)})
	if err != nil || aws.ToInt32(pc.RequestedProvisionedConcurrentExecutions) != 2 {
		t.Fatalf("provision alias: %+v %v", pc, err)
	}
	waitUntil(t, "two provisioned instances of version 2", func() bool {
		g, err := c.GetProvisionedConcurrencyConfig(ctx, &lambda.GetProvisionedConcurrencyConfigInput{FunctionName: aws.String("paint"), Qualifier: aws.String("live")})
		return err == nil && g.Status == types.ProvisionedConcurrencyStatusEnumReady && aws.ToInt32(g.AvailableProvisionedConcurrentExecutions) == 2
	})
	if after, err := c.GetAlias(ctx, &lambda.GetAliasInput{FunctionName: aws.String("paint"), Name: aws.String("live")}); err != nil ||
		aws.ToString(after.RevisionId) != aws.ToString(before.RevisionId) {
		t.Errorf("provisioning changed the alias's RevisionId: %v -> %v (%v)", aws.ToString(before.RevisionId), aws.ToString(after.RevisionId), err)
	}
	all, err := c.ListProvisionedConcurrencyConfigs(ctx, &lambda.ListProvisionedConcurrencyConfigsInput{FunctionName: aws.String("paint")})
	if err != nil || len(all.ProvisionedConcurrencyConfigs) != 1 || aws.ToString(all.ProvisionedConcurrencyConfigs[0].FunctionArn) != "arn:aws:lambda:us-east-1:000000000000:function:paint:live" {
		t.Errorf("list provisioned: %+v %v", all, err)
	}
	if _, err := c.DeleteProvisionedConcurrencyConfig(ctx, &lambda.DeleteProvisionedConcurrencyConfigInput{FunctionName: aws.String("paint"), Qualifier: aws.String("live")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetProvisionedConcurrencyConfig(ctx, &lambda.GetProvisionedConcurrencyConfigInput{FunctionName: aws.String("paint"), Qualifier: aws.String("live")})
	var pnf *types.ProvisionedConcurrencyConfigNotFoundException
	if !errors.As(err, &pnf) {
		t.Errorf("provisioned config after delete: %v", err)
	}

	// Reserved concurrency is one cap over every version.
	if _, err := c.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("paint"), ReservedConcurrentExecutions: aws.Int32(0)}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"live", "2", "$LATEST"} {
		_, _, err := colorOf(ctx, c, "paint", q)
		var tm *types.TooManyRequestsException
		if !errors.As(err, &tm) {
			t.Errorf("paint:%s with reserved concurrency 0: got %v, want TooManyRequestsException", q, err)
		}
	}
	if _, err := c.DeleteFunctionConcurrency(ctx, &lambda.DeleteFunctionConcurrencyInput{FunctionName: aws.String("paint")}); err != nil {
		t.Fatal(err)
	}

	// Tags.
	arn := "arn:aws:lambda:us-east-1:000000000000:function:paint"
	if _, err := c.TagResource(ctx, &lambda.TagResourceInput{Resource: aws.String(arn), Tags: map[string]string{"team": "web", "env": "prod"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UntagResource(ctx, &lambda.UntagResourceInput{Resource: aws.String(arn), TagKeys: []string{"env"}}); err != nil {
		t.Fatal(err)
	}
	tags, err := c.ListTags(ctx, &lambda.ListTagsInput{Resource: aws.String(arn)})
	if err != nil || fmt.Sprint(tags.Tags) != "map[team:web]" {
		t.Errorf("tags: %v %v", tags, err)
	}
	_, err = c.TagResource(ctx, &lambda.TagResourceInput{Resource: aws.String(arn), Tags: map[string]string{"aws:x": "y"}})
	wantCode(t, "reserved tag prefix", err, "InvalidParameterValueException")
	_, err = c.ListTags(ctx, &lambda.ListTagsInput{Resource: aws.String(arn + ":live")})
	wantCode(t, "tags of an alias", err, "InvalidParameterValueException")

	// Account settings report the node.
	acct, err := c.GetAccountSettings(ctx, &lambda.GetAccountSettingsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if acct.AccountUsage.FunctionCount != 1 || acct.AccountUsage.TotalCodeSize != int64(len(guests.guest)) ||
		acct.AccountLimit.ConcurrentExecutions <= 0 || acct.AccountLimit.CodeSizeZipped != 50<<20 {
		t.Errorf("account settings: limit %+v usage %+v", acct.AccountLimit, acct.AccountUsage)
	}

	// Deleting the function takes its versions and aliases.
	if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("paint")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetAlias(ctx, &lambda.GetAliasInput{FunctionName: aws.String("paint"), Name: aws.String("live")})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Errorf("alias after deleting the function: %v", err)
	}
	createColorGuest(t, c, "paint", "white")
	vs, err := c.ListVersionsByFunction(ctx, &lambda.ListVersionsByFunctionInput{FunctionName: aws.String("paint")})
	if err != nil || len(vs.Versions) != 1 {
		t.Errorf("a recreated function inherits versions: %+v %v", vs, err)
	}
}

func weights(version string, w float64) *types.AliasRoutingConfiguration {
	return &types.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{version: w}}
}

// TestAliasSwitchUnderLoad moves an alias back and forth while clients
// invoke it continuously: no invocation fails, and each one ran the
// version the alias pointed to when it was sent or one it pointed to
// while it ran.
func TestAliasSwitchUnderLoad(t *testing.T) {
	buildGuests(t)
	n := startNode(t, t.TempDir())
	c := lambdaClient(t, n)
	ctx := context.Background()
	createColorGuest(t, c, "switch", "blue")
	if _, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("switch")}); err != nil {
		t.Fatal(err)
	}
	setColor(t, c, "switch", "green")
	if _, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("switch")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("switch"), Name: aws.String("live"), FunctionVersion: aws.String("1")}); err != nil {
		t.Fatal(err)
	}
	colorOfVersion := map[string]string{"1": "blue", "2": "green"}

	// history records when each alias target took effect: a move is
	// recorded before it is sent and confirmed once it is answered, so
	// the window of every target is known to contain its real one.
	type epoch struct {
		version     string
		sent, acked time.Time
	}
	var (
		hmu     sync.Mutex
		history = []epoch{{version: "1"}}
	)
	move := func(v string) {
		hmu.Lock()
		history = append(history, epoch{version: v, sent: time.Now()})
		i := len(history) - 1
		hmu.Unlock()
		if _, err := c.UpdateAlias(ctx, &lambda.UpdateAliasInput{FunctionName: aws.String("switch"), Name: aws.String("live"), FunctionVersion: aws.String(v)}); err != nil {
			t.Errorf("move alias to %s: %v", v, err)
		}
		hmu.Lock()
		history[i].acked = time.Now()
		hmu.Unlock()
	}
	// allowed is the set of versions the alias may have pointed to at
	// some moment in [from, to]: the one in force before from, and every
	// one sent up to to.
	allowed := func(from, to time.Time) map[string]bool {
		hmu.Lock()
		defer hmu.Unlock()
		ok := map[string]bool{}
		for i, e := range history {
			if i > 0 && e.sent.After(to) {
				break
			}
			// A target is in force until the next move is acknowledged.
			if i+1 < len(history) && !history[i+1].acked.IsZero() && history[i+1].acked.Before(from) {
				continue
			}
			ok[e.version] = true
		}
		return ok
	}

	stop := make(chan struct{})
	var (
		wg       sync.WaitGroup
		total    atomic.Int64
		failures atomic.Int64
		seen     sync.Map
	)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				from := time.Now()
				color, version, err := colorOf(ctx, c, "switch", "live")
				to := time.Now()
				total.Add(1)
				if err != nil {
					failures.Add(1)
					t.Errorf("invocation failed during the switch: %v", err)
					continue
				}
				if colorOfVersion[version] != color {
					failures.Add(1)
					t.Errorf("version %s answered with %s's color %q", version, version, color)
				}
				if !allowed(from, to)[version] {
					failures.Add(1)
					t.Errorf("version %s ran for an invocation sent at %v, when the alias pointed elsewhere", version, from)
				}
				seen.Store(version, true)
			}
		}()
	}
	for i := 0; i < 6; i++ {
		time.Sleep(150 * time.Millisecond)
		if i%2 == 0 {
			move("2") // deploy
		} else {
			move("1") // roll back
		}
	}
	time.Sleep(150 * time.Millisecond)
	close(stop)
	wg.Wait()
	if failures.Load() != 0 || total.Load() < 50 {
		t.Fatalf("%d of %d invocations failed or ran the wrong version", failures.Load(), total.Load())
	}
	for _, v := range []string{"1", "2"} {
		if _, ok := seen.Load(v); !ok {
			t.Errorf("version %s never answered during the switch", v)
		}
	}
	t.Logf("%d invocations during 6 alias moves, none failed", total.Load())
}

// TestDryRunAndUnknownOperations: UpdateFunctionCode with DryRun stores
// nothing, and operations Gust does not serve are the SDK's typed
// UnknownOperationException, whatever their API date.
func TestDryRunAndUnknownOperations(t *testing.T) {
	buildGuests(t)
	n := startNode(t, t.TempDir())
	c := lambdaClient(t, n)
	ctx := context.Background()
	created := createColorGuest(t, c, "dry", "blue")
	dry, err := c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("dry"), ZipFile: trapWasm, DryRun: true})
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	if aws.ToString(dry.CodeSha256) == aws.ToString(created.CodeSha256) {
		t.Error("a dry run reports the old code, not what would be stored")
	}
	got, err := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("dry")})
	if err != nil || aws.ToString(got.CodeSha256) != aws.ToString(created.CodeSha256) || aws.ToString(got.RevisionId) != aws.ToString(created.RevisionId) {
		t.Errorf("a dry run changed the function: %v %v", aws.ToString(got.CodeSha256), err)
	}
	_, err = c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("dry"), ZipFile: []byte("not wasm"), DryRun: true})
	wantCode(t, "dry run of bad code", err, "InvalidParameterValueException")

	_, err = c.GetPolicy(ctx, &lambda.GetPolicyInput{FunctionName: aws.String("dry")})
	wantCode(t, "GetPolicy", err, "UnknownOperationException")
	_, err = c.GetRuntimeManagementConfig(ctx, &lambda.GetRuntimeManagementConfigInput{FunctionName: aws.String("dry")})
	wantCode(t, "GetRuntimeManagementConfig", err, "UnknownOperationException")
}
