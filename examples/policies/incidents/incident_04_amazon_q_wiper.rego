# Incident #4: Amazon Q Developer 1.84.0 wiper prompt (Jul 2025)
#
# A prompt shipped in the official extension told the agent to delete
# cloud resources with the user's AWS profiles: aws ec2
# terminate-instances, aws s3 rm, aws iam delete-user (in practice
# preceded by DeleteAccessKey, DeleteLoginProfile and Detach*Policy).
# IAM deletions are denied in every account; terminations and S3 deletes
# wait for a human. The incident also asks for a breaker that halts a
# session enumerating several accounts and then deleting: that needs
# session history, which the policy input does not carry.
package countersign

import data.countersign.incidents
import data.countersign.lib.globs

# METADATA
# title: INC-04-1
# description: No agent deletes IAM users, keys, login profiles or policy attachments.
deny contains {
	"id": "INC-04-1",
	"msg": sprintf("%s on %s is not allowed: agents do not delete IAM identities or their permissions; ask a human", [incidents.aws_operation, incidents.aws_resources]),
} if {
	globs.match_any(["iam:Delete*", "iam:Detach*", "iam:Remove*"], incidents.aws_operation)
}

# METADATA
# title: INC-04-2
# description: Terminating instances (any service, fleets and Auto Scaling groups too) and deleting S3 objects or buckets wait for a human.
approve contains {
	"id": "INC-04-2",
	"msg": sprintf("%s on %s", [incidents.aws_operation, incidents.aws_resources]),
} if {
	incidents.aws_operation in {"s3:DeleteObject", "s3:DeleteObjects", "s3:DeleteBucket", "autoscaling:DeleteAutoScalingGroup"}
}

# Every termination, whatever the service calls it
# (ec2:TerminateInstances, autoscaling:TerminateInstanceInAutoScalingGroup,
# emr:TerminateJobFlows, …), and the calls that terminate the instances of
# a fleet on request.
approve contains {
	"id": "INC-04-2",
	"msg": sprintf("%s on %s", [incidents.aws_operation, incidents.aws_resources]),
} if {
	globs.match_any(["*:Terminate*"], incidents.aws_operation)
	not incidents.aws_operation in {"ssm:TerminateSession"} # ends one's own shell session
}

# Scaling a group or fleet to zero terminates its instances (found by
# review): Auto Scaling's desired or maximum size, a fleet's target
# capacity.
approve contains {
	"id": "INC-04-2",
	"msg": sprintf("%s to zero instances on %s terminates them", [incidents.aws_operation, incidents.aws_resources]),
} if {
	incidents.aws_operation in {
		"autoscaling:UpdateAutoScalingGroup", "autoscaling:SetDesiredCapacity",
		"autoscaling:PutScheduledUpdateGroupAction", "autoscaling:BatchPutScheduledUpdateGroupAction",
		"ec2:ModifyFleet", "ec2:ModifySpotFleetRequest",
	}
	some key, value in input.action.params
	some suffix in ["DesiredCapacity", "MaxSize", "TargetCapacity"]
	endswith(key, suffix)
	inc04_zero(value)
}

# EKS: a node group scaled to zero (the sizes are in the JSON body).
approve contains {
	"id": "INC-04-2",
	"msg": sprintf("%s to zero nodes on %s terminates them", [incidents.aws_operation, incidents.aws_resources]),
} if {
	incidents.aws_operation in {"eks:UpdateNodegroupConfig", "eks:CreateNodegroup"}
	some key in ["desiredSize", "maxSize"]
	inc04_zero(input.request.body.scalingConfig[key])
}

# The sizes could not be read: a body past inspect.body_limit, or one
# that is not JSON (found by review: padded past the limit, a node group
# scaled to zero was allowed).
approve contains {
	"id": "INC-04-2",
	"msg": sprintf("%s on %s: countersign could not read the sizes it sets, which could be zero", [incidents.aws_operation, incidents.aws_resources]),
} if {
	incidents.aws_operation in {"eks:UpdateNodegroupConfig", "eks:CreateNodegroup"}
	not is_object(inc04_body)
	not input.request.body_pending
}

# S3 lifecycle rules that expire objects delete them, a whole bucket's at
# once (found by review).
approve contains {
	"id": "INC-04-2",
	"msg": sprintf("%s on %s sets lifecycle rules that can expire (delete) objects", [incidents.aws_operation, incidents.aws_resources]),
} if {
	incidents.aws_operation in {"s3:PutBucketLifecycle", "s3:PutBucketLifecycleConfiguration"}
	inc04_lifecycle_may_expire
	not input.request.body_pending
}

# The body, null when absent (its own path, for the decision cache's key).
default inc04_body := null

inc04_body := input.request.body

inc04_lifecycle_may_expire if not is_string(inc04_body)

inc04_lifecycle_may_expire if contains(lower(input.request.body), "expiration")

# METADATA
# title: INC-04-3
# description: |
#   An AWS write whose operation or parameters countersign could not read
#   waits for a human: none of the rules above could see what it does.
approve contains {
	"id": "INC-04-3",
	"msg": sprintf("countersign could not tell what this AWS request does (%s): a human decides", [inc04_unread_reason]),
} if {
	input.action.provider == "aws"
	not input.action.read_only
	inc04_unread_reason
}

inc04_unread_reason := input.action.parse_error if {
	is_string(input.action.parse_error)
	input.action.parse_error != ""
} else := "no operation named" if {
	not input.action.operation
} else := "no operation named" if {
	input.action.operation == ""
}

# A number that is zero however it is written ("0", "00", "+0", 0).
inc04_zero(value) if to_number(value) == 0

approve contains {
	"id": "INC-04-2",
	"msg": sprintf("%s with TerminateInstances on %s", [incidents.aws_operation, incidents.aws_resources]),
} if {
	incidents.aws_operation in {"ec2:DeleteFleets", "ec2:CancelSpotFleetRequests"}
	lower(sprintf("%v", [input.action.params.TerminateInstances])) == "true"
}
