package proxy

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/countersign/countersign/action"
	"github.com/countersign/countersign/action/mcp"
	"github.com/countersign/countersign/approval"
	"github.com/countersign/countersign/audit"
	"github.com/countersign/countersign/internal/h1"
	"github.com/countersign/countersign/internal/hostport"
	"github.com/countersign/countersign/internal/redact"
	"github.com/countersign/countersign/policy"
	"github.com/countersign/countersign/session"
)

// exchange is one client request on its way through the pipeline.
type exchange struct {
	req     *http.Request // hop-by-hop headers already removed
	scheme  string
	host    string // canonical
	port    int
	session *session.Info
	id      string
	// ar is the classifier's view of the request, once built.
	ar *action.Request
	// upgrade is the protocol of an upgrade request (websocket, SPDY/3.1);
	// its headers are re-added only when the request is forwarded.
	upgrade string
	// bodyReserved is what the body being read took of
	// Options.MaxReadingBodies.
	bodyReserved int64
	// beforeBody is called once before the body is first read; the tunnel
	// uses it to answer "Expect: 100-continue".
	beforeBody func() error
	// watch returns the watch of the client for a held request. Nil means
	// ctx already carries the client going away.
	watch func() *clientWatch
	// approvalID names the approval that admitted the request, once it is
	// forwarded on one: the record of an upgraded connection's end names
	// it too.
	approvalID string
}

// handle decides one request and returns the response for the client. It
// never returns nil and never forwards a request that was not decided allow
// (or approved) with its decision record durable in the audit log.
//
// A request held for approval waits here, in wait, after process has
// returned: the held goroutine's stack then holds only this small frame and
// the broker's, not the deep frames of decision making, so the GC can
// shrink it while thousands of requests are held.
func (s *Server) handle(ctx context.Context, ex *exchange) *http.Response {
	resp, wait := s.process(ctx, ex)
	if wait != nil {
		return wait()
	}
	return resp
}

// process is handle up to a wait for approval: it returns the response, or
// for a held request the function that waits and then answers.
func (s *Server) process(ctx context.Context, ex *exchange) (_ *http.Response, wait func() *http.Response) {
	start := s.opts.Now()
	if ex.id == "" {
		ex.id = newRequestID()
	}
	sess := ex.session
	cnt := s.stats.of(sess.ID)

	if status, reason := refuseHead(ex); status != 0 {
		s.auditRefusal(sess, ex, status, reason)
		cnt.denied.Add(1)
		return s.denial(ex, action.Action{}, answer{status: status, decision: "deny", message: "countersign: " + reason + "; nothing was sent."}), nil
	}
	if resp := s.decideHead(ctx, ex); resp != nil {
		return resp, nil
	}
	// What the body (and its inflated copy) took of
	// Options.MaxReadingBodies, once this request is decided and forwarded
	// or answered (a held one keeps a copy, counted in MaxHeldBodies);
	// deferred first, so that a panic while reading gives it back too.
	defer func() {
		s.readingBodies.give(sess.ID, ex.bodyReserved)
		if wait == nil && ex.ar != nil && ex.ar.Decoded {
			// The inflated copy is no longer counted, so it must not
			// outlive the decision either: the exchange lives on while a
			// slow client reads the answer or an upgraded connection runs
			// (found by review). A held request keeps it (counted in
			// MaxHeldBodies): its answer may need it.
			ex.ar.Body = nil
		}
	}()
	prefix, truncated, sum, buf, err := s.readPrefix(ex)
	// The prefix's buffer is reused once this request is decided and
	// forwarded (the upstream body holds a reference of its own) or
	// refused; a held request takes a copy.
	defer buf.release()
	if err != nil {
		s.logger.Debug("read request body", zap.String("request", ex.id), zap.Error(err))
		status, reason := http.StatusBadRequest, "the request body could not be read"
		var he *h1.Error
		if errors.As(err, &he) {
			status, reason = he.Status, he.Reason
		}
		s.auditRefusal(sess, ex, status, reason)
		cnt.denied.Add(1)
		return s.denial(ex, action.Action{}, answer{status: status, decision: "deny", message: "countersign: " + reason + "; nothing was sent."}), nil
	}

	ar := ex.actionRequest()
	ar.Body, ar.BodyTruncated, ar.BodySHA256 = prefix, truncated, sum
	if !truncated && ar.BodySize < 0 {
		ar.BodySize = int64(len(prefix))
	}
	ex.ar = ar
	inflate := s.inflate
	if len(ex.req.Header.Values("Content-Encoding")) > 0 {
		inflate = s.inflateCounted(ex)
	}
	act, refusal := Screen(s.opts.Classifier, ar, ex.req.URL.RawQuery, inflate)
	if refusal != nil {
		if refusal.Classified {
			s.auditRefusal(sess, ex, refusal.Status, refusal.Reason, act)
		} else {
			s.auditRefusal(sess, ex, refusal.Status, refusal.Reason)
		}
		cnt.denied.Add(1)
		return s.denial(ex, act, answer{status: refusal.Status, decision: "deny",
			message: "countersign: " + refusal.Reason + "; nothing was sent."}), nil
	}
	in := policy.NewInput(ar, act, sess, start)
	d := s.opts.Decider.Decide(ctx, in)
	if reason, ok := s.selfTarget(ex.host, ex.port); ok {
		// Never let an agent reach countersign's own listeners, whatever the
		// policy says (SPEC 7.7, 10.5).
		d.Verdict = policy.VerdictDeny
		d.Reasons = []policy.Reason{{ID: "SELF", Message: reason}}
	}
	if d.Err != nil {
		s.logger.Error("policy evaluation failed; applying policy.on_error",
			zap.String("request", ex.id), zap.String("revision", d.Revision), zap.String("error", redact.Shown(d.Err.Error())))
	}

	verdict := d.Verdict
	decision := verdict.String()
	shadow := s.opts.Shadow && verdict != policy.VerdictAllow && d.Reasons[0].ID != "SELF"
	if shadow {
		decision = "would_" + decision
	}
	ev := s.decisionEvent(sess, ex, in, d, decision)
	if err := s.opts.Audit.Record(ev); err != nil {
		s.logger.Error("audit write failed; denying", zap.String("request", ex.id), zap.Error(err))
		cnt.denied.Add(1)
		return s.denial(ex, act, answer{status: http.StatusServiceUnavailable, decision: "deny",
			message: "countersign: the audit log cannot be written, so nothing is forwarded; tell whoever runs countersign (see its log)."}), nil
	}
	if shadow {
		cnt.shadowed.Add(1)
		verdict = policy.VerdictAllow
	}

	switch verdict {
	case policy.VerdictAllow:
		if !shadow {
			cnt.allowed.Add(1)
		}
		rest := ex.req.Body
		if !truncated {
			rest = nil
		}
		if rest != nil && !ar.Decoded && ex.req.Method == http.MethodPost && mcp.JSONContent(ex.req.Header) {
			// A JSON POST past the limit, decided without its rest: the
			// rest is watched for the members of an MCP message, and cut
			// off before its end if one comes (mcp.TailWatch), whatever
			// the provider (found by review: a path or a signature of
			// another API made one claim the request). The MCP SDKs take
			// messages only so.
			w := &mcp.TailWatch{}
			if w.Scan(prefix) || w.Unreadable() {
				// A start the watch cannot read (UTF-16, a coding left as
				// sent) is one it could not watch: refused (found by
				// review: a BOM and an unknown coding got it through).
				s.cutOff(ex, cnt, shadow)
				return s.denial(ex, act, answer{status: http.StatusRequestEntityTooLarge, decision: "deny", message: s.lateMessage()}), nil
			}
			w.OnFound = func() { s.cutOff(ex, cnt, shadow) }
			rest = readCloser{w.Reader(rest), rest}
		}
		return s.forward(ctx, ex, act, prefix, rest, buf, "allow", ""), nil
	case policy.VerdictApprove:
		if buf != nil {
			// The body waits for a human, and is forwarded or answered
			// about (git's report-status reads it) after this returns.
			prefix = slices.Clone(prefix)
			if !ar.Decoded { // an inflated body is a copy already
				ar.Body = prefix
			}
		}
		// An inflated body past the limit is as unseen as a raw one.
		return s.hold(ctx, ex, act, in, d, prefix, truncated || ar.BodyTruncated, cnt)
	case policy.VerdictDeny:
		cnt.denied.Add(1)
		return s.denial(ex, act, answer{status: http.StatusForbidden, decision: "deny", message: denyMessage(d.Messages(), d.RuleIDs())}), nil
	default:
		cnt.denied.Add(1)
		return s.denial(ex, act, answer{status: http.StatusForbidden, decision: "deny", message: "countersign: denied: the policy gave no usable decision."}), nil
	}
}

