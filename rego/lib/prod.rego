# METADATA
# title: Production detection
# description: |
#   Tells whether a request touches production, from an inventory kept in
#   data (never from what the agent claims). Import with
#   `import data.countersign.lib.prod`.
#
#   data.countersign.production (every key optional; lists hold glob
#   patterns, see countersign.lib.globs):
#
#     aws:
#       accounts: ["111122223333", "shop-prod"]  # account ids or aliases
#       access_key_ids: ["AKIA2PRODEXAMPLE0001"] # keys that are production by themselves
#     kubernetes:
#       hosts: ["k8s.prod.example.com"]          # API servers: the whole cluster
#       namespaces: ["prod", "prod-*"]           # namespaces, in any cluster
#     github:
#       orgs: ["acme"]                           # every repository of the owner
#       repos: ["acme/shop", "acme/billing-*"]   # owner/repo
#     hosts: ["*.prod.example.com"]              # any other API host
#     ids: ["e-prod"]                            # opaque ids (Railway environments, volumes)
#
#   A SigV4 request names its access key, not its account: map keys to
#   accounts in data.countersign.aws.access_keys ({"AKIA…": "shop-prod"})
#   so that accounts can be listed once. ARNs among the action's resources
#   name their account and are matched against accounts as well.
#
#   Nothing configured means nothing is production: a policy that relies
#   on this library should test that its data is loaded (see configured).
package countersign.lib.prod

import data.countersign.lib.globs
import data.countersign.lib.ops

# METADATA
# description: The production inventory, data.countersign.production; empty when not configured.
default inventory := {}

inventory := data.countersign.production

# METADATA
# description: A production inventory is configured.
default configured := false

configured if count(inventory) > 0

# METADATA
# description: The account (id or alias) that data.countersign.aws.access_keys maps an access key id to.
aws_account(key_id) := data.countersign.aws.access_keys[key_id]

# METADATA
# description: The account id field of an ARN (arn:partition:service:region:account:resource).
arn_account(arn) := parts[4] if {
	startswith(arn, "arn:")
	parts := split(arn, ":")
	count(parts) >= 6
	parts[4] != ""
}

# METADATA
# description: An AWS access key id is production, by itself or through its account.
aws_key(key_id) if globs.match_any(inventory.aws.access_key_ids, key_id)

aws_key(key_id) if globs.match_any(inventory.aws.accounts, aws_account(key_id))

# METADATA
# description: |
#   An AWS access key id is in the inventory: mapped to an account in
#   data.countersign.aws.access_keys, or production by itself. Temporary
#   keys (ASIA…, which STS mints from any key, a production one too) are in
#   neither unless listed, so a call signed with one may be production.
aws_key_known(key_id) if key_id in object.keys(data.countersign.aws.access_keys)

aws_key_known(key_id) if globs.match_any(inventory.aws.access_key_ids, key_id)

# METADATA
# description: An AWS account id or alias is production.
aws_account_is_prod(account) if globs.match_any(inventory.aws.accounts, account)

# METADATA
# description: A Kubernetes API server host is a production cluster.
kubernetes_host(name) if globs.host_any(inventory.kubernetes.hosts, name)

# METADATA
# description: A Kubernetes namespace is production (in any cluster).
kubernetes_namespace(ns) if {
	ns != ""
	globs.match_any(inventory.kubernetes.namespaces, ns)
}

# METADATA
# description: |
#   A repository ("owner/repo", or "group/sub/repo" for nested owners) is
#   production: its owner is in github.orgs or it matches github.repos.
#   GitHub names are case-insensitive, so both sides are lower-cased.
repository(full_name) if {
	some pattern in inventory.github.repos
	glob.match(lower(pattern), ["/"], lower(full_name))
}

repository(full_name) if {
	owner := split(full_name, "/")[0]
	some pattern in inventory.github.orgs
	glob.match(lower(pattern), null, lower(owner))
}

# METADATA
# description: A host is listed as production.
host(name) if globs.host_any(inventory.hosts, name)

