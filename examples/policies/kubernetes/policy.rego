# Kubernetes production guard
#
# Production is a cluster (its API server's host) or a namespace, listed
# in data.countersign.production.kubernetes (deleting a CRD, a persistent
# volume, a node or a cluster-scoped custom resource, a node's proxy,
# cluster roles, admission webhooks and policies, API services, deleting
# what a GitOps controller deploys from, and pods with access to their
# node count wherever production namespaces are listed). In
# production, deleting a namespace or a whole collection is denied; exec,
# attach and port-forward, scaling a workload to zero, other deletes,
# other destructive requests (evictions, node proxies) and RBAC or
# impersonation wait for a human. Server-side dry runs change nothing and
# pass. Outside production everything passes.
#
# (A header comment, not a package METADATA annotation: OPA allows one
# per package, and every policy set here is package countersign, so
# sets can be loaded together.)
package countersign

import data.countersign.lib.ops
import data.countersign.lib.prod

k8s_target := sprintf("%s/%s", [input.action.resource, input.action.name]) if {
	input.action.name != ""
} else := sprintf("every %s", [input.action.resource])

k8s_exec_target := sprintf("pod %s", [input.action.name]) if {
	input.action.resource == "pods"
} else := sprintf("%s %s", [trim_suffix(input.action.resource, "s"), input.action.name])

k8s_where := sprintf("namespace %s", [input.action.namespace]) if {
	input.action.namespace != ""
} else := "the cluster"

k8s_prod_change if {
	input.action.provider == "kubernetes"
	not input.action.dry_run
	prod.is_prod
}

# METADATA
# title: K8S-PROD-001
# description: No agent deletes a production namespace, and everything in it.
deny contains {
	"id": "K8S-PROD-001",
	"msg": sprintf("deleting %s removes every object in it, in production (%s); an agent may not do it, ask a human", [k8s_target, prod.summary]),
} if {
	input.action.provider == "kubernetes"
	k8s_prod_change
	input.action.verb in {"delete", "deletecollection"}
	k8s_namespaces
}

# Namespaces, and OpenShift's projects, which are namespaces by another
# name (found by review: oc delete project prod passed).
k8s_namespaces if input.action.resource == "namespaces"

k8s_namespaces if {
	input.action.resource == "projects"
	input.action.api_group == "project.openshift.io"
}

# METADATA
# title: K8S-PROD-002
# description: No agent deletes a whole collection in production.
deny contains {
	"id": "K8S-PROD-002",
	"msg": sprintf("deleting %s in %s is a bulk delete in production (%s); delete objects one by one, with approval", [k8s_target, k8s_where, prod.summary]),
} if {
	input.action.provider == "kubernetes"
	k8s_prod_change
	input.action.verb == "deletecollection"
	not k8s_namespaces
}

# METADATA
# title: K8S-PROD-003
# description: exec, attach and port-forward into production workloads wait for a human.
approve contains {
	"id": "K8S-PROD-003",
	"msg": sprintf("%s into %s in %s, in production (%s)", [input.action.subresource, k8s_exec_target, k8s_where, prod.summary]),
} if {
	input.action.provider == "kubernetes"
	k8s_prod_change
	ops.is_exec
}

# METADATA
# title: K8S-PROD-004
# description: Scaling a production workload to zero waits for a human.
approve contains {
	"id": "K8S-PROD-004",
	"msg": sprintf("scaling %s in %s to zero replicas stops it, in production (%s)", [k8s_target, k8s_where, prod.summary]),
} if {
	input.action.provider == "kubernetes"
	k8s_prod_change
	ops.kubernetes_scales_to_zero
}

# METADATA
# title: K8S-PROD-005
# description: Deleting a single production object waits for a human.
approve contains {
	"id": "K8S-PROD-005",
	"msg": sprintf("deleting %s in %s, in production (%s)", [k8s_target, k8s_where, prod.summary]),
} if {
	input.action.provider == "kubernetes"
	k8s_prod_change
	input.action.verb == "delete"
	not k8s_namespaces
}

# METADATA
# title: K8S-PROD-007
# description: Other destructive requests in production (an eviction, which deletes its pod; a proxy through a node) wait for a human.
approve contains {
	"id": "K8S-PROD-007",
	"msg": sprintf("%s of %s in %s changes production (%s)", [input.action.verb, k8s_target, k8s_where, prod.summary]),
} if {
	input.action.provider == "kubernetes"
	k8s_prod_change
	input.action.destructive == true
	not input.action.verb in {"delete", "deletecollection"}
	not ops.is_exec
	not ops.kubernetes_scales_to_zero
	not ops.is_permission
}

# METADATA
# title: K8S-PROD-006
# description: RBAC changes and impersonation in production wait for a human.
approve contains {
	"id": "K8S-PROD-006",
	"msg": sprintf("%s changes who may do what in production (%s)", [ops.name, prod.summary]),
} if {
	input.action.provider == "kubernetes"
	k8s_prod_change
	ops.is_permission
}
