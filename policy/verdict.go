package policy

import (
	"fmt"
	"time"
)

// Verdict is the outcome of a policy decision. The zero value is invalid and
// never means allow: code that switches on a Verdict denies in its default
// branch.
type Verdict int

// The verdicts, in the order deny > approve > allow of precedence.
const (
	VerdictUnknown Verdict = iota
	VerdictAllow
	VerdictDeny
	VerdictApprove
)

func (v Verdict) String() string {
	switch v {
	case VerdictAllow:
		return "allow"
	case VerdictDeny:
		return "deny"
	case VerdictApprove:
		return "approve"
	default:
		return "unknown"
	}
}

// ParseVerdict parses "allow", "deny" or "approve".
func ParseVerdict(s string) (Verdict, error) {
	switch s {
	case "allow":
		return VerdictAllow, nil
	case "deny":
		return VerdictDeny, nil
	case "approve":
		return VerdictApprove, nil
	}
	return VerdictUnknown, fmt.Errorf("unknown verdict %q (want allow, deny or approve)", s)
}

// Reason is one member of the policy's deny or approve set, in its object form.
// A string member becomes a Reason with only Message set.
type Reason struct {
	Message string `json:"msg"`
	ID      string `json:"id,omitempty"`
	// Approvals is how many distinct approvers the request needs (two-person
	// rule); 0 means the default of one.
	Approvals int `json:"approvals,omitempty"`
	// Channel routes the approval message (a Slack channel).
	Channel string `json:"channel,omitempty"`
	// Hold overrides approval.hold for this request; 0 means the default.
	Hold time.Duration `json:"hold,omitempty"`
}

// Decision is the result of evaluating the policy for one request.
type Decision struct {
	Verdict Verdict
	// Reasons are the deny members when the verdict is deny, the approve
	// members when it is approve, and empty for allow. A policy error or a
	// missing allow yields one synthetic reason.
	Reasons []Reason
	// Revision identifies the policy set the decision was made under.
	Revision string
	// Eval is how long evaluation took.
	Eval time.Duration
	// Err is set when evaluation failed and policy.on_error decided instead.
	// It is internal detail for the operational log and the audit record,
	// never shown to the agent.
	Err error
}

// Messages returns the reasons' messages.
func (d Decision) Messages() []string {
	out := make([]string, len(d.Reasons))
	for i, r := range d.Reasons {
		out[i] = r.Message
	}
	return out
}

// RuleIDs returns the reasons' ids, skipping empty ones.
func (d Decision) RuleIDs() []string {
	var out []string
	for _, r := range d.Reasons {
		if r.ID != "" {
			out = append(out, r.ID)
		}
	}
	return out
}

// RequiredApprovals is the largest approvals count among the reasons, at least 1.
func (d Decision) RequiredApprovals() int {
	n := 1
	for _, r := range d.Reasons {
		n = max(n, r.Approvals)
	}
	return n
}

// Hold is the longest hold any reason asks for, or 0 for the default.
func (d Decision) Hold() time.Duration {
	var h time.Duration
	for _, r := range d.Reasons {
		h = max(h, r.Hold)
	}
	return h
}

// Channel is the first routing channel named by a reason.
func (d Decision) Channel() string {
	for _, r := range d.Reasons {
		if r.Channel != "" {
			return r.Channel
		}
	}
	return ""
}