# METADATA
# description: An opaque id (a Railway environment or volume id, say) is listed as production; ids match exactly.
id(value) if {
	is_string(value)
	value in inventory.ids
}

# METADATA
# description: |
#   The repository the request acts on, as "owner/repo": GitHub REST actions
#   (owner and repo, or just the owner for organisation calls) and git
#   smart-HTTP actions (the repository path).
repository_name := concat("/", [input.action.owner, input.action.repo]) if {
	input.action.provider == "github"
	is_string(input.action.owner)
	is_string(input.action.repo)
	input.action.owner != ""
	input.action.repo != ""
} else := input.action.owner if {
	input.action.provider == "github"
	is_string(input.action.owner)
	input.action.owner != ""
} else := input.action.repo if {
	input.action.provider == "git"
	is_string(input.action.repo)
}

# METADATA
# description: |
#   Every string an action names as a resource or passes as a GraphQL or
#   MCP argument, and, when production ids are listed, every segment of
#   the request's path: candidates for the ids list.
action_ids contains value if {
	some value in input.action.resources
	is_string(value)
}

action_ids contains value if {
	walk(input.action.variables, [_, value])
	is_string(value)
}

# The segments of the path: REST APIs name what they act on there
# (Supabase's /v1/projects/REF, Neon's /api/v2/projects/ID; found by
# review).
action_ids contains value if {
	count(inventory.ids) > 0 # the split costs every request otherwise
	some value in split(input.request.path, "/")
	value != ""
}

action_ids contains value if {
	some selection in input.action.selections
	walk(selection.arguments, [_, value])
	is_string(value)
}

action_ids contains value if {
	walk(input.action.arguments, [_, value])
	is_string(value)
}

# METADATA
# description: |
#   Why the request touches production, one readable string per reason
#   ("AWS account shop-prod", "Kubernetes namespace prod", …); empty when it
#   does not. Policies put it in their messages.
evidence contains sprintf("AWS access key %s", [key]) if {
	input.action.provider == "aws"
	key := input.action.access_key_id
	globs.match_any(inventory.aws.access_key_ids, key)
}

evidence contains sprintf("AWS account %s", [account]) if {
	input.action.provider == "aws"
	account := aws_account(input.action.access_key_id)
	aws_account_is_prod(account)
}

evidence contains sprintf("AWS account %s (%s)", [account, arn]) if {
	input.action.provider == "aws"
	some arn in input.action.resources
	account := arn_account(arn)
	aws_account_is_prod(account)
}

evidence contains sprintf("Kubernetes cluster %s", [input.request.host]) if {
	input.action.provider == "kubernetes"
	kubernetes_host(input.request.host)
}

evidence contains sprintf("Kubernetes namespace %s", [input.action.namespace]) if {
	input.action.provider == "kubernetes"
	kubernetes_namespace(input.action.namespace)
}

# A cluster-scoped request that reaches into every namespace reaches the
# production ones, wherever they are listed (namespaces are listed for
# every cluster): deleting a CRD deletes its objects everywhere, deleting
# a persistent volume can delete the disk under a production claim, and
# deleting a node, or its proxy, reaches the pods on it.
evidence contains sprintf("Kubernetes %s, which reach production namespaces", [input.action.resource]) if {
	input.action.provider == "kubernetes"
	input.action.namespace == ""
	count(inventory.kubernetes.namespaces) > 0
	kubernetes_reaches_namespaces
}

kubernetes_reaches_namespaces if {
	input.action.resource in {"customresourcedefinitions", "persistentvolumes", "nodes"}
	input.action.verb in {"delete", "deletecollection"}
}

kubernetes_reaches_namespaces if {
	input.action.resource == "nodes"
	input.action.subresource == "proxy"
}

# Cluster-wide control (found by review): cluster roles and their
# bindings, admission webhooks and policies (set failurePolicy: Ignore and
# the cluster's guard is off in production too), API services.
kubernetes_reaches_namespaces if {
	input.action.resource in {
		"clusterroles", "clusterrolebindings", "certificatesigningrequests",
		"validatingwebhookconfigurations", "mutatingwebhookconfigurations",
		"validatingadmissionpolicies", "validatingadmissionpolicybindings",
		"mutatingadmissionpolicies", "mutatingadmissionpolicybindings", "apiservices",
	}
	input.action.verb in {"create", "update", "patch", "delete", "deletecollection"}
}

