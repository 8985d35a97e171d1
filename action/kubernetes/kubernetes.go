// Package kubernetes classifies Kubernetes API requests with the same
// verb/resource/namespace/name vocabulary as the API server's RequestInfo,
// and answers denials with a Status object kubectl prints.
//
// The RequestInfo algorithm is ported from k8s.io/apiserver (requestinfo.go
// says why and from which version); detect.go decides which servers are
// Kubernetes API servers. docs/kubernetes.md is the user-facing account of
// both, and of why clusters that authenticate with client certificates cannot
// be intercepted.
package kubernetes

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/countersign/countersign/action"
)

// Options configures the Kubernetes provider.
type Options struct {
	// Hosts are API servers (host or host:port) to classify as Kubernetes
	// besides detection by path shape (kubernetes.hosts in the config).
	Hosts []string
}

// Provider is the Kubernetes classifier.
type Provider struct {
	hosts []hostEntry
}

// New returns the Kubernetes provider. Host entries it cannot read are
// ignored (the config loader has already refused them).
func New(opts Options) *Provider {
	p := &Provider{}
	for _, h := range opts.Hosts {
		if e, ok := parseHostEntry(h); ok {
			p.hosts = append(p.hosts, e)
		}
	}
	return p
}

// Name implements action.Provider.
func (*Provider) Name() string { return "kubernetes" }

// connectSubresources are the pod subresources that open a stream into a
// container. kubectl before 1.30 asks for them with a SPDY POST, later ones
// with a WebSocket GET; both are verb create (see Classify).
var connectSubresources = []string{"exec", "attach", "portforward"}

// Classify implements action.Provider. It claims requests to a configured
// or managed API server, and requests elsewhere whose path has a shape only
// Kubernetes uses (detect.go).
func (p *Provider) Classify(r *action.Request) (action.Action, bool) {
	if r == nil || r.Tunnel {
		return action.Action{}, false
	}
	path := r.Path
	known := p.knownHost(r.Host, r.Port)
	if n, byHost := gatewayPrefix(r.Host, path, known); n > 0 {
		path, known = path[n:], known || byHost
		if path == "" {
			path = "/"
		}
	}
	if !known && !kubernetesShape(path) {
		return action.Action{}, false
	}

	info, err := newRequestInfo(r.Method, path, r.Query)
	a := action.Action{Provider: "kubernetes"}
	if err != nil {
		a.ParseError = err.Error()
	}

	verb := info.Verb
	if info.IsResourceRequest && info.APIGroup == "" && info.Resource == "pods" && slices.Contains(connectSubresources, info.Subresource) {
		// RequestInfo says get for the WebSocket form and create for the SPDY
		// form of the same exec. Since Kubernetes 1.35 (feature gate
		// AuthorizePodWebsocketUpgradeCreatePermission) the API server also
		// requires create for the WebSocket form; report create for both so
		// that a policy cannot tell them apart, and never sees an exec as a
		// read.
		verb = "create"
	}
	a.Operation = verb

	dryRun, perr := dryRunOf(r, verb)
	if !honoursDryRun(info) {
		dryRun = false
	}
	if perr != "" && a.ParseError == "" {
		a.ParseError = perr
	}

	var objKind, objName string
	if verb == "create" || verb == "update" {
		objKind, objName = objectOf(r.Header.Get("Content-Type"), r.Body, r.BodyTruncated)
	}

	a.ReadOnly = readOnly(info, verb)
	a.Destructive = verb == "delete" || verb == "deletecollection" ||
		(verb == "create" && info.APIGroup == "" && info.Resource == "pods" && info.Subresource == "eviction") ||
		deletesByWrite(verb, info.APIGroup, info.Resource, r.Header.Get("Content-Type"), r.Body)
	if r.BodyTruncated && (verb == "create" || verb == "update" || verb == "patch") {
		// What was not read may delete or scale to zero: owner references,
		// a NoExecute taint, replicas: 0 after a long comment (found by
		// review: YAML cut at the limit still decodes, and the API server
		// takes a body past 1 MiB).
		a.Destructive = true
		if a.ParseError == "" {
			a.ParseError = "the body is larger than inspect.body_limit and was read in part; what it changes is assumed destructive"
		}
	}
	if info.IsResourceRequest {
		a.Resources = []string{info.Namespace + "/" + info.Resource + "/" + info.Name}
	}
	a.Fields = map[string]any{
		"verb":                verb,
		"api_group":           info.APIGroup,
		"api_version":         info.APIVersion,
		"resource":            info.Resource,
		"subresource":         info.Subresource,
		"namespace":           info.Namespace,
		"name":                info.Name,
		"dry_run":             dryRun,
		"is_resource_request": info.IsResourceRequest,
		"path":                info.Path,
		"label_selector":      info.LabelSelector,
		"field_selector":      info.FieldSelector,
		"object_kind":         objKind,
		"object_name":         objName,
	}
	if verb == "create" || verb == "update" || verb == "patch" {
		if n, ok := replicasOf(r.Header.Get("Content-Type"), r.Body, r.BodyTruncated, info.Subresource == "scale", verb == "update"); ok {
			a.Fields["replicas"] = n
		}
	}
	return a, true
}

