// Command lambda-go is an AWS Lambda function written with
// github.com/aws/aws-lambda-go, unmodified: Gust runs it with the process
// runtime (provided.al2023). It answers both direct invocations and
// function-URL requests.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// greeting is the answer.
type greeting struct {
	Message   string `json:"message"`
	RequestID string `json:"requestId"`
}

func greet(ctx context.Context, name string) greeting {
	if name == "" {
		name = "world"
	}
	lc, _ := lambdacontext.FromContext(ctx)
	log.Printf("greeting %s", name)
	return greeting{Message: fmt.Sprintf("Hello, %s!", name), RequestID: lc.AwsRequestID}
}

// handle takes {"name": "..."} or a function-URL request (?name=...).
func handle(ctx context.Context, raw json.RawMessage) (any, error) {
	var url events.LambdaFunctionURLRequest
	if err := json.Unmarshal(raw, &url); err == nil && url.RequestContext.HTTP.Method != "" {
		body, _ := json.Marshal(greet(ctx, url.QueryStringParameters["name"]))
		return events.LambdaFunctionURLResponse{
			StatusCode: 200,
			Headers:    map[string]string{"Content-Type": "application/json"},
			Body:       string(body),
		}, nil
	}
	var in struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, fmt.Errorf("the event must be a JSON object: %w", err)
	}
	return greet(ctx, in.Name), nil
}

func main() {
	lambda.Start(handle)
}
