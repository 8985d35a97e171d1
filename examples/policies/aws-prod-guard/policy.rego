# AWS production guard
#
# Production is told apart by account (data.countersign.production.aws,
# with access keys mapped to accounts in data.countersign.aws.access_keys).
# In production, deleting stacks, databases, buckets and backups is
# denied, making anything public is denied, and every other write waits
# for a human. Anywhere, IAM changes that can escalate privileges are
# denied, writes signed with an unknown access key wait for a human, and
# public exposure outside production waits for a human too. Reads pass.
#
# (A header comment, not a package METADATA annotation: OPA allows one
# per package, and every policy set here is package countersign, so
# sets can be loaded together.)
package countersign

import data.countersign.lib.globs
import data.countersign.lib.ops
import data.countersign.lib.prod

# METADATA
# description: |
#   Operations that lose data for good: stacks (and everything in them),
#   databases, buckets, and the backups that would bring them back.
aws_data_loss_operations := [
	"cloudformation:DeleteStack",
	"cloudformation:DeleteStackSet",
	"cloudformation:DeleteStackInstances",
	"rds:DeleteDBInstance",
	"rds:DeleteDBCluster",
	"rds:DeleteGlobalCluster",
	"rds:DeleteDBSnapshot",
	"rds:DeleteDBClusterSnapshot",
	"rds:DeleteDBInstanceAutomatedBackup",
	"dynamodb:DeleteTable",
	"dynamodb:DeleteBackup",
	"redshift:DeleteCluster",
	"elasticache:DeleteCacheCluster",
	"elasticache:DeleteReplicationGroup",
	"elasticache:DeleteServerlessCache",
	"memorydb:DeleteCluster",
	"dax:DeleteCluster",
	"es:DeleteDomain",
	"es:DeleteElasticsearchDomain",
	"timestream:DeleteDatabase",
	"timestream:DeleteTable",
	"s3:DeleteBucket",
	"glacier:DeleteVault",
	"backup:DeleteBackupVault",
	"backup:DeleteRecoveryPoint",
	"ec2:DeleteSnapshot",
	"ec2:DeleteVolume",
	"elasticfilesystem:DeleteFileSystem",
	"fsx:DeleteFileSystem",
	"kms:ScheduleKeyDeletion",
]

# METADATA
# description: |
#   IAM calls that hand someone (the agent first of all) more power:
#   attaching or writing policies, new credentials, trust policy changes,
#   group membership and lifting permissions boundaries.
aws_escalation_operations := [
	"iam:Attach*Policy",
	"iam:Put*Policy",
	"iam:CreatePolicyVersion",
	"iam:SetDefaultPolicyVersion",
	"iam:Delete*PermissionsBoundary",
	"iam:UpdateAssumeRolePolicy",
	"iam:AddUserToGroup",
	"iam:AddRoleToInstanceProfile",
	"iam:CreateAccessKey",
	"iam:UpdateAccessKey",
	"iam:CreateLoginProfile",
	"iam:UpdateLoginProfile",
	"iam:DeactivateMFADevice",
	"iam:UploadSSHPublicKey",
	"iam:CreateServiceSpecificCredential",
	"iam:ResetServiceSpecificCredential",
	"sso:AttachManagedPolicyToPermissionSet",
	"sso:PutInlinePolicyToPermissionSet",
	"sso:CreateAccountAssignment",
	"organizations:AttachPolicy",
	"organizations:DetachPolicy",
	"organizations:UpdatePolicy",
]

aws_resources := concat(", ", input.action.resources) if count(input.action.resources) > 0

default aws_resources := "(no resource named)"

# METADATA
# title: AWS-PROD-001
# description: No agent deletes stacks, databases, buckets or backups in production.
deny contains {
	"id": "AWS-PROD-001",
	"msg": sprintf("%s on %s in production (%s) destroys data that cannot be brought back; an agent may not do it, ask a human", [ops.name, aws_resources, prod.summary]),
} if {
	input.action.provider == "aws"
	prod.is_prod
	globs.match_any(aws_data_loss_operations, ops.name)
}

# METADATA
# title: AWS-PROD-002
# description: No agent changes IAM in a way that can escalate privileges, in any account.
deny contains {
	"id": "AWS-PROD-002",
	"msg": sprintf("%s on %s can escalate privileges; an agent may not change IAM permissions, ask a human", [ops.name, aws_resources]),
} if {
	input.action.provider == "aws"
	globs.match_any(aws_escalation_operations, ops.name)
}

# METADATA
# title: AWS-PROD-003
# description: Nothing in production is made public by an agent.
deny contains {
	"id": "AWS-PROD-003",
	"msg": sprintf("%s on %s would make a production resource public (%s); an agent may not do it, ask a human", [ops.name, aws_resources, prod.summary]),
} if {
	input.action.provider == "aws"
	prod.is_prod
	ops.is_exposure
}

# METADATA
# title: AWS-PROD-004
# description: Every other production write waits for a human.
approve contains {
	"id": "AWS-PROD-004",
	"msg": sprintf("%s (%s) on %s changes production (%s)", [ops.name, ops.class, aws_resources, prod.summary]),
} if {
	input.action.provider == "aws"
	prod.is_prod
	ops.is_write
}

# METADATA
# title: AWS-PROD-005
# description: |
#   A write signed with an access key that is not in the inventory might be
#   production: a human decides, and the key belongs in data.
approve contains {
	"id": "AWS-PROD-005",
	"msg": sprintf("%s on %s is signed with access key %s, which is not in data.countersign.aws.access_keys, so its account is unknown", [ops.name, aws_resources, input.action.access_key_id]),
} if {
	input.action.provider == "aws"
	ops.is_write
	not prod.aws_key_known(input.action.access_key_id)
	not prod.is_prod
}

# METADATA
# title: AWS-PROD-006
# description: Making something public outside production waits for a human.
approve contains {
	"id": "AWS-PROD-006",
	"msg": sprintf("%s on %s makes a resource public", [ops.name, aws_resources]),
} if {
	input.action.provider == "aws"
	not prod.is_prod
	ops.is_exposure
}

# METADATA
# title: AWS-PROD-007
# description: |
#   An AWS write whose operation or parameters countersign could not read
#   waits for a human in every account: the rules above could not see what
#   it does (found by review: outside production such writes escaped
#   them all).
approve contains {
	"id": "AWS-PROD-007",
	"msg": sprintf("countersign could not tell what this AWS request does (%s): a human decides", [aws_unread_reason]),
} if {
	input.action.provider == "aws"
	not input.action.read_only
	not prod.is_prod
	aws_unread_reason
}

aws_unread_reason := input.action.parse_error if {
	is_string(input.action.parse_error)
	input.action.parse_error != ""
} else := "no operation named" if {
	not input.action.operation
} else := "no operation named" if {
	input.action.operation == ""
}
