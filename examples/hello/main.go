// Command hello is the smallest Gust function written with the Go SDK: it
// greets the name in its event.
//
//	{"name":"Ada"}     -> {"message":"Hello, Ada!"}
//	GET /fn/hello?name=Ada -> {"message":"Hello, Ada!"}
//	{}                 -> {"message":"Hello, world!"}
//
// Build it as a WASI reactor (gust deploy does this):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o hello.wasm .
package main

import (
	"context"

	gust "github.com/gustfaas/gust/sdk/go"
)

// Event is the function's input. Invoked directly it is {"name":"Ada"};
// through its function URL (/fn/hello?name=Ada) the event is the HTTP
// request, whose query parameters carry the name.
type Event struct {
	Name  string            `json:"name"`
	Query map[string]string `json:"queryStringParameters"`
}

// Greeting is the function's output.
type Greeting struct {
	Message string `json:"message"`
}

// The handler is registered from init: a reactor module runs package
// initialisation but never main.main.
func init() { gust.Handle(hello) }

func hello(_ context.Context, ev Event) (Greeting, error) {
	name := ev.Name
	if name == "" {
		name = ev.Query["name"]
	}
	if name == "" {
		name = "world"
	}
	return Greeting{Message: "Hello, " + name + "!"}, nil
}

// main is required by the go tool but never runs in a reactor build.
func main() {}
