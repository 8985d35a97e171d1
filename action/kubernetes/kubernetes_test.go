package kubernetes

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/countersign/countersign/action"
	"github.com/countersign/countersign/internal/golden"
)

var update = flag.Bool("update", false, "rewrite the expected actions in testdata/*.txt")

// goldenHost is the API server the captured requests are replayed against;
// the captures' Host lines were rewritten to it.
const goldenHost = "k8s.example.test"

// goldenOptions build the captured requests as the proxy would, on
// goldenHost.
var goldenOptions = golden.Options{Host: goldenHost}

// TestGolden replays requests captured from kubectl 1.32 (see
// testdata/README.md) and compares the actions with the expected ones.
func TestGolden(t *testing.T) {
	configured := New(Options{Hosts: []string{goldenHost}})
	detecting := New(Options{})
	golden.Run(t, "testdata/*.txt", goldenOptions, func(t *testing.T, r *action.Request) action.Action {
		a, ok := configured.Classify(r)
		if !ok {
			t.Fatalf("Classify(%s %s) on a configured host = not claimed", r.Method, r.Path)
		}

		// Every captured kubectl request but /version has a Kubernetes
		// path shape, so detection on an unknown host agrees.
		d, ok := detecting.Classify(r)
		if r.Path == "/version" {
			if ok {
				t.Errorf("Classify(%s) on an unknown host claimed /version", r.Path)
			}
			return a
		}
		if !ok {
			t.Fatalf("Classify(%s %s) on an unknown host = not claimed, want detected by path", r.Method, r.Path)
		}
		if diff := cmp.Diff(a, d); diff != "" {
			t.Errorf("detected action differs from the configured-host one (-configured +detected):\n%s", diff)
		}
		return a
	}, *update)
}

func req(method, target string) *action.Request {
	u, err := url.Parse(target)
	if err != nil {
		panic(err)
	}
	return &action.Request{
		Method: method, Scheme: "https", Host: u.Hostname(), Port: 443,
		Path: u.Path, RawPath: u.EscapedPath(), Query: u.Query(), Header: http.Header{}, BodySize: 0,
	}
}

func withBody(r *action.Request, contentType, body string) *action.Request {
	r.Header.Set("Content-Type", contentType)
	r.Body = []byte(body)
	r.BodySize = int64(len(body))
	return r
}

