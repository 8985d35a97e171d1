package policy_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/countersign/countersign/action"
	"github.com/countersign/countersign/action/github"
	"github.com/countersign/countersign/policy"
)

// GitHub reads a body as JSON whatever its Content-Type (its docs' curl
// examples send JSON with -d, labelled a form), so the policy must too
// (found by review: a merge into main and a commit to main, labelled
// forms, were allowed by the github-git example).
func TestGitHubJSONLabelledAFormIsReadAsJSON(t *testing.T) {
	e, err := policy.New(t.Context(), policy.Options{
		Source:      policy.Source{Paths: []string{"../examples/policies/github-git"}},
		EvalTimeout: time.Minute,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ method, path, body string }{
		{"POST", "/repos/acme/shop/merges", `{"base":"main","head":"feature"}`},
		{"PUT", "/repos/acme/shop/contents/README.md", `{"message":"docs&branch=feature&x","content":"aGk=","branch":"main"}`},
	} {
		for _, ct := range []string{"application/json", "application/x-www-form-urlencoded", "text/plain"} {
			r := &action.Request{Method: tt.method, Scheme: "https", Host: "api.github.com", Port: 443,
				Path: tt.path, RawPath: tt.path, Query: url.Values{},
				Header: http.Header{"Content-Type": {ct}}, Body: []byte(tt.body), BodySize: int64(len(tt.body))}
			a, ok := github.New(github.Options{}).Classify(r)
			if !ok {
				t.Fatalf("%s %s: not classified as GitHub", tt.method, tt.path)
			}
			d := e.Decide(t.Context(), policy.NewInput(r, a, nil, time.Now()))
			if d.Err != nil || d.Verdict != policy.VerdictDeny {
				t.Errorf("%s %s as %s: %v %v (%v), want deny", tt.method, tt.path, ct, d.Verdict, d.Reasons, d.Err)
			}
		}
	}
}