// readPrefix buffers up to the inspection limit of the body, and hashes it
// as it arrives: the SHA-256 of a 1 MiB body costs about half a
// millisecond, which then overlaps the rest of the transfer instead of
// following it. sum is nil when the body was cut at the limit. A non-nil
// bodyBuf holds the prefix's pooled buffer: the caller releases it when
// done (see bodybuf.go).
func (s *Server) readPrefix(ex *exchange) (prefix []byte, truncated bool, sum []byte, buf *bodyBuf, err error) {
	body := ex.req.Body
	if body == nil || body == http.NoBody {
		return nil, false, nil, nil, nil
	}
	if ex.beforeBody != nil {
		if err := ex.beforeBody(); err != nil {
			return nil, false, nil, nil, err
		}
	}
	h := sha256.New()
	in := io.TeeReader(body, h)
	limit := s.opts.BodyLimit
	reserve := func(n int64) bool {
		if !s.readingBodies.take(ex.session.ID, n) {
			return false
		}
		ex.bodyReserved += n
		return true
	}
	if cl := ex.req.ContentLength; cl >= 0 && cl <= limit {
		b, bb, err := readUpTo(in, cl, true, &s.bodies, reserve)
		if err != nil {
			return nil, false, nil, nil, err
		}
		if int64(len(b)) != cl {
			bb.release()
			return nil, false, nil, nil, io.ErrUnexpectedEOF
		}
		return b, false, h.Sum(nil), bb, nil
	}
	b, bb, err := readUpTo(in, limit+1, false, &s.bodies, reserve)
	if err != nil {
		return nil, false, nil, nil, err
	}
	if int64(len(b)) > limit {
		// Past the limit, keep the extra byte: it belongs to the body and
		// is sent ahead of the rest of the stream.
		return b, true, nil, bb, nil
	}
	return b, false, h.Sum(nil), bb, nil
}

