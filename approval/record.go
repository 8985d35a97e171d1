// Package approval holds requests that policy sends to a human: it stores
// approval records, keeps the agent's request waiting for up to the hold
// time, applies approvers' decisions (including the two-person rule), turns a
// late approval into a one-time grant for an identical retry, and serves the
// admin API that `countersign approvals` talks to.
package approval

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// State is where an approval stands. The zero value is invalid.
type State int

// The states of an approval record.
const (
	StateUnknown State = iota
	StatePending
	StateApproved
	StateDenied
	StateExpired
)

func (s State) String() string {
	switch s {
	case StatePending:
		return "pending"
	case StateApproved:
		return "approved"
	case StateDenied:
		return "denied"
	case StateExpired:
		return "expired"
	default:
		return "unknown"
	}
}

// MarshalText encodes the state by name.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText decodes a state name.
func (s *State) UnmarshalText(b []byte) error {
	for _, c := range []State{StatePending, StateApproved, StateDenied, StateExpired} {
		if c.String() == string(b) {
			*s = c
			return nil
		}
	}
	return fmt.Errorf("unknown approval state %q", b)
}

// Errors returned by stores and the broker.
var (
	ErrNotFound          = errors.New("approval not found")
	ErrDecided           = errors.New("approval already decided")
	ErrExpired           = errors.New("approval expired")
	ErrDuplicateApprover = errors.New("this approver has already approved; another person must approve")
	// ErrOperatorUnknown: a decision through the admin token and a Slack
	// user's would make the two approvals of a two-person request, but the
	// token does not say who holds it, and its holder may be that Slack
	// user. It is an ErrDuplicateApprover.
	ErrOperatorUnknown = fmt.Errorf("%w: the admin token does not say who holds it, so its approval and a Slack user's cannot count as two people; have another Slack approver approve, or set approval.operator to the token holder's Slack user ID", ErrDuplicateApprover)
	ErrTooManyPending  = errors.New("too many approvals pending")
	// ErrScopeTooLong: a scoped grant asked for longer than MaxScope.
	ErrScopeTooLong = errors.New("scope too long")
	// ErrBadToken: the page token does not belong to this approval.
	ErrBadToken = errors.New("approval link is not valid")
	// ErrTokenUsed: the page token already made its one decision.
	ErrTokenUsed = errors.New("approval link was already used")
	// ErrPendingExists: a shared store already has a pending approval for
	// this session and fingerprint (another replica opened it).
	ErrPendingExists = errors.New("an identical approval is already pending")
	// ErrAudit: the audit log could not be written, so the broker did
	// nothing it would have had to record.
	ErrAudit = errors.New("the audit log cannot be written")
)

// Request is the held request as an approver sees it: credentials redacted.
type Request struct {
	Method     string              `json:"method"`
	URL        string              `json:"url"`
	Headers    map[string][]string `json:"headers,omitempty"`
	Body       string              `json:"body,omitempty"`
	BodySize   int64               `json:"body_size"`
	BodySHA256 string              `json:"body_sha256,omitempty"`
}

// Decision is one approver's decision on a record.
type Decision struct {
	Approve  bool      `json:"approve"`
	Approver string    `json:"approver"`
	Via      string    `json:"via"` // cli, page, slack
	Reason   string    `json:"reason,omitempty"`
	At       time.Time `json:"at"`
	// ScopeFor widens an approval into a scoped grant: the same operation on
	// the same resources from the same session is admitted without asking
	// again for this long. Zero means this request only.
	ScopeFor time.Duration `json:"scope_for,omitempty"`
	// Identity is who counts as one approver under the two-person rule; it
	// defaults to Approver. Every decision made with the admin token is the
	// one identity "cli", whatever name it claims: whoever holds the token
	// cannot approve twice under two names.
	Identity string `json:"identity,omitempty"`
	// GrantUntil, when set, asks the store to issue the approval's grant
	// (one identical request admitted until then) in the same step as the
	// decision that approves it, so that an approval can never be recorded
	// without its admission. Brokers that share a store use it; it is not
	// part of the record.
	GrantUntil time.Time `json:"-"`
}

// grant is the grant that decision d, which completed the approval of r,
// issues, if it asks for one.
func (d Decision) grant(r *Record) (Grant, bool) {
	if d.GrantUntil.IsZero() || r.State != StateApproved {
		return Grant{}, false
	}
	return Grant{ApprovalID: r.ID, SessionID: r.SessionID, Fingerprint: r.Fingerprint, Expires: d.GrantUntil}, true
}

// CLIIdentity is the two-person-rule identity of decisions made with the
// admin token when approval.operator does not name its holder.
const CLIIdentity = "cli"

// mayBeOnePerson reports whether two different identities may still be one
// person: the admin token's unnamed holder and a Slack user.
func mayBeOnePerson(a, b string) bool {
	return (a == CLIIdentity && strings.HasPrefix(b, "slack:")) || (b == CLIIdentity && strings.HasPrefix(a, "slack:"))
}

