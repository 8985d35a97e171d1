package countersign.lib.ops_test

import data.countersign.lib.ops

# Inputs shaped like the classifiers' golden files (action/*/testdata).

aws(service, operation, read_only, destructive, params) := {
	"request": {"method": "POST", "host": sprintf("%s.us-east-1.amazonaws.com", [service]), "path": "/", "headers": {}},
	"action": {
		"provider": "aws", "service": service, "operation": operation, "region": "us-east-1",
		"access_key_id": "AKIAIOSFODNN7EXAMPLE", "params": params,
		"read_only": read_only, "destructive": destructive,
	},
}

with_request(inp, request) := object.union(inp, {"request": request})

test_aws_describe_is_read if {
	ops.class == "read" with input as aws("ec2", "DescribeInstances", true, false, {})
	ops.classes == {"read"} with input as aws("ec2", "DescribeInstances", true, false, {})
	ops.name == "ec2:DescribeInstances" with input as aws("ec2", "DescribeInstances", true, false, {})
}

test_aws_terminate_is_destructive if {
	ops.class == "destructive" with input as aws("ec2", "TerminateInstances", false, true, {"InstanceId.1": "i-0abc"})
	ops.classes == {"write", "destructive"} with input as aws("ec2", "TerminateInstances", false, true, {"InstanceId.1": "i-0abc"})
}

test_aws_delete_is_destructive_even_unflagged if {
	ops.is_destructive with input as aws("cloudformation", "DeleteStack", false, false, {"StackName": "prod"})
	ops.is_destructive with input as aws("cloudformation", "ExecuteChangeSet", false, false, {})
}

test_aws_plain_write if {
	ops.class == "write" with input as aws("ec2", "RunInstances", false, false, {})
	ops.is_write with input as aws("ec2", "RunInstances", false, false, {})
	not ops.is_read with input as aws("ec2", "RunInstances", false, false, {})
}

test_aws_iam_attach_policy_is_permission if {
	ops.class == "permission" with input as aws("iam", "AttachUserPolicy", false, false, {"UserName": "agent", "PolicyArn": "arn:aws:iam::aws:policy/AdministratorAccess"})
	ops.is_permission with input as aws("iam", "PutRolePolicy", false, false, {})
	ops.is_permission with input as aws("iam", "CreateAccessKey", false, false, {})
	ops.is_permission with input as aws("iam", "UpdateAssumeRolePolicy", false, false, {})
}

test_aws_iam_delete_role_policy_is_destructive_and_permission if {
	ops.classes == {"write", "destructive", "permission"} with input as aws("iam", "DeleteRolePolicy", false, true, {})
}

test_aws_iam_reads_are_not_permission if {
	not ops.is_permission with input as aws("iam", "GetPolicy", true, false, {})
	ops.is_read with input as aws("iam", "ListAttachedUserPolicies", true, false, {})
}

