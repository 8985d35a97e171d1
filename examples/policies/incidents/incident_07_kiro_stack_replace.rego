# Incident #7: Kiro "deletes and recreates the environment" (Dec 2025; disputed)
#
# Engineers let the agent change AWS Cost Explorer and it chose to delete
# and recreate the environment, a 13-hour interruption; the agent ran with
# its operator's rights and no second person approved. No calls were
# published; the inferred ones are a CloudFormation teardown and replace:
# DeleteStack and CreateStack, or an ExecuteChangeSet (or UpdateStack)
# that replaces stateful resources. In production these wait for two
# approvers. Whether a change set replaces anything is only in
# DescribeChangeSet's answer, which the proxy does not see when deciding,
# so every production change set waits.
package countersign

import data.countersign.incidents
import data.countersign.lib.prod

inc07_stack_operations := {
	"cloudformation:DeleteStack",
	"cloudformation:DeleteStackSet",
	"cloudformation:DeleteStackInstances",
	"cloudformation:ExecuteChangeSet",
	"cloudformation:UpdateStack",
}

# METADATA
# title: INC-07
# description: Deleting or replacing a production stack needs two approvers.
approve contains {
	"id": "INC-07",
	"msg": sprintf("%s on %s in production (%s) can delete and recreate the environment", [incidents.aws_operation, incidents.aws_resources, prod.summary]),
	"approvals": 2,
} if {
	incidents.aws_operation in inc07_stack_operations
	prod.is_prod
}