// readUpTo reads r until EOF or limit bytes. It grows its buffer with the data
// rather than trust a declared length (a client that declares 1 MiB and
// sends nothing costs nothing), and stops at limit without probing for EOF:
// bytes.Buffer.ReadFrom doubled a full 1 MiB buffer to 2 MiB only to learn
// that nothing followed. The buffer doubles, never past limit; when limit
// is the length the client declared (declared), a client that has sent the
// first 64 KiB of it gets the rest in one allocation, since every doubling
// zeroes a new buffer and copies the old one (for 1 MiB, 2 MiB zeroed and
// 1 MiB copied instead of 1 MiB and 64 KiB). Buffers of 64 KiB and more
// come from pool (when not nil): the returned bodyBuf, nil otherwise, holds
// the caller's reference to one.
//
// Growing past the first 64 KiB takes the new bytes from reserve (when not
// nil), and fails with errReadBudget when it refuses them.
func readUpTo(r io.Reader, limit int64, declared bool, pool *bodyPool, reserve func(int64) bool) (_ []byte, _ *bodyBuf, err error) {
	// Past declaredJump the buffer doubles with the data even for a
	// declared length: a client that declares 256 MiB and sends 64 KiB
	// would otherwise cost 256 MiB.
	buf := make([]byte, 0, min(limit, 64<<10))
	var bb *bodyBuf // holds buf once it is a pooled buffer
	defer func() {
		if err != nil {
			bb.release()
		}
	}()
	for int64(len(buf)) < limit {
		if len(buf) == cap(buf) {
			next := 2 * int64(cap(buf))
			if declared && limit <= declaredJump {
				next = limit
			}
			next = min(limit, next)
			if reserve != nil && !reserve(next-int64(cap(buf))) {
				return nil, nil, errReadBudget
			}
			if nb := pool.get(int(next)); nb != nil {
				nb.b = append(nb.b, buf...)
				bb.release()
				bb, buf = nb, nb.b
			} else {
				buf = slices.Grow(buf, int(next)-len(buf))
				bb.release() // copied out of it, if it was pooled
				bb = nil
			}
		}
		n, err := r.Read(buf[len(buf):min(int64(cap(buf)), limit)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, err
		}
	}
	if bb != nil {
		// Cut to length: the capacity past it is the pool's.
		buf = buf[:len(buf):len(buf)]
	}
	return buf, bb, nil
}

// inflate is action.Inflate, a few at a time (see Server.inflating).
func (s *Server) inflate(ar *action.Request) error {
	if len(ar.Body) == 0 || len(ar.Header.Values("Content-Encoding")) == 0 {
		return nil
	}
	s.inflating <- struct{}{}
	defer func() { <-s.inflating }()
	return action.Inflate(ar, s.opts.BodyLimit)
}

// inflateCounted is inflate with the inflated copy counted in
// Options.MaxReadingBodies for ex's session, until ex is done (found by
// review: a 2 KiB gzip body became 1 MiB outside the budget). It reserves
// inspect.body_limit while it inflates and gives back what the copy did
// not use.
func (s *Server) inflateCounted(ex *exchange) func(*action.Request) error {
	return func(ar *action.Request) error {
		if len(ar.Body) == 0 {
			return nil
		}
		limit := s.opts.BodyLimit
		if !s.readingBodies.take(ex.session.ID, limit) {
			return errReadBudget
		}
		kept := int64(0)
		defer func() {
			// Also when a decoder panics (the tunnel recovers it).
			s.readingBodies.give(ex.session.ID, limit-kept)
			ex.bodyReserved += kept
		}()
		err := s.inflate(ar)
		if err == nil && ar.Decoded {
			kept = int64(len(ar.Body))
		}
		return err
	}
}

// opaquePayload reports whether an action's body is data its server
// stores rather than reads: an S3 object (a JSON file with a byte order
// mark, uploaded by `aws s3 cp`, is just bytes to S3).
func opaquePayload(a action.Action) bool {
	// On AWS's own S3 endpoints only: a signature of the agent's making
	// on another host must not spare its body the checks (found by
	// review).
	return a.Provider == "aws" && a.Service == "s3" && a.ByHost
}

// refuseHead returns the status and reason for a request head that is
// refused before classification, or 0. Each is a request the policy would
// see differently from the server that receives it.
func refuseHead(ex *exchange) (int, string) {
	if status, reason := headRefusal(ex.req.Method, ex.req.Header, ex.req.URL.RawQuery, ex.upgrade != "", ex.req.ContentLength); status != 0 {
		return status, reason
	}
	if ex.req.URL.Path == "" {
		// An absolute-form target without a path ("https://h?x=1") is
		// sent as "/": the policy sees that.
		ex.req.URL.Path, ex.req.URL.RawPath = "/", ""
	}
	return 0, ""
}

// methodOverrides are the headers with which some servers (Google APIs,
// Rails, ASP.NET and others) take the method from a header instead of the
// request line.
// Keys are canonical, for a lookup that does not allocate.
var methodOverrides = []struct{ key, name string }{
	{"X-Http-Method-Override", "X-HTTP-Method-Override"},
	{"X-Http-Method", "X-HTTP-Method"},
	{"X-Method-Override", "X-Method-Override"},
}

// errReadBudget refuses a body that would take the bodies being read past
// Options.MaxReadingBodies.
var errReadBudget = &h1.Error{Status: http.StatusServiceUnavailable, Reason: "countersign is reading too many large request bodies at once; retry shortly"}

// declaredJump is the largest declared body read into one allocation once
// its first 64 KiB have arrived (16 times what the client has sent).
const declaredJump = 1 << 20

// hold admits a retry under a grant, or opens an approval and returns the
// function that waits for a human (see handle).
func (s *Server) hold(ctx context.Context, ex *exchange, act action.Action, in *policy.Input, d policy.Decision, body []byte, truncated bool, cnt *counters) (*http.Response, func() *http.Response) {
	sess := ex.session
	if truncated {
		cnt.denied.Add(1)
		msg := fmt.Sprintf("countersign: this request needs approval, but its body is larger than inspect.body_limit (%d bytes), so a human could not see what would be sent; it was not sent.", s.opts.BodyLimit)
		s.auditNotHeld(ex, msg, nil)
		return s.denial(ex, act, answer{status: http.StatusRequestEntityTooLarge, decision: "deny", message: msg}), nil
	}
	// The policy input already hashed the body (it is whole here: a
	// truncated one was refused above).
	bodyHash := in.Request.BodySHA256
	if bodyHash == "" {
		sum := sha256.Sum256(body)
		bodyHash = hex.EncodeToString(sum[:])
	}
	// The fingerprint uses the provider's canonical body where it has one
	// (an MCP message without its per-request id); the record keeps the
	// real hash.
	fp := fingerprint(s.credKey, ex, act, s.opts.Classifier.FingerprintBody(act, decodedBody(ex, body)))

	if g, err := s.opts.Approvals.ConsumeGrant(ctx, sess.ID, fp, approval.Asks{Required: d.RequiredApprovals(), RuleIDs: d.RuleIDs()}); err == nil {
		if err := s.opts.Audit.Record(&audit.Event{Type: "approval", RequestID: ex.id, ApprovalID: g.ApprovalID,
			Session: sessionRef(sess), Detail: "grant consumed: an identical retry of an approved request"}); err != nil {
			cnt.denied.Add(1)
			return s.denial(ex, act, answer{status: http.StatusServiceUnavailable, decision: "deny",
				message: "countersign: the audit log cannot be written, so nothing is forwarded; tell whoever runs countersign."}), nil
		}
		cnt.approved.Add(1)
		return s.forward(ctx, ex, act, body, nil, nil, "approved", g.ApprovalID), nil
	} else if !errors.Is(err, approval.ErrNotFound) {
		return s.approvalUnavailable(ex, act, err, cnt), nil
	}

	op, resources := scopeKey(s.credKey, act, ex)
	q := approval.ScopeQuery{SessionID: sess.ID, Operation: op, Resources: resources, Required: d.RequiredApprovals(), RuleIDs: d.RuleIDs()}
	if sc, err := s.opts.Approvals.UseScope(ctx, q); err == nil {
		if err := s.opts.Audit.Record(&audit.Event{Type: "approval", RequestID: ex.id, ApprovalID: sc.ApprovalID,
			Session: sessionRef(sess), Detail: fmt.Sprintf("admitted by scoped grant %s (%s)", sc.ID, op),
			Fields: map[string]any{"grant_id": sc.ID}}); err != nil {
			cnt.denied.Add(1)
			return s.denial(ex, act, answer{status: http.StatusServiceUnavailable, decision: "deny",
				message: "countersign: the audit log cannot be written, so nothing is forwarded; tell whoever runs countersign."}), nil
		}
		cnt.approved.Add(1)
		return s.forward(ctx, ex, act, body, nil, nil, "approved", sc.ApprovalID), nil
	} else if !errors.Is(err, approval.ErrNotFound) {
		return s.approvalUnavailable(ex, act, err, cnt), nil
	}

	rec := &approval.Record{
		ID:          approval.NewID(),
		SessionID:   sess.ID,
		SessionName: sess.Name,
		RequestID:   ex.id,
		Summary:     summary(act, ex),
		Action:      inputAction(in),
		Request: approval.Request{
			Method:     ex.req.Method,
			URL:        redact.URL(targetURL(ex)),
			Headers:    recordedHeaders(in),
			Body:       displayBody(policy.BodyType(ex.ar, act), decodedBody(ex, body), policy.IsKubernetesSecret(act)),
			BodySize:   int64(len(body)),
			BodySHA256: bodyHash,
		},
		Fingerprint: fp,
		Messages:    d.Messages(),
		RuleIDs:     d.RuleIDs(),
		Required:    d.RequiredApprovals(),
		Channel:     d.Channel(),
		Operation:   op,
		Resources:   resources,
	}

	// The body waits with the request: within a budget, so that many
	// held requests with large bodies cannot exhaust memory.
	size := int64(len(body)) + int64(len(rec.Request.Body)) // and what the approver is shown
	if ex.ar != nil && ex.ar.Decoded {
		size += int64(len(ex.ar.Body)) // the inflated copy waits too
	}
	if !s.heldBodies.take(sess.ID, size) {
		cnt.denied.Add(1)
		msg := "countersign: this request needs approval, but the requests already waiting for approval hold as much body data as countersign keeps; nothing was sent. Retry later."
		s.auditNotHeld(ex, msg, nil)
		return s.denial(ex, act, answer{status: http.StatusServiceUnavailable, decision: "deny", message: msg}), nil
	}
	done := func() { s.heldBodies.give(sess.ID, size) }
	// Given back here unless the wait below takes it over: also when
	// opening the approval panics.
	handedOver := false
	defer func() {
		if !handedOver {
			done()
		}
	}()

	// The wait keeps only what answering needs: the policy input and the
	// classifier's request are garbage while the request is held.
	hold := s.holdFor(d, act, ex.host)
	messages := d.Messages()
	if ex.watch == nil {
		handedOver = true
		return nil, func() *http.Response {
			defer done()
			out, err := s.opts.Approvals.Hold(ctx, rec, hold)
			return s.holdOutcome(ctx, ex, act, body, rec.ID, messages, out, err, cnt)
		}
	}
	// The approval opens here, on the stack that decided the request; the
	// client's connection then waits parked, without a goroutine, until the
	// hold is woken or the client's socket is readable (see park).
	cw := ex.watch()
	hd, err := s.opts.Approvals.Open(ctx, rec, cw.wake)
	if err != nil {
		cw.finish()
		return s.holdOutcome(ctx, ex, act, body, rec.ID, messages, approval.Outcome{}, err, cnt), nil
	}
	hd.Start(ctx, hold)
	handedOver = true
	return nil, func() *http.Response {
		defer done()
		out := hd.Wait(ctx, cw.watch)
		cw.finish()
		return s.holdOutcome(ctx, ex, act, body, rec.ID, messages, out, nil, cnt)
	}
}

// approvalUnavailable refuses a request that needs approval when no
// approval could be opened (the store or the audit log failed, too many are
// pending, or the request ended first): 503, nothing sent, audited (as far
// as the log can be written).
func (s *Server) approvalUnavailable(ex *exchange, act action.Action, err error, cnt *counters) *http.Response {
	s.logger.Error("no approval could be opened; denying", zap.String("request", ex.id), zap.Error(err))
	cnt.denied.Add(1)
	msg := "countersign: this request needs approval, but no approval could be opened (the approval store failed); nothing was sent. Retry later."
	switch {
	case errors.Is(err, approval.ErrTooManyPending):
		msg = "countersign: this request needs approval, but too many approvals are already pending; nothing was sent. Retry later."
	case errors.Is(err, approval.ErrAudit):
		msg = "countersign: this request needs approval, but the audit log cannot be written, so no approval was opened and nothing was sent; tell whoever runs countersign."
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		msg = "countersign: this request needs approval, but it ended before its approval was opened; nothing was sent."
	}
	s.auditNotHeld(ex, msg, err)
	return s.denial(ex, act, answer{status: http.StatusServiceUnavailable, decision: "deny", message: msg})
}

// auditNotHeld records that a request the policy sent to a human was
// refused instead of held: its decision record said "approve".
func (s *Server) auditNotHeld(ex *exchange, msg string, err error) {
	ev := &audit.Event{Type: "approval", RequestID: ex.id, Session: sessionRef(ex.session),
		Decision: "deny", Detail: "not held: " + strings.TrimPrefix(msg, "countersign: ")}
	if err != nil {
		ev.Error = err.Error()
	}
	_ = s.opts.Audit.RecordAsync(ev)
}

// holdOutcome answers a held request once its hold has ended.
func (s *Server) holdOutcome(ctx context.Context, ex *exchange, act action.Action, body []byte, id string, messages []string, out approval.Outcome, err error, cnt *counters) *http.Response {
	if err != nil {
		return s.approvalUnavailable(ex, act, err, cnt)
	}
	if out.Record != nil {
		id = out.Record.ID
	}
	switch out.Kind {
	case approval.OutcomeApproved:
		// The approval's own records name the request that opened it; a
		// retry that joined it may be the one admitted: say which, before
		// anything is sent.
		if err := s.opts.Audit.Record(&audit.Event{Type: "approval", RequestID: ex.id, ApprovalID: id, Session: sessionRef(ex.session),
			Decision: "approved", Detail: "admits this held request"}); err != nil {
			cnt.denied.Add(1)
			return s.denial(ex, act, answer{status: http.StatusServiceUnavailable, decision: "deny", approval: id,
				message: "countersign: the audit log cannot be written, so nothing is forwarded; tell whoever runs countersign."})
		}
		cnt.approved.Add(1)
		return s.forward(ctx, ex, act, body, nil, nil, "approved", id)
	case approval.OutcomeDenied:
		cnt.denied.Add(1)
		who, why := out.Record.DenyReason()
		msg := fmt.Sprintf("countersign: denied by approver %s (%s)", who, id)
		if why != "" {
			msg += ": " + why
		}
		return s.denial(ex, act, answer{status: http.StatusForbidden, decision: "denied", approval: id,
			message: msg + ". The request was not sent."})
	case approval.OutcomePending:
		cnt.pending.Add(1)
		return s.denial(ex, act, answer{status: http.StatusForbidden, decision: "pending", approval: id,
			message: fmt.Sprintf("countersign: approval pending as %s: a human has been asked (%s); retry the same command after approval, within %s.",
				id, strings.Join(messages, "; "), shortDuration(s.opts.Approvals.GrantTTL()))})
	case approval.OutcomeAbandoned:
		cnt.pending.Add(1)
		return s.denial(ex, act, answer{status: http.StatusForbidden, decision: "pending", approval: id,
			message: fmt.Sprintf("countersign: approval pending as %s; retry after approval.", id)})
	case approval.OutcomeExpired:
		cnt.denied.Add(1)
		return s.denial(ex, act, answer{status: http.StatusForbidden, decision: "expired", approval: id,
			message: fmt.Sprintf("countersign: approval %s expired before anyone decided; the request was not sent.", id)})
	case approval.OutcomeSuperseded:
		cnt.denied.Add(1)
		_ = s.opts.Audit.RecordAsync(&audit.Event{Type: "approval", RequestID: ex.id, ApprovalID: id, Session: sessionRef(ex.session),
			Decision: "deny", Detail: "not sent: the approval admitted an identical request that was also waiting"})
		return s.denial(ex, act, answer{status: http.StatusConflict, decision: "approved", approval: id,
			message: fmt.Sprintf("countersign: approval %s was used by an identical request that was also waiting; this copy was not sent.", id)})
	case approval.OutcomeShutdown:
		cnt.denied.Add(1)
		return s.denial(ex, act, answer{status: http.StatusServiceUnavailable, decision: "deny", approval: id,
			message: "countersign: shutting down before a human decided; the request was not sent. Retry later."})
	default:
		cnt.denied.Add(1)
		return s.denial(ex, act, answer{status: http.StatusForbidden, decision: "deny", approval: id,
			message: "countersign: denied: the approval ended without a usable outcome."})
	}
}

// inputAction is the action as the policy input carries it, built once.
func inputAction(in *policy.Input) map[string]any {
	m, _ := maskedAction(in)
	return m
}

// maskedAction is inputAction, and whether it differs from the policy's.
func maskedAction(in *policy.Input) (map[string]any, bool) {
	a, ok := in.Map()["action"].(map[string]any)
	if !ok {
		a = in.Action.Map()
	}
	// Recorded and shown, so base64 that decodes to a credential is
	// masked, which the policy's copy is not (see redact.Encoded).
	v, changed := redact.EncodedChanged(a)
	m, _ := v.(map[string]any)
	return m, changed
}

// recordedHeaders are the request's headers as recorded and shown: the
// policy's copy, with base64 runs that decode to a credential masked too
// (an S3 object's metadata can carry a file).
func recordedHeaders(in *policy.Input) map[string][]string {
	h, _ := maskedHeaders(in)
	return h
}

// maskedHeaders is recordedHeaders, and whether they differ from the
// policy's.
func maskedHeaders(in *policy.Input) (map[string][]string, bool) {
	v, changed := redact.EncodedChanged(in.Request.Headers)
	h, _ := v.(map[string][]string)
	return h, changed
}

// recordedInput is the part of the policy input a decision record carries
// for replay: whatever the record does not already hold. The action, the
// request's method, host, port, headers and body size, hash and truncation,
// and the session's identity are in the record's other members, and
// policy.RecordedInput puts them back; every decision record is on the
// request's path, so none is written twice. in.Map() is shared with the
// decision: the record gets copies of the maps it trims.
//
// What the record masks that the policy read (a token in the path, base64
// that decodes to a credential) is marked with "masked": true in the
// request member, as a body left out is with "body_omitted": replay cannot
// decide on those as the proxy did (found by review). masked says whether
// the record's action or headers were masked already.
func recordedInput(in *policy.Input, inflated int64, masked bool) map[string]any {
	doc := in.Map()
	out := make(map[string]any, len(doc))
	for k, v := range doc {
		switch k {
		case "action":
		case "request":
			req, ok := v.(map[string]any)
			if !ok {
				out[k] = v
				continue
			}
			trimmed := make(map[string]any, len(req))
			for rk, rv := range req {
				if !policy.RecordedRequestMember(rk) {
					trimmed[rk] = rv
				}
			}
			// The policy read the path as sent; the log keeps it with
			// tokens masked (a Telegram bot's, a webhook's).
			for _, rk := range []string{"path", "raw_path"} {
				if p, ok := trimmed[rk].(string); ok {
					shown := redact.Shown(redact.Path(p))
					masked = masked || shown != p
					trimmed[rk] = shown
				}
			}
			var changed bool
			if in.Request.Body != nil && max(in.Request.BodySize, inflated) > auditBodyLimit {
				// Large bodies, as sent or once inflated (a small gzip can
				// inflate to body_limit), stay out of the log (their hash
				// is in it). Replay sees body_omitted and no body.
				delete(trimmed, "body")
				trimmed["body_omitted"] = true
			} else if b, ok := trimmed["body"]; ok {
				trimmed["body"], changed = redact.EncodedChanged(b)
				masked = masked || changed
			}
			if q, ok := trimmed["query"]; ok {
				trimmed["query"], changed = redact.EncodedChanged(q)
				masked = masked || changed
			}
			if masked {
				trimmed["masked"] = true
			}
			out[k] = trimmed
		case "session":
			// The record's session member has all of it but the
			// working directory.
			if in.Session != nil && in.Session.Cwd != "" {
				out[k] = map[string]any{"cwd": in.Session.Cwd}
			}
		default:
			out[k] = v
		}
	}
	return out
}

// auditBodyLimit is the largest body a decision record carries in its input.
const auditBodyLimit = 16 << 10

// fingerprint identifies the request for joining a pending approval and for
// grants. A query that does not parse cleanly (stray ";", bad escapes) would
// lose pairs in url.Values, so such a query is covered byte for byte.
func fingerprint(credKey []byte, ex *exchange, act action.Action, body []byte) string {
	path := ex.req.URL.EscapedPath()
	q, err := url.ParseQuery(ex.req.URL.RawQuery)
	if err != nil {
		path += "?" + ex.req.URL.RawQuery
		q = nil
	}
	// Headers can change what a request does (X-Amz-Target names the AWS
	// operation, x-amz-acl an object's ACL, a patch's Content-Type its
	// semantics), so everything but what a client recomputes on retry is
	// part of "the same request", and so is what the classifier made of it.
	// Keyed (credKey), so that a fingerprint kept in the approval store
	// cannot be used to guess an API key in a header or the query (the
	// outer hash covers this one).
	h := hmac.New(sha256.New, credKey)
	h.Write(body)
	h.Write([]byte{0})
	writeStableHeaders(h, ex.req.Header)
	h.Write([]byte{0})
	// What the classifier made of it; the rest of the action derives from
	// the bytes already covered (and per-request ids such as a JSON-RPC id
	// must not count).
	if ak, err := json.Marshal([]any{act.Provider, act.Service, act.Operation, act.Resources, credential(credKey, act, ex.req.Header, ex.req.URL.RawQuery, formBody(ex, act))}); err == nil {
		h.Write(ak)
	}
	h.Write([]byte{0, byte(len(ex.upgrade))})
	h.Write([]byte(ex.upgrade))
	return approval.Fingerprint(ex.req.Method, ex.host, ex.port, path, q, hex.EncodeToString(h.Sum(nil)))
}

// credential names whom a request acts as, for approvals: an approval
// given for one account or token does not admit the same request made with
// another. The AWS access key comes from the signature (which itself
// changes on every retry). An Authorization value is named by a short keyed
// hash: of the whole value for a fixed secret (Bearer, Basic with its
// password, an API key); for a scheme that signs each request anew (OAuth
// 1.0a, Digest, Hawk, HTTP signatures, Azure SharedKey, HMAC schemes), of
// everything but what changes per request, so that the retry after
// "approval pending" is still the same request. Cookies are named the same
// way, beside either, and so are the other credential headers (X-Api-Key,
// Private-Token, X-Vault-Token…) and credential query parameters
// (access_token, private_token, key…) the redactor knows. The key (Server.credKey,
// derived from the CA key) keeps the hashes from being guessed back into
// passwords by whoever reads the audit log or the approval store; nothing
// of the value is shown.
func credential(key []byte, a action.Action, h http.Header, rawQuery, form string) string {
	var names []string
	auth := strings.TrimSpace(h.Get("Authorization"))
	if a.AccessKeyID != "" {
		names = append(names, "aws-key "+a.AccessKeyID)
		if awsSignature(auth) {
			auth = "" // the key it names is the one above
		}
		// Otherwise the key came from a presigned query, and a token or
		// cookies sent beside it may be what the server checks (found by
		// review: a presigned query hid a swapped bearer token).
	}
	if auth != "" {
		scheme, value := auth, ""
		if i := strings.IndexAny(auth, " \t"); i >= 0 {
			scheme, value = auth[:i], strings.TrimSpace(auth[i+1:])
		}
		scheme = strings.ToLower(scheme)
		if stable, signed := signedStable(scheme, value); signed {
			names = append(names, "signed "+keyedHash(key, "signed", scheme+"\x00"+stable))
		} else {
			names = append(names, "authorization "+keyedHash(key, "authorization", auth))
		}
	}
	if cookies := h.Values("Cookie"); len(cookies) > 0 {
		// A web API that authenticates by session cookie: the cookies,
		// in the order sent (of two with one name, servers read the
		// first), stand for whom the request acts as, beside any
		// Authorization header.
		var pairs []string
		for _, line := range cookies {
			for p := range strings.SplitSeq(line, ";") {
				if p = strings.TrimSpace(p); p != "" {
					pairs = append(pairs, p)
				}
			}
		}
		names = append(names, "cookie "+keyedHash(key, "cookie", strings.Join(pairs, "\x00")))
	}
	// Found by review: a scoped grant given for a request sent with one
	// X-Api-Key admitted the same request with another.
	var others []string
	for _, k := range slices.Sorted(maps.Keys(h)) {
		lk := strings.ToLower(k)
		switch lk {
		case "authorization", "cookie", "proxy-authorization":
			// Above; Proxy-Authorization is the proxy's, never forwarded.
			continue
		}
		if redact.IsCredentialHeader(lk) {
			others = append(others, lk+"\x00"+strings.Join(h[k], "\x00"))
		}
	}
	if len(others) > 0 {
		names = append(names, "headers "+keyedHash(key, "headers", strings.Join(others, "\x00\x00")))
	}
	if q := credentialParams(rawQuery, a.AccessKeyID != ""); q != "" {
		names = append(names, "query "+keyedHash(key, "query", q))
	}
	// A form or JSON body carries tokens too (GitLab's private_token,
	// Slack's token, OAuth's access_token: found by review). Not under an
	// AWS signature header, which names the caller, and whose calls carry
	// per-call tokens in their bodies (ClientToken, ClientRequestToken):
	// a presigned query on another host does not hide a body's token.
	if f := credentialParams(form, false); f != "" && !(a.AccessKeyID != "" && awsSignature(strings.TrimSpace(h.Get("Authorization")))) {
		names = append(names, "form "+keyedHash(key, "form", f))
	}
	return strings.Join(names, " ")
}

// formBody is the request's body, as the server reads it (inflated), in
// URL-encoded form for credentialParams: a form body as it is, and the
// top-level string members of a JSON object body (GitLab's private_token,
// an OAuth access_token) as name=value pairs; else "". The body is read as
// the policy reads it (policy.BodyType): a GitHub body that looks like JSON
// is JSON whatever its label.
func formBody(ex *exchange, a action.Action) string {
	if ex.ar == nil || len(ex.ar.Body) == 0 {
		return ""
	}
	mt, _, _ := strings.Cut(policy.BodyType(ex.ar, a), ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	switch {
	case mt == "application/x-www-form-urlencoded":
		return string(ex.ar.Body)
	case strings.Contains(mt, "json"):
		var members map[string]json.RawMessage
		if json.Unmarshal(ex.ar.Body, &members) != nil {
			return ""
		}
		var pairs []string
		for _, k := range slices.Sorted(maps.Keys(members)) {
			var v string
			// Pagination and idempotency tokens change from call to call
			// and name nobody.
			if redact.IsCredentialParam(k) && !perCallMembers[strings.ToLower(k)] && json.Unmarshal(members[k], &v) == nil {
				pairs = append(pairs, url.QueryEscape(k)+"="+url.QueryEscape(v))
			}
		}
		return strings.Join(pairs, "&")
	}
	return ""
}

// perCallMembers are JSON members named like credentials that a client
// sets anew for each call.
var perCallMembers = map[string]bool{
	"nexttoken": true, "next_token": true, "pagetoken": true, "page_token": true, "nextpagetoken": true,
	"continuationtoken": true, "continuation_token": true, "clienttoken": true, "clientrequesttoken": true,
	"client_token": true, "idempotencytoken": true, "idempotency_token": true, "csrf_token": true, "csrftoken": true,
}

// credentialParams returns the credential parameters of a raw query, as
// sent and in order. For an AWS presigned URL (aws) it leaves out what the
// approval's fingerprint does too, the signature and session token that
// are computed anew when the URL is: its access key is named from
// X-Amz-Credential. A parameter whose name does not unescape is judged by
// its raw name.
func credentialParams(rawQuery string, aws bool) string {
	var params []string
	for part := range strings.SplitSeq(rawQuery, "&") {
		raw, _, _ := strings.Cut(part, "=")
		name, err := url.QueryUnescape(raw)
		if err != nil {
			name = raw
		}
		if aws && slices.Contains([]string{"x-amz-signature", "x-amz-security-token"}, strings.ToLower(name)) {
			continue
		}
		if redact.IsCredentialParam(name) {
			params = append(params, part)
		}
	}
	return strings.Join(params, "&")
}

// awsSignature reports whether an Authorization value is an AWS signature
// (SigV4, SigV4a, SigV2), which names its access key.
func awsSignature(auth string) bool {
	scheme, _, _ := strings.Cut(auth, " ")
	switch strings.ToUpper(scheme) {
	case "AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256", "AWS":
		return true
	}
	return false
}

// perRequestParams are the auth-params that signing schemes compute anew
// for each attempt: nonces, counters, timestamps, signatures.
var perRequestParams = map[string]bool{
	"nonce": true, "cnonce": true, "nc": true, "response": true, "signature": true, "mac": true,
	"ts": true, "timestamp": true, "created": true, "expires": true,
	"oauth_nonce": true, "oauth_timestamp": true, "oauth_signature": true,
}

// signedStable reports whether an Authorization value of scheme signs each
// request anew, and if so its stable part: every parameter but the
// per-request ones, canonically encoded. A value that is not a clean list
// of parameters (a token, a repeated name, a bad quote) is a fixed secret:
// hashed whole, it binds more, never less.
func signedStable(scheme, value string) (string, bool) {
	switch scheme {
	case "bearer", "token", "basic":
		// Fixed secrets, whatever parameters are appended to them.
		return "", false
	case "sharedkey", "sharedkeylite", "goog1", "oss", "obs":
		// "ID:signature", signed anew with each request's date: Azure
		// Storage, Google Cloud Storage's HMAC keys, Alibaba OSS, Huawei
		// OBS.
		id, _, ok := strings.Cut(value, ":")
		return id, ok && id != ""
	}
	params, ok := authParams(value)
	if !ok {
		return "", false
	}
	signed := false
	var stable []string
	for _, k := range slices.Sorted(maps.Keys(params)) {
		v := params[k]
		switch {
		case perRequestParams[k]:
			signed = true
		case k == "credential" && (strings.HasSuffix(scheme, "-hmac-sha256") || strings.HasSuffix(scheme, "-hmac-sha1")):
			// SigV4-style "Credential=KEY/date/region/service/...":
			// the date moves at midnight.
			signed = true
			key, _, _ := strings.Cut(v, "/")
			stable = append(stable, k, key)
		default:
			stable = append(stable, k, v)
		}
	}
	if !signed {
		return "", false
	}
	b, _ := json.Marshal(stable)
	return string(b), true
}

// authParams parses an Authorization value that is a comma-separated list
// of name=token or name="quoted string" parameters (RFC 9110 auth-param),
// names lower-cased. ok is false for anything else, and for a name given
// twice: servers differ on which one they read.
func authParams(value string) (params map[string]string, ok bool) {
	params = map[string]string{}
	s := value
	for {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			return params, len(params) > 0
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return nil, false
		}
		name := strings.ToLower(strings.TrimRight(s[:eq], " \t"))
		if name == "" || strings.ContainsAny(name, " \t,\"") {
			return nil, false
		}
		s = strings.TrimLeft(s[eq+1:], " \t")
		if s == "" || s[0] == '=' || s[0] == ',' {
			// "token==": a token68 with its padding, not a parameter.
			return nil, false
		}
		var v string
		if strings.HasPrefix(s, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				b.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, false // unterminated
			}
			v, s = b.String(), s[i+1:]
		} else {
			end := strings.IndexAny(s, ", \t")
			if end < 0 {
				end = len(s)
			}
			v, s = s[:end], s[end:]
		}
		if _, dup := params[name]; dup {
			return nil, false
		}
		params[name] = v
		s = strings.TrimLeft(s, " \t")
		if s != "" && s[0] != ',' {
			return nil, false // "name=value junk"
		}
	}
}