func (p *Provider) knownHost(host string, port int) bool {
	for _, e := range p.hosts {
		if e.host == host && (e.port == 0 || e.port == port) {
			return true
		}
	}
	for _, s := range managedSuffixes {
		if strings.HasSuffix(host, s) {
			return true
		}
	}
	return false
}

// readOnly: get, list and watch read; exec and friends never do, and neither
// does a proxy: a GET through nodes/proxy reaches the kubelet's own API,
// exec included.
func readOnly(info requestInfo, verb string) bool {
	if !info.IsResourceRequest {
		return verb == "get" || verb == "head" || verb == "options"
	}
	if info.Subresource == "proxy" || slices.Contains(connectSubresources, info.Subresource) {
		return false
	}
	return verb == "get" || verb == "list" || verb == "watch"
}

// honoursDryRun reports whether the API server's handler for the request
// honours dryRun: the resources its registry stores (CRDs' too) and their
// status and scale, a pod's eviction, binding, ephemeral containers and
// resize, a CSR's approval and a namespace's finalize. Other subresources
// may ignore it (found by review): serviceaccounts/token mints a real token
// under ?dryRun=All, and KubeVirt's stop and console read their dry run
// from the body only. A request whose dry run is not honoured is a real
// one to the policy.
func honoursDryRun(info requestInfo) bool {
	if !info.IsResourceRequest {
		// Not the API server's resources (Rancher's /v3, a proxied
		// path): nothing says dryRun means anything there (found by
		// review).
		return false
	}
	switch info.Subresource {
	case "", "status", "scale":
		return true
	case "eviction", "binding", "ephemeralcontainers", "resize":
		return info.APIGroup == "" && info.Resource == "pods"
	case "approval":
		return info.APIGroup == "certificates.k8s.io" && info.Resource == "certificatesigningrequests"
	case "finalize":
		return info.APIGroup == "" && info.Resource == "namespaces"
	}
	return false
}

// maxDeleteOptions bounds the DeleteOptions body parsed for dryRun; real ones
// are well under 1 KiB.
const maxDeleteOptions = 64 << 10

// dryRunOf reports whether the API server will only pretend to perform the
// request: every dryRun value is "All" (the only valid one; anything else
// is refused with 400). Create, update and patch take dryRun from the query;
// delete and deletecollection from the DeleteOptions body when there is one,
// else from the query, as the API server's delete handler does. When in
// doubt the answer is false, the side on which a policy stays strict;
// perr says why there was doubt.
func dryRunOf(r *action.Request, verb string) (dryRun bool, perr string) {
	switch verb {
	case "create", "update", "patch":
		return allAll(r.Query["dryRun"]), ""
	case "delete", "deletecollection":
	default:
		return false, ""
	}
	if len(r.Body) == 0 && !r.BodyTruncated {
		return allAll(r.Query["dryRun"]), ""
	}
	if !jsonContent(r.Header.Get("Content-Type")) {
		// Protobuf or YAML DeleteOptions: not read.
		return false, ""
	}
	if r.BodyTruncated || len(r.Body) > maxDeleteOptions {
		return false, "DeleteOptions body too large to read dryRun"
	}
	vals, ok := deleteOptionsDryRun(r.Body)
	if !ok {
		return false, "DeleteOptions body is not a JSON object"
	}
	return allAll(vals), ""
}

