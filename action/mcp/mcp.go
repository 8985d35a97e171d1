// Package mcp classifies Model Context Protocol requests (JSON-RPC 2.0 over
// the streamable HTTP transport): method, and for tools/call the tool and its
// arguments; denials are answered as JSON-RPC errors the client surfaces.
package mcp

import "github.com/countersign/countersign/action"

// Options configures the MCP provider.
type Options struct{}

// Provider is the MCP classifier.
type Provider struct{ opts Options }

// New returns the MCP provider.
func New(opts Options) *Provider { return &Provider{opts: opts} }

// Name implements action.Provider.
func (*Provider) Name() string { return "mcp" }

// Classify implements action.Provider.
func (*Provider) Classify(*action.Request) (action.Action, bool) { return action.Action{}, false }