// identity is the two-person-rule key of a decision.
func (d Decision) identity() string {
	if d.Identity != "" {
		return d.Identity
	}
	return d.Approver
}

// Record is one approval: what the agent asked for and what humans decided.
type Record struct {
	ID          string         `json:"id"`
	SessionID   string         `json:"session_id"`
	SessionName string         `json:"session_name"`
	RequestID   string         `json:"request_id"`
	Summary     string         `json:"summary"`
	Action      map[string]any `json:"action,omitempty"`
	Request     Request        `json:"request"`
	Fingerprint string         `json:"fingerprint"`
	Messages    []string       `json:"messages"`
	RuleIDs     []string       `json:"rule_ids,omitempty"`
	Required    int            `json:"required"`
	Channel     string         `json:"channel,omitempty"`
	// Operation and Resources describe what a scoped grant made from this
	// approval would cover ("aws:ec2:TerminateInstances" on "i-0abc").
	Operation string     `json:"operation,omitempty"`
	Resources []string   `json:"resources,omitempty"`
	Created   time.Time  `json:"created"`
	Expires   time.Time  `json:"expires"`
	State     State      `json:"state"`
	Decisions []Decision `json:"decisions,omitempty"`
}

// Approvers returns the distinct approvers who approved.
func (r *Record) Approvers() []string {
	var out, seen []string
	for _, d := range r.Decisions {
		if d.Approve && !slices.Contains(seen, d.identity()) {
			seen = append(seen, d.identity())
			out = append(out, d.Approver)
		}
	}
	return out
}

// Clone returns a deep enough copy for callers to read without racing the store.
func (r *Record) Clone() *Record {
	c := *r
	c.Decisions = slices.Clone(r.Decisions)
	c.Messages = slices.Clone(r.Messages)
	c.RuleIDs = slices.Clone(r.RuleIDs)
	c.Resources = slices.Clone(r.Resources)
	return &c
}

// Scope is a scoped grant: an approver allowed one operation on given
// resources for one session for a while. It is recorded, expires and can be
// revoked.
type Scope struct {
	ID         string   `json:"id"`
	ApprovalID string   `json:"approval_id"`
	SessionID  string   `json:"session_id"`
	Operation  string   `json:"operation"`
	Resources  []string `json:"resources,omitempty"`
	GrantedBy  []string `json:"granted_by"`
	// Required and RuleIDs are what the approval that created the scope
	// demanded; a request whose policy decision asks for more approvers or
	// fires other rules is not covered.
	Required  int       `json:"required"`
	RuleIDs   []string  `json:"rule_ids,omitempty"`
	Created   time.Time `json:"created"`
	Expires   time.Time `json:"expires"`
	Revoked   bool      `json:"revoked,omitempty"`
	RevokedBy string    `json:"revoked_by,omitempty"`
	Uses      int       `json:"uses"`
}

// Active reports whether the scope still admits requests at now.
func (s Scope) Active(now time.Time) bool { return !s.Revoked && now.Before(s.Expires) }

// ScopeQuery describes a request that might be covered by a scoped grant.
type ScopeQuery struct {
	SessionID string
	// Operation names the operation and where it goes
	// ("aws:ec2:TerminateInstances@ec2.us-east-1.amazonaws.com:443").
	Operation string
	Resources []string
	// Required and RuleIDs are what the policy asks of this request.
	Required int
	RuleIDs  []string
}

// Asks is what the policy asks of a request now: how many approvers, for
// which rules. A grant or a scope admits the request only if the approval
// it came from gave as much.
type Asks struct {
	Required int
	RuleIDs  []string
}

// coveredBy reports whether an approval given by required approvers, for
// ruleIDs, gave as much as a asks.
func (a Asks) coveredBy(required int, ruleIDs []string) bool {
	if max(a.Required, 1) > max(required, 1) {
		return false
	}
	for _, id := range a.RuleIDs {
		if !slices.Contains(ruleIDs, id) {
			return false
		}
	}
	return true
}

// Covers reports whether a request falls inside the scope: same session,
// same operation at the same place, every resource of the request among the
// scope's, no more approvers required and no rule the approval did not see.
func (s Scope) Covers(q ScopeQuery) bool {
	if s.SessionID != q.SessionID || s.Operation != q.Operation || q.Operation == "" {
		return false
	}
	if !(Asks{Required: q.Required, RuleIDs: q.RuleIDs}).coveredBy(s.Required, s.RuleIDs) {
		return false
	}
	if len(q.Resources) == 0 {
		return len(s.Resources) == 0
	}
	for _, r := range q.Resources {
		if !slices.Contains(s.Resources, r) {
			return false
		}
	}
	return true
}

// Token is the stored form of an approval page link token: only its hash.
type Token struct {
	Hash       string    `json:"hash"`
	ApprovalID string    `json:"approval_id"`
	Label      string    `json:"label,omitempty"`
	Created    time.Time `json:"created"`
	Used       bool      `json:"used,omitempty"`
}

