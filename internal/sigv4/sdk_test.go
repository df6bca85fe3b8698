package sigv4

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
)

// TestLambdaSDKRequestsVerify drives the real Lambda client of
// aws-sdk-go-v2 against a verifying server, with the server's clock at the
// real time.
func TestLambdaSDKRequestsVerify(t *testing.T) {
	srv, results := verifyingServer(t, time.Now())
	client := lambda.New(lambda.Options{
		Region:       "eu-central-1",
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider(testAKID, testSecret, "session-token"),
		HTTPClient:   srv.Client(),
		Retryer:      aws.NopRetryer{},
	})
	ctx := context.Background()
	calls := []struct {
		name string
		call func() error
	}{
		{"GetFunction arn", func() error {
			_, err := client.GetFunction(ctx, &lambda.GetFunctionInput{
				FunctionName: aws.String("arn:aws:lambda:eu-central-1:123456789012:function:my-fn"),
				Qualifier:    aws.String("$LATEST"),
			})
			return err
		}},
		{"ListFunctions marker", func() error {
			_, err := client.ListFunctions(ctx, &lambda.ListFunctionsInput{Marker: aws.String("a b/c+d"), MaxItems: aws.Int32(5)})
			return err
		}},
		{"Invoke", func() error {
			_, err := client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("fn:alias"), Payload: []byte(`{"x":"y"}`), LogType: "Tail"})
			return err
		}},
		{"DeleteFunction", func() error {
			_, err := client.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("weird name%")})
			return err
		}},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			_ = c.call() // the canned 204 may not decode; the signature is what matters
			got := <-results
			if got.err != nil {
				t.Fatalf("Verify() of the SDK's request = %v", got.err)
			}
		})
	}
}