func TestClassifyFields(t *testing.T) {
	p := New(Options{Hosts: []string{"k8s.example.test"}})
	type want struct {
		Operation   string
		Resources   []string
		ReadOnly    bool
		Destructive bool
		ParseError  string
		Fields      map[string]any
	}
	fields := func(verb, group, version, resource, sub, ns, name string, dry, isRes bool, path string) map[string]any {
		return map[string]any{
			"verb": verb, "api_group": group, "api_version": version, "resource": resource,
			"subresource": sub, "namespace": ns, "name": name, "dry_run": dry,
			"is_resource_request": isRes, "path": path, "label_selector": "", "field_selector": "",
			"object_kind": "", "object_name": "",
		}
	}
	tests := []struct {
		name string
		give *action.Request
		want want
	}{
		{
			name: "namespace delete is destructive",
			give: req("DELETE", "https://k8s.example.test/api/v1/namespaces/prod"),
			want: want{"delete", []string{"prod/namespaces/prod"}, false, true, "",
				fields("delete", "", "v1", "namespaces", "", "prod", "prod", false, true, "/api/v1/namespaces/prod")},
		},
		{
			name: "delete collection",
			give: req("DELETE", "https://k8s.example.test/apis/apps/v1/namespaces/drone/deployments"),
			want: want{"deletecollection", []string{"drone/deployments/"}, false, true, "",
				fields("deletecollection", "apps", "v1", "deployments", "", "drone", "", false, true, "/apis/apps/v1/namespaces/drone/deployments")},
		},
		{
			name: "eviction deletes a pod",
			give: req("POST", "https://k8s.example.test/api/v1/namespaces/drone/pods/db-0/eviction"),
			want: want{"create", []string{"drone/pods/db-0"}, false, true, "",
				fields("create", "", "v1", "pods", "eviction", "drone", "db-0", false, true, "/api/v1/namespaces/drone/pods/db-0/eviction")},
		},
		{
			name: "exec over WebSocket is create, never a read",
			give: req("GET", "https://k8s.example.test/api/v1/namespaces/default/pods/web/exec?command=sh"),
			want: want{"create", []string{"default/pods/web"}, false, false, "",
				fields("create", "", "v1", "pods", "exec", "default", "web", false, true, "/api/v1/namespaces/default/pods/web/exec")},
		},
		{
			name: "exec on a pods resource of another group keeps its verb",
			give: req("GET", "https://k8s.example.test/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/web/exec"),
			want: want{"get", []string{"default/pods/web"}, false, false, "",
				fields("get", "metrics.k8s.io", "v1beta1", "pods", "exec", "default", "web", false, true, "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/web/exec")},
		},
		{
			name: "node proxy GET is not read-only",
			give: req("GET", "https://k8s.example.test/api/v1/nodes/node-1/proxy/exec/default/web/app?command=id"),
			want: want{"get", []string{"/nodes/node-1"}, false, false, "",
				fields("get", "", "v1", "nodes", "proxy", "", "node-1", false, true, "/api/v1/nodes/node-1/proxy/exec/default/web/app")},
		},
		{
			name: "deprecated proxy verb",
			give: req("GET", "https://k8s.example.test/api/v1/proxy/namespaces/default/services/web/x"),
			want: want{"proxy", []string{"default/services/web"}, false, false, "",
				fields("proxy", "", "v1", "services", "", "default", "web", false, true, "/api/v1/proxy/namespaces/default/services/web/x")},
		},
		{
			name: "deprecated watch verb without a resource: the server refuses it",
			give: req("GET", "https://k8s.example.test/api/v1/watch"),
			want: want{"get", []string{"//"}, true, false, "unable to determine kind and namespace from the URL",
				fields("get", "", "v1", "", "", "", "", false, true, "/api/v1/watch")},
		},
		{
			name: "create with dryRun=All",
			give: req("POST", "https://k8s.example.test/api/v1/namespaces/default/configmaps?dryRun=All"),
			want: want{"create", []string{"default/configmaps/"}, false, false, "",
				fields("create", "", "v1", "configmaps", "", "default", "", true, true, "/api/v1/namespaces/default/configmaps")},
		},
		{
			name: "non-resource request",
			give: req("GET", "https://k8s.example.test/healthz"),
			want: want{"get", nil, true, false, "",
				fields("get", "", "", "", "", "", "", false, false, "/healthz")},
		},
		{
			name: "non-resource POST",
			give: req("POST", "https://k8s.example.test/apis/apps"),
			want: want{"post", nil, false, false, "",
				fields("post", "", "", "", "", "", "", false, false, "/apis/apps")},
		},
		{
			name: "Rancher cluster proxy prefix",
			give: req("DELETE", "https://rancher.example.test/k8s/clusters/c-m-abc12/api/v1/namespaces/prod"),
			want: want{"delete", []string{"prod/namespaces/prod"}, false, true, "",
				fields("delete", "", "v1", "namespaces", "", "prod", "prod", false, true, "/api/v1/namespaces/prod")},
		},
		{
			// Found by review: gateways in front of the API server.
			name: "GKE Connect Gateway prefix",
			give: req("DELETE", "https://connectgateway.googleapis.com/v1/projects/123/locations/global/gkeMemberships/shop/api/v1/namespaces/prod"),
			want: want{"delete", []string{"prod/namespaces/prod"}, false, true, "",
				fields("delete", "", "v1", "namespaces", "", "prod", "prod", false, true, "/api/v1/namespaces/prod")},
		},
		{
			name: "a configured host's own prefix",
			give: req("DELETE", "https://k8s.example.test/kubernetes/cluster/loft-prod/apis/apps/v1/namespaces/prod/deployments/web"),
			want: want{"delete", []string{"prod/deployments/web"}, false, true, "",
				fields("delete", "apps", "v1", "deployments", "", "prod", "web", false, true, "/apis/apps/v1/namespaces/prod/deployments/web")},
		},
		{
			name: "unknown method",
			give: req("OPTIONS", "https://k8s.example.test/api/v1/namespaces/default/pods"),
			want: want{"", []string{"default/pods/"}, false, false, "",
				fields("", "", "v1", "pods", "", "default", "", false, true, "/api/v1/namespaces/default/pods")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, ok := p.Classify(tt.give)
			if !ok {
				t.Fatalf("Classify(%s %s) = not claimed", tt.give.Method, tt.give.Path)
			}
			got := want{a.Operation, a.Resources, a.ReadOnly, a.Destructive, a.ParseError, a.Fields}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Classify(%s %s) mismatch (-want +got):\n%s", tt.give.Method, tt.give.Path, diff)
			}
			if a.Provider != "kubernetes" {
				t.Errorf("Provider = %q, want kubernetes", a.Provider)
			}
		})
	}
}

