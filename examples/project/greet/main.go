// Command greet is a function of the example project (examples/project): it
// greets the name in its event with the greeting its environment sets.
//
//	{"name":"Ada"}  -> {"message":"Hello, Ada!"}
//
// `gust deploy` builds it to a WebAssembly reactor module, as it builds
// examples/hello.
package main

import (
	"context"
	"os"

	gust "github.com/gustfaas/gust/sdk/go"
)

// Event is the function's input.
type Event struct {
	Name string `json:"name"`
}

// Greeting is the function's output.
type Greeting struct {
	Message string `json:"message"`
}

func init() { gust.Handle(greet) }

func greet(_ context.Context, ev Event) (Greeting, error) {
	greeting := os.Getenv("GREETING")
	if greeting == "" {
		greeting = "Hello"
	}
	name := ev.Name
	if name == "" {
		name = "world"
	}
	return Greeting{Message: greeting + ", " + name + "!"}, nil
}

// main is required by the go tool but never runs in a reactor build.
func main() {}
