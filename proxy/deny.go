package proxy

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/countersign/countersign/action"
)

// Decision header values shown to the agent.
const (
	headerDecision = "X-Countersign-Decision"
	headerApproval = "X-Countersign-Approval"
	headerRequest  = "X-Countersign-Request"
)

// answer is a response countersign makes itself instead of forwarding.
type answer struct {
	status   int
	message  string // starts with "countersign:"
	decision string // X-Countersign-Decision
	approval string // X-Countersign-Approval
}

// denial formats the answer for the agent in the API's own error format
// when the provider that classified the request has one (SPEC section 6),
// else as text/plain, and adds the X-Countersign-* headers.
func (s *Server) denial(ex *exchange, a action.Action, ans answer) *http.Response {
	d := action.Denial{Status: ans.status, Decision: ans.decision, Message: ans.message}
	var r action.Response
	if ex != nil && ex.ar != nil {
		r = s.opts.Classifier.Respond(ex.ar, a, d)
	} else {
		r = action.PlainText(d)
	}
	h := r.Header
	if h == nil {
		h = http.Header{}
	}
	h.Set("Content-Length", strconv.Itoa(len(r.Body)))
	h.Set("Cache-Control", "no-store")
	h.Set(headerDecision, ans.decision)
	if ans.approval != "" {
		h.Set(headerApproval, ans.approval)
	}
	if ex != nil && ex.id != "" {
		h.Set(headerRequest, ex.id)
	}
	return &http.Response{
		StatusCode:    r.Status,
		Status:        fmt.Sprintf("%d %s", r.Status, http.StatusText(r.Status)),
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          io.NopCloser(bytes.NewReader(r.Body)),
		ContentLength: int64(len(r.Body)),
	}
}

// denyMessage builds the agent-facing text for a policy denial.
func denyMessage(reasons []string, ids []string) string {
	var b strings.Builder
	b.WriteString("countersign: denied by policy")
	if len(ids) > 0 {
		b.WriteString(" " + strings.Join(ids, ", "))
	}
	b.WriteString(": ")
	b.WriteString(strings.Join(reasons, "; "))
	b.WriteString(". The request was not sent; if it is really needed, ask a human to do it.")
	return b.String()
}