func TestDryRun(t *testing.T) {
	p := New(Options{Hosts: []string{"k8s.example.test"}})
	const pod = "https://k8s.example.test/api/v1/namespaces/default/pods/web"
	tests := []struct {
		name    string
		give    *action.Request
		want    bool
		wantErr string
	}{
		{"delete body dryRun", withBody(req("DELETE", pod), "application/json", `{"dryRun":["All"]}`), true, ""},
		{"delete body without dryRun ignores the query", withBody(req("DELETE", pod+"?dryRun=All"), "application/json", `{"propagationPolicy":"Background"}`), false, ""},
		{"delete without body reads the query", req("DELETE", pod+"?dryRun=All"), true, ""},
		{"delete query with an invalid value", req("DELETE", pod+"?dryRun=All&dryRun=Some"), false, ""},
		{"key is case-sensitive", withBody(req("DELETE", pod), "application/json", `{"DryRun":["All"]}`), false, ""},
		{"repeated key", withBody(req("DELETE", pod), "application/json", `{"dryRun":["All"],"dryRun":[]}`), false, ""},
		{"empty list", withBody(req("DELETE", pod), "application/json", `{"dryRun":[]}`), false, ""},
		{"not a list", withBody(req("DELETE", pod), "application/json", `{"dryRun":"All"}`), false, ""},
		{"no content type is JSON", withBody(req("DELETE", pod), "", `{"dryRun":["All"]}`), true, ""},
		{"protobuf is not read", withBody(req("DELETE", pod), "application/vnd.kubernetes.protobuf", "k8s\x00\x0a"), false, ""},
		{"malformed JSON", withBody(req("DELETE", pod), "application/json", `{"dryRun":["All"]`), false, "DeleteOptions body is not a JSON object"},
		{"JSON array", withBody(req("DELETE", pod), "application/json", `[1]`), false, "DeleteOptions body is not a JSON object"},
		{"trailing garbage after the object is ignored", withBody(req("DELETE", pod), "application/json", `{"dryRun":["All"]} x`), true, ""},
		{"truncated body", func() *action.Request {
			r := withBody(req("DELETE", pod), "application/json", `{"dryRun":["All"],`)
			r.BodyTruncated = true
			return r
		}(), false, "DeleteOptions body too large to read dryRun"},
		{"patch query", req("PATCH", pod+"?dryRun=All"), true, ""},
		{"update query", req("PUT", pod+"?dryRun=All"), true, ""},
		{"get ignores dryRun", req("GET", pod+"?dryRun=All"), false, ""},
		{"create with another value", req("POST", pod+"/eviction?dryRun=true"), false, ""},
		// Only handlers that honour dryRun count it (found by review).
		{"eviction", req("POST", pod+"/eviction?dryRun=All"), true, ""},
		{"status", req("PATCH", pod+"/status?dryRun=All"), true, ""},
		{"scale of a deployment", req("PATCH", "https://k8s.example.test/apis/apps/v1/namespaces/prod/deployments/web/scale?dryRun=All"), true, ""},
		{"a custom resource", req("PATCH", "https://k8s.example.test/apis/example.com/v1/namespaces/prod/widgets/w?dryRun=All"), true, ""},
		{"serviceaccounts/token mints a token anyway", req("POST", "https://k8s.example.test/api/v1/namespaces/prod/serviceaccounts/admin/token?dryRun=All"), false, ""},
		{"KubeVirt's stop reads its body", req("PUT", "https://k8s.example.test/apis/subresources.kubevirt.io/v1/namespaces/prod/virtualmachines/db/stop?dryRun=All"), false, ""},
		{"eviction of another resource", req("POST", "https://k8s.example.test/apis/example.com/v1/namespaces/prod/widgets/w/eviction?dryRun=All"), false, ""},
		{"ephemeral containers", req("PATCH", pod+"/ephemeralcontainers?dryRun=All"), true, ""},
		{"a CSR's approval", req("PUT", "https://k8s.example.test/apis/certificates.k8s.io/v1/certificatesigningrequests/c/approval?dryRun=All"), true, ""},
		{"not a resource request", req("DELETE", "https://k8s.example.test/v3/clusters/c-abc?dryRun=All"), false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, ok := p.Classify(tt.give)
			if !ok {
				t.Fatal("not claimed")
			}
			if got := a.Fields["dry_run"]; got != tt.want {
				t.Errorf("Classify(%s %s).dry_run = %v, want %v", tt.give.Method, tt.give.Path, got, tt.want)
			}
			if a.ParseError != tt.wantErr {
				t.Errorf("ParseError = %q, want %q", a.ParseError, tt.wantErr)
			}
		})
	}
}