# Deleting a cluster-scoped custom resource: a Crossplane managed resource
# deletes the cloud resource it stands for (an RDS instance), a
# VolumeSnapshotContent its snapshot (found by review).
kubernetes_reaches_namespaces if {
	input.action.verb in {"delete", "deletecollection"}
	is_string(input.action.api_group)
	contains(input.action.api_group, ".")
	not endswith(input.action.api_group, ".k8s.io")

	# A project is a namespace, judged by its name (below).
	input.action.api_group != "project.openshift.io"
}

kubernetes_reaches_namespaces if {
	input.action.verb in {"delete", "deletecollection"}
	input.action.api_group == "snapshot.storage.k8s.io"
	input.action.resource == "volumesnapshotcontents"
}

# An OpenShift project is its namespace: oc delete project prod deletes
# namespace prod (found by review).
evidence contains sprintf("Kubernetes namespace %s", [input.action.name]) if {
	input.action.provider == "kubernetes"
	input.action.resource in {"projects", "projectrequests", "namespaces"}
	kubernetes_namespace(input.action.name)
}

# Deleting what a GitOps controller deploys from deletes what it deployed,
# wherever that is (an Argo CD Application with the resources finalizer,
# a Flux Kustomization that prunes), so it counts wherever production
# namespaces are listed (found by review).
evidence contains sprintf("Kubernetes %s, which deploy into production namespaces", [input.action.resource]) if {
	input.action.provider == "kubernetes"
	count(inventory.kubernetes.namespaces) > 0
	input.action.verb in {"delete", "deletecollection"}
	input.action.resource in {"applications", "applicationsets", "kustomizations", "helmreleases"}
}

# A pod that reaches its node reaches the production pods on it, whatever
# namespace it is made in.
evidence contains "a pod with access to its node, which reaches production pods" if {
	input.action.provider == "kubernetes"
	count(inventory.kubernetes.namespaces) > 0
	input.action.verb in {"create", "update", "patch"}
	ops.kubernetes_host_access
}

# A NoExecute taint written to a node deletes the pods on it.
kubernetes_reaches_namespaces if {
	input.action.resource == "nodes"
	input.action.verb in {"update", "patch"}
	input.action.destructive == true
}

evidence contains sprintf("repository %s", [repository_name]) if repository(repository_name)

evidence contains sprintf("host %s", [input.request.host]) if host(input.request.host)

# The database a SQL-over-HTTP gateway connects to: Neon's serverless
# driver posts to api.REGION.aws.neon.tech/sql and names the endpoint
# only in Neon-Connection-String (found by review).
evidence contains sprintf("database host %s", [name]) if {
	some value in input.request.headers["neon-connection-string"]
	some name in connection_string_hosts(value)
	host(name)
}

# A Supabase project named in its management API's path
# (api.supabase.com/v1/projects/REF/…) is the project whose host is listed.
evidence contains sprintf("Supabase project %s", [ref]) if {
	input.request.host == "api.supabase.com"
	parts := split(input.request.path, "/")
	parts[1] == "v1"
	parts[2] == "projects"
	ref := parts[3]
	host(sprintf("%s.supabase.co", [lower(ref)]))
}

# METADATA
# description: The hosts a postgres:// (or mysql://) URL names, lower case.
connection_string_hosts(value) := {lower(m[1]) |
	some m in regex.find_all_string_submatch_n(`@([^/:?@\[\]]+|\[[^\]]*\])(?::[0-9]*)?(?:[/?]|$)`, value, -1)
}

evidence contains sprintf("production id %s", [value]) if {
	some value in action_ids
	id(value)
}

# METADATA
# description: The request touches production (evidence is not empty).
default is_prod := false

is_prod if count(evidence) > 0

# METADATA
# description: The evidence as one string, for messages ("AWS account shop-prod, host …").
summary := concat(", ", evidence)