// keyedHash is 16 hex digits of HMAC-SHA256(key, kind, value).
func keyedHash(key []byte, kind, value string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(kind))
	m.Write([]byte{0})
	m.Write([]byte(value))
	return hex.EncodeToString(m.Sum(nil)[:8])
}

// volatileHeaders are recomputed by clients on every attempt (signatures,
// dates, SDK attempt counters, tracing ids); they are left out of the
// fingerprint. The body hash still binds a SigV4 request's payload.
// Mcp-Session-Id is not among them: a stateful MCP server runs a call in
// its session's context (a database selected, a browser logged in), so an
// approval for one session's call does not admit another's (found by
// review); a client that starts a new session asks again.
var volatileHeaders = map[string]bool{
	"Authorization": true, "Proxy-Authorization": true, "Cookie": true,
	"X-Amz-Date": true, "X-Amz-Content-Sha256": true, "X-Amz-Security-Token": true,
	"Amz-Sdk-Invocation-Id": true, "Amz-Sdk-Request": true, "X-Amzn-Trace-Id": true,
	"Date": true, "User-Agent": true, "Content-Length": true, "Accept-Encoding": true,
	"Traceparent": true, "Tracestate": true, "X-Request-Id": true, "X-Github-Request-Id": true,
	"Expect": true, "Sec-Websocket-Key": true,
	// The dates and nonces other clouds sign each attempt with (Azure,
	// Google Cloud Storage, Alibaba, Huawei, Baidu, Tencent).
	"X-Ms-Date": true, "X-Ms-Client-Request-Id": true, "X-Goog-Date": true, "X-Oss-Date": true,
	"X-Obs-Date": true, "X-Sdk-Date": true, "X-Bce-Date": true, "X-Acs-Date": true,
	"X-Acs-Signature-Nonce": true, "X-Tc-Timestamp": true,
}