// deletesByWrite reports whether an update or patch deletes without the
// delete verb (found by review): owner references that name an owner that
// does not exist make the garbage collector delete the object (a namespace
// with everything in it), and a NoExecute taint on a node makes the cluster
// delete every pod there that does not tolerate it. So do, for a pod, an
// active deadline (the kubelet kills it when it passes) and, for a Job,
// suspending it or setting its parallelism to 0 (its running pods are
// deleted), an active deadline (they are killed when it passes), a failure
// limit (a backoffLimit below the failures already counted fails the Job
// and terminates its pods; its value now is not known here, so any write
// counts) or a time to live after it finishes (a finished Job and its pods
// are deleted when it passes). A
// body countersign cannot decode (protobuf, or broken) counts as one that
// does, when it could.
func deletesByWrite(verb, group, resource, contentType string, body []byte) bool {
	if verb != "update" && verb != "patch" || len(body) == 0 {
		return false
	}
	k := writeTarget{
		node: group == "" && resource == "nodes", pod: group == "" && resource == "pods", job: group == "batch" && resource == "jobs",
		sts: group == "apps" && resource == "statefulsets", pv: group == "" && resource == "persistentvolumes",
		ds: group == "apps" && resource == "daemonsets",
		// A patch other than an apply sends what it changes; a replace
		// or an apply sends the whole object, selector unchanged or not
		// (noted by review: every Helm upgrade would count).
		partial: verb == "patch" && !strings.HasPrefix(contentType, "application/apply-patch"),
	}
	v := decodeBody(contentType, body)
	if v == nil {
		return true
	}
	if ops, isPatch := v.([]any); isPatch {
		for _, o := range ops {
			op, _ := o.(map[string]any)
			kind, _ := op["op"].(string)
			path, _ := op["path"].(string)
			path = serverPatchPath(path)
			switch kind {
			case "copy", "move":
				// A value from elsewhere in the object: unknown.
				if k.reaches(path) {
					return true
				}
			case "add", "replace":
				// The value put at path, as the part of a document it is.
				if k.deletes(wrapAt(path, op["value"])) {
					return true
				}
			}
		}
		return false
	}
	return k.deletes(v)
}

// isZero reports whether a decoded JSON or YAML number is 0.
func isZero(v any) bool {
	switch n := v.(type) {
	case json.Number:
		f, err := n.Float64()
		return err == nil && f == 0
	case float64:
		return n == 0
	case int64:
		return n == 0
	case int:
		return n == 0
	}
	return false
}

// writeTarget is what an update or patch writes to, as far as writes
// that delete are concerned.
type writeTarget struct{ node, pod, job, sts, pv, ds, partial bool }

// reaches reports whether a JSON Patch path is, is inside or holds a field
// whose writing can delete.
func (k writeTarget) reaches(path string) bool {
	return under(path, "/metadata/ownerReferences") ||
		k.node && under(path, "/spec/taints") ||
		k.pod && under(path, "/spec/activeDeadlineSeconds") ||
		k.job && (under(path, "/spec/suspend") || under(path, "/spec/ttlSecondsAfterFinished") ||
			under(path, "/spec/activeDeadlineSeconds") || under(path, "/spec/parallelism") ||
			under(path, "/spec/backoffLimit") || under(path, "/spec/maxFailedIndexes")) ||
		k.sts && under(path, "/spec/persistentVolumeClaimRetentionPolicy") ||
		k.pv && under(path, "/spec/persistentVolumeReclaimPolicy") ||
		k.ds && k.partial && (under(path, "/spec/template/spec/nodeSelector") || under(path, "/spec/template/spec/affinity"))
}

