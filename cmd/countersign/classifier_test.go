package main

import (
	"path/filepath"
	"testing"

	"github.com/countersign/countersign/action"
	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/golden"
)

// The provider chain reads no request that real clients sent (the captures
// under action/*/testdata) as two APIs at once: ambiguity refusals are for
// crafted requests only.
func TestRealClientRequestsAreNotAmbiguous(t *testing.T) {
	files, err := filepath.Glob("../../action/*/testdata/*.txt")
	if err != nil || len(files) < 100 {
		t.Fatalf("golden corpus: %d files, %v", len(files), err)
	}
	cfg := config.Default()
	cls := newClassifier(&cfg)
	checked := 0
	for _, f := range files {
		raw, _ := golden.Read(t, f)
		ar, err := golden.Request(raw, golden.Options{BodyLimit: golden.DefaultBodyLimit})
		if err != nil {
			continue
		}
		checked++
		a := cls.Classify(ar)
		if other, ok := a.Fields[action.AmbiguousField]; ok {
			t.Errorf("%s: ambiguous (%s and %v): %s", f, a.Provider, other, a.ParseError)
		}
	}
	if checked < 100 {
		t.Fatalf("only %d captures parsed", checked)
	}
}
