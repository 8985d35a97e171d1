package countersign.kubernetes_test

import data.countersign

# Actions as countersign's Kubernetes classifier makes them of kubectl's
# requests (action/kubernetes/testdata).

request(host, verb, resource, subresource, namespace, name, body) := {
	"request": {
		"method": "GET", "scheme": "https", "host": host, "port": 443,
		"path": "/", "query": {}, "headers": {}, "body": body, "tunnel": false,
	},
	"action": {
		"provider": "kubernetes", "verb": verb, "operation": verb, "api_group": "", "api_version": "v1",
		"resource": resource, "subresource": subresource, "namespace": namespace, "name": name,
		"dry_run": false, "read_only": verb in {"get", "list", "watch"},
		"destructive": verb in {"delete", "deletecollection"},
	},
}

dev := "k8s.dev.example.com"

prod_cluster := "k8s.prod.example.com"

ids(reasons) := {r.id | some r in reasons}

denied(inp) := reasons if {
	reasons := ids(countersign.deny) with input as inp
}

held(inp) := reasons if {
	reasons := ids(countersign.approve) with input as inp
}

allowed(inp) if {
	denied(inp) == set()
	held(inp) == set()
}

# kubectl delete namespace prod
test_delete_prod_namespace_denied if {
	inp := request(dev, "delete", "namespaces", "", "prod", "prod", {"propagationPolicy": "Background"})
	denied(inp) == {"K8S-PROD-001"}
	some r in countersign.deny with input as inp
	r.msg == "deleting namespaces/prod removes every object in it, in production (Kubernetes namespace prod); an agent may not do it, ask a human"
}

test_delete_any_namespace_on_prod_cluster_denied if denied(request(prod_cluster, "delete", "namespaces", "", "drone", "drone", null)) == {"K8S-PROD-001"}

test_delete_namespace_outside_production_allowed if allowed(request(dev, "delete", "namespaces", "", "staging", "staging", null))

test_delete_namespace_dry_run_allowed if {
	inp := object.union(request(dev, "delete", "namespaces", "", "prod", "prod", null), {"action": {"dry_run": true}})
	allowed(inp)
}

# kubectl delete pods --all -n prod
test_delete_collection_in_production_denied if denied(request(dev, "deletecollection", "pods", "", "prod", "", null)) == {"K8S-PROD-002"}

# kubectl exec web -n prod -- sh
test_exec_in_production_held if {
	inp := request(dev, "create", "pods", "exec", "prod", "web", null)
	denied(inp) == set()
	held(inp) == {"K8S-PROD-003"}
	some r in countersign.approve with input as inp
	r.msg == "exec into pod web in namespace prod, in production (Kubernetes namespace prod)"
}

test_port_forward_in_production_held if held(request(prod_cluster, "create", "pods", "portforward", "default", "db", null)) == {"K8S-PROD-003"}

test_exec_outside_production_allowed if allowed(request(dev, "create", "pods", "exec", "default", "web", null))

# kubectl scale deployment web --replicas=0 -n prod
test_scale_to_zero_in_production_held if {
	inp := request(dev, "patch", "deployments", "scale", "prod", "web", {"spec": {"replicas": 0}})
	held(inp) == {"K8S-PROD-004"}
}

test_scale_up_in_production_allowed if allowed(request(dev, "patch", "deployments", "scale", "prod", "web", {"spec": {"replicas": 3}}))

test_patch_replicas_zero_in_production_held if held(request(prod_cluster, "patch", "statefulsets", "", "db", "pg", {"spec": {"replicas": 0}})) == {"K8S-PROD-004"}

test_delete_one_object_in_production_held if held(request(dev, "delete", "deployments", "", "prod", "web", null)) == {"K8S-PROD-005"}

# Found by review: an eviction deletes its pod; a node's proxy reaches the
# pods on it; deleting a CRD deletes its objects in every namespace.
test_eviction_in_production_held if {
	inp := object.union(request(dev, "create", "pods", "eviction", "prod", "web-0", null), {"action": {"destructive": true}})
	held(inp) == {"K8S-PROD-007"}
}

# As the classifier makes it: not destructive, but it reaches the pods.
test_node_proxy_held_where_production_namespaces_are_listed if held(request(dev, "create", "nodes", "proxy", "", "n1", null)) == {"K8S-PROD-003"}

test_crd_delete_held_where_production_namespaces_are_listed if {
	held(request(dev, "delete", "customresourcedefinitions", "", "", "widgets.acme.example", null)) == {"K8S-PROD-005"}
	held(request(dev, "delete", "persistentvolumes", "", "", "pv-1", null)) == {"K8S-PROD-005"}
	held(request(dev, "delete", "nodes", "", "", "n1", null)) == {"K8S-PROD-005"}
}

# Other cluster-scoped changes in a cluster that is not production pass.
test_cluster_scoped_changes_outside_production_allowed if {
	allowed(request(dev, "list", "nodes", "", "", "", null))
	allowed(request(dev, "delete", "storageclasses", "", "", "slow", null))
	allowed(request(dev, "get", "clusterroles", "", "", "admin", null))
}

