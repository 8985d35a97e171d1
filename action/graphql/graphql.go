// Package graphql classifies GraphQL requests on any host: operation type,
// top-level fields (operation names are optional and can lie) and variables,
// and answers denials as a GraphQL errors response.
package graphql

import "github.com/countersign/countersign/action"

// Options configures the GraphQL provider.
type Options struct{}

// Provider is the GraphQL classifier.
type Provider struct{ opts Options }

// New returns the GraphQL provider.
func New(opts Options) *Provider { return &Provider{opts: opts} }

// Name implements action.Provider.
func (*Provider) Name() string { return "graphql" }

// Classify implements action.Provider.
func (*Provider) Classify(*action.Request) (action.Action, bool) { return action.Action{}, false }
