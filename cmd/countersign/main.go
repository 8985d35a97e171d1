// Command countersign is the agent-sandbox proxy: it wraps an AI coding
// agent's session, decides every request it makes against Rego policies,
// holds dangerous ones for a human, and audits everything.
package main

import (
	"context"
	"os"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
