//go:build wasip1

package gust

import "net/http"

// wasip1 has no sockets: outbound HTTP goes through the host.
func init() { http.DefaultTransport = Transport{} }
