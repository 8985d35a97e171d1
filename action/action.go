// Package action turns an intercepted HTTP request into the structured action
// that policies reason about ("ec2:TerminateInstances on i-0abc"), rather than
// raw HTTP.
//
// Each provider lives in its own file or sub-package and implements Provider;
// a Classifier tries them in order and falls back to the generic http provider,
// so adding a provider is one file plus one entry in the list the caller builds.
// Classifiers never fail a request: a body they cannot parse yields the http
// provider with ParseError set.
package action

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
)

// Request is the classifier's read-only view of one request. Headers have had
// hop-by-hop fields removed; Body holds at most the inspection limit.
type Request struct {
	Method string
	Scheme string
	Host   string // canonical: lower case, no trailing dot, ASCII
	Port   int
	Path   string // decoded path
	// RawPath is the path exactly as the client sent it (escaped form).
	RawPath string
	Query   url.Values
	Header  http.Header
	// Body is the buffered prefix of the request body; BodyTruncated tells
	// whether more followed. Nil for a request without a body.
	Body          []byte
	BodySize      int64 // declared or observed size, -1 when unknown
	BodyTruncated bool
	// BodySHA256 is the SHA-256 of a whole Body, when whoever buffered it
	// hashed it on the way in (the proxy does, as the bytes arrive, so that
	// hashing overlaps the transfer); nil means not computed yet. It is
	// trusted: set it only together with the Body it was computed over.
	BodySHA256 []byte
	// Decoded is true when Body is the inflated form of a body sent with a
	// Content-Encoding (see Inflate); BodySHA256 and BodySize are still
	// those of the bytes as sent.
	Decoded bool
	// Tunnel is true for a CONNECT that is not intercepted: only Host and Port
	// are known.
	Tunnel bool
	// Upgrade is the protocol the client asks to switch to ("websocket",
	// "SPDY/3.1"), or empty. The Upgrade and Connection headers themselves are
	// hop-by-hop and not in Header.
	Upgrade string
}

// Action is what a request does, in the provider's own vocabulary. Fields that
// a provider does not use stay empty and are left out of the policy input.
type Action struct {
	Provider    string         `json:"provider"`
	Service     string         `json:"service,omitempty"`
	Operation   string         `json:"operation,omitempty"`
	Region      string         `json:"region,omitempty"`
	AccessKeyID string         `json:"access_key_id,omitempty"`
	Resources   []string       `json:"resources,omitempty"`
	Params      map[string]any `json:"params,omitempty"`
	ReadOnly    bool           `json:"read_only"`
	Destructive bool           `json:"destructive"`
	ParseError  string         `json:"parse_error,omitempty"`
	// Fields holds provider-specific members (Kubernetes verb and namespace,
	// git ref updates, MCP tool, …). They appear in the policy input next to
	// the common fields above and never replace them.
	Fields map[string]any `json:"-"`

	// ByPath is set by a provider that recognised the request by its path
	// (git's smart-HTTP endpoints, a /graphql or /mcp path), which the
	// server routes by, rather than by markers the agent chooses (a body
	// member, a header, a query parameter).
	ByPath bool `json:"-"`
	// ByHost is set by a provider that recognised the request by its host
	// (an AWS service endpoint), rather than only by markers the agent
	// chooses (a signature it could make up for any host).
	ByHost bool `json:"-"`

	// ClassifiedBy names the provider that produced the action, which may
	// differ from Provider (GitHub's GraphQL is classified by the graphql
	// provider but reported as provider "github"). Denials are formatted by
	// the provider that classified the request.
	ClassifiedBy string `json:"-"`
}

// Map returns the action as the JSON-shaped map the policy input carries:
// common fields first, then provider-specific Fields that do not collide.
func (a Action) Map() map[string]any {
	m := make(map[string]any, 8+len(a.Fields))
	for k, v := range a.Fields {
		m[k] = v
	}
	m["provider"] = a.Provider
	m["read_only"] = a.ReadOnly
	m["destructive"] = a.Destructive
	setString(m, "service", a.Service)
	setString(m, "operation", a.Operation)
	setString(m, "region", a.Region)
	setString(m, "access_key_id", a.AccessKeyID)
	setString(m, "parse_error", a.ParseError)
	if len(a.Resources) > 0 {
		rs := make([]any, len(a.Resources))
		for i, r := range a.Resources {
			rs[i] = r
		}
		m["resources"] = rs
	}
	if len(a.Params) > 0 {
		m["params"] = maps.Clone(a.Params)
	}
	return m
}

