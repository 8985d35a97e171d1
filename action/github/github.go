// Package github classifies GitHub REST API requests (api.github.com and
// GitHub Enterprise Server's /api/v3) into operationIds such as repos/delete,
// and answers denials in GitHub's JSON error shape, which gh prints.
package github

import "github.com/countersign/countersign/action"

// Options configures the GitHub provider.
type Options struct{}

// Provider is the GitHub REST classifier.
type Provider struct{ opts Options }

// New returns the GitHub provider.
func New(opts Options) *Provider { return &Provider{opts: opts} }

// Name implements action.Provider.
func (*Provider) Name() string { return "github" }

// Classify implements action.Provider.
func (*Provider) Classify(*action.Request) (action.Action, bool) { return action.Action{}, false }
