package testinfra

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// fakeKubernetes answers like a Kubernetes API server closely enough for
// kubectl get, describe, delete, create, scale, patch and logs: legacy
// discovery (/api, /apis, /api/v1, /apis/apps/v1, /version), objects
// synthesised from the path (every named object exists; lists hold one
// object), Table output when kubectl asks for it, and Status errors. It keeps
// no state: a list that selects one name (fieldSelector=metadata.name=…, as
// kubectl delete --wait does) is empty, so deletes finish at once. Streams
// (exec, attach, portforward) are refused as a server does for a request
// that is not an upgrade.
func fakeKubernetes(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/version":
		writeKubeJSON(w, http.StatusOK, map[string]any{
			"major": "1", "minor": "32", "gitVersion": "v1.32.0", "gitCommit": "fake",
			"gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.26",
			"compiler": "gc", "platform": "linux/amd64",
		})
		return
	case "/api", "/api/":
		writeKubeJSON(w, http.StatusOK, map[string]any{
			"kind": "APIVersions", "versions": []string{"v1"},
			"serverAddressByClientCIDRs": []any{map[string]any{"clientCIDR": "0.0.0.0/0", "serverAddress": r.Host}},
		})
		return
	case "/apis", "/apis/":
		gv := map[string]any{"groupVersion": "apps/v1", "version": "v1"}
		writeKubeJSON(w, http.StatusOK, map[string]any{
			"kind": "APIGroupList", "apiVersion": "v1",
			"groups": []any{map[string]any{"name": "apps", "versions": []any{gv}, "preferredVersion": gv}},
		})
		return
	case "/api/v1":
		writeKubeJSON(w, http.StatusOK, resourceList("v1"))
		return
	case "/apis/apps/v1":
		writeKubeJSON(w, http.StatusOK, resourceList("apps/v1"))
		return
	}

	p, ok := parseKubePath(r.URL.Path)
	if !ok {
		kubeStatus(w, http.StatusNotFound, "NotFound", "the server could not find the requested resource")
		return
	}
	res, ok := kubeResources[p.groupVersion][p.resource]
	if !ok {
		kubeStatus(w, http.StatusNotFound, "NotFound", "the server could not find the requested resource")
		return
	}
	switch p.subresource {
	case "exec", "attach", "portforward":
		kubeStatus(w, http.StatusBadRequest, "BadRequest", "Upgrade request required")
		return
	case "log":
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "log line from %s/%s\n", p.namespace, p.name)
		return
	case "proxy":
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "proxied to %s/%s\n", p.namespace, p.name)
		return
	}

	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if p.name == "" {
			if r.URL.Query().Get("watch") != "" && r.URL.Query().Get("watch") != "false" && r.URL.Query().Get("watch") != "0" {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusOK)
				_ = json.NewEncoder(w).Encode(map[string]any{"type": "ADDED", "object": kubeObject(res, p, "web")})
				return
			}
			var items []any
			if !strings.HasPrefix(r.URL.Query().Get("fieldSelector"), "metadata.name=") {
				items = append(items, kubeObject(res, p, res.sample))
			}
			writeKubeList(w, r, res, p, items)
			return
		}
		if wantsTable(r) {
			writeKubeList(w, r, res, p, []any{kubeObject(res, p, p.name)})
			return
		}
		writeKubeJSON(w, http.StatusOK, kubeObject(res, p, p.name))
	case http.MethodDelete:
		if p.name == "" {
			writeKubeJSON(w, http.StatusOK, map[string]any{"kind": res.kind + "List", "apiVersion": p.groupVersion, "metadata": map[string]any{}, "items": []any{}})
			return
		}
		writeKubeJSON(w, http.StatusOK, map[string]any{
			"kind": "Status", "apiVersion": "v1", "metadata": map[string]any{}, "status": "Success",
			"details": map[string]any{"name": p.name, "group": res.group, "kind": p.resource, "uid": "00000000-0000-0000-0000-000000000001"},
		})
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		var obj map[string]any
		if r.Method != http.MethodPatch && json.Unmarshal(body, &obj) == nil && obj["metadata"] != nil {
			meta, _ := obj["metadata"].(map[string]any)
			if meta != nil {
				meta["uid"] = "00000000-0000-0000-0000-000000000002"
				meta["resourceVersion"] = "2"
				meta["creationTimestamp"] = "2026-01-01T00:00:00Z"
				if p.namespace != "" && res.namespaced {
					meta["namespace"] = p.namespace
				}
			}
		} else {
			name := p.name
			if name == "" {
				name = res.sample
			}
			obj = kubeObject(res, p, name)
		}
		status := http.StatusOK
		if r.Method == http.MethodPost {
			status = http.StatusCreated
		}
		if p.subresource == "scale" {
			obj = map[string]any{
				"kind": "Scale", "apiVersion": "autoscaling/v1",
				"metadata": map[string]any{"name": p.name, "namespace": p.namespace},
				"spec":     map[string]any{"replicas": 0}, "status": map[string]any{"replicas": 0},
			}
		}
		writeKubeJSON(w, status, obj)
	default:
		kubeStatus(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "the server does not allow this method on the requested resource")
	}
}

