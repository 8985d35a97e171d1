package kubernetes

import (
	"regexp"
	"slices"
	"strings"

	"github.com/countersign/countersign/internal/hostport"
)

// Which servers count as Kubernetes API servers.
//
// A configured host (kubernetes.hosts) and the hostnames of managed control
// planes are classified whatever the path. Any other host is classified only
// when the path has a shape that only Kubernetes uses, because plenty of
// ordinary web APIs live under /api/v1/…: a false positive would change the
// vocabulary those requests are judged in (operation "delete" instead of
// "DELETE"). The shapes are documented in docs/kubernetes.md; keep the two
// in step.

// managedSuffixes are the API server hostnames of managed Kubernetes
// services: AKS (<prefix>-<hash>.hcp.<region>.azmk8s.io), EKS
// (<id>.<zone>.<region>.eks.amazonaws.com) and DigitalOcean
// (<uuid>.k8s.ondigitalocean.com).
var managedSuffixes = []string{".azmk8s.io", ".eks.amazonaws.com", ".k8s.ondigitalocean.com"}

// coreResources are the resources of the core group (/api/v1), as served by
// Kubernetes 1.32. A path /api/v1/<one of these> is a Kubernetes path even on
// an unknown host. "events" is left out: Datadog's API (and others) has
// /api/v1/events, and Kubernetes serves only reads of events there (writes go
// through /api/v1/namespaces/…).
var coreResources = []string{
	"bindings", "componentstatuses", "configmaps", "endpoints",
	"limitranges", "namespaces", "nodes", "persistentvolumeclaims",
	"persistentvolumes", "pods", "podtemplates", "replicationcontrollers",
	"resourcequotas", "secrets", "serviceaccounts", "services",
}

// dotlessGroups are the built-in API groups whose names have no dot; every
// other group (k8s.io groups, CRDs, aggregated APIs) must have one: the API
// server refuses a CustomResourceDefinition whose group has none.
var dotlessGroups = []string{"apps", "autoscaling", "batch", "extensions", "policy"}

// apiVersionRE is the shape of a Kubernetes API version: v1, v2beta1,
// v1alpha3.
var apiVersionRE = regexp.MustCompile(`^v[1-9][0-9]*(?:(?:alpha|beta)[1-9][0-9]*)?$`)

// maxPrefixSegments bounds the work spent on a path; no Kubernetes path shape
// needs more segments to be recognised.
const maxPrefixSegments = 6

// rancherPrefix returns the length of a Rancher cluster proxy prefix
// (/k8s/clusters/<cluster-id>) at the start of path, or 0. Rancher strips it
// and forwards the rest to the cluster, whose authorizer sees the rest.
func rancherPrefix(path string) int {
	const p = "/k8s/clusters/"
	if !strings.HasPrefix(path, p) {
		return 0
	}
	id, _, _ := strings.Cut(path[len(p):], "/")
	if id == "" {
		return 0
	}
	return len(p) + len(id)
}

// connectGatewayRE is the path prefix of GKE's Connect Gateway
// (connectgateway.googleapis.com, REGION-connectgateway.googleapis.com),
// which forwards the rest of the path to the membership's cluster: kubectl
// with a gcloud-made kubeconfig sends every request so (found by review).
var connectGatewayRE = regexp.MustCompile(`^/v1(?:beta1|alpha1)?/projects/[^/]+(?:/locations/[^/]+)?/(?:gkeMemberships|memberships)/[^/]+`)

// maxGatewaySegments bounds the search for a configured API server's path
// prefix.
const maxGatewaySegments = 16

// gatewayPrefix returns the length of a prefix that a gateway in front of
// an API server strips before forwarding the rest of path, or 0, and
// whether the host alone makes the request Kubernetes's: Rancher's cluster
// proxy (/k8s/clusters/ID), GKE's Connect Gateway, and, on a configured
// host (known), whatever comes before the first segment from which the
// path has Kubernetes's shape (Loft's /kubernetes/cluster/NAME, a reverse
// proxy's own prefix).
func gatewayPrefix(host, path string, known bool) (n int, byHost bool) {
	if n := rancherPrefix(path); n > 0 {
		return n, false
	}
	if host == "connectgateway.googleapis.com" || strings.HasSuffix(host, "-connectgateway.googleapis.com") {
		if m := connectGatewayRE.FindStringIndex(path); m != nil {
			return m[1], true
		}
	}
	if !known || kubernetesShape(path) {
		return 0, false
	}
	segs := 0
	for i := 1; i < len(path) && segs < maxGatewaySegments; i++ {
		if path[i] != '/' {
			continue
		}
		segs++
		if kubernetesShape(path[i:]) {
			return i, false
		}
	}
	return 0, false
}

// kubernetesShape reports whether path (a Kubernetes API path, any Rancher
// prefix removed) has a shape only Kubernetes uses.
func kubernetesShape(path string) bool {
	segs := strings.SplitN(strings.TrimPrefix(path, "/"), "/", maxPrefixSegments+1)
	if n := len(segs); n > 0 && segs[n-1] == "" {
		// One trailing slash: /api/ is /api.
		segs = segs[:n-1]
	}
	if len(segs) == 0 {
		return false
	}
	switch segs[0] {
	case "api":
		switch {
		case len(segs) == 1:
			// Discovery: GET /api.
			return true
		case segs[1] != "v1":
			// The core group only ever had v1.
			return false
		case len(segs) == 2:
			return true
		}
		rest := segs[2:]
		if (rest[0] == "watch" || rest[0] == "proxy") && len(rest) > 1 {
			rest = rest[1:]
		}
		return slices.Contains(coreResources, rest[0])
	case "apis":
		switch {
		case len(segs) == 1:
			return true
		case !kubernetesGroup(segs[1]):
			return false
		case len(segs) == 2:
			return true
		}
		return apiVersionRE.MatchString(segs[2])
	case "openapi":
		return len(segs) >= 2 && (segs[1] == "v2" || segs[1] == "v3")
	}
	return false
}

// kubernetesGroup reports whether g can be the name of an API group: a
// built-in dotless group, or a DNS subdomain with at least one dot.
func kubernetesGroup(g string) bool {
	if slices.Contains(dotlessGroups, g) {
		return true
	}
	if len(g) > 253 || !strings.Contains(g, ".") {
		return false
	}
	for label := range strings.SplitSeq(g, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// hostEntry is one configured API server: a canonical host and a port, 0
// for any port.
type hostEntry struct {
	host string
	port int
}

// parseHostEntry reads "host", "host:port", "[v6]:port" or a bare IPv6
// address into the canonical form requests carry. Entries are validated by
// the config loader; one this cannot read is ignored rather than matched
// loosely.
func parseHostEntry(s string) (hostEntry, bool) {
	s = strings.TrimSpace(s)
	if host, port, err := hostport.Split(s, 0); err == nil {
		return hostEntry{host: host, port: port}, true
	}
	if host, err := hostport.Canonical(s); err == nil {
		return hostEntry{host: host}, true
	}
	return hostEntry{}, false
}
