// Command countersign is the agent-sandbox proxy: it wraps an AI coding
// agent's session, decides every request it makes against Rego policies,
// holds dangerous ones for a human, and audits everything.
package main

import (
	"context"
	"os"
	"runtime/debug"
)

func main() {
	if _, set := os.LookupEnv("GOGC"); !set {
		// The proxy's live heap is small and its garbage short-lived (one
		// request's buffers and policy evaluation): collecting at 200%
		// instead of 100% halves GC work for a few MiB more memory.
		debug.SetGCPercent(200)
	}
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