// kubeResource is one resource in the fake's discovery.
type kubeResource struct {
	group, kind, singular, sample string
	namespaced                    bool
	shortNames                    []string
	subresources                  []string
}

var crudVerbs = []string{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}

// kubeResources maps group/version to resource name to resource.
var kubeResources = map[string]map[string]kubeResource{
	"v1": {
		"pods":                   {kind: "Pod", singular: "pod", sample: "web", namespaced: true, shortNames: []string{"po"}, subresources: []string{"attach", "eviction", "exec", "log", "portforward", "proxy", "status"}},
		"namespaces":             {kind: "Namespace", singular: "namespace", sample: "default", shortNames: []string{"ns"}, subresources: []string{"finalize", "status"}},
		"services":               {kind: "Service", singular: "service", sample: "web", namespaced: true, shortNames: []string{"svc"}, subresources: []string{"proxy", "status"}},
		"configmaps":             {kind: "ConfigMap", singular: "configmap", sample: "settings", namespaced: true, shortNames: []string{"cm"}},
		"secrets":                {kind: "Secret", singular: "secret", sample: "db-password", namespaced: true},
		"nodes":                  {kind: "Node", singular: "node", sample: "node-1", shortNames: []string{"no"}, subresources: []string{"proxy", "status"}},
		"persistentvolumeclaims": {kind: "PersistentVolumeClaim", singular: "persistentvolumeclaim", sample: "data", namespaced: true, shortNames: []string{"pvc"}},
		"serviceaccounts":        {kind: "ServiceAccount", singular: "serviceaccount", sample: "default", namespaced: true, shortNames: []string{"sa"}},
		"events":                 {kind: "Event", singular: "event", sample: "web.1", namespaced: true, shortNames: []string{"ev"}},
	},
	"apps/v1": {
		"deployments":  {group: "apps", kind: "Deployment", singular: "deployment", sample: "web", namespaced: true, shortNames: []string{"deploy"}, subresources: []string{"scale", "status"}},
		"statefulsets": {group: "apps", kind: "StatefulSet", singular: "statefulset", sample: "db", namespaced: true, shortNames: []string{"sts"}, subresources: []string{"scale", "status"}},
		"replicasets":  {group: "apps", kind: "ReplicaSet", singular: "replicaset", sample: "web-1", namespaced: true, shortNames: []string{"rs"}, subresources: []string{"scale", "status"}},
	},
}

func resourceList(gv string) map[string]any {
	var out []any
	for name, res := range kubeResources[gv] {
		out = append(out, map[string]any{
			"name": name, "singularName": res.singular, "namespaced": res.namespaced, "kind": res.kind,
			"verbs": crudVerbs, "shortNames": res.shortNames,
		})
		for _, sub := range res.subresources {
			kind, verbs := res.kind, []string{"get", "patch", "update"}
			switch sub {
			case "exec", "attach", "portforward", "proxy":
				kind, verbs = "PodExecOptions", []string{"create", "get"}
			case "eviction":
				kind, verbs = "Eviction", []string{"create"}
			case "log":
				kind, verbs = res.kind, []string{"get"}
			case "scale":
				kind = "Scale"
			}
			out = append(out, map[string]any{"name": name + "/" + sub, "singularName": "", "namespaced": res.namespaced, "kind": kind, "verbs": verbs})
		}
	}
	return map[string]any{"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": out}
}