// Notice records where an approval was announced (a Slack message), so the
// message can be updated with the outcome.
type Notice struct {
	ApprovalID string `json:"approval_id"`
	Kind       string `json:"kind"` // slack
	Channel    string `json:"channel"`
	Ref        string `json:"ref"` // the Slack message ts
}

// apply records d on r following the two-person rule: one deny ends the
// approval; it is approved once Required distinct approvers approved.
func (r *Record) apply(d Decision, now time.Time) error {
	switch r.State {
	case StatePending:
	case StateExpired:
		return fmt.Errorf("%s: %w", r.ID, ErrExpired)
	default:
		return fmt.Errorf("%s is %s: %w", r.ID, r.State, ErrDecided)
	}
	if !now.Before(r.Expires) {
		// Left pending on purpose: ExpirePending moves it, so that the
		// broker audits the expiry and answers its held requests.
		return fmt.Errorf("%s: %w", r.ID, ErrExpired)
	}
	if d.Approve {
		id := d.identity()
		for _, p := range r.Decisions {
			switch {
			case !p.Approve:
			case p.identity() == id:
				return ErrDuplicateApprover
			case mayBeOnePerson(p.identity(), id):
				return ErrOperatorUnknown
			}
		}
	}
	r.Decisions = append(r.Decisions, d)
	switch {
	case !d.Approve:
		r.State = StateDenied
	case len(r.Approvers()) >= max(r.Required, 1):
		r.State = StateApproved
	}
	return nil
}

// AgreedScope is how long an approved record's scoped grant lasts: the
// shortest scope its approvers asked for, and none unless every one of them
// asked. Under the two-person rule a scoped grant admits later requests
// that would each have needed two people, so one approver alone must not
// make it (found by review: the last approver's scope was taken as both's).
func (r *Record) AgreedScope() time.Duration {
	var scope time.Duration
	first := true
	for _, d := range r.Decisions {
		if !d.Approve {
			continue
		}
		if first || d.ScopeFor < scope {
			scope, first = d.ScopeFor, false
		}
	}
	return max(scope, 0)
}

// DenyReason returns the reason given by the approver who denied, if any.
func (r *Record) DenyReason() (approver, reason string) {
	for _, d := range r.Decisions {
		if !d.Approve {
			return d.Approver, d.Reason
		}
	}
	return "", ""
}

// Grant admits one later request with the same session and fingerprint.
type Grant struct {
	ApprovalID  string    `json:"approval_id"`
	SessionID   string    `json:"session_id"`
	Fingerprint string    `json:"fingerprint"`
	Expires     time.Time `json:"expires"`
}

var idEncoding = base32.NewEncoding("abcdefghijkmnpqrstuvwxyz23456789").WithPadding(base32.NoPadding)

// NewID returns a short approval id such as "ap-7f3ck2".
func NewID() string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return "ap-" + idEncoding.EncodeToString(b)
}

// NewScopeID returns a scoped grant id such as "gr-k2m7f3ck".
func NewScopeID() string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return "gr-" + idEncoding.EncodeToString(b)
}

// NewToken returns a fresh page token (160 random bits, URL-safe) and the
// hash under which it is stored.
func NewToken() (token, hash string) {
	b := make([]byte, 20)
	_, _ = rand.Read(b)
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, HashToken(token)
}

// HashToken is the stored form of a page token.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte("countersign approval token\x00" + token))
	return hex.EncodeToString(sum[:])
}

// volatileQuery are query parameters a client recomputes when it retries a
// presigned request; they are left out of the fingerprint.
var volatileQuery = []string{"x-amz-date", "x-amz-signature", "x-amz-security-token"}

// Fingerprint identifies "the same request" for joining a pending approval and
// for consuming a grant. It covers method, host, port, path, query (without
// re-signed SigV4 parameters) and the body hash; headers are left out because
// clients recompute signatures and dates on retry.
func Fingerprint(method, host string, port int, rawPath string, query url.Values, bodySHA256 string) string {
	h := sha256.New()
	write := func(s string) {
		h.Write([]byte(strconv.Itoa(len(s))))
		h.Write([]byte{':'})
		h.Write([]byte(s))
	}
	write(strings.ToUpper(method))
	write(strings.ToLower(host))
	write(strconv.Itoa(port))
	write(rawPath)
	keys := make([]string, 0, len(query))
	for k := range query {
		if !slices.Contains(volatileQuery, strings.ToLower(k)) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	// The counts keep the encoding unambiguous: without them "a=&b=c" and
	// "a=&a=b&a=c" wrote the same strings.
	write(strconv.Itoa(len(keys)))
	for _, k := range keys {
		write(k)
		// In their order: for a server that takes the last of repeated
		// values, "?force=true&force=false" and its reverse differ.
		write(strconv.Itoa(len(query[k])))
		for _, v := range query[k] {
			write(v)
		}
	}
	write(bodySHA256)
	return hex.EncodeToString(h.Sum(nil))
}