func writeStableHeaders(w io.Writer, h http.Header) {
	keys := make([]string, 0, len(h))
	for k := range h {
		if !volatileHeaders[http.CanonicalHeaderKey(k)] {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "%d:%s", len(k), strings.ToLower(k))
		for _, v := range h[k] {
			fmt.Fprintf(w, "|%d:%s", len(v), v)
		}
		w.Write([]byte{'\n'})
	}
}

// scopeKey names what a scoped grant made from this request covers: the
// provider's operation ("aws:ec2:TerminateInstances") and its resources, or
// for actions without resources the host, path and query. What narrows an
// operation beyond its resources is part of it: a Kubernetes selector (a
// deletecollection of "app=scratch" pods must not cover all of them) and
// an upgrade (a grant for a plain GET must not admit a WebSocket, whose
// traffic is never decided) (both found by review).
func scopeKey(credKey []byte, a action.Action, ex *exchange) (string, []string) {
	op := a.Provider + ":"
	if a.Service != "" {
		op += a.Service + ":"
	}
	op += a.Operation
	// What is masked below (a token in a path, a password in a resource's
	// URI) is shown and stored masked, but a grant must still cover only
	// the very values it was given for: they are bound by a keyed hash.
	var masked []string
	// Each value is bound with what it is, so that two cannot trade
	// places (found by review).
	mask := func(kind, raw, shown string) string {
		if shown != raw {
			masked = append(masked, kind+"\x00"+raw)
		}
		return shown
	}
	// Where the operation goes is part of it: a grant for a staging cluster
	// or one MCP server does not cover another.
	for _, f := range []string{"api_group", "subresource", "server", "label_selector", "field_selector"} {
		if v, ok := a.Fields[f].(string); ok && v != "" {
			shown := v
			if f == "server" {
				// host and path: the path may hold a token.
				host, path, _ := strings.Cut(v, "/")
				shown = host + redact.Path("/"+path)
				if path == "" && !strings.HasSuffix(v, "/") {
					shown = host
				}
			}
			op += "|" + f + "=" + mask(f, v, shown)
		}
	}
	if ex.upgrade != "" {
		op += "|upgrade=" + strings.ToLower(ex.upgrade)
	}
	// A stateful MCP server runs a call in its session's context: a scope
	// is the session's, as the one-time grant is (found by review). The id
	// is bound by its hash, not shown.
	if sid := ex.req.Header.Get("Mcp-Session-Id"); sid != "" {
		op += "|mcp_session=" + mask("mcp_session", sid, "(this one)")
	}
	op += "@" + ex.scheme + "://" + hostport.Join(ex.host, ex.port)
	if c := credential(credKey, a, ex.req.Header, ex.req.URL.RawQuery, formBody(ex, a)); c != "" {
		op += " as " + c
	}
	// Masked as everywhere else: the approval store keeps them, and
	// `approvals show` and the page show them.
	var resources []string
	for _, r := range a.Resources {
		resources = append(resources, mask("resource", r, redact.String(r)))
	}
	if len(resources) == 0 || narrowedByURL(a) {
		// The query too: it may say which items (?id=5, ?all=true), or,
		// for a Kubernetes exec, attach or port-forward, the command and
		// ports; and the whole path: a service proxy's path goes on past
		// the subresource (found by review).
		u := &url.URL{Path: ex.req.URL.Path, RawPath: ex.req.URL.RawPath, RawQuery: ex.req.URL.RawQuery}
		resources = []string{hostHeader(ex.scheme, ex.host, ex.port) + mask("url", u.String(), redact.URL(u))}
	}
	if len(masked) > 0 {
		slices.Sort(masked)
		op += " with " + keyedHash(credKey, "masked", strings.Join(masked, "\x00"))
	}
	slices.Sort(resources)
	return op, slices.Compact(resources)
}

