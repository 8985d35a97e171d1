package action

import (
	"net/http"
	"strconv"
)

// Denial is what countersign tells the agent instead of forwarding a request.
type Denial struct {
	// Status is the HTTP status countersign would use for a plain-text
	// answer: 403 deny or pending, 413, 421, 503 …. A provider may answer with
	// another status when its API does (the AWS JSON protocols use 400; git
	// report-status and GraphQL errors use 200).
	Status int
	// Decision is the X-Countersign-Decision value: deny, pending, denied,
	// expired, ….
	Decision string
	// Message starts with "countersign:" and says what to do next.
	Message string
}

// Response is a complete answer written to the agent.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Responder is implemented by providers that answer denials in their API's
// own error format, so the agent's tool prints the reason instead of a bare
// 403 (SPEC section 6).
type Responder interface {
	// Respond formats d for a request this provider classified as a.
	Respond(r *Request, a Action, d Denial) Response
}

// Respond formats a denial with the provider that classified the request, or
// as text/plain when it has no format of its own.
func (c *Classifier) Respond(r *Request, a Action, d Denial) Response {
	by := a.ClassifiedBy
	if by == "" {
		by = a.Provider
	}
	for _, p := range c.providers {
		if p.Name() != by {
			continue
		}
		if rp, ok := p.(Responder); ok {
			if resp, ok := respondSafely(rp, r, a, d); ok {
				return resp
			}
		}
		break
	}
	return PlainText(d)
}

func respondSafely(rp Responder, r *Request, a Action, d Denial) (resp Response, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	resp = rp.Respond(r, a, d)
	return resp, resp.Status != 0
}

// PlainText is the default answer: the message as text/plain.
func PlainText(d Denial) Response {
	body := []byte(d.Message + "\n")
	h := http.Header{}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	return Response{Status: d.Status, Header: h, Body: body}
}

// Rejecter is implemented by providers that refuse some requests before any
// policy sees them: messages countersign cannot read exactly as the server
// would (an MCP batch, a JSON object with a repeated key). Such a request is
// answered with status and reason and never forwarded.
type Rejecter interface {
	Reject(a Action) (status int, reason string, bad bool)
}

// BodyFingerprinter is implemented by providers whose clients change
// meaningless parts of a body on every retry (a JSON-RPC id): it returns the
// bytes that identify "the same request" for approvals and grants.
type BodyFingerprinter interface {
	FingerprintBody(a Action, body []byte) []byte
}

// provider returns the provider that classified a, if it is in the list.
func (c *Classifier) provider(a Action) Provider {
	by := a.ClassifiedBy
	if by == "" {
		by = a.Provider
	}
	for _, p := range c.providers {
		if p.Name() == by {
			return p
		}
	}
	return nil
}

// Reject reports whether a must be refused outright: it is ambiguous, or
// the provider that classified it refuses it.
func (c *Classifier) Reject(a Action) (status int, reason string, bad bool) {
	if _, ok := a.Fields[AmbiguousField]; ok {
		return http.StatusBadRequest, a.ParseError + "; send it without the other API's markers (headers, query parameters or body members)", true
	}
	if rj, ok := c.provider(a).(Rejecter); ok {
		return rj.Reject(a)
	}
	return 0, "", false
}

// FingerprintBody returns the bytes of body that identify the request for
// approvals: the provider's canonical form where it has one, else body.
func (c *Classifier) FingerprintBody(a Action, body []byte) []byte {
	if f, ok := c.provider(a).(BodyFingerprinter); ok {
		return f.FingerprintBody(a, body)
	}
	return body
}
