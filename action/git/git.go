// Package git classifies git's smart HTTP protocol (info/refs,
// git-upload-pack, git-receive-pack) on any host, parsing the ref updates of
// a push from its pkt-lines, and answers a denied push with a receive-pack
// report-status so git prints "! [remote rejected]" with the reason.
package git

import "github.com/countersign/countersign/action"

// Options configures the git provider.
type Options struct{}

// Provider is the git smart-HTTP classifier.
type Provider struct{ opts Options }

// New returns the git provider.
func New(opts Options) *Provider { return &Provider{opts: opts} }

// Name implements action.Provider.
func (*Provider) Name() string { return "git" }

// Classify implements action.Provider.
func (*Provider) Classify(*action.Request) (action.Action, bool) { return action.Action{}, false }