// kubePath is a resource path taken apart.
type kubePath struct {
	groupVersion, namespace, resource, name, subresource string
}

func parseKubePath(path string) (kubePath, bool) {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	var p kubePath
	switch {
	case len(segs) >= 3 && segs[0] == "api":
		p.groupVersion, segs = segs[1], segs[2:]
	case len(segs) >= 4 && segs[0] == "apis":
		p.groupVersion, segs = segs[1]+"/"+segs[2], segs[3:]
	default:
		return p, false
	}
	if segs[0] == "namespaces" && len(segs) >= 3 && segs[2] != "status" && segs[2] != "finalize" {
		p.namespace, segs = segs[1], segs[2:]
	}
	p.resource = segs[0]
	if len(segs) > 1 {
		p.name = segs[1]
	}
	if len(segs) > 2 {
		p.subresource = segs[2]
	}
	if p.resource == "namespaces" {
		p.namespace = ""
	}
	return p, true
}

func kubeObject(res kubeResource, p kubePath, name string) map[string]any {
	meta := map[string]any{
		"name": name, "uid": "00000000-0000-0000-0000-000000000003", "resourceVersion": "1",
		"creationTimestamp": "2026-01-01T00:00:00Z",
	}
	if res.namespaced {
		meta["namespace"] = p.namespace
		if p.namespace == "" {
			meta["namespace"] = "default"
		}
	}
	obj := map[string]any{"kind": res.kind, "apiVersion": p.groupVersion, "metadata": meta}
	switch res.kind {
	case "Pod":
		obj["spec"] = map[string]any{"containers": []any{map[string]any{"name": "app", "image": "nginx:1.27"}}}
		obj["status"] = map[string]any{"phase": "Running"}
	case "Namespace":
		obj["status"] = map[string]any{"phase": "Active"}
	case "Deployment":
		obj["spec"] = map[string]any{"replicas": 2}
	}
	return obj
}

// wantsTable reports whether kubectl asked for server-side printing.
func wantsTable(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "as=Table")
}

func writeKubeList(w http.ResponseWriter, r *http.Request, res kubeResource, p kubePath, items []any) {
	if !wantsTable(r) {
		if items == nil {
			items = []any{}
		}
		writeKubeJSON(w, http.StatusOK, map[string]any{
			"kind": res.kind + "List", "apiVersion": p.groupVersion,
			"metadata": map[string]any{"resourceVersion": "1"}, "items": items,
		})
		return
	}
	rows := []any{}
	for _, it := range items {
		obj := it.(map[string]any)
		meta := obj["metadata"].(map[string]any)
		status := "Active"
		if st, ok := obj["status"].(map[string]any); ok {
			status, _ = st["phase"].(string)
		}
		rows = append(rows, map[string]any{
			"cells":  []any{meta["name"], status},
			"object": map[string]any{"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta},
		})
	}
	writeKubeJSON(w, http.StatusOK, map[string]any{
		"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": map[string]any{"resourceVersion": "1"},
		"columnDefinitions": []any{
			map[string]any{"name": "Name", "type": "string", "format": "name", "description": "Name", "priority": 0},
			map[string]any{"name": "Status", "type": "string", "format": "", "description": "Status", "priority": 0},
		},
		"rows": rows,
	})
}

func kubeStatus(w http.ResponseWriter, code int, reason, msg string) {
	writeKubeJSON(w, code, map[string]any{
		"kind": "Status", "apiVersion": "v1", "metadata": map[string]any{}, "status": "Failure",
		"message": msg, "reason": reason, "code": code,
	})
}

func writeKubeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