// narrowedByURL reports whether what a's request does is said by its URL
// past the resources the classifier names: a Kubernetes exec, attach or
// port-forward (the command, container and ports in the query) and a
// proxy (the path after the subresource).
func narrowedByURL(a action.Action) bool {
	if a.Provider != "kubernetes" {
		return false
	}
	switch sub, _ := a.Fields["subresource"].(string); sub {
	case "exec", "attach", "portforward", "proxy":
		return true
	}
	return false
}

// holdFor is how long to keep the agent's request open: the policy's hold or
// approval.hold, capped by the approval's own life (approval.expire) and by
// what the client tolerates (the AWS CLI and SDKs give up reading after 60
// s and retry on their own).
func (s *Server) holdFor(d policy.Decision, act action.Action, host string) time.Duration {
	h := s.opts.Hold
	if dh := d.Hold(); dh > 0 {
		h = dh
	}
	if e := s.opts.Approvals.Expire(); e > 0 {
		h = min(h, e)
	}
	if act.Provider == "aws" || strings.HasSuffix(host, ".amazonaws.com") || act.Provider == "mcp" {
		h = min(h, 50*time.Second)
	}
	return h
}

// forward sends the decided request upstream: prefix (the bytes the policy
// saw) then rest (the unread remainder, nil when the body was complete).
// A non-nil buf is the pooled buffer prefix lives in: the upstream body
// holds a reference to it until the transport closes it.
// forward sends the decided request upstream and returns the answer for the
// client. approvalID names the approval that admitted it, if one did: its
// forward and response records carry it, as does the answer.
func (s *Server) forward(ctx context.Context, ex *exchange, act action.Action, prefix []byte, rest io.Reader, buf *bodyBuf, decision, approvalID string) *http.Response {
	start := s.opts.Now()
	ex.approvalID = approvalID
	out := &http.Request{
		Method:     ex.req.Method,
		URL:        &url.URL{Scheme: ex.scheme, Host: hostport.Join(ex.host, ex.port), Path: ex.req.URL.Path, RawPath: ex.req.URL.RawPath, RawQuery: ex.req.URL.RawQuery},
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     ex.req.Header.Clone(),
		Host:       hostHeader(ex.scheme, ex.host, ex.port),
	}
	out.Header.Del("Expect") // the body is already here
	if ex.upgrade != "" {
		// Allowed: now the upgrade may go upstream.
		out.Header.Set("Connection", "Upgrade")
		out.Header.Set("Upgrade", ex.upgrade)
	}
	// A small body all in memory, and no upgrade: sent from here
	// (direct.go).
	direct := ex.upgrade == "" && rest == nil && usable(out.Header, prefix)
	switch {
	case direct:
		out.ContentLength = int64(len(prefix))
	case buf != nil:
		out.Body = buf.reader(prefix, rest)
		out.ContentLength = ex.req.ContentLength
		if rest == nil {
			out.ContentLength = int64(len(prefix))
		}
	case rest != nil:
		out.Body = io.NopCloser(io.MultiReader(bytes.NewReader(prefix), rest))
		out.ContentLength = ex.req.ContentLength
	case len(prefix) > 0:
		out.Body = io.NopCloser(bytes.NewReader(prefix))
		out.ContentLength = int64(len(prefix))
	default:
		out.Body = nil
		out.ContentLength = 0
	}
	if _, ok := out.Header["User-Agent"]; !ok {
		// Do not let the transport add Go's User-Agent to the agent's request.
		out.Header["User-Agent"] = []string{""}
	}
	ctx = context.WithValue(ctx, upstreamHostKey{}, ex.host)
	if ex.session != nil {
		ctx = context.WithValue(ctx, upstreamSessionKey{}, ex.session.ID)
	}
	out = out.WithContext(ctx)

	var resp *http.Response
	var err error
	if direct {
		resp, err = s.direct.RoundTrip(out, prefix)
	} else {
		resp, err = s.transports.get(ctx).RoundTrip(out)
	}
	elapsed := s.opts.Now().Sub(start)
	if err != nil && s.askedForClientCert(ex.host) && isClientCertFailure(err) && s.opts.ClientCertMessage != nil {
		_ = s.opts.Audit.RecordAsync(&audit.Event{Type: "forward", RequestID: ex.id, ApprovalID: approvalID, Session: sessionRef(ex.session),
			Decision: decision, Error: errorText(err), Detail: "the upstream requires a TLS client certificate, which interception cannot present"})
		return s.denial(ex, act, answer{status: http.StatusBadGateway, decision: decision, approval: approvalID, message: s.opts.ClientCertMessage(ex.host)})
	}
	if errors.Is(err, mcp.ErrLateMessage) {
		// Recorded and counted as it was cut (cutOff).
		return s.denial(ex, act, answer{status: http.StatusRequestEntityTooLarge, decision: "deny", approval: approvalID, message: s.lateMessage()})
	}
	if err != nil {
		status, msg := upstreamFailure(ex.host, err)
		detail := "not forwarded: "
		var sent *sentError
		var ne net.Error
		if errors.As(err, &sent) || errors.As(err, &ne) && ne.Timeout() {
			detail = "forwarded, then failed: " // the upstream may have acted on it
		}
		_ = s.opts.Audit.RecordAsync(&audit.Event{Type: "forward", RequestID: ex.id, ApprovalID: approvalID, Session: sessionRef(ex.session),
			Decision: decision, Error: errorText(err), UpstreamMillis: elapsed.Milliseconds(), Detail: detail + msg})
		s.logger.Info("upstream request failed", zap.String("request", ex.id), zap.String("host", ex.host), zap.String("error", errorText(err)))
		return s.denial(ex, act, answer{status: status, decision: decision, approval: approvalID, message: "countersign: " + msg})
	}
	if (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) &&
		s.askedForClientCert(ex.host) && ex.req.Header.Get("Authorization") == "" && s.opts.ClientCertMessage != nil {
		// The server asked for a client certificate, the agent sent no other
		// credential, and the server refused: most likely a cluster that
		// authenticates clients by certificate, which countersign cannot
		// present on the agent's behalf (SPEC 9).
		resp.Body.Close()
		_ = s.opts.Audit.RecordAsync(&audit.Event{Type: "response", RequestID: ex.id, ApprovalID: approvalID, Session: sessionRef(ex.session),
			Decision: decision, UpstreamStatus: resp.StatusCode, UpstreamMillis: elapsed.Milliseconds(),
			Detail: "the upstream asked for a TLS client certificate and refused the request without one"})
		return s.denial(ex, act, answer{status: resp.StatusCode, decision: decision, approval: approvalID, message: s.opts.ClientCertMessage(ex.host)})
	}
	// The outcome is for the record, not a condition of answering: it
	// shares the next decision record's write.
	_ = s.opts.Audit.RecordDeferred(&audit.Event{Type: "response", RequestID: ex.id, ApprovalID: approvalID, Session: sessionRef(ex.session),
		Decision: decision, UpstreamStatus: resp.StatusCode, UpstreamMillis: elapsed.Milliseconds()})
	if resp.StatusCode == http.StatusSwitchingProtocols {
		// The tunnel loop splices the switched connection; keep the headers
		// that say what it switched to.
		up := resp.Header.Get("Upgrade")
		h1.RemoveHopByHop(resp.Header)
		resp.Header.Set("Connection", "Upgrade")
		resp.Header.Set("Upgrade", up)
		setDecided(resp.Header, decision, ex.id, approvalID)
		return resp
	}
	h1.RemoveHopByHop(resp.Header)
	resp.Trailer = nil
	setDecided(resp.Header, decision, ex.id, approvalID)
	return resp
}

