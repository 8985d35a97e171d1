package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad feeds arbitrary bytes through load, Validate and ClientPasswords:
// none may panic, and a failed load always explains itself.
func FuzzLoad(f *testing.F) {
	for _, name := range []string{"spec.yaml", "full.yaml"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		"",
		"listen: ${PORT}\n",
		"approval: {hold: $${X}, expire: ${EMPTY}}\n",
		"inspect: {body_limit: 1.5MiB, mitm: [\"*\"]}\n",
		"upstream: {resolve: {a: b}, allow_addresses: [::1, 10.0.0.0/8]}\n",
		"clients:\n  - &c {name: a, password_file: ~/p}\n  - *c\n",
		"inspect: &x {mitm: *x}\n",
		"a: &a [*a]\n",
		"<<: {listen: x}\n",
		"? [a]\n: b\n",
		"listen: 1\n---\nlisten: 2\n",
		"state_dir: ~bob\n",
	} {
		f.Add([]byte(s))
	}
	vars := map[string]string{"PORT": ":1", "EMPTY": "", "HOME": "/h"}
	readFile := func(string) ([]byte, error) { return []byte("pw\n"), nil }
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := load("fuzz.yaml", data, LoadOptions{Getenv: env(vars), Home: testHome})
		if err != nil {
			var cerr *Error
			if !errors.As(err, &cerr) || len(cerr.Problems) == 0 {
				t.Fatalf("load() error = %v (%T), want *Error with problems", err, err)
			}
			_ = cerr.Error()
			return
		}
		if c == nil {
			t.Fatal("load() = nil, nil")
		}
		if err := c.Validate(); err != nil {
			var cerr *Error
			if !errors.As(err, &cerr) || len(cerr.Problems) == 0 {
				t.Fatalf("Validate() error = %v (%T), want *Error with problems", err, err)
			}
			_ = cerr.Error()
		}
		_, _ = c.ClientPasswords(readFile)
		_ = c.Redacted()
		c.UseServeDefaults()
		_, _ = c.CAPaths()
	})
}
