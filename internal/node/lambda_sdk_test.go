package node_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// TestLambdaSDK drives every operation Gust serves with the official AWS
// SDK for Go v2, signed with the credentials the node wrote.
func TestLambdaSDK(t *testing.T) {
	buildGuests(t)
	n := startNode(t, t.TempDir())
	c := lambdaClient(t, n)
	ctx := context.Background()

	// CreateFunction, with the module inside a zip.
	created, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("hello"),
		Runtime:      types.Runtime("wasm"),
		Role:         aws.String("arn:aws:iam::000000000000:role/gust"),
		Code:         &types.FunctionCode{ZipFile: zipOf(t, map[string][]byte{"hello.wasm": guests.hello})},
		Description:  aws.String("greets"),
		MemorySize:   aws.Int32(256),
		Timeout:      aws.Int32(5),
		Environment:  &types.Environment{Variables: map[string]string{"GREETING": "Hi"}},
	})
	if err != nil {
		t.Fatalf("CreateFunction: %v", err)
	}
	sum := sha256.Sum256(guests.hello)
	if got, want := aws.ToString(created.CodeSha256), base64.StdEncoding.EncodeToString(sum[:]); got != want {
		t.Errorf("CreateFunction CodeSha256 = %s, want %s", got, want)
	}
	if got := aws.ToString(created.FunctionArn); !strings.HasSuffix(got, ":function:hello") {
		t.Errorf("FunctionArn = %s, want ...:function:hello", got)
	}
	if aws.ToInt32(created.MemorySize) != 256 || aws.ToInt32(created.Timeout) != 5 || created.CodeSize != int64(len(guests.hello)) {
		t.Errorf("CreateFunction = memory %d timeout %d size %d, want 256 5 %d", aws.ToInt32(created.MemorySize), aws.ToInt32(created.Timeout), created.CodeSize, len(guests.hello))
	}
	if created.State != types.StateActive {
		t.Errorf("State = %s, want Active", created.State)
	}

	// A raw module is accepted too.
	if _, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("guest"), Role: aws.String(role), Runtime: types.Runtime("wasm"),
		Code: &types.FunctionCode{ZipFile: guests.guest},
	}); err != nil {
		t.Fatalf("CreateFunction(raw wasm): %v", err)
	}

	// Invoke: RequestResponse with the log tail.
	out, err := c.Invoke(ctx, &lambda.InvokeInput{
		FunctionName: aws.String("hello"),
		Payload:      []byte(`{"name":"Ada"}`),
		LogType:      types.LogTypeTail,
	})
	if err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	if out.FunctionError != nil {
		t.Fatalf("Invoke FunctionError = %s, payload %s", aws.ToString(out.FunctionError), out.Payload)
	}
	var greeting struct{ Message string }
	if err := json.Unmarshal(out.Payload, &greeting); err != nil || greeting.Message != "Hello, Ada!" {
		t.Errorf("Invoke payload = %s, want message Hello, Ada!", out.Payload)
	}
	if aws.ToString(out.ExecutedVersion) != "$LATEST" {
		t.Errorf("ExecutedVersion = %q, want $LATEST", aws.ToString(out.ExecutedVersion))
	}
	tail, err := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
	if err != nil {
		t.Fatalf("LogResult is not base64: %v", err)
	}
	for _, want := range []string{"START RequestId:", "END RequestId:", "REPORT RequestId:", "Billed Duration:", "Memory Size: 256 MB", "Init Duration:"} {
		if !strings.Contains(string(tail), want) {
			t.Errorf("log tail lacks %q:\n%s", want, tail)
		}
	}

	// DryRun.
	dry, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("hello"), InvocationType: types.InvocationTypeDryRun})
	if err != nil || dry.StatusCode != 204 {
		t.Errorf("Invoke DryRun = %v, %v; want 204", dry, err)
	}

	// A function error.
	fe, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("guest"), Payload: []byte(`{"exit":3}`)})
	if err != nil {
		t.Fatalf("Invoke(exit 3): %v", err)
	}
	if aws.ToString(fe.FunctionError) != "Unhandled" {
		t.Errorf("FunctionError = %q, want Unhandled", aws.ToString(fe.FunctionError))
	}
	var ferr struct {
		ErrorMessage string `json:"errorMessage"`
		ErrorType    string `json:"errorType"`
	}
	if err := json.Unmarshal(fe.Payload, &ferr); err != nil || ferr.ErrorType == "" || !strings.Contains(ferr.ErrorMessage, "3") {
		t.Errorf("function error payload = %s, want errorType and errorMessage naming exit status 3", fe.Payload)
	}

	// GetFunction, GetFunctionConfiguration, ListFunctions.
	gf, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("hello")})
	if err != nil || aws.ToString(gf.Configuration.FunctionName) != "hello" || aws.ToString(gf.Configuration.Description) != "greets" {
		t.Errorf("GetFunction = %+v, %v", gf, err)
	}
	if gf != nil && gf.Configuration.Environment.Variables["GREETING"] != "Hi" {
		t.Errorf("GetFunction environment = %v, want GREETING=Hi", gf.Configuration.Environment.Variables)
	}
	gc, err := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: created.FunctionArn})
	if err != nil || aws.ToString(gc.FunctionName) != "hello" {
		t.Errorf("GetFunctionConfiguration(by ARN) = %+v, %v", gc, err)
	}
	var names []string
	pager := lambda.NewListFunctionsPaginator(c, &lambda.ListFunctionsInput{MaxItems: aws.Int32(1)})
	for pager.HasMorePages() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatalf("ListFunctions: %v", err)
		}
		for _, f := range page.Functions {
			names = append(names, aws.ToString(f.FunctionName))
		}
	}
	if strings.Join(names, ",") != "guest,hello" {
		t.Errorf("ListFunctions (one per page) = %v, want [guest hello]", names)
	}

	// UpdateFunctionConfiguration, then UpdateFunctionCode.
	uc, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String("guest"),
		MemorySize:   aws.Int32(512),
		Environment:  &types.Environment{Variables: map[string]string{"COLOR": "blue"}},
	})
	if err != nil || aws.ToInt32(uc.MemorySize) != 512 {
		t.Fatalf("UpdateFunctionConfiguration = %+v, %v", uc, err)
	}
	envOut, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("guest"), Payload: []byte(`{"env":"COLOR"}`)})
	if err != nil || !strings.Contains(string(envOut.Payload), `"env":"blue"`) {
		t.Errorf("Invoke after config update = %s, %v; want env blue", envOut.Payload, err)
	}
	ucode, err := c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("guest"), ZipFile: guests.hello})
	if err != nil {
		t.Fatalf("UpdateFunctionCode: %v", err)
	}
	if aws.ToString(ucode.CodeSha256) != aws.ToString(created.CodeSha256) || aws.ToInt32(ucode.MemorySize) != 512 {
		t.Errorf("UpdateFunctionCode = sha %s memory %d; want the hello digest and memory kept", aws.ToString(ucode.CodeSha256), aws.ToInt32(ucode.MemorySize))
	}
	swapped, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("guest"), Payload: []byte(`{"name":"Bo"}`)})
	if err != nil || !strings.Contains(string(swapped.Payload), "Hello, Bo!") {
		t.Errorf("Invoke after code update = %s, %v; want the new code's answer", swapped.Payload, err)
	}

	// DeleteFunction, and the typed errors that follow.
	if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("guest")}); err != nil {
		t.Fatalf("DeleteFunction: %v", err)
	}
	_, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("guest")})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Errorf("Invoke(deleted) error = %v, want ResourceNotFoundException", err)
	}
	_, err = c.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("hello"), Role: aws.String(role), Runtime: types.Runtime("wasm"),
		Code: &types.FunctionCode{ZipFile: guests.hello},
	})
	var conflict *types.ResourceConflictException
	if !errors.As(err, &conflict) {
		t.Errorf("duplicate CreateFunction error = %v, want ResourceConflictException", err)
	}
	if out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("hello"), InvocationType: types.InvocationTypeEvent}); err != nil || out.StatusCode != 202 {
		t.Errorf("Invoke(Event) = %v, want 202", err)
	}
}
