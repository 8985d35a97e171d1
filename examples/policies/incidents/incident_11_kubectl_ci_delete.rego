# Incident #11: Claude Code with kubectl deletes Helix's CI (Jun 2026)
#
# Given kubectl on the production cluster, the agent deleted the Drone CI
# system (its deployments and, by inference, secrets and volumes). The
# calls were not published: DELETEs in namespace drone, or of the
# namespace itself. On production clusters and namespaces, deleting a
# namespace or a whole collection is denied; other deletes and scaling to
# zero wait for a human. Dry runs pass.
package countersign

import data.countersign.lib.ops
import data.countersign.lib.prod

inc11_prod_change if {
	input.action.provider == "kubernetes"
	not input.action.dry_run
	prod.is_prod
}

# METADATA
# title: INC-11-1
# description: No agent deletes a production namespace or a whole collection.
deny contains {
	"id": "INC-11-1",
	"msg": sprintf("%s in production (%s) deletes everything in it; an agent may not do it, ask a human", [ops.name, prod.summary]),
} if {
	inc11_prod_change
	input.action.verb == "deletecollection"
}

deny contains {
	"id": "INC-11-1",
	"msg": sprintf("deleting the namespace %s in production (%s) deletes everything in it; an agent may not do it, ask a human", [input.action.name, prod.summary]),
} if {
	inc11_prod_change
	input.action.verb == "delete"
	inc11_namespaces
}

# Namespaces, and OpenShift's projects (oc delete project).
inc11_namespaces if input.action.resource == "namespaces"

inc11_namespaces if {
	input.action.resource == "projects"
	input.action.api_group == "project.openshift.io"
}

# METADATA
# title: INC-11-2
# description: Other production deletes and scaling to zero wait for a human.
approve contains {
	"id": "INC-11-2",
	"msg": sprintf("%s %s in namespace %s, in production (%s)", [ops.name, input.action.name, input.action.namespace, prod.summary]),
} if {
	inc11_prod_change
	input.action.verb == "delete"
	not inc11_namespaces
}

approve contains {
	"id": "INC-11-2",
	"msg": sprintf("scaling %s/%s in namespace %s to zero, in production (%s)", [input.action.resource, input.action.name, input.action.namespace, prod.summary]),
} if {
	inc11_prod_change
	ops.kubernetes_scales_to_zero
}

# Writes that delete by other means (an owner reference the garbage
# collector follows, a NoExecute taint, an eviction as kubectl drain
# sends; found by review).
approve contains {
	"id": "INC-11-2",
	"msg": sprintf("%s of %s/%s in namespace %s deletes by other means, in production (%s)", [input.action.verb, input.action.resource, input.action.name, input.action.namespace, prod.summary]),
} if {
	inc11_prod_change
	input.action.destructive == true
	not input.action.verb in {"delete", "deletecollection"}
	not ops.kubernetes_scales_to_zero
}
