# Starter policy: edit it, then run `countersign policy test policies`.
package countersign

import data.countersign.lib.hosts

# Deny: the agent gets the message and the request is not sent.
deny contains {"id": "META-001", "msg": "the cloud metadata endpoint hands out this machine's credentials"} if {
	hosts.is_metadata(input.request.host)
}

# Approve: a human decides (countersign approvals, or Slack).
approve contains {"id": "INFRA-001", "msg": sprintf("%s %s changes infrastructure", [input.request.method, input.request.host])} if {
	not input.request.method in {"GET", "HEAD", "OPTIONS"}
	hosts.is_infrastructure(input.request.host)
	not endswith(input.request.path, "/git-upload-pack")
}
