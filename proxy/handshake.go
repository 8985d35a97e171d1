package proxy

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"

	"go.uber.org/zap"

	"github.com/countersign/countersign/audit"
	"github.com/countersign/countersign/session"
)

// auditHandshakeFailure records a client TLS handshake inside an intercepted
// tunnel that did not complete: nothing was decided or sent, but a client
// that offers only HTTP/2, stalls in the handshake or does not trust the CA
// is refused, and every refusal is audited (SPEC 10.3, 10.4).
func (s *Server) auditHandshakeFailure(sess *session.Info, host string, port int, offered []string, err error) {
	reason := "the TLS handshake with the client failed (does the client trust the countersign CA?)"
	switch {
	case len(offered) > 0 && !slices.Contains(offered, "http/1.1"):
		reason = "the client offered only " + strings.Join(offered, ", ") + " (TLS ALPN); only HTTP/1.1 is intercepted"
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		reason = "the client did not finish the TLS handshake in time"
	}
	ev := &audit.Event{Type: "decision", RequestID: newRequestID(), Session: sessionRef(sess), Decision: "deny",
		Reasons: []string{reason}, RuleIDs: []string{"PROTOCOL"},
		Request: &audit.RequestSummary{Method: "CONNECT", Host: host, Port: port}}
	if aerr := s.opts.Audit.RecordAsync(ev); aerr != nil {
		s.logger.Error("audit write failed", zap.Error(aerr))
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
