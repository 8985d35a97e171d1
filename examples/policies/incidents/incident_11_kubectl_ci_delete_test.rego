package countersign.incidents_test

# kubectl against the production namespace drone: the namespace, the
# collection deletes, single deletes, scaling to zero.

test_incident_11_delete_namespace_denied if {
	inp := kube("delete", "namespaces", "", "drone", "drone", {"propagationPolicy": "Background"})
	denied(inp) == {"INC-11-1"}
	some r in data.countersign.deny with input as inp
	r.msg == "deleting the namespace drone in production (Kubernetes namespace drone) deletes everything in it; an agent may not do it, ask a human"
}

test_incident_11_delete_collection_denied if {
	denied(kube("deletecollection", "secrets", "", "drone", "", null)) == {"INC-11-1"}
	denied(kube("deletecollection", "persistentvolumeclaims", "", "drone", "", null)) == {"INC-11-1"}
}

test_incident_11_single_deletes_held if {
	held(kube("delete", "deployments", "", "drone", "drone-server", null)) == {"INC-11-2"}
	held(kube("delete", "secrets", "", "drone", "drone-rpc", null)) == {"INC-11-2"}
}

test_incident_11_scale_to_zero_held if held(kube("patch", "deployments", "scale", "drone", "drone-server", {"spec": {"replicas": 0}})) == {"INC-11-2"}

test_incident_11_dry_run_allowed if {
	inp := object.union(kube("delete", "namespaces", "", "drone", "drone", null), {"action": {"dry_run": true}})
	allowed(inp)
}

test_incident_11_outside_production_allowed if allowed(kube("delete", "namespaces", "", "scratch", "scratch", null))

# Found by review: writes that delete by other means, and OpenShift's
# projects.
test_incident_11_deletes_by_other_means_held if {
	owner := object.union(kube("patch", "namespaces", "", "", "drone", {"metadata": {"ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "gone", "uid": "6a1c7f1e-0000-4000-8000-000000000001"}]}}), {"action": {"destructive": true}})
	held(owner) == {"INC-11-2"}
	eviction := object.union(kube("create", "pods", "eviction", "drone", "drone-server-0", {}), {"action": {"destructive": true}})
	held(eviction) == {"INC-11-2"}
	denied(object.union(kube("delete", "projects", "", "", "drone", null), {"action": {"api_group": "project.openshift.io"}})) == {"INC-11-1"}
}
