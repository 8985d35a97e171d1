package approval

import (
	"net/http"
	"time"

	"go.uber.org/zap"
)

// PageOptions configures the approval page.
type PageOptions struct {
	// Decide allows deciding from the page. It is false when approval.approvers
	// names Slack approvers: the page cannot verify a Slack identity, so it
	// then only shows the request.
	Decide bool
	// Secret keys the CSRF tokens (32 random bytes, kept in memory or in
	// state_dir).
	Secret []byte
	Now    func() time.Time
}

// NewPageHandler serves GET and POST /approvals/{id}?t=TOKEN.
func NewPageHandler(b *Broker, opts PageOptions, logger *zap.Logger) http.Handler {
	return http.NotFoundHandler()
}