// setDecided puts countersign's own headers on a forwarded request's answer.
func setDecided(h http.Header, decision, requestID, approvalID string) {
	h.Set(headerDecision, decision)
	h.Set(headerRequest, requestID)
	if approvalID != "" {
		h.Set(headerApproval, approvalID)
	} else {
		// Not the upstream's to say: an allowed answer must not look
		// admitted by an approval.
		h.Del(headerApproval)
	}
}

// upstreamHostKey carries the upstream host into the TLS handshake, so the
// client-certificate callback knows which host asked.
type upstreamHostKey struct{}

// noteClientCertRequest is the upstream TLS GetClientCertificate callback: it
// remembers that the host asks for client certificates and presents none.
func (s *Server) noteClientCertRequest(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
	if host, ok := cri.Context().Value(upstreamHostKey{}).(string); ok {
		s.certHosts.Store(host, true)
	}
	return &tls.Certificate{}, nil
}

func (s *Server) askedForClientCert(host string) bool {
	_, ok := s.certHosts.Load(host)
	return ok
}

// isClientCertFailure reports whether a handshake failed because the server
// required a certificate (TLS alerts "certificate required", "bad
// certificate", "handshake failure" after a certificate request).
func isClientCertFailure(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "certificate required") || strings.Contains(msg, "bad certificate") || strings.Contains(msg, "handshake failure")
}

// errorText is a transport error as the audit log and the operational log
// keep it: Go quotes what it could not parse (an upstream's status line,
// which may echo the request with its query) and the URL it was sending
// to, so quoted parts are elided, and the rest is redacted and bounded.
func errorText(err error) string {
	msg := err.Error()
	var b strings.Builder
	for {
		i := strings.IndexByte(msg, '"')
		if i < 0 {
			b.WriteString(msg)
			break
		}
		b.WriteString(msg[:i])
		b.WriteString(`"…"`)
		rest := msg[i+1:]
		end := -1
		for j := 0; j < len(rest); j++ {
			if rest[j] == '\\' {
				j++
				continue
			}
			if rest[j] == '"' {
				end = j
				break
			}
		}
		if end < 0 {
			break
		}
		msg = rest[end+1:]
	}
	out := redact.Text(b.String())
	if len(out) > 512 {
		out = strings.ToValidUTF8(out[:512], "") + "…"
	}
	return out
}

// upstreamFailure turns a transport error into a status and a safe message.
func upstreamFailure(host string, err error) (int, string) {
	var re *refusedError
	if errors.As(err, &re) {
		return http.StatusForbidden, "refused: " + re.msg + "; the request was not sent."
	}
	var ne net.Error
	var dnsErr *net.DNSError
	var sent *sentError
	switch {
	case errors.As(err, &dnsErr):
		return http.StatusBadGateway, fmt.Sprintf("could not resolve %s.", host)
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return http.StatusGatewayTimeout, fmt.Sprintf("%s did not answer in time.", host)
	case errors.As(err, &sent):
		return http.StatusBadGateway, fmt.Sprintf("the connection to %s failed after the request was sent, so %s may have received it; check before sending it again.", host, host)
	case strings.Contains(err.Error(), "certificate"), strings.Contains(err.Error(), "x509"), strings.Contains(err.Error(), "tls:"):
		// TLS failures are reported as such: upstream TLS is always verified.
		return http.StatusBadGateway, fmt.Sprintf("the TLS certificate of %s could not be verified, so nothing was sent (add its CA to upstream.ca_files if it is a private CA).", host)
	case errors.Is(err, context.Canceled):
		return http.StatusBadGateway, "the request was cancelled."
	default:
		return http.StatusBadGateway, fmt.Sprintf("could not reach %s.", host)
	}
}

// selfTarget reports whether host:port is one of countersign's own listeners
// or its public approval URL.
func (s *Server) selfTarget(host string, port int) (string, bool) {
	for _, ownHost := range s.ownHosts {
		// The host alone: the approval service's host on another port or
		// scheme is still countersign.
		if ownHost == host {
			return "requests to countersign's own services (its approval service, its state database) are not allowed from an agent session", true
		}
	}
	return "", false
}

// canonicalHosts returns the hosts of own (Options.OwnHosts: host or
// host:port) as requests name them (found by review: a state database
// written DB.Example.COM or with a trailing dot was not matched).
func canonicalHosts(own []string) []string {
	out := make([]string, 0, len(own))
	for _, h := range own {
		if hh, _, err := net.SplitHostPort(h); err == nil {
			h = hh
		}
		if c, err := hostport.Canonical(h); err == nil {
			h = c
		}
		out = append(out, h)
	}
	return out
}

