// Command urlfn is a test function for Lambda function URLs, built with
// aws-lambda-go's events package.
package main

import (
	"context"
	"fmt"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

func handle(ctx context.Context, req events.LambdaFunctionURLRequest) (events.LambdaFunctionURLResponse, error) {
	return events.LambdaFunctionURLResponse{
		StatusCode: 201,
		Headers:    map[string]string{"Content-Type": "text/plain"},
		Body:       fmt.Sprintf("%s %s?%s %s", req.RequestContext.HTTP.Method, req.RawPath, req.RawQueryString, req.Body),
	}, nil
}

func main() {
	lambda.Start(handle)
}