func TestDetection(t *testing.T) {
	// Entries the config loader would refuse are ignored, not matched
	// loosely.
	p := New(Options{Hosts: []string{"k8s.internal:6443", "10.0.0.1", "[fd00::1]:6443", "API.Cluster.Example.", "not a host", "bad:port:x", ""}})
	if len(p.hosts) != 4 {
		t.Errorf("New kept %d host entries, want the 4 valid ones: %+v", len(p.hosts), p.hosts)
	}
	tests := []struct {
		give string // method and URL
		port int
		want bool
	}{
		// Configured hosts: any path, port as configured.
		{"GET https://k8s.internal/version", 6443, true},
		{"GET https://k8s.internal/version", 443, false},
		{"GET https://10.0.0.1/healthz", 443, true},
		{"GET https://10.0.0.1/healthz", 6443, true},
		{"GET https://[fd00::1]/livez", 6443, true},
		{"GET https://api.cluster.example/", 443, true},
		// Managed control planes.
		{"GET https://abc-1234.hcp.westeurope.azmk8s.io/version", 443, true},
		{"GET https://0123456789abcdef.gr7.us-east-1.eks.amazonaws.com/version", 443, true},
		{"GET https://1b2c.k8s.ondigitalocean.com/readyz", 443, true},
		// Path shapes on unknown hosts.
		{"GET https://unknown.example/api", 443, true},
		{"GET https://unknown.example/api/", 443, true},
		{"GET https://unknown.example/apis", 443, true},
		{"GET https://unknown.example/api/v1", 443, true},
		{"GET https://unknown.example/api/v1/namespaces", 443, true},
		{"DELETE https://unknown.example/api/v1/namespaces/prod", 443, true},
		{"GET https://unknown.example/api/v1/nodes/node-1", 443, true},
		{"GET https://unknown.example/api/v1/watch/namespaces/default/pods", 443, true},
		{"GET https://unknown.example/api/v1/proxy/nodes/node-1/x", 443, true},
		{"GET https://unknown.example/apis/apps", 443, true},
		{"GET https://unknown.example/apis/apps/v1", 443, true},
		{"DELETE https://unknown.example/apis/apps/v1/namespaces/drone/deployments/web", 443, true},
		{"GET https://unknown.example/apis/cert-manager.io/v1/certificates", 443, true},
		{"GET https://unknown.example/apis/flowcontrol.apiserver.k8s.io/v1beta3/flowschemas", 443, true},
		{"GET https://unknown.example/openapi/v2", 443, true},
		{"GET https://unknown.example/openapi/v3/apis/apps/v1", 443, true},
		{"GET https://rancher.example/k8s/clusters/c-m-1/api/v1/namespaces/x/pods", 443, true},
		// Ordinary web APIs that use /api/… are not Kubernetes.
		{"GET https://unknown.example/api/v1/users/42", 443, false},
		{"POST https://api.datadoghq.com/api/v1/events", 443, false},
		{"GET https://prometheus.example/api/v1/query", 443, false},
		{"GET https://unknown.example/api/v1/namespaces/x/events", 443, true},
		{"DELETE https://unknown.example/api/v1/projects/shop", 443, false},
		{"GET https://unknown.example/api/v2/namespaces/x", 443, false},
		{"GET https://unknown.example/api/v3/repos/acme/shop", 443, false},
		{"GET https://unknown.example/api/users", 443, false},
		{"GET https://unknown.example/api/v1/watch/users", 443, false},
		{"GET https://unknown.example/apis/v1/items", 443, false},
		{"GET https://unknown.example/apis/Example.COM/v1/items", 443, false},
		{"GET https://unknown.example/apis/example.com/latest/items", 443, false},
		{"GET https://unknown.example/apis/example.com/v0/items", 443, false},
		{"GET https://unknown.example/apis/a..b/v1/x", 443, false},
		{"GET https://unknown.example/apis/-a.b/v1/x", 443, false},
		{"GET https://unknown.example/version", 443, false},
		{"GET https://unknown.example/healthz", 443, false},
		{"GET https://unknown.example/openapi/v1", 443, false},
		{"GET https://unknown.example/openapi", 443, false},
		{"GET https://unknown.example/", 443, false},
		{"GET https://unknown.example/k8s/clusters//api/v1/namespaces", 443, false},
		{"GET https://unknown.example/k8s/clusters/c-1/api/v1/users", 443, false},
		{"GET https://unknown.example/prefix/api/v1/namespaces", 443, false},
		{"DELETE https://us-east1-connectgateway.googleapis.com/v1beta1/projects/p/locations/us-east1/memberships/m/api/v1/namespaces/x", 443, true},
		{"GET https://connectgateway.googleapis.com/v1/projects/p/locations/global/gkeMemberships/m", 443, true},
		{"GET https://other.googleapis.com/v1/projects/p/locations/global/gkeMemberships/m/api/v1/namespaces", 443, false},
		{"DELETE https://connectgateway.googleapis.com/v1beta1/projects/p/memberships/m/api/v1/namespaces/x", 443, true},
	}
	for _, tt := range tests {
		method, target, _ := strings.Cut(tt.give, " ")
		r := req(method, target)
		r.Port = tt.port
		if _, got := p.Classify(r); got != tt.want {
			t.Errorf("Classify(%s, port %d) claimed = %v, want %v", tt.give, tt.port, got, tt.want)
		}
	}
}