func (s *Server) decisionEvent(sess *session.Info, ex *exchange, in *policy.Input, d policy.Decision, decision string) *audit.Event {
	ev := &audit.Event{
		Type:      "decision",
		RequestID: ex.id,
		Session:   sessionRef(sess),
		Request: &audit.RequestSummary{
			Method:        ex.req.Method,
			URL:           redact.URL(targetURL(ex)),
			Host:          ex.host,
			Port:          ex.port,
			BodySize:      in.Request.BodySize,
			BodySHA256:    in.Request.BodySHA256,
			BodyTruncated: in.Request.BodyTruncated,
		},
		Decision:       decision,
		Reasons:        d.Messages(),
		RuleIDs:        d.RuleIDs(),
		PolicyRevision: d.Revision,
		EvalMicros:     d.Eval.Microseconds(),
	}
	if d.Err != nil {
		// A built-in's error can quote an input value: the path, as sent.
		ev.Error = "policy error: " + redact.Shown(d.Err.Error())
	}
	var maskedA, maskedH bool
	ev.Action, maskedA = maskedAction(in)
	ev.Request.Headers, maskedH = maskedHeaders(in)
	if s.opts.RecordInput {
		ev.Input = recordedInput(in, int64(len(decodedBody(ex, nil))), maskedA || maskedH)
	}
	return ev
}

func (s *Server) auditRefusal(sess *session.Info, ex *exchange, status int, reason string, act ...action.Action) {
	ev := &audit.Event{Type: "decision", RequestID: ex.id, Session: sessionRef(sess), Decision: "deny",
		Reasons: []string{reason}, RuleIDs: []string{"PROTOCOL"}, Fields: map[string]any{"status": status}}
	if len(act) > 0 {
		if m, ok := redact.Encoded(redact.Value(act[0].Map())).(map[string]any); ok {
			ev.Action = m
		}
	}
	if ex.req != nil {
		ev.Request = &audit.RequestSummary{Method: ex.req.Method, URL: redact.URL(targetURL(ex)), Host: ex.host, Port: ex.port}
	}
	if err := s.opts.Audit.Record(ev); err != nil {
		s.logger.Error("audit write failed", zap.Error(err))
	}
}

func sessionRef(s *session.Info) *audit.SessionRef {
	if s == nil {
		return nil
	}
	return &audit.SessionRef{ID: s.ID, Name: s.Name, User: s.User, Command: s.Command, Labels: s.Labels}
}

// actionRequest is what the classifier reads of the exchange's head; the
// caller adds the body it has read, if any.
func (ex *exchange) actionRequest() *action.Request {
	return &action.Request{
		Method:   ex.req.Method,
		Scheme:   ex.scheme,
		Host:     ex.host,
		Port:     ex.port,
		Path:     ex.req.URL.Path,
		RawPath:  ex.req.URL.EscapedPath(),
		Query:    action.ValidKeys(ex.req.URL.Query()),
		Header:   ex.req.Header,
		BodySize: ex.req.ContentLength,
		Upgrade:  ex.upgrade,
	}
}

func targetURL(ex *exchange) *url.URL {
	u := &url.URL{Scheme: ex.scheme, Host: hostHeader(ex.scheme, ex.host, ex.port)}
	if ex.req != nil && ex.req.URL != nil {
		u.Path, u.RawPath, u.RawQuery = ex.req.URL.Path, ex.req.URL.RawPath, ex.req.URL.RawQuery
	}
	return u
}

// hostHeader is host[:port] with the scheme's default port left out.
func hostHeader(scheme, host string, port int) string {
	if (scheme == "https" && port == 443) || (scheme == "http" && port == 80) {
		if strings.Contains(host, ":") {
			return "[" + host + "]"
		}
		return host
	}
	return hostport.Join(host, port)
}

func summary(a action.Action, ex *exchange) string {
	op := a.Operation
	if a.Service != "" {
		op = a.Service + ":" + a.Operation
	}
	s := op
	if len(a.Resources) > 0 {
		s += " on " + strings.Join(redact.Strings(a.Resources), ", ")
	}
	if a.Region != "" {
		s += " in " + a.Region
	}
	return s + " — " + ex.req.Method + " " + redact.URL(targetURL(ex))
}

// decodedBody is the body as the server reads it: inflated when it was
// sent compressed (see action.Inflate), else body as sent. Approvers read
// it, and the fingerprint covers it (through the provider's canonical
// form: a gzipped MCP call's retry has another JSON-RPC id).
func decodedBody(ex *exchange, body []byte) []byte {
	if ex.ar != nil && ex.ar.Decoded {
		return ex.ar.Body
	}
	return body
}

// displayBody is the body as an approver sees it: JSON and form bodies
// re-serialised with credential fields masked the way the policy input and
// the audit log mask them, other text with token shapes masked, and a note
// for binary bodies.
func displayBody(contentType string, b []byte, k8sSecret bool) string {
	if len(b) == 0 {
		return ""
	}
	if !utf8.Valid(b) {
		return fmt.Sprintf("(%d bytes of binary data)", len(b))
	}
	var s string
	mt, _, _ := mime.ParseMediaType(contentType)
	v := policy.ParseBody(contentType, b)
	if _, text := v.(string); text && k8sSecret {
		// A Secret in YAML: its data cannot be masked apart from the rest.
		return fmt.Sprintf("(a Secret's body of %d bytes, not shown: countersign cannot mask its data in this format)", len(b))
	}
	switch v := v.(type) {
	case map[string]any, []any:
		if mt == "application/x-www-form-urlencoded" {
			// Shown reads percent-encoded tokens, in names too.
			s = redact.Shown(redactForm(string(b)))
			break
		}
		rv := redact.Value
		if k8sSecret {
			rv = redact.KubernetesSecret
		}
		shown := redact.Encoded(rv(v))
		out, err := displayJSON(shown, "  ")
		if err == nil && len(out) > 2*len(b)+4<<10 {
			// Indentation grows with depth: a deeply nested body would be
			// shown many times its size. Shown on one line instead.
			out, err = displayJSON(shown, "")
		}
		if err != nil {
			return "(a body that could not be shown safely)"
		}
		s = string(out)
	default:
		s = redact.EncodedString(redact.Multipart(string(b), policy.MultipartBoundary(contentType)))
	}
	// All of it: the approver must be able to read everything that would
	// be sent, and a body past inspect.body_limit is never held (found by
	// review: a filler member sorted before the command cut at 64 KiB hid
	// an MCP call's command from the page).
	return s
}

// displayJSON serialises v for an approver: indented when indent is not
// empty, with <, > and & as they are (the page and Slack escape them)
// rather than as \u003c.
func displayJSON(v any, indent string) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", indent)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// redactForm masks the values of credential-looking fields of a form body,
// keeping its order and spelling.
func redactForm(body string) string {
	pairs := strings.Split(body, "&")
	for i, p := range pairs {
		k, _, ok := strings.Cut(p, "=")
		if !ok {
			continue
		}
		name, err := url.QueryUnescape(k)
		if err != nil || redact.IsCredentialKey(name) || redact.IsCredentialParam(name) {
			pairs[i] = k + "=" + url.QueryEscape(redact.Mask)
			continue
		}
		// A value is shown as sent, percent-encoded; base64 in it (EC2's
		// UserData) is read decoded.
		_, raw, _ := strings.Cut(p, "=")
		if v, err := url.QueryUnescape(raw); err == nil {
			if m := redact.EncodedString(v); m != v {
				pairs[i] = k + "=" + url.QueryEscape(m)
			}
		}
	}
	return strings.Join(pairs, "&")
}

func shortDuration(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	default:
		return d.String()
	}
}

// lateMessage tells the agent why its body was cut off.
func (s *Server) lateMessage() string {
	return fmt.Sprintf("countersign: the body holds a JSON-RPC (MCP) message past inspect.body_limit (%d bytes), which the policy did not see; it was cut off before its end, so the server did not get it whole. Send MCP messages smaller than the limit.", s.opts.BodyLimit)
}

// cutOff records a request allowed without its whole body whose body
// turned out to hold an MCP message (mcp.TailWatch), and counts it as
// denied: from the reader that cut it, so also when the upstream answered
// before the end.
func (s *Server) cutOff(ex *exchange, cnt *counters, shadow bool) {
	if !shadow {
		cnt.allowed.Add(-1)
	}
	cnt.denied.Add(1)
	_ = s.opts.Audit.RecordAsync(&audit.Event{Type: "forward", RequestID: ex.id, Session: sessionRef(ex.session), Decision: "deny",
		Detail: "cut off: the members of an MCP message came after the inspection limit; the upstream got no whole message"})
}

// readCloser is a reader with another's Close.
type readCloser struct {
	io.Reader
	io.Closer
}