# Found by review: cluster-wide control, cascading deletes and node access
# reach the production namespaces from any cluster where they are listed.
test_cluster_wide_control_reaches_production if {
	held(request(dev, "delete", "clusterroles", "", "", "old-role", null)) == {"K8S-PROD-005", "K8S-PROD-006"}
	held(request(dev, "create", "clusterrolebindings", "", "", "", {"roleRef": {"name": "cluster-admin"}})) == {"K8S-PROD-006"}
	held(request(dev, "patch", "validatingwebhookconfigurations", "", "", "policy-guard", [{"op": "replace", "path": "/webhooks/0/failurePolicy", "value": "Ignore"}])) == {"K8S-PROD-006"}
	held(request(dev, "update", "apiservices", "", "", "v1beta1.metrics.k8s.io", {})) == {"K8S-PROD-006"}
}

test_openshift_project_is_its_namespace if {
	denied(object.union(request(dev, "delete", "projects", "", "", "prod", null), {"action": {"api_group": "project.openshift.io"}})) == {"K8S-PROD-001"}
	allowed(object.union(request(dev, "delete", "projects", "", "", "scratch", null), {"action": {"api_group": "project.openshift.io"}}))
}

test_cascading_and_cloud_deletes_held if {
	held(object.union(request(dev, "delete", "applications", "", "argocd", "shop-prod", null), {"action": {"api_group": "argoproj.io"}})) == {"K8S-PROD-005"}
	held(object.union(request(dev, "delete", "instances", "", "", "prod-db", null), {"action": {"api_group": "rds.aws.upbound.io"}})) == {"K8S-PROD-005"}
	allowed(object.union(request(dev, "delete", "certificates", "", "dev", "web", null), {"action": {"api_group": "cert-manager.io"}}))
}

test_pods_with_node_access_held if {
	pod := {"spec": {"nodeName": "prod-node-1", "hostPID": true, "containers": [{"name": "d", "image": "busybox", "securityContext": {"privileged": true}}], "volumes": [{"name": "root", "hostPath": {"path": "/"}}]}}
	held(request(dev, "create", "pods", "", "default", "", pod)) == {"K8S-PROD-006"}
	allowed(request(dev, "create", "pods", "", "default", "", {"spec": {"containers": [{"name": "web", "image": "nginx"}]}}))
}

test_rbac_change_in_production_held if held(request(prod_cluster, "create", "clusterrolebindings", "", "", "", null)) == {"K8S-PROD-006"}

test_impersonation_in_production_held if {
	inp := object.union(request(prod_cluster, "get", "secrets", "", "default", "db", null), {"request": {"headers": {"impersonate-user": ["system:admin"]}}})
	held(inp) == {"K8S-PROD-006"}
}

test_reads_in_production_allowed if {
	allowed(request(prod_cluster, "list", "pods", "", "default", "", null))
	allowed(request(dev, "get", "pods", "log", "prod", "web", null))
}

# Writes the classifier marks destructive because they delete without the
# delete verb: owner references on a production namespace, a NoExecute
# taint on a node (which reaches the production namespaces' pods).
test_writes_that_delete_held if {
	owned := json.patch(request(dev, "patch", "namespaces", "", "prod", "prod", {}), [{"op": "replace", "path": "/action/destructive", "value": true}])
	"K8S-PROD-007" in held(owned)
	tainted := json.patch(request(dev, "patch", "nodes", "", "", "n1", {}), [{"op": "replace", "path": "/action/destructive", "value": true}])
	"K8S-PROD-007" in held(tainted)
	allowed(request(dev, "patch", "nodes", "", "", "n1", {}))
}

test_node_access_by_json_patch_and_capabilities_held if {
	held(request(dev, "patch", "deployments", "", "dev", "web", [{"op": "add", "path": "/spec/template/spec/hostPID", "value": true}])) == {"K8S-PROD-006"}
	held(request(dev, "create", "pods", "", "dev", "", {"spec": {"containers": [{"name": "x", "securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}}]}})) == {"K8S-PROD-006"}
	allowed(request(dev, "create", "pods", "", "dev", "", {"spec": {"containers": [{"name": "x", "securityContext": {"capabilities": {"add": ["NET_BIND_SERVICE"]}}}]}}))
}

test_node_access_by_list_element_and_copy_held if {
	held(request(dev, "patch", "deployments", "", "dev", "web", [{"op": "add", "path": "/spec/template/spec/containers/0/securityContext/capabilities/add/-", "value": "SYS_ADMIN"}])) == {"K8S-PROD-006"}
	held(request(dev, "patch", "deployments", "", "dev", "web", [{"op": "add", "path": "/spec/template/spec/enableServiceLinks", "value": true}, {"op": "copy", "from": "/spec/template/spec/enableServiceLinks", "path": "/spec/template/spec/hostPID"}])) == {"K8S-PROD-006"}
	allowed(request(dev, "patch", "deployments", "", "dev", "web", [{"op": "replace", "path": "/spec/replicas", "value": 3}]))
}

test_workload_bodies_the_policy_cannot_read_held if {
	inp := object.union(request(dev, "create", "pods", "", "dev", "", null), {"request": {"body_size": 512}})
	held(inp) == {"K8S-PROD-006"}
	allowed(request(dev, "create", "pods", "", "dev", "", {"spec": {"containers": [{"name": "web"}]}}))
}
