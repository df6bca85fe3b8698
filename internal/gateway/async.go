package gateway

import "net/http"

// asyncRoutes registers the asynchronous invocation endpoints.
func (g *Gateway) asyncRoutes(route func(pattern, action string, limit int64, h func(http.ResponseWriter, *http.Request, []byte))) {
}
