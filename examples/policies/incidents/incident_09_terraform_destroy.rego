# Incident #9: Claude Code runs terraform destroy on DataTalks.Club (Feb 2026)
#
# With a stale state file describing all of production, the agent ran an
# auto-approved terraform destroy: minutes of rds:DeleteDBInstance (which
# drops the automated backups unless told otherwise), ecs:Delete*,
# elasticloadbalancing:DeleteLoadBalancer, ec2:TerminateInstances,
# DeleteSubnet and DeleteVpc. A database delete that takes no final
# snapshot or drops the automated backups is denied in every account; any
# other production delete waits for a human, and so does one signed with
# a key in no inventory (temporary credentials minted from a production
# key). The incident also asks for a
# breaker (N deletes a minute per session): that needs session history,
# which the policy input does not carry.
package countersign

import data.countersign.incidents
import data.countersign.lib.ops
import data.countersign.lib.prod

inc09_database_deletes := {"rds:DeleteDBInstance", "rds:DeleteDBCluster", "rds:DeleteTenantDatabase"}

# A parameter spelled as the query protocol sends it ("true"/"false").
inc09_param(name) := lower(input.action.params[name]) if is_string(input.action.params[name])

inc09_param(name) := "true" if input.action.params[name] == true

inc09_param(name) := "false" if input.action.params[name] == false

inc09_skips_final_snapshot if inc09_param("SkipFinalSnapshot") == "true"

inc09_names_final_snapshot if {
	is_string(input.action.params.FinalDBSnapshotIdentifier)
	input.action.params.FinalDBSnapshotIdentifier != ""
}

# The delete keeps a way back: a final snapshot is taken and, for an
# instance, the automated backups are retained (RDS drops them unless told
# DeleteAutomatedBackups=false).
inc09_keeps_backups if {
	not inc09_skips_final_snapshot
	inc09_names_final_snapshot
	inc09_param("DeleteAutomatedBackups") == "false"
}

inc09_keeps_backups if {
	input.action.operation in {"DeleteDBCluster", "DeleteTenantDatabase"}
	not inc09_skips_final_snapshot
	inc09_names_final_snapshot
}

# METADATA
# title: INC-09-1
# description: A database delete that drops its backups is denied.
deny contains {
	"id": "INC-09-1",
	"msg": sprintf("%s on %s would drop the database with its backups; take a final snapshot (FinalDBSnapshotIdentifier) and keep the automated backups (DeleteAutomatedBackups=false), or ask a human", [incidents.aws_operation, incidents.aws_resources]),
} if {
	incidents.aws_operation in inc09_database_deletes
	not inc09_keeps_backups

	# The parameters are in the body: wait for it when the client has not
	# sent it yet ("100 Continue"); the request is decided again with it.
	not input.request.body_pending
}

# METADATA
# title: INC-09-4
# description: |
#   Calls that drop a database's backups without deleting it wait for a
#   human in every account (found by review): deleting retained automated
#   backups or snapshots, and a backup retention of zero, which deletes the
#   automated backups at once.
approve contains {
	"id": "INC-09-4",
	"msg": sprintf("%s on %s drops backups that would bring a database back", [incidents.aws_operation, incidents.aws_resources]),
} if {
	incidents.aws_operation in {
		"rds:DeleteDBInstanceAutomatedBackup", "rds:DeleteDBClusterAutomatedBackup",
		"rds:DeleteDBSnapshot", "rds:DeleteDBClusterSnapshot",
		"dynamodb:DeleteBackup", "backup:DeleteRecoveryPoint",
	}
}

approve contains {
	"id": "INC-09-4",
	"msg": sprintf("%s on %s sets the backup retention to zero, which deletes the automated backups", [incidents.aws_operation, incidents.aws_resources]),
} if {
	incidents.aws_operation in {"rds:ModifyDBInstance", "rds:ModifyDBCluster"}
	to_number(input.action.params.BackupRetentionPeriod) == 0
}

# METADATA
# title: INC-09-2
# description: Every other production delete waits for a human.
approve contains {
	"id": "INC-09-2",
	"msg": sprintf("%s on %s deletes in production (%s)", [incidents.aws_operation, incidents.aws_resources, prod.summary]),
} if {
	input.action.provider == "aws"
	ops.is_destructive
	prod.is_prod
}

# METADATA
# title: INC-09-3
# description: |
#   A delete signed with an AWS key that is in no inventory waits for a
#   human: its account is unknown. Temporary keys minted by STS from a
#   production key (GetSessionToken, AssumeRole) are such keys.
approve contains {
	"id": "INC-09-3",
	"msg": sprintf("%s on %s is signed with access key %s, which is not in data.countersign.aws.access_keys, so it may delete in production", [incidents.aws_operation, incidents.aws_resources, input.action.access_key_id]),
} if {
	input.action.provider == "aws"
	ops.is_destructive
	prod.configured
	not prod.is_prod
	not prod.aws_key_known(input.action.access_key_id)
}
