// Package session describes one wrapped agent session and prepares what its
// child process needs: proxy credentials, proxy variables and a CA bundle that
// every common runtime (curl, git, Node, Python, Go, the AWS CLI) reads. With
// `run --isolate` it runs the child in Linux namespaces whose only way out is
// the proxy ([StartIsolated], docs/isolation.md).
package session

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"strings"
	"sync"
	"sync/atomic"
)

// Info identifies a session to policies, approvers and the audit log. Its
// fields must not change once requests of the session are being decided
// (PolicyDoc is built once).
type Info struct {
	ID      string            `json:"id"`
	Name    string            `json:"name"`
	User    string            `json:"user,omitempty"`
	Command string            `json:"command,omitempty"`
	Cwd     string            `json:"cwd,omitempty"`
	Labels  map[string]string `json:"labels,omitempty"`

	doc atomic.Pointer[map[string]any]
}

// PolicyDoc returns input.session of the policy input (SPEC 4). It is built
// on first use and shared by every request of the session, so callers must
// not modify it.
func (s *Info) PolicyDoc() map[string]any {
	if d := s.doc.Load(); d != nil {
		return *d
	}
	labels := make(map[string]any, len(s.Labels))
	for k, v := range s.Labels {
		labels[k] = v
	}
	d := map[string]any{
		"id":      s.ID,
		"name":    s.Name,
		"user":    s.User,
		"command": s.Command,
		"cwd":     s.Cwd,
		"labels":  labels,
	}
	s.doc.CompareAndSwap(nil, &d)
	return *s.doc.Load()
}

// NewID returns a fresh session id such as "s-k3j5x9q2mfa4".
func NewID() string {
	return "s-" + randomToken(8)
}

// NewPassword returns a fresh proxy password with 160 bits of entropy.
func NewPassword() string {
	return randomToken(20)
}

var lowerBase32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

func randomToken(n int) string {
	b := make([]byte, n)
	// crypto/rand.Read never returns an error on supported platforms (Go 1.24+).
	_, _ = rand.Read(b)
	return lowerBase32.EncodeToString(b)
}

// Credential is one proxy user name and password and the session it opens.
type Credential struct {
	Username string
	Password string
	Session  *Info
}

// Registry authenticates proxy clients. With no credentials registered and
// Anonymous set, every client is the anonymous session.
type Registry struct {
	mu        sync.RWMutex
	creds     map[string]Credential
	anonymous *Info
}

// NewRegistry returns a registry that accepts the given credentials. When
// anonymous is non-nil it is the session of clients that send none.
func NewRegistry(anonymous *Info, creds ...Credential) *Registry {
	r := &Registry{creds: make(map[string]Credential, len(creds)), anonymous: anonymous}
	for _, c := range creds {
		r.creds[c.Username] = c
	}
	return r
}

// Add registers one more credential.
func (r *Registry) Add(c Credential) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.creds[c.Username] = c
}

// Authenticate returns the session for the given proxy credentials. present
// says whether the client sent credentials at all. The password comparison
// takes constant time.
func (r *Registry) Authenticate(username, password string, present bool) (*Info, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if !present {
		if r.anonymous != nil && len(r.creds) == 0 {
			return r.anonymous, true
		}
		return nil, false
	}
	c, ok := r.creds[username]
	if !ok {
		// Compare anyway so a missing user costs the same as a wrong password.
		subtle.ConstantTimeCompare([]byte(password), []byte(password+"x"))
		return nil, false
	}
	if subtle.ConstantTimeCompare([]byte(password), []byte(c.Password)) != 1 {
		return nil, false
	}
	return c.Session, true
}

// DefaultName is the session name shown to approvers when none is given:
// "user/command".
func DefaultName(user, command string) string {
	if i := strings.LastIndexAny(command, `/\`); i >= 0 {
		command = command[i+1:]
	}
	if user == "" {
		return command
	}
	return user + "/" + command
}