func TestTunnelIsNotClaimed(t *testing.T) {
	p := New(Options{Hosts: []string{"k8s.internal"}})
	r := &action.Request{Method: "CONNECT", Host: "k8s.internal", Port: 443, Tunnel: true}
	if _, ok := p.Classify(r); ok {
		t.Error("Classify(tunnel) claimed an opaque tunnel")
	}
	if _, ok := p.Classify(nil); ok {
		t.Error("Classify(nil) claimed")
	}
}

func TestRespond(t *testing.T) {
	p := New(Options{Hosts: []string{"k8s.example.test"}})
	r := req("DELETE", "https://k8s.example.test/apis/apps/v1/namespaces/drone/deployments/web")
	a, _ := p.Classify(r)
	msg := "countersign: denied by policy K8S-001: deleting in drone is not allowed. The request was not sent; if it is really needed, ask a human to do it."
	tests := []struct {
		name       string
		give       action.Denial
		act        action.Action
		wantStatus int
		want       map[string]any
	}{
		{
			name:       "deny",
			give:       action.Denial{Status: 403, Decision: "deny", Message: msg},
			act:        a,
			wantStatus: 403,
			want: map[string]any{
				"kind": "Status", "apiVersion": "v1", "metadata": map[string]any{}, "status": "Failure",
				"message": msg, "reason": "Forbidden", "code": float64(403),
				"details": map[string]any{"name": "web", "group": "apps", "kind": "deployments"},
			},
		},
		{
			name:       "audit failure keeps its status",
			give:       action.Denial{Status: 503, Decision: "deny", Message: "countersign: the audit log cannot be written"},
			act:        action.Action{Provider: "kubernetes"},
			wantStatus: 503,
			want: map[string]any{
				"kind": "Status", "apiVersion": "v1", "metadata": map[string]any{}, "status": "Failure",
				"message": "countersign: the audit log cannot be written", "reason": "ServiceUnavailable", "code": float64(503),
			},
		},
		{
			name:       "no status means forbidden",
			give:       action.Denial{Message: "countersign: x"},
			act:        action.Action{Provider: "kubernetes"},
			wantStatus: 403,
			want: map[string]any{
				"kind": "Status", "apiVersion": "v1", "metadata": map[string]any{}, "status": "Failure",
				"message": "countersign: x", "reason": "Forbidden", "code": float64(403),
			},
		},
		{
			name:       "unmapped status has no reason",
			give:       action.Denial{Status: 421, Message: "countersign: y"},
			act:        action.Action{Provider: "kubernetes"},
			wantStatus: 421,
			want: map[string]any{
				"kind": "Status", "apiVersion": "v1", "metadata": map[string]any{}, "status": "Failure",
				"message": "countersign: y", "reason": "", "code": float64(421),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := p.Respond(r, tt.act, tt.give)
			if resp.Status != tt.wantStatus {
				t.Errorf("Respond().Status = %d, want %d", resp.Status, tt.wantStatus)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			var got map[string]any
			if err := json.Unmarshal(resp.Body, &got); err != nil {
				t.Fatalf("body %q: %v", resp.Body, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Respond() body mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRespondThroughClassifier checks the wiring the proxy uses: the
// classifier routes the denial to this provider by ClassifiedBy.
func TestRespondThroughClassifier(t *testing.T) {
	c := action.NewClassifier(New(Options{}))
	r := req("DELETE", "https://unknown.example/api/v1/namespaces/prod")
	a := c.Classify(r)
	if a.ClassifiedBy != "kubernetes" {
		t.Fatalf("ClassifiedBy = %q, want kubernetes", a.ClassifiedBy)
	}
	resp := c.Respond(r, a, action.Denial{Status: 403, Message: "countersign: no"})
	if !bytes.Contains(resp.Body, []byte(`"reason":"Forbidden"`)) {
		t.Errorf("Respond() body = %s, want a Forbidden Status", resp.Body)
	}
}

func TestClientCertMessage(t *testing.T) {
	got := ClientCertMessage("k8s.internal:6443")
	for _, want := range []string{"countersign: ", "k8s.internal:6443", "client certificate", "token", "docs/kubernetes.md"} {
		if !strings.Contains(got, want) {
			t.Errorf("ClientCertMessage() = %q, want it to contain %q", got, want)
		}
	}
}

// Writes that delete without the delete verb are destructive (found by
// review): owner references to an owner that does not exist (the garbage
// collector deletes the object), and a NoExecute taint on a node.
func TestWritesThatDeleteAreDestructive(t *testing.T) {
	p := New(Options{Hosts: []string{"k8s.example.test"}})
	tests := []struct {
		name string
		give *action.Request
		want bool
	}{
		// Found by a later review: claims and disks deleted by policy, and
		// a DaemonSet moved off its nodes.
		{"StatefulSet claims deleted when scaled", withBody(req("PATCH", "https://k8s.example.test/apis/apps/v1/namespaces/prod/statefulsets/postgres"), "application/merge-patch+json",
			`{"spec":{"replicas":1,"persistentVolumeClaimRetentionPolicy":{"whenScaled":"Delete"}}}`), true},
		{"StatefulSet claims retained", withBody(req("PATCH", "https://k8s.example.test/apis/apps/v1/namespaces/prod/statefulsets/postgres"), "application/merge-patch+json",
			`{"spec":{"persistentVolumeClaimRetentionPolicy":{"whenScaled":"Retain","whenDeleted":"Retain"}}}`), false},
		{"StatefulSet claim policy by JSON Patch", withBody(req("PATCH", "https://k8s.example.test/apis/apps/v1/namespaces/prod/statefulsets/postgres"), "application/json-patch+json",
			`[{"op":"replace","path":"/spec/persistentVolumeClaimRetentionPolicy/whenDeleted","value":"Delete"}]`), true},
		{"volume reclaimed by deletion", withBody(req("PATCH", "https://k8s.example.test/api/v1/persistentvolumes/pv-1"), "application/merge-patch+json",
			`{"spec":{"persistentVolumeReclaimPolicy":"Delete"}}`), true},
		{"DaemonSet node selector", withBody(req("PATCH", "https://k8s.example.test/apis/apps/v1/namespaces/prod/daemonsets/fluentd"), "application/strategic-merge-patch+json",
			`{"spec":{"template":{"spec":{"nodeSelector":{"no-such-label":"x"}}}}}`), true},
		{"DaemonSet applied whole", withBody(req("PATCH", "https://k8s.example.test/apis/apps/v1/namespaces/prod/daemonsets/fluentd"), "application/apply-patch+yaml",
			"spec:\n  template:\n    spec:\n      nodeSelector:\n        kubernetes.io/os: linux\n"), false},
		{"DaemonSet replaced whole", withBody(req("PUT", "https://k8s.example.test/apis/apps/v1/namespaces/prod/daemonsets/fluentd"), "application/json",
			`{"kind":"DaemonSet","metadata":{"name":"fluentd"},"spec":{"template":{"spec":{"nodeSelector":{"kubernetes.io/os":"linux"}}}}}`), false},
		{"volume recycled", withBody(req("PATCH", "https://k8s.example.test/api/v1/persistentvolumes/pv-1"), "application/merge-patch+json",
			`{"spec":{"persistentVolumeReclaimPolicy":"Recycle"}}`), true},
		{"DaemonSet image", withBody(req("PATCH", "https://k8s.example.test/apis/apps/v1/namespaces/prod/daemonsets/fluentd"), "application/strategic-merge-patch+json",
			`{"spec":{"template":{"spec":{"containers":[{"name":"f","image":"fluentd:2"}]}}}}`), false},
		{"namespace patched with an owner", withBody(req("PATCH", "https://k8s.example.test/api/v1/namespaces/prod"), "application/merge-patch+json",
			`{"metadata":{"ownerReferences":[{"apiVersion":"v1","kind":"Namespace","name":"gone","uid":"6f1d1f9e-0000-4000-8000-000000000000"}]}}`), true},
		{"deployment replaced with an owner", withBody(req("PUT", "https://k8s.example.test/apis/apps/v1/namespaces/prod/deployments/web"), "application/json",
			`{"kind":"Deployment","metadata":{"name":"web","ownerReferences":[{"name":"x"}]}}`), true},
		{"node tainted NoExecute", withBody(req("PATCH", "https://k8s.example.test/api/v1/nodes/node-1"), "application/strategic-merge-patch+json",
			`{"spec":{"taints":[{"key":"x","effect":"NoExecute"}]}}`), true},
		{"node tainted NoSchedule", withBody(req("PATCH", "https://k8s.example.test/api/v1/nodes/node-1"), "application/strategic-merge-patch+json",
			`{"spec":{"taints":[{"key":"x","effect":"NoSchedule"}]}}`), false},
		{"labels patched", withBody(req("PATCH", "https://k8s.example.test/api/v1/namespaces/prod"), "application/merge-patch+json",
			`{"metadata":{"labels":{"team":"a"}}}`), false},
		// Found by review of the first fix: escapes, JSON Patch, false alarms.
		{"owner references spelt with an escape", withBody(req("PATCH", "https://k8s.example.test/api/v1/namespaces/prod"), "application/merge-patch+json",
			`{"metadata":{"ownerReferences":[{"name":"gone"}]}}`), true},
		{"NoExecute spelt with an escape", withBody(req("PATCH", "https://k8s.example.test/api/v1/nodes/node-1"), "application/strategic-merge-patch+json",
			`{"spec":{"taints":[{"key":"x","effect":"NoExecute"}]}}`), true},
		{"owner references added by JSON Patch", withBody(req("PATCH", "https://k8s.example.test/api/v1/namespaces/prod"), "application/json-patch+json",
			`[{"op":"add","path":"/metadata/ownerReferences","value":[{"name":"gone"}]}]`), true},
		{"taint added by JSON Patch", withBody(req("PATCH", "https://k8s.example.test/api/v1/nodes/node-1"), "application/json-patch+json",
			`[{"op":"add","path":"/spec/taints/-","value":{"key":"x","effect":"NoExecute"}}]`), true},
		{"owner references in apply YAML", withBody(req("PATCH", "https://k8s.example.test/api/v1/namespaces/prod"), "application/apply-patch+yaml",
			"metadata:\n  ownerReferences:\n  - name: gone\n"), true},
		{"a ConfigMap that mentions owner references", withBody(req("PUT", "https://k8s.example.test/api/v1/namespaces/prod/configmaps/doc"), "application/json",
			`{"kind":"ConfigMap","metadata":{"name":"doc"},"data":{"README":"ownerReferences and NoExecute explained"}}`), false},
		{"a NoSchedule taint", withBody(req("PATCH", "https://k8s.example.test/api/v1/nodes/node-1"), "application/json-patch+json",
			`[{"op":"add","path":"/spec/taints/-","value":{"key":"x","effect":"NoSchedule"}}]`), false},
		// The server's json-patch drops what comes before the first "/"
		// (found by review).
		{"owner references at a path without its leading slash", withBody(req("PATCH", "https://k8s.example.test/api/v1/namespaces/prod"), "application/json-patch+json",
			`[{"op":"add","path":"x/metadata/ownerReferences","value":[{"uid":"1"}]}]`), true},
		{"taint at a path without its leading slash", withBody(req("PATCH", "https://k8s.example.test/api/v1/nodes/node-1"), "application/json-patch+json",
			`[{"op":"add","path":"x/spec/taints/-","value":{"effect":"NoExecute"}}]`), true},
		{"a body that cannot be read", withBody(req("PATCH", "https://k8s.example.test/api/v1/namespaces/prod"), "application/vnd.kubernetes.protobuf",
			"k8s\x00\x0a\x0f"), true},
		// Other fields whose writing deletes: a pod's active deadline, a
		// Job suspended or given a time to live (found by review).
		{"pod given an active deadline", withBody(req("PATCH", "https://k8s.example.test/api/v1/namespaces/prod/pods/db-0"), "application/strategic-merge-patch+json",
			`{"spec":{"activeDeadlineSeconds":1}}`), true},
		{"pod's deadline added by JSON Patch", withBody(req("PATCH", "https://k8s.example.test/api/v1/namespaces/prod/pods/db-0"), "application/json-patch+json",
			`[{"op":"add","path":"/spec/activeDeadlineSeconds","value":1}]`), true},
		{"job suspended", withBody(req("PATCH", "https://k8s.example.test/apis/batch/v1/namespaces/prod/jobs/migrate"), "application/merge-patch+json",
			`{"spec":{"suspend":true}}`), true},
		{"job given a time to live", withBody(req("PATCH", "https://k8s.example.test/apis/batch/v1/namespaces/prod/jobs/migrate"), "application/apply-patch+yaml",
			"spec:\n  ttlSecondsAfterFinished: 0\n"), true},
		{"job's time to live replaced by JSON Patch", withBody(req("PATCH", "https://k8s.example.test/apis/batch/v1/namespaces/prod/jobs/migrate"), "application/json-patch+json",
			`[{"op":"replace","path":"/spec/ttlSecondsAfterFinished","value":0}]`), true},
		{"job given an active deadline", withBody(req("PATCH", "https://k8s.example.test/apis/batch/v1/namespaces/prod/jobs/migrate"), "application/merge-patch+json",
			`{"spec":{"activeDeadlineSeconds":1}}`), true},
		{"job's deadline added by JSON Patch", withBody(req("PATCH", "https://k8s.example.test/apis/batch/v1/namespaces/prod/jobs/migrate"), "application/json-patch+json",
			`[{"op":"add","path":"/spec/activeDeadlineSeconds","value":1}]`), true},
		{"job's parallelism set to 0", withBody(req("PATCH", "https://k8s.example.test/apis/batch/v1/namespaces/prod/jobs/migrate"), "application/merge-patch+json",
			`{"spec":{"parallelism":0}}`), true},
		{"job's parallelism set to 0 in YAML", withBody(req("PATCH", "https://k8s.example.test/apis/batch/v1/namespaces/prod/jobs/migrate"), "application/apply-patch+yaml",
			"spec:\n  parallelism: 0\n"), true},
		{"job's backoff limit lowered", withBody(req("PATCH", "https://k8s.example.test/apis/batch/v1/namespaces/prod/jobs/migrate"), "application/merge-patch+json",
			`{"spec":{"backoffLimit":0}}`), true},
		{"job's parallelism set to 2", withBody(req("PATCH", "https://k8s.example.test/apis/batch/v1/namespaces/prod/jobs/migrate"), "application/merge-patch+json",
			`{"spec":{"parallelism":2}}`), false},
		{"job resumed", withBody(req("PATCH", "https://k8s.example.test/apis/batch/v1/namespaces/prod/jobs/migrate"), "application/merge-patch+json",
			`{"spec":{"suspend":false}}`), false},
		{"cronjob suspended (no runs stopped)", withBody(req("PATCH", "https://k8s.example.test/apis/batch/v1/namespaces/prod/cronjobs/nightly"), "application/merge-patch+json",
			`{"spec":{"suspend":true}}`), false},
		{"deployment with an active deadline in its template", withBody(req("PATCH", "https://k8s.example.test/apis/apps/v1/namespaces/prod/deployments/web"), "application/merge-patch+json",
			`{"spec":{"activeDeadlineSeconds":1}}`), false},
	}
	for _, tt := range tests {
		a, ok := p.Classify(tt.give)
		if !ok || a.Destructive != tt.want {
			t.Errorf("%s: destructive %v, want %v", tt.name, a.Destructive, tt.want)
		}
	}
}

// A write whose body was cut at the inspection limit may delete or scale
// to zero in what was not read (found by review: YAML cut at the limit
// still decodes, and an apply patch with owner references, a NoExecute
// taint or replicas: 0 after a 1 MiB comment was a harmless write).
func TestTruncatedWriteIsDestructive(t *testing.T) {
	p := New(Options{Hosts: []string{"k8s.example.test"}})
	const limit = 1 << 20
	pad := "# " + strings.Repeat("x", limit) + "\n"
	for _, c := range []struct{ name, method, target, body string }{
		{"owner references", "PATCH", "https://k8s.example.test/api/v1/namespaces/prod",
			"metadata:\n  labels:\n    team: a\n" + pad + "  ownerReferences:\n  - {apiVersion: v1, kind: ConfigMap, name: gone, uid: 6f1d1f9e-0000-4000-8000-000000000000}\n"},
		{"NoExecute taint", "PATCH", "https://k8s.example.test/api/v1/nodes/node-1",
			"metadata:\n  labels:\n    a: b\n" + pad + "spec:\n  taints:\n  - {key: x, effect: NoExecute}\n"},
		{"scale to zero", "PATCH", "https://k8s.example.test/apis/apps/v1/namespaces/prod/deployments/web",
			"metadata:\n  labels:\n    a: b\n" + pad + "spec:\n  replicas: 0\n"},
		{"replace", "PUT", "https://k8s.example.test/apis/apps/v1/namespaces/prod/deployments/web",
			"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n" + pad + "spec:\n  replicas: 0\n"},
	} {
		r := withBody(req(c.method, c.target+"?fieldManager=kubectl"), "application/apply-patch+yaml", c.body)
		r.Body, r.BodyTruncated = r.Body[:limit], true
		a, ok := p.Classify(r)
		if !ok {
			t.Fatalf("%s: not classified", c.name)
		}
		if !a.Destructive || a.ParseError == "" {
			t.Errorf("%s: a truncated write is destructive=%v, parse error %q; want destructive with a parse error", c.name, a.Destructive, a.ParseError)
		}
	}
}

// A YAML body with aliases is not expanded: an alias bomb of a few KiB
// would take gigabytes (found by review). It counts as unreadable.
func TestYAMLAliasesAreNotExpanded(t *testing.T) {
	bomb := "s: &s \"" + strings.Repeat("x", 20000) + "\"\nl:\n" + strings.Repeat("- *s\n", 5000)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if v := DecodeYAML([]byte(bomb)); v != nil {
		t.Fatalf("an alias bomb decoded to %T", v)
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
		t.Errorf("deciding not to decode it allocated %d MiB", grew>>20)
	}
	if v := DecodeYAML([]byte("hosts: [\"*.example.com\"]\nspec: {replicas: 0}\n")); v == nil {
		t.Error("a body with a '*' in a string and no alias was not decoded")
	}
}