// MarshalJSON encodes the action as Map does, so the audit log and
// `policy eval` show exactly what the policy saw.
func (a Action) MarshalJSON() ([]byte, error) {
	return json.Marshal(a.Map())
}

func setString(m map[string]any, k, v string) {
	if v != "" {
		m[k] = v
	}
}

// Provider recognises the requests of one API family.
type Provider interface {
	// Name is the provider's name as it appears in action.provider.
	Name() string
	// Classify reports whether the request belongs to this provider and, if so,
	// what it does. It must not modify r and must not fail: a request it
	// recognises but cannot parse is returned with ParseError set.
	Classify(r *Request) (Action, bool)
}

// Classifier asks every provider about a request; the first that
// recognises it classifies it, and the http provider takes the rest.
type Classifier struct {
	providers []Provider
}

// NewClassifier returns a Classifier that tries providers in the given order.
func NewClassifier(providers ...Provider) *Classifier {
	return &Classifier{providers: providers}
}

// AmbiguousField is the action field that names the other provider when two
// read the same request differently.
const AmbiguousField = "ambiguous"

// Classify returns the action for r. It never fails; a provider that panics is
// treated as not matching and recorded as a parse error, because a classifier
// bug must not take the proxy down or let the request through unclassified.
//
// Every provider is asked, not only until the first one recognises r: some
// recognise requests by markers the agent chooses (an MCP header, AWS
// presigning parameters, a GraphQL body), which the server the request
// goes to may ignore. A request that two providers read as different APIs
// is ambiguous; [Classifier.Reject] refuses it.
func (c *Classifier) Classify(r *Request) Action {
	var first Action
	found := false
	for _, p := range c.providers {
		a, ok, perr := classifyOne(p, r)
		if perr != "" {
			fallback := HTTP(r)
			fallback.ParseError = perr
			return fallback
		}
		if !ok {
			continue
		}
		if a.Provider == "" {
			a.Provider = p.Name()
		}
		a.ClassifiedBy = p.Name()
		switch {
		case !found:
			first, found = a, true
		case a.Provider == first.Provider:
			// The same API reported by two classifiers (GitHub's GraphQL
			// endpoint, by graphql and github) is not ambiguous.
		case a.ByPath && !first.ByPath && awsHostOnly(first):
			// An AWS host that serves another protocol at a path: AppSync's
			// /graphql, an MCP gateway's /mcp, CodeCommit's git endpoints.
			// The aws provider found no operation of its own there.
			first = a
		case first.ByPath && !a.ByPath && awsHostOnly(a):
		default:
			return ambiguous(first, a)
		}
	}
	if found {
		if first.ParseError != "" || r.Upgrade != "" {
			// What the server will do with a request countersign could
			// not read whole is not known: never a read. Nor is an
			// upgraded connection, whatever its method: it carries what
			// the two ends say after the switch (found by review: a
			// KubeVirt console, an API Gateway WebSocket API).
			first.ReadOnly = false
		}
		return first
	}
	return HTTP(r)
}

// awsHostOnly reports whether a is the aws provider's reading of a request
// to an AWS host in which it found no operation of an AWS API, or only the
// invocation of an API that is not AWS's own (API Gateway, a Lambda
// function URL): the request's path says more.
func awsHostOnly(a Action) bool {
	if a.Provider != "aws" {
		return false
	}
	return a.Operation == "" || a.Service == "execute-api" || (a.Service == "lambda" && a.Operation == "InvokeFunctionUrl")
}

// ambiguous marks a, the first reading of a request, as also readable as
// other: never read-only, and refused before policy.
func ambiguous(a, other Action) Action {
	a.Fields = maps.Clone(a.Fields)
	if a.Fields == nil {
		a.Fields = map[string]any{}
	}
	a.Fields[AmbiguousField] = other.Provider
	a.ReadOnly, a.Destructive = false, true
	a.ParseError = fmt.Sprintf("the request reads both as %s and as %s, and countersign cannot tell which the server will act on", describe(a), describe(other))
	return a
}

// describe names an action briefly: `github "repos/delete"`.
func describe(a Action) string {
	op := a.Operation
	if len(op) > 64 {
		op = op[:64] + "…"
	}
	if op == "" {
		return a.Provider
	}
	return fmt.Sprintf("%s %q", a.Provider, op)
}

func classifyOne(p Provider, r *Request) (a Action, ok bool, perr string) {
	defer func() {
		if v := recover(); v != nil {
			perr = "classifier " + p.Name() + " failed on this request"
		}
	}()
	a, ok = p.Classify(r)
	return a, ok, ""
}
