package gateway

import "net/http"

// scheduleRoutes registers the schedule endpoints.
func (g *Gateway) scheduleRoutes(route func(pattern, action string, limit int64, h func(http.ResponseWriter, *http.Request, []byte))) {
}
