// Command httpapi is a small JSON API written as an ordinary net/http
// handler and served by Gust through the SDK's function URL adapter.
//
//	GET    /             index of the API
//	GET    /todos        list todos
//	POST   /todos        create a todo from {"title":"..."}
//	GET    /todos/{id}   one todo
//	DELETE /todos/{id}   delete a todo
//
// Gust's gateway strips the /fn/{name} prefix of a function URL, so the
// handler sees plain paths such as /todos. Todos live in the memory of one
// warm instance: they survive between invocations served by that instance,
// not across instances or restarts.
package main

import gust "github.com/gustfaas/gust/sdk/go"

// The handler is registered from init: a reactor module never runs main.
func init() { gust.HandleHTTP(newServer()) }

// main is required by the go tool but never runs in a reactor build.
func main() {}
