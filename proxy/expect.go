package proxy

import (
	"context"
	"net/http"

	"go.uber.org/zap"

	"github.com/countersign/countersign/policy"
)

// decideHead is the first half of deciding a request whose client waits for
// "100 Continue" before it sends the body (Expect: 100-continue; the AWS
// CLI does this for S3 uploads, curl for large bodies). The policy is
// evaluated on the head alone, with request.body_pending set and no body.
//
// If that evaluation denies cleanly (no policy error), decideHead returns
// the denial: the client gets it before it has sent a byte of the body, the
// body is never read and the connection closes after the answer. Anything
// else — allow, approve, a policy error — returns nil: the pipeline sends
// "100 Continue", reads the body and decides the whole request, and only
// that decision counts. So the head-only evaluation can refuse earlier but
// never admit anything, and a policy that denies on the absence of body
// fields should test input.request.body_pending (docs/security.md).
//
// Shadow mode forwards everything, so it skips this step.
func (s *Server) decideHead(ctx context.Context, ex *exchange) *http.Response {
	if s.opts.Shadow || ex.req.Body == nil || ex.req.Body == http.NoBody || !expectsContinue(ex.req) {
		return nil
	}
	sess := ex.session
	ar := ex.actionRequest()
	act := s.opts.Classifier.Classify(ar)
	in := policy.NewInput(ar, act, sess, s.opts.Now())
	in.Request.BodyPending = true
	d := s.opts.Decider.Decide(ctx, in)
	if reason, ok := s.selfTarget(ex.host, ex.port); ok {
		d.Verdict, d.Err = policy.VerdictDeny, nil
		d.Reasons = []policy.Reason{{ID: "SELF", Message: reason}}
	}
	if d.Verdict != policy.VerdictDeny || d.Err != nil {
		return nil
	}

	ex.ar = ar
	cnt := s.stats.of(sess.ID)
	cnt.denied.Add(1)
	// The body stays unread: the connection cannot carry another request,
	// and nothing may wait for body bytes the client will not send.
	ex.req.Body = http.NoBody
	ev := s.decisionEvent(sess, ex, in, d, "deny")
	ev.Detail = "decided on the request head (Expect: 100-continue); the body was not read"
	if err := s.opts.Audit.Record(ev); err != nil {
		s.logger.Error("audit write failed; denying", zap.String("request", ex.id), zap.Error(err))
		return s.denial(ex, act, answer{status: http.StatusServiceUnavailable, decision: "deny",
			message: "countersign: the audit log cannot be written, so nothing is forwarded; tell whoever runs countersign (see its log)."})
	}
	return s.denial(ex, act, answer{status: http.StatusForbidden, decision: "deny", message: denyMessage(d.Messages(), d.RuleIDs())})
}
