package countersign.aws_prod_guard_test

import data.countersign

# The actions below are what countersign's AWS classifier makes of the AWS
# CLI's requests (action/aws/testdata), signed with one of two keys that
# data.yaml maps to the production and the development account.

prod_key := "AKIA2PRODEXAMPLE0001"

dev_key := "AKIAIOSFODNN7EXAMPLE"

call(key, service, operation, resources, params, read_only, destructive) := {
	"request": {
		"method": "POST", "scheme": "https", "host": sprintf("%s.us-east-1.amazonaws.com", [service]),
		"port": 443, "path": "/", "query": {}, "headers": {}, "tunnel": false,
	},
	"action": {
		"provider": "aws", "service": service, "operation": operation, "region": "us-east-1",
		"access_key_id": key, "resources": resources, "params": params,
		"read_only": read_only, "destructive": destructive,
	},
}

delete_stack(key) := call(key, "cloudformation", "DeleteStack", ["prod-stack"], {"StackName": "prod-stack"}, false, true)

delete_db(key) := call(key, "rds", "DeleteDBInstance", ["prod-db"], {"DBInstanceIdentifier": "prod-db", "SkipFinalSnapshot": "true"}, false, true)

delete_table(key) := call(key, "dynamodb", "DeleteTable", ["orders"], {"TableName": "orders"}, false, true)

delete_bucket(key) := call(key, "s3", "DeleteBucket", ["mybucket"], {"Bucket": "mybucket"}, false, true)

terminate(key) := call(key, "ec2", "TerminateInstances", ["i-0abc1234def567890"], {"InstanceId.1": "i-0abc1234def567890"}, false, true)

describe(key) := call(key, "ec2", "DescribeInstances", [], {}, true, false)

