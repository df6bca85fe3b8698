package gateway

import (
	"net/http"

	"github.com/gustfaas/gust/api"
	"github.com/gustfaas/gust/internal/control"
)

// AccountLimits are the node's limits as GetAccountSettings reports them.
type AccountLimits struct {
	// ConcurrentExecutions is how many instances of the smallest size fit
	// the node's memory budget.
	ConcurrentExecutions int
	// TotalCodeSize is the storage available for code, in bytes.
	TotalCodeSize int64
}

func (g *Gateway) getAccountSettings(w http.ResponseWriter, r *http.Request, _ []byte) {
	lim := g.cfg.Limits
	var reserved int
	var usage api.AccountUsage
	seen := map[string]bool{}
	for _, f := range g.cfg.Functions.List() {
		usage.FunctionCount++
		if f.ReservedConcurrency != nil {
			reserved += *f.ReservedConcurrency
		}
		for _, v := range append(g.cfg.Functions.Versions(f.Name), f) {
			if !seen[v.CodeDigest] {
				seen[v.CodeDigest] = true
				usage.TotalCodeSize += v.CodeSize
			}
		}
	}
	writeJSON(w, http.StatusOK, api.AccountSettings{
		AccountLimit: api.AccountLimit{
			TotalCodeSize:                  lim.TotalCodeSize,
			CodeSizeUnzipped:               control.MaxUnzippedBytes,
			CodeSizeZipped:                 control.MaxZipBytes,
			ConcurrentExecutions:           int32(lim.ConcurrentExecutions),
			UnreservedConcurrentExecutions: int32(max(lim.ConcurrentExecutions-reserved, 0)),
		},
		AccountUsage: usage,
	})
}