test_aws_bucket_policy_for_anyone_is_exposure if {
	inp := with_request(
		aws("s3", "PutBucketPolicy", false, false, {"Bucket": "mybucket"}),
		{"body": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::mybucket/*"}]}},
	)
	ops.class == "exposure" with input as inp
}

test_aws_bucket_policy_principal_aws_star_is_exposure if {
	inp := with_request(
		aws("s3", "PutBucketPolicy", false, false, {"Bucket": "mybucket"}),
		{"body": {"Statement": {"Effect": "Allow", "Principal": {"AWS": ["*"]}, "Action": "s3:*"}}},
	)
	ops.is_exposure with input as inp
}

test_aws_bucket_policy_for_one_account_is_permission_only if {
	inp := with_request(
		aws("s3", "PutBucketPolicy", false, false, {"Bucket": "mybucket"}),
		{"body": {"Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "s3:GetObject"}]}},
	)
	ops.class == "permission" with input as inp
}

test_aws_bucket_policy_with_a_condition_is_not_exposure if {
	inp := with_request(
		aws("s3", "PutBucketPolicy", false, false, {"Bucket": "mybucket"}),
		{"body": {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Condition": {"StringEquals": {"aws:SourceVpce": "vpce-1"}}}]}},
	)
	not ops.is_exposure with input as inp
}

# Found by review: a condition that does not limit who (aws:SecureTransport)
# no longer hides a statement for anyone.
test_aws_bucket_policy_with_a_transport_condition_is_exposure if {
	inp := with_request(
		aws("s3", "PutBucketPolicy", false, false, {"Bucket": "mybucket"}),
		{"body": {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Condition": {"Bool": {"aws:SecureTransport": "true"}}}]}},
	)
	ops.is_exposure with input as inp
}

test_aws_bucket_policy_with_conditions_that_let_anyone_in_is_exposure if {
	every condition in [
		{"StringEqualsIfExists": {"aws:PrincipalOrgID": "o-123"}},
		{"NotIpAddress": {"aws:SourceIp": "192.0.2.1/32"}},
		{"StringLike": {"aws:PrincipalAccount": "*"}},
		{"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}},
		{"StringNotEquals": {"aws:PrincipalAccount": "111122223333"}},
		{"ForAllValues:StringEquals": {"aws:PrincipalOrgPaths": ["o-1/r-2/"]}},
		{"IpAddress": {"aws:SourceIp": ["0.0.0.0/1", "128.0.0.0/1"]}},
		{"StringEquals": {"aws:userid": "anonymous"}},
		{"StringEquals": {"aws:userid": "${aws:userid}"}},
		{"StringEquals": {"aws:SourceAccount": "${aws:PrincipalAccount}"}},
	] {
		inp := with_request(
			aws("s3", "PutBucketPolicy", false, false, {"Bucket": "mybucket"}),
			{"body": {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Condition": condition}]}},
		)
		ops.is_exposure with input as inp
	}
}

# Found by review: two statements whose ranges together are every address.
read_all(condition) := {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::mybucket/*", "Condition": condition}

test_aws_bucket_policy_for_every_address_in_two_statements_is_exposure if {
	halves := [read_all({"IpAddress": {"aws:SourceIp": "0.0.0.0/1"}}), read_all({"IpAddress": {"aws:SourceIp": ["128.0.0.0/1"]}})]
	ops.is_exposure with input as with_request(aws("s3", "PutBucketPolicy", false, false, {"Bucket": "mybucket"}), {"body": {"Statement": halves}})

	# The same halves, one also limited to an account: not anyone's.
	limited := [halves[0], read_all({"IpAddress": {"aws:SourceIp": "128.0.0.0/1"}, "StringEquals": {"aws:SourceAccount": "111122223333"}})]
	not ops.is_exposure with input as with_request(aws("s3", "PutBucketPolicy", false, false, {"Bucket": "mybucket"}), {"body": {"Statement": limited}})
	office := [read_all({"IpAddress": {"aws:SourceIp": "192.0.2.0/24"}}), read_all({"IpAddress": {"aws:SourceIp": "198.51.100.0/24"}})]
	not ops.is_exposure with input as with_request(aws("s3", "PutBucketPolicy", false, false, {"Bucket": "mybucket"}), {"body": {"Statement": office}})
}

test_aws_bucket_policy_limited_to_an_organisation_is_not_exposure if {
	inp := with_request(
		aws("s3", "PutBucketPolicy", false, false, {"Bucket": "mybucket"}),
		{"body": {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Condition": {"StringEquals": {"aws:PrincipalOrgID": ["o-123"]}}}]}},
	)
	not ops.is_exposure with input as inp
}

test_aws_public_canned_acl_is_exposure if {
	inp := with_request(aws("s3", "PutObject", false, false, {"Bucket": "mybucket", "Key": "a.txt"}), {"headers": {"x-amz-acl": ["public-read"]}})
	ops.is_exposure with input as inp
}

test_aws_private_canned_acl_is_not_exposure if {
	inp := with_request(aws("s3", "PutObject", false, false, {"Bucket": "mybucket", "Key": "a.txt"}), {"headers": {"x-amz-acl": ["private"]}})
	not ops.is_exposure with input as inp
}

test_aws_grant_to_all_users_is_exposure if {
	inp := with_request(aws("s3", "PutBucketAcl", false, false, {"Bucket": "mybucket"}), {"headers": {"x-amz-grant-read": ["uri=\"http://acs.amazonaws.com/groups/global/AllUsers\""]}})
	ops.is_exposure with input as inp
}

test_aws_acl_body_for_all_users_is_exposure if {
	inp := with_request(aws("s3", "PutBucketAcl", false, false, {"Bucket": "mybucket"}), {"body": "<AccessControlPolicy><AccessControlList><Grant><Grantee><URI>http://acs.amazonaws.com/groups/global/AllUsers</URI></Grantee><Permission>READ</Permission></Grant></AccessControlList></AccessControlPolicy>"})
	ops.is_exposure with input as inp
}

test_aws_delete_public_access_block_is_exposure if {
	ops.is_exposure with input as aws("s3", "DeletePublicAccessBlock", false, true, {"Bucket": "mybucket"})
}

test_aws_loosened_public_access_block_is_exposure if {
	inp := with_request(aws("s3", "PutPublicAccessBlock", false, false, {"Bucket": "mybucket"}), {"body": "<PublicAccessBlockConfiguration><BlockPublicAcls>true</BlockPublicAcls><BlockPublicPolicy>false</BlockPublicPolicy></PublicAccessBlockConfiguration>"})
	ops.is_exposure with input as inp
}

# Settings left out are false (found by review: an empty configuration
# lifted every block).
test_aws_empty_public_access_block_is_exposure if {
	inp := with_request(aws("s3", "PutPublicAccessBlock", false, false, {"Bucket": "mybucket"}), {"body": "<PublicAccessBlockConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"></PublicAccessBlockConfiguration>"})
	ops.is_exposure with input as inp
}

test_aws_public_access_block_true_only_in_a_comment_is_exposure if {
	all_true := "<BlockPublicAcls>true</BlockPublicAcls><IgnorePublicAcls>true</IgnorePublicAcls><BlockPublicPolicy>true</BlockPublicPolicy><RestrictPublicBuckets>true</RestrictPublicBuckets>"
	inp := with_request(aws("s3", "PutPublicAccessBlock", false, false, {"Bucket": "mybucket"}), {"body": concat("", ["<PublicAccessBlockConfiguration><!--", all_true, "--></PublicAccessBlockConfiguration>"])})
	ops.is_exposure with input as inp
	instruction := with_request(aws("s3", "PutPublicAccessBlock", false, false, {"Bucket": "mybucket"}), {"body": concat("", ["<PublicAccessBlockConfiguration><?x ", all_true, " ?></PublicAccessBlockConfiguration>"])})
	ops.is_exposure with input as instruction
	lower_case := with_request(aws("s3", "PutPublicAccessBlock", false, false, {"Bucket": "mybucket"}), {"body": lower(concat("", ["<PublicAccessBlockConfiguration>", all_true, "</PublicAccessBlockConfiguration>"]))})
	ops.is_exposure with input as lower_case
	twice := with_request(aws("s3", "PutPublicAccessBlock", false, false, {"Bucket": "mybucket"}), {"body": concat("", ["<PublicAccessBlockConfiguration>", all_true, "<BlockPublicAcls>false</BlockPublicAcls></PublicAccessBlockConfiguration>"])})
	ops.is_exposure with input as twice
}

test_aws_tight_public_access_block_is_permission_only if {
	inp := with_request(aws("s3", "PutPublicAccessBlock", false, false, {"Bucket": "mybucket"}), {"body": "<PublicAccessBlockConfiguration><BlockPublicAcls>true</BlockPublicAcls><IgnorePublicAcls>true</IgnorePublicAcls><BlockPublicPolicy>true</BlockPublicPolicy><RestrictPublicBuckets>true</RestrictPublicBuckets></PublicAccessBlockConfiguration>"})
	ops.class == "permission" with input as inp
}

test_aws_ingress_from_anywhere_is_exposure if {
	inp := aws("ec2", "AuthorizeSecurityGroupIngress", false, false, {
		"GroupId": "sg-1", "IpPermissions.1.IpProtocol": "tcp", "IpPermissions.1.FromPort": "22",
		"IpPermissions.1.ToPort": "22", "IpPermissions.1.IpRanges.1.CidrIp": "0.0.0.0/0",
	})
	ops.class == "exposure" with input as inp
}

# Found by review: the internet in two halves.
test_aws_ingress_from_ranges_covering_everything_is_exposure if {
	inp := aws("ec2", "AuthorizeSecurityGroupIngress", false, false, {
		"GroupId": "sg-1", "IpPermissions.1.IpRanges.1.CidrIp": "0.0.0.0/1",
		"IpPermissions.1.IpRanges.2.CidrIp": "128.0.0.0/1", "IpPermissions.1.IpProtocol": "tcp",
	})
	ops.is_exposure with input as inp
}

test_aws_ingress_from_an_odd_spelling_of_everywhere_is_exposure if {
	inp := aws("ec2", "AuthorizeSecurityGroupIngress", false, false, {"GroupId": "sg-1", "IpPermissions.1.IpRanges.1.CidrIp": "0.0.0.1/0"})
	ops.is_exposure with input as inp
}

test_aws_ingress_from_mapped_ranges_does_not_fail if {
	inp := aws("ec2", "AuthorizeSecurityGroupIngress", false, false, {
		"GroupId": "sg-1", "IpPermissions.1.Ipv6Ranges.1.CidrIpv6": "::ffff:0.0.0.0/97",
		"IpPermissions.1.Ipv6Ranges.2.CidrIpv6": "::ffff:128.0.0.0/97",
	})
	ops.class == "permission" with input as inp
}

test_aws_ingress_from_two_private_ranges_is_not_exposure if {
	inp := aws("ec2", "AuthorizeSecurityGroupIngress", false, false, {
		"GroupId": "sg-1", "IpPermissions.1.IpRanges.1.CidrIp": "10.0.0.0/8",
		"IpPermissions.1.IpRanges.2.CidrIp": "192.168.0.0/16", "IpPermissions.1.Description": "a/b",
	})
	not ops.is_exposure with input as inp
}

test_aws_ingress_from_a_cidr_is_permission if {
	inp := aws("ec2", "AuthorizeSecurityGroupIngress", false, false, {"GroupId": "sg-1", "IpPermissions.1.IpRanges.1.CidrIp": "10.0.0.0/8"})
	ops.class == "permission" with input as inp
}

test_aws_snapshot_shared_with_everyone_is_exposure if {
	ops.is_exposure with input as aws("ec2", "ModifySnapshotAttribute", false, false, {"SnapshotId": "snap-1", "CreateVolumePermission.Add.1.Group": "all"})
	ops.is_exposure with input as aws("rds", "ModifyDBSnapshotAttribute", false, false, {"DBSnapshotIdentifier": "s", "AttributeName": "restore", "ValuesToAdd.member.1": "all"})
	not ops.is_exposure with input as aws("rds", "ModifyDBSnapshotAttribute", false, false, {"DBSnapshotIdentifier": "s", "AttributeName": "restore", "ValuesToAdd.member.1": "111122223333"})
}

test_aws_public_database_is_exposure if {
	ops.is_exposure with input as aws("rds", "ModifyDBInstance", false, false, {"DBInstanceIdentifier": "db", "PubliclyAccessible": "true"})
	not ops.is_exposure with input as aws("rds", "ModifyDBInstance", false, false, {"DBInstanceIdentifier": "db", "PubliclyAccessible": "false"})
}

test_aws_lambda_open_to_anyone_is_exposure if {
	ops.is_exposure with input as with_request(aws("lambda", "AddPermission", false, false, {"FunctionName": "f"}), {"body": {"Principal": "*", "Action": "lambda:InvokeFunction"}})
	ops.is_exposure with input as with_request(aws("lambda", "CreateFunctionUrlConfig", false, false, {"FunctionName": "f"}), {"body": {"AuthType": "NONE"}})
	not ops.is_exposure with input as with_request(aws("lambda", "CreateFunctionUrlConfig", false, false, {"FunctionName": "f"}), {"body": {"AuthType": "AWS_IAM"}})
}

github(operation, read_only, destructive, extra) := {
	"request": {"method": "POST", "host": "api.github.com", "path": "/repos/acme/shop", "headers": {}},
	"action": object.union(
		{"provider": "github", "operation": operation, "owner": "acme", "repo": "shop", "read_only": read_only, "destructive": destructive},
		extra,
	),
}

test_github_get_is_read if {
	ops.class == "read" with input as github("repos/get", true, false, {})
	ops.name == "repos/get" with input as github("repos/get", true, false, {})
}

test_github_delete_repo_is_destructive if ops.class == "destructive" with input as github("repos/delete", false, true, {})

test_github_visibility_public_is_exposure if ops.class == "exposure" with input as github("repos/update", false, false, {"public_exposure": true})

test_github_visibility_private_is_write if ops.class == "write" with input as github("repos/update", false, false, {"public_exposure": false})

test_github_branch_protection_is_permission if {
	ops.class == "permission" with input as github("repos/update-branch-protection", false, false, {"branch": "main"})
	ops.classes == {"write", "destructive", "permission"} with input as github("repos/delete-branch-protection", false, true, {"branch": "main"})
}

test_github_reading_branch_protection_is_read if ops.class == "read" with input as github("repos/get-branch-protection", true, false, {})

test_github_collaborators_and_secrets_are_permission if {
	ops.is_permission with input as github("repos/add-collaborator", false, false, {})
	ops.is_permission with input as github("actions/create-or-update-repo-secret", false, false, {})
	ops.is_permission with input as github("repos/create-deploy-key", false, false, {})
}

test_github_merge_is_write if ops.class == "write" with input as github("pulls/merge", false, false, {})

graphql(provider, operation_type, fields, read_only, destructive) := {
	"request": {"method": "POST", "host": "api.github.com", "path": "/graphql", "headers": {}},
	"action": {
		"provider": provider, "operation_type": operation_type, "fields": fields,
		"read_only": read_only, "destructive": destructive,
	},
}

test_graphql_query_is_read if {
	ops.class == "read" with input as graphql("github", "query", ["viewer"], true, false)
	ops.name == "query viewer" with input as graphql("github", "query", ["viewer"], true, false)
}

test_graphql_delete_mutation_is_destructive if {
	ops.class == "destructive" with input as graphql("graphql", "mutation", ["volumeDelete"], false, true)
	ops.name == "mutation volumeDelete" with input as graphql("graphql", "mutation", ["volumeDelete"], false, true)
}

test_graphql_branch_protection_mutation_is_permission if {
	ops.is_permission with input as graphql("github", "mutation", ["deleteBranchProtectionRule"], false, true)
	ops.is_permission with input as graphql("github", "mutation", ["updateTeamsRepository", "addCollaboratorToRepo"], false, false)
}

test_graphql_public_repository_is_exposure if {
	inp := object.union(graphql("github", "mutation", ["createRepository"], false, false), {"action": {"public_exposure": true}})
	ops.class == "exposure" with input as inp
}

kube(verb, resource, subresource, namespace, body) := {
	"request": {"method": "PATCH", "host": "k8s.example.test", "path": "/apis/apps/v1", "headers": {}, "body": body},
	"action": {
		"provider": "kubernetes", "verb": verb, "resource": resource, "subresource": subresource,
		"namespace": namespace, "name": "web", "dry_run": false,
		"read_only": verb in {"get", "list", "watch"}, "destructive": verb in {"delete", "deletecollection"},
	},
}

test_kubernetes_list_is_read if {
	ops.class == "read" with input as kube("list", "pods", "", "default", null)
	ops.name == "list pods" with input as kube("list", "pods", "", "default", null)
}

test_kubernetes_delete_namespace_is_destructive if {
	ops.class == "destructive" with input as kube("delete", "namespaces", "", "prod", null)
	ops.name == "delete namespaces" with input as kube("delete", "namespaces", "", "prod", null)
}

test_kubernetes_scale_to_zero_is_destructive if {
	ops.class == "destructive" with input as kube("patch", "deployments", "scale", "default", {"spec": {"replicas": 0}})
	ops.is_destructive with input as kube("patch", "deployments", "", "default", {"spec": {"replicas": 0, "template": {}}})
	ops.name == "patch deployments/scale" with input as kube("patch", "deployments", "scale", "default", {"spec": {"replicas": 0}})
}

test_kubernetes_scale_to_zero_by_json_patch_is_destructive if {
	# A JSON Patch body is a list: only the classifier's replicas says what it sets.
	inp := object.union(kube("patch", "deployments", "scale", "default", [{"op": "replace", "path": "/spec/replicas", "value": 0}]), {"action": {"replicas": 0}})
	ops.class == "destructive" with input as inp
}

test_kubernetes_scale_to_three_by_json_patch_is_write if {
	inp := object.union(kube("patch", "deployments", "scale", "default", [{"op": "replace", "path": "/spec/replicas", "value": 3}]), {"action": {"replicas": 3}})
	ops.class == "write" with input as inp
}

test_kubernetes_scale_up_is_write if ops.class == "write" with input as kube("patch", "deployments", "scale", "default", {"spec": {"replicas": 3}})

test_kubernetes_exec if {
	ops.classes == {"write", "exec"} with input as kube("create", "pods", "exec", "default", null)
	ops.is_exec with input as kube("get", "pods", "portforward", "default", null)
	not ops.is_read with input as kube("get", "pods", "exec", "default", null)
}

test_kubevirt_console_is_exec if {
	inp := object.union(kube("get", "virtualmachineinstances", "console", "prod", null), {"action": {"api_group": "subresources.kubevirt.io"}})
	ops.is_exec with input as inp
	not ops.is_exec with input as object.union(inp, {"action": {"api_group": "example.com"}})
}

test_kubernetes_rbac_writes_are_permission if {
	ops.class == "permission" with input as kube("create", "clusterrolebindings", "", "", null)
	ops.is_permission with input as kube("patch", "roles", "", "default", null)
	ops.is_permission with input as kube("create", "serviceaccounts", "token", "default", null)
	not ops.is_permission with input as kube("get", "roles", "", "default", null)
}

test_kubernetes_impersonation_is_permission if {
	inp := object.union(kube("get", "secrets", "", "default", null), {"request": {"headers": {"impersonate-user": ["system:admin"]}}})
	ops.is_permission with input as inp
	not ops.is_read with input as inp
}

test_kubernetes_load_balancer_is_exposure if {
	ops.class == "exposure" with input as kube("create", "services", "", "default", {"spec": {"type": "LoadBalancer"}})
	ops.class == "write" with input as kube("create", "services", "", "default", {"spec": {"type": "ClusterIP"}})
	ops.is_exposure with input as kube("create", "ingresses", "", "default", null)
}

git(service, updates, read_only, destructive) := {
	"request": {"method": "POST", "host": "github.com", "path": "/acme/shop.git/git-receive-pack", "headers": {}},
	"action": {"provider": "git", "service": service, "repo": "acme/shop", "updates": updates, "read_only": read_only, "destructive": destructive, "operation": "push"},
}

test_git_fetch_is_read if ops.class == "read" with input as git("upload-pack", [], true, false)

test_git_push_is_write if ops.class == "write" with input as git("receive-pack", [{"ref": "refs/heads/feature", "kind": "create"}], false, false)

test_git_branch_deletion_is_destructive if ops.class == "destructive" with input as git("receive-pack", [{"ref": "refs/heads/feature", "kind": "delete"}], false, true)

mcp(method, tool, read_only, destructive) := {
	"request": {"method": "POST", "host": "mcp.example.test", "path": "/mcp", "headers": {}},
	"action": {"provider": "mcp", "method": method, "operation": method, "tool": tool, "server": "mcp.example.test/mcp", "read_only": read_only, "destructive": destructive},
}

test_mcp_list_is_read if ops.class == "read" with input as mcp("tools/list", "", true, false)

test_mcp_tool_call_is_write if {
	ops.class == "write" with input as mcp("tools/call", "list_tables", false, false)
	ops.name == "tools/call list_tables" with input as mcp("tools/call", "list_tables", false, false)
}

test_mcp_drop_is_destructive if ops.class == "destructive" with input as mcp("tools/call", "drop_table", false, true)

test_mcp_sharing_tool_is_permission if ops.is_permission with input as mcp("tools/call", "share_document", false, false)

http(method) := {
	"request": {"method": method, "host": "example.com", "path": "/", "headers": {}},
	"action": {"provider": "http", "operation": method, "read_only": method == "GET", "destructive": false},
}

test_http if {
	ops.class == "read" with input as http("GET")
	ops.class == "write" with input as http("POST")
	ops.class == "destructive" with input as http("DELETE")
	ops.name == "DELETE" with input as http("DELETE")
}

test_kubernetes_discovery_is_named_by_path if {
	inp := {
		"request": {"method": "GET", "host": "k8s.example.test", "path": "/api", "headers": {}},
		"action": {"provider": "kubernetes", "verb": "get", "resource": "", "subresource": "", "path": "/api", "read_only": true, "destructive": false},
	}
	ops.name == "get /api" with input as inp
	ops.class == "read" with input as inp
}