// deletes reports whether a document (or patch) sets owner references,
// or a field of the target that deletes (see deletesByWrite).
func (k writeTarget) deletes(v any) bool {
	doc, _ := v.(map[string]any)
	meta, _ := doc["metadata"].(map[string]any)
	if refs, has := meta["ownerReferences"]; has && refs != nil {
		return true
	}
	spec, _ := doc["spec"].(map[string]any)
	switch {
	case k.node:
		return noExecute(spec["taints"])
	case k.pod:
		return spec["activeDeadlineSeconds"] != nil
	case k.job:
		return spec["suspend"] == true || spec["ttlSecondsAfterFinished"] != nil ||
			spec["activeDeadlineSeconds"] != nil || isZero(spec["parallelism"]) ||
			spec["backoffLimit"] != nil || spec["maxFailedIndexes"] != nil
	case k.sts:
		// Claims deleted with their pods when scaled down or with the
		// StatefulSet: the database's data (found by review).
		policy, _ := spec["persistentVolumeClaimRetentionPolicy"].(map[string]any)
		return strings.EqualFold(fmt.Sprint(policy["whenScaled"]), "Delete") || strings.EqualFold(fmt.Sprint(policy["whenDeleted"]), "Delete")
	case k.pv:
		// The disk deleted with its claim.
		policy := fmt.Sprint(spec["persistentVolumeReclaimPolicy"])
		return strings.EqualFold(policy, "Delete") || strings.EqualFold(policy, "Recycle")
	case k.ds:
		// Pods taken off every node the new selector or affinity leaves
		// out: a DaemonSet's scale to zero.
		template, _ := spec["template"].(map[string]any)
		podSpec, _ := template["spec"].(map[string]any)
		_, hasSelector := podSpec["nodeSelector"]
		_, hasAffinity := podSpec["affinity"]
		// A replace or an apply sends the whole object, its selector
		// changed or not: without the stored object, countersign cannot
		// tell (a review found both a key-based guess's misses and its
		// false alarms on every Helm upgrade), so only a patch that sets
		// the selector counts. Documented in docs/kubernetes.md.
		return k.partial && (hasSelector || hasAffinity)
	}
	return false
}

// serverPatchPath is a JSON Patch path as the API server's json-patch
// library reads it: it drops whatever comes before the first '/', checked
// or not, so "x/metadata/ownerReferences" is /metadata/ownerReferences and
// "x" the whole object (found by review).
func serverPatchPath(p string) string {
	if i := strings.IndexByte(p, '/'); i >= 0 {
		return p[i:]
	}
	return ""
}

// under reports whether a JSON Patch path is p, inside it, or holds it.
func under(path, p string) bool {
	return path == p || strings.HasPrefix(path, p+"/") || strings.HasPrefix(p, path+"/") || path == ""
}

// wrapAt puts a JSON Patch value where its path says, as a document: the
// value of "/metadata/ownerReferences/0" becomes
// {"metadata": {"ownerReferences": [value]}}. Array indexes become
// one-element lists.
func wrapAt(path string, value any) any {
	if path == "" {
		return value
	}
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	for i := len(parts) - 1; i >= 0; i-- {
		if i > 0 && (parts[i] == "-" || isIndex(parts[i])) {
			value = []any{value}
			continue
		}
		value = map[string]any{strings.ReplaceAll(strings.ReplaceAll(parts[i], "~1", "/"), "~0", "~"): value}
	}
	return value
}

