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

// denial formats the answer for the agent. Provider-specific error bodies
// (AWS XML, Kubernetes Status, git report-status, …) plug in here; until a
// provider has one, the answer is text/plain.
func (s *Server) denial(a action.Action, requestID string, ans answer) *http.Response {
	body := []byte(ans.message + "\n")
	h := http.Header{}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	h.Set(headerDecision, ans.decision)
	if ans.approval != "" {
		h.Set(headerApproval, ans.approval)
	}
	if requestID != "" {
		h.Set(headerRequest, requestID)
	}
	return &http.Response{
		StatusCode:    ans.status,
		Status:        fmt.Sprintf("%d %s", ans.status, http.StatusText(ans.status)),
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
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
