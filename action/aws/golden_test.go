package aws

import (
	"flag"
	"testing"

	"github.com/countersign/countersign/internal/golden"
)

var update = flag.Bool("update", false, "rewrite the expected actions in testdata/*.txt")

// TestGolden classifies requests captured from the AWS CLI (see
// testdata/README.md) and compares the actions with the expected JSON.
func TestGolden(t *testing.T) {
	golden.Run(t, "testdata/*.txt", golden.Options{BodyLimit: golden.DefaultBodyLimit}, golden.Claimed(New(Options{})), *update)
}
