// Command countersign is the agent-sandbox proxy: it wraps an AI coding
// agent's session, decides every request it makes against Rego policies,
// holds dangerous ones for a human, and audits everything.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/countersign/countersign/internal/gcpace"
	"github.com/countersign/countersign/internal/nodump"
	"github.com/countersign/countersign/policy"
)

func main() {
	// Before anything is read: the agent runs as this user and must not
	// read this process's environment or memory (secrets, the CA key).
	if _, err := nodump.Set(); err != nil {
		fmt.Fprintln(os.Stderr, "countersign: warning: other processes of this user can read countersign's memory:", err)
	}
	if len(os.Args) > 1 && os.Args[1] == policy.TestChildCommand {
		// A reload's policy tests, run for the proxy by its own binary
		// (policy.ChildTests): a panic in OPA ends this process only.
		os.Exit(policy.RunTestChild(context.Background(), os.Stdin, os.Stdout))
	}
	if _, set := os.LookupEnv("GOGC"); !set {
		// The proxy's live heap is usually small and its garbage
		// short-lived (one request's buffers and policy evaluation):
		// collecting at 200% instead of 100% halves GC work for a few MiB
		// more memory. When the live heap is large (thousands of held
		// requests), the headroom stays at 48 MiB instead of growing with
		// it. It paces for the life of the process.
		_ = gcpace.Start(gcpace.Options{Percent: 200, Headroom: 48 << 20, MinPercent: 25})
	}
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
