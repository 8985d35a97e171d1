package main

import (
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/countersign/countersign/internal/config"
)

// readableInlineSecrets describes the secrets the configuration file holds
// itself when users other than its owner can read it, with what to do; ""
// when there are none or only the owner can read it. It warns rather than
// refuses, as for password files: a container may mount its configuration
// readable by all where no other user runs.
func readableInlineSecrets(cfg *config.Config) string {
	if cfg.Source.File == "" || len(cfg.Source.Secrets) == 0 || runtime.GOOS == "windows" {
		// Windows has no Unix permission bits; its ACLs are the user's business.
		return ""
	}
	fi, err := os.Stat(cfg.Source.File)
	if err != nil || fi.Mode().Perm()&0o077 == 0 {
		return ""
	}
	keys := make([]string, len(cfg.Source.Secrets))
	for i, k := range cfg.Source.Secrets {
		keys[i] = fmt.Sprintf("%s (line %d)", k, cfg.Source.Lines[k])
	}
	return fmt.Sprintf("%s can be read by other users (mode %#o) and holds secrets itself: %s. Run chmod 600 %s, or write each as ${NAME} and set NAME in the environment",
		cfg.Source.File, fi.Mode().Perm(), strings.Join(keys, ", "), cfg.Source.File)
}

// weakenedSafety lists settings that turn a protection off, to be said out
// loud at start (found by review: they were taken silently).
func weakenedSafety(cfg *config.Config) []string {
	var out []string
	if cfg.Policy.OnError == "allow" {
		out = append(out, cfg.Where("policy.on_error")+": on_error: allow forwards requests whose evaluation failed or timed out")
	}
	for _, p := range cfg.Upstream.AllowAddresses {
		if p.Bits() < 8 {
			out = append(out, fmt.Sprintf("%s: %s lets requests reach loopback and private networks on every address it covers", cfg.Where("upstream.allow_addresses"), p))
		}
	}
	return out
}