attach_admin(key) := call(key, "iam", "AttachUserPolicy", ["agent", "arn:aws:iam::aws:policy/AdministratorAccess"], {"UserName": "agent", "PolicyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}, false, false)

public_bucket_policy(key) := object.union(
	call(key, "s3", "PutBucketPolicy", ["mybucket"], {"Bucket": "mybucket", "policy": ""}, false, false),
	{"request": {"body": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::mybucket/*"}]}}},
)

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

test_data_file_is_loaded if {
	data.countersign.aws.access_keys[prod_key] == "shop-prod"
	"shop-prod" in data.countersign.production.aws.accounts
}

test_delete_stack_in_production_denied if {
	denied(delete_stack(prod_key)) == {"AWS-PROD-001"}
	some r in countersign.deny with input as delete_stack(prod_key)
	r.msg == "cloudformation:DeleteStack on prod-stack in production (AWS account shop-prod) destroys data that cannot be brought back; an agent may not do it, ask a human"
}

test_delete_database_in_production_denied if denied(delete_db(prod_key)) == {"AWS-PROD-001"}

test_delete_table_in_production_denied if denied(delete_table(prod_key)) == {"AWS-PROD-001"}

test_delete_bucket_in_production_denied if denied(delete_bucket(prod_key)) == {"AWS-PROD-001"}

test_deletes_outside_production_allowed if {
	allowed(delete_stack(dev_key))
	allowed(delete_db(dev_key))
	allowed(delete_bucket(dev_key))
}

test_terminate_in_production_held if {
	denied(terminate(prod_key)) == set()
	held(terminate(prod_key)) == {"AWS-PROD-004"}
	some r in countersign.approve with input as terminate(prod_key)
	r.msg == "ec2:TerminateInstances (destructive) on i-0abc1234def567890 changes production (AWS account shop-prod)"
}

test_terminate_outside_production_allowed if allowed(terminate(dev_key))

test_reads_in_production_allowed if {
	allowed(describe(prod_key))
	allowed(call(prod_key, "sts", "GetCallerIdentity", [], {}, true, false))
	allowed(call(prod_key, "s3", "ListObjectsV2", ["mybucket"], {"Bucket": "mybucket"}, true, false))
}

test_other_production_write_held if held(call(prod_key, "s3", "PutObject", ["mybucket/a.txt"], {"Bucket": "mybucket", "Key": "a.txt"}, false, false)) == {"AWS-PROD-004"}

test_iam_escalation_denied_in_every_account if {
	denied(attach_admin(dev_key)) == {"AWS-PROD-002"}
	"AWS-PROD-002" in denied(attach_admin(prod_key))
	denied(call(dev_key, "iam", "CreateAccessKey", ["agent"], {"UserName": "agent"}, false, false)) == {"AWS-PROD-002"}
	denied(call(dev_key, "iam", "PutRolePolicy", ["deploy"], {"RoleName": "deploy"}, false, false)) == {"AWS-PROD-002"}
	denied(call(dev_key, "iam", "UpdateAssumeRolePolicy", ["deploy"], {"RoleName": "deploy"}, false, false)) == {"AWS-PROD-002"}

	# IAM Identity Center, under the prefix the classifier reports (sso).
	denied(call(dev_key, "sso", "CreateAccountAssignment", [], {"TargetId": "111122223333"}, false, false)) == {"AWS-PROD-002"}
	denied(call(dev_key, "sso", "AttachManagedPolicyToPermissionSet", [], {}, false, false)) == {"AWS-PROD-002"}
}

test_efs_delete_in_production_denied if "AWS-PROD-001" in denied(call(prod_key, "elasticfilesystem", "DeleteFileSystem", ["fs-0123"], {}, false, true))

test_iam_reads_allowed if allowed(call(dev_key, "iam", "ListAttachedUserPolicies", ["agent"], {"UserName": "agent"}, true, false))

test_public_bucket_in_production_denied if "AWS-PROD-003" in denied(public_bucket_policy(prod_key))

test_public_bucket_outside_production_held if {
	denied(public_bucket_policy(dev_key)) == set()
	held(public_bucket_policy(dev_key)) == {"AWS-PROD-006"}
}

test_unknown_key_write_held if {
	held(terminate("AKIAUNKNOWNEXAMPLE00")) == {"AWS-PROD-005"}
	allowed(describe("AKIAUNKNOWNEXAMPLE00"))
}

test_production_account_named_by_an_arn if {
	inp := call(dev_key, "lambda", "DeleteFunction", ["arn:aws:lambda:us-east-1:111122223333:function:billing"], {"FunctionName": "arn:aws:lambda:us-east-1:111122223333:function:billing"}, false, true)
	held(inp) == {"AWS-PROD-004"}
}

# Found by review: a write countersign could not name, or whose
# parameters it could not read, escaped every rule outside production.
test_unread_writes_held_in_every_account if {
	held(object.union(call(dev_key, "s3", "", [], {}, false, false), {"action": {"operation": ""}})) == {"AWS-PROD-007"}
	held(object.union(call(dev_key, "lambda", "UpdateFunctionConfiguration", ["f1"], {}, false, false), {"action": {"parse_error": "the body is larger than the inspection limit; params were not read"}})) == {"AWS-PROD-007"}
	held(object.union(call(prod_key, "s3", "", [], {}, false, false), {"action": {"operation": ""}})) == {"AWS-PROD-004"}
	allowed(describe(dev_key))
}

# A body the exposure rules must read that they cannot (past the limit,
# not JSON) counts as making the resource public.
test_unreadable_exposure_bodies_count_as_public if {
	unread := object.union(public_bucket_policy(dev_key), {"request": {"body": "{\"Version\": truncated", "body_truncated": true}})
	held(unread) == {"AWS-PROD-006"}
	denied(object.union(public_bucket_policy(prod_key), {"request": {"body": null}})) == {"AWS-PROD-003"}
	held(object.union(call(dev_key, "lambda", "AddPermission", ["f1"], {}, false, false), {"request": {"body_truncated": true}})) == {"AWS-PROD-006"}
	held(object.union(call(dev_key, "s3", "PutBucketAcl", ["b"], {}, false, false), {"request": {"body_truncated": true}})) == {"AWS-PROD-006"}
	allowed(object.union(call(dev_key, "s3", "PutBucketAcl", ["b"], {}, false, false), {"request": {"body": "<AccessControlPolicy><Grant><Grantee><ID>abc</ID></Grantee></Grant></AccessControlPolicy>"}}))
	allowed(object.union(call(dev_key, "lambda", "AddPermission", ["f1"], {}, false, false), {"request": {"body": {"Principal": "s3.amazonaws.com", "StatementId": "s3"}}}))
}