func isIndex(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// noExecute reports whether a taint list (or a spec holding one) has a
// NoExecute taint.
func noExecute(v any) bool {
	switch x := v.(type) {
	case []any:
		for _, t := range x {
			if noExecute(t) {
				return true
			}
		}
	case map[string]any:
		if x["effect"] == "NoExecute" {
			return true
		}
		return noExecute(x["taints"])
	}
	return false
}

// jsonContent reports whether a Content-Type is JSON, or absent (which the
// API server also decodes as JSON).
func jsonContent(ct string) bool {
	if ct == "" {
		return true
	}
	mt := serverMediaType(ct)
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

func allAll(vals []string) bool {
	if len(vals) == 0 {
		return false
	}
	for _, v := range vals {
		if v != "All" {
			return false
		}
	}
	return true
}

// deleteOptionsDryRun returns the dryRun list of a JSON DeleteOptions. The
// key is matched case-sensitively, as the API server's decoder does
// (encoding/json's case folding would read "DRYRUN", which the server
// ignores), and a repeated key yields no values, since which one wins is
// decoder-specific.
func deleteOptionsDryRun(body []byte) (vals []string, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, false
	}
	seen := 0
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, false
		}
		key, _ := t.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, false
		}
		if key != "dryRun" {
			continue
		}
		seen++
		vals = nil
		if err := json.Unmarshal(raw, &vals); err != nil {
			// Not a list of strings: the server refuses the body.
			return nil, true
		}
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return nil, false
	}
	if seen != 1 {
		return nil, true
	}
	return vals, true
}

// Respond implements action.Responder: a metav1.Status with the denial's
// message, which kubectl prints as
// "Error from server (Forbidden): countersign: …".
func (*Provider) Respond(r *action.Request, a action.Action, d action.Denial) action.Response {
	code := d.Status
	if code == 0 {
		code = http.StatusForbidden
	}
	details := map[string]any{}
	if s, _ := a.Fields["name"].(string); s != "" {
		details["name"] = s
	}
	if s, _ := a.Fields["api_group"].(string); s != "" {
		details["group"] = s
	}
	if s, _ := a.Fields["resource"].(string); s != "" {
		// The API server puts the resource, not the kind, here in its own
		// Forbidden errors.
		details["kind"] = s
	}
	st := map[string]any{
		"kind":       "Status",
		"apiVersion": "v1",
		"metadata":   map[string]any{},
		"status":     "Failure",
		"message":    d.Message,
		"reason":     statusReason(code),
		"code":       code,
	}
	if len(details) > 0 {
		st["details"] = details
	}
	body, err := json.Marshal(st)
	if err != nil {
		return action.PlainText(d)
	}
	body = append(body, '\n')
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	return action.Response{Status: code, Header: h, Body: body}
}

// statusReason is the metav1.StatusReason the API server uses for code.
func statusReason(code int) string {
	switch code {
	case http.StatusBadRequest:
		return "BadRequest"
	case http.StatusUnauthorized:
		return "Unauthorized"
	case http.StatusForbidden:
		return "Forbidden"
	case http.StatusNotFound:
		return "NotFound"
	case http.StatusMethodNotAllowed:
		return "MethodNotAllowed"
	case http.StatusNotAcceptable:
		return "NotAcceptable"
	case http.StatusConflict:
		return "Conflict"
	case http.StatusGone:
		return "Expired"
	case http.StatusRequestEntityTooLarge:
		return "RequestEntityTooLarge"
	case http.StatusUnsupportedMediaType:
		return "UnsupportedMediaType"
	case http.StatusUnprocessableEntity:
		return "Invalid"
	case http.StatusTooManyRequests:
		return "TooManyRequests"
	case http.StatusInternalServerError:
		return "InternalError"
	case http.StatusServiceUnavailable:
		return "ServiceUnavailable"
	case http.StatusGatewayTimeout:
		return "Timeout"
	}
	return ""
}

// ClientCertMessage is what the agent is told when the API server at host
// asked for a TLS client certificate and the request failed for want of
// one. The proxy terminates the agent's TLS connection and opens its own to
// the server: the certificate in the agent's kubeconfig is never offered to
// the proxy, and even if it were, proving possession of it in the server's
// handshake needs the private key, which stays with the agent.
func ClientCertMessage(host string) string {
	return "countersign: the Kubernetes API server " + host + " authenticates clients with TLS client certificates, " +
		"which cannot pass through countersign: it inspects HTTPS by terminating TLS, so the server never sees " +
		"the certificate in your kubeconfig, and the server did not carry out the request. Use token authentication for this cluster " +
		"(a kubeconfig user with `token`, `tokenFile` or an `exec` credential plugin), or ask a human to run " +
		"this command outside countersign; see docs/kubernetes.md in countersign."
}
