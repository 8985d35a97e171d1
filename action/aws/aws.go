// Package aws classifies AWS API requests (SigV4-signed, *.amazonaws.com)
// into service:operation actions and answers denials in the error formats
// the AWS CLI and SDKs parse.
package aws

import "github.com/countersign/countersign/action"

// Options configures the AWS provider.
type Options struct{}

// Provider is the AWS classifier.
type Provider struct{ opts Options }

// New returns the AWS provider.
func New(opts Options) *Provider { return &Provider{opts: opts} }

// Name implements action.Provider.
func (*Provider) Name() string { return "aws" }

// Classify implements action.Provider.
func (*Provider) Classify(*action.Request) (action.Action, bool) { return action.Action{}, false }
