//go:build e2e

package e2e

import (
	"encoding/json"
	"strings"
	"testing"
)

// railwayPolicy is INCIDENTS #10's rule: a coding agent never deletes
// Railway volumes, services, environments or projects, whatever the
// operation claims to be called.
const railwayPolicy = `package countersign

deny contains {"id": "RW-001", "msg": sprintf("%s deletes Railway data; a human must do it", [field])} if {
	input.action.provider == "graphql"
	input.action.operation_type == "mutation"
	some field in input.action.fields
	field in {"volumeDelete", "serviceDelete", "environmentDelete", "projectDelete"}
}
`

const railwayURL = "https://backboard.railway.com/graphql/v2"

// TestGraphQLRailwayVolumeDeleteDenied replays the curl command from the
// PocketOS incident (INCIDENTS #10): the mutation is denied with a GraphQL
// errors response that curl shows, and never reaches Railway.
func TestGraphQLRailwayVolumeDeleteDenied(t *testing.T) {
	w := newWorld(t, railwayPolicy, "", "backboard.railway.com")

	r := w.run("run", "--", "curl", "-sS", "-X", "POST", railwayURL,
		"-H", "Authorization: Bearer 00000000-fake-fake-fake-000000000000",
		"-d", `{"query":"mutation { volumeDelete(volumeId: \"3d2c42fb-0000-4c1e-9a7e-000000000000\") }"}`)
	var resp struct {
		Data   any `json:"data"`
		Errors []struct {
			Message    string `json:"message"`
			Extensions struct {
				Code string `json:"code"`
			} `json:"extensions"`
		} `json:"errors"`
	}
	t.Logf("curl printed:\n%s", r.stdout)
	if err := json.Unmarshal([]byte(r.stdout), &resp); err != nil || len(resp.Errors) != 1 {
		t.Fatalf("curl did not get a GraphQL errors response: %v\nstdout %s\nstderr %s", err, r.stdout, r.stderr)
	}
	const want = "countersign: denied by policy RW-001: volumeDelete deletes Railway data; a human must do it."
	if !strings.HasPrefix(resp.Errors[0].Message, want) || resp.Errors[0].Extensions.Code != "FORBIDDEN" || resp.Data != nil {
		t.Errorf("GraphQL error = %+v, want message starting %q, code FORBIDDEN, data null", resp.Errors[0], want)
	}
	if n := w.up.Count("", ""); n != 0 {
		t.Errorf("upstream saw %d requests, want 0", n)
	}

	// The same mutation under a harmless-sounding operation name, hidden in a
	// fragment, is still a volumeDelete.
	r = w.run("run", "--", "curl", "-sS", railwayURL, "-H", "Content-Type: application/json",
		"--data-binary", `{"operationName":"ListVolumes","query":"mutation ListVolumes { ...F } fragment F on Mutation { ok: volumeDelete(volumeId: \"3d2c\") }"}`)
	if !strings.Contains(r.stdout, want) {
		t.Errorf("disguised volumeDelete was not denied with the reason:\nstdout %s\nstderr %s", r.stdout, r.stderr)
	}
	if n := w.up.Count("", ""); n != 0 {
		t.Errorf("upstream saw %d requests, want 0", n)
	}

	// A query goes through.
	r = w.run("run", "--", "curl", "-sS", railwayURL, "-H", "Content-Type: application/json",
		"--data-binary", `{"query":"query { me { projects { edges { node { id } } } } }"}`)
	if r.code != 0 || strings.Contains(r.stdout, "countersign:") {
		t.Fatalf("query was not forwarded: code %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	if n := w.up.Count("POST", "/graphql/v2"); n != 1 {
		t.Errorf("upstream saw %d GraphQL requests, want 1", n)
	}
	log := w.auditLog()
	for _, s := range []string{`"operation_type":"mutation"`, `"volumeDelete"`, `"RW-001"`} {
		if !strings.Contains(log, s) {
			t.Errorf("audit log lacks %s", s)
		}
	}
}

// TestGraphQLBatchDenied checks that a batch hiding a delete behind a query
// is denied as a whole, with one error per operation.
func TestGraphQLBatchDenied(t *testing.T) {
	w := newWorld(t, railwayPolicy, "", "backboard.railway.com")
	r := w.run("run", "--", "curl", "-sS", railwayURL, "-H", "Content-Type: application/json",
		"--data-binary", `[{"query":"{ me { id } }"},{"query":"mutation { serviceDelete(id: \"s-1\") }"}]`)
	var resp []struct {
		Errors []struct{ Message string } `json:"errors"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &resp); err != nil || len(resp) != 2 || len(resp[1].Errors) != 1 ||
		!strings.Contains(resp[1].Errors[0].Message, "serviceDelete deletes Railway data") {
		t.Fatalf("batched request not denied per operation: %v\nstdout %s\nstderr %s", err, r.stdout, r.stderr)
	}
	if n := w.up.Count("", ""); n != 0 {
		t.Errorf("upstream saw %d requests, want 0", n)
	}
}
