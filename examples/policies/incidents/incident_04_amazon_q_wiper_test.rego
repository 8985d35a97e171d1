package countersign.incidents_test

# The AWS CLI calls the wiper prompt named (aws ec2 terminate-instances,
# aws s3 rm, aws iam delete-user and the deletes that precede it), after
# the Describe/List calls it enumerates profiles with.

test_incident_04_enumeration_allowed if {
	allowed(aws(dev_key, "ec2", "DescribeInstances", [], {}, true, false))
	allowed(aws(dev_key, "iam", "ListUsers", [], {}, true, false))
	allowed(aws(dev_key, "sts", "GetCallerIdentity", [], {}, true, false))
	allowed(aws(dev_key, "s3", "ListBuckets", [], {}, true, false))
}

test_incident_04_terminate_instances_held if held(aws(dev_key, "ec2", "TerminateInstances", ["i-0abc1234def567890"], {"InstanceId.1": "i-0abc1234def567890"}, false, true)) == {"INC-04-2"}

test_incident_04_s3_rm_held if {
	held(aws(dev_key, "s3", "DeleteObject", ["mybucket/logs/old.txt"], {"Bucket": "mybucket", "Key": "logs/old.txt"}, false, true)) == {"INC-04-2"}
	held(aws(dev_key, "s3", "DeleteObjects", ["mybucket", "mybucket/logs/a.txt"], {"Bucket": "mybucket", "Objects": ["logs/a.txt"]}, false, true)) == {"INC-04-2"}
}

test_incident_04_iam_delete_user_denied if {
	inp := aws(dev_key, "iam", "DeleteUser", ["alice"], {"UserName": "alice"}, false, true)
	denied(inp) == {"INC-04-1"}
	some r in data.countersign.deny with input as inp
	r.msg == "iam:DeleteUser on alice is not allowed: agents do not delete IAM identities or their permissions; ask a human"
}

test_incident_04_iam_preparation_denied if {
	denied(aws(dev_key, "iam", "DeleteAccessKey", ["alice"], {"UserName": "alice", "AccessKeyId": "AKIAOLDKEYEXAMPLE000"}, false, true)) == {"INC-04-1"}
	denied(aws(dev_key, "iam", "DeleteLoginProfile", ["alice"], {"UserName": "alice"}, false, true)) == {"INC-04-1"}
	denied(aws(dev_key, "iam", "DetachUserPolicy", ["alice"], {"UserName": "alice", "PolicyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}, false, false)) == {"INC-04-1"}
	denied(aws(dev_key, "iam", "RemoveUserFromGroup", ["alice"], {"UserName": "alice", "GroupName": "devs"}, false, false)) == {"INC-04-1"}
}

# In production the same termination is held by #4 and #9 both.
test_incident_04_terminate_in_production_held if held(aws(prod_key, "ec2", "TerminateInstances", ["i-0abc"], {"InstanceId.1": "i-0abc"}, false, true)) == {"INC-04-2", "INC-09-2"}

# Terminations under other names (found by review: allowed outside
# production).
test_incident_04_other_terminations_held if {
	held(aws(dev_key, "autoscaling", "TerminateInstanceInAutoScalingGroup", ["i-0abc"], {"InstanceId": "i-0abc", "ShouldDecrementDesiredCapacity": "false"}, false, true)) == {"INC-04-2"}
	held(aws(dev_key, "autoscaling", "DeleteAutoScalingGroup", ["web"], {"AutoScalingGroupName": "web", "ForceDelete": "true"}, false, true)) == {"INC-04-2"}
	held(aws(dev_key, "ec2", "DeleteFleets", ["fleet-1"], {"FleetId.1": "fleet-1", "TerminateInstances": "true"}, false, true)) == {"INC-04-2"}
	held(aws(dev_key, "ec2", "CancelSpotFleetRequests", ["sfr-1"], {"SpotFleetRequestId.1": "sfr-1", "TerminateInstances": true}, false, true)) == {"INC-04-2"}
	held(aws(dev_key, "emr", "TerminateJobFlows", ["j-1"], {"JobFlowIds": ["j-1"]}, false, true)) == {"INC-04-2"}
}

test_incident_04_fleet_delete_keeping_instances_allowed if allowed(aws(dev_key, "ec2", "DeleteFleets", ["fleet-1"], {"FleetId.1": "fleet-1", "TerminateInstances": "false"}, false, true))

test_incident_04_scale_to_zero_held if {
	held(aws(dev_key, "autoscaling", "UpdateAutoScalingGroup", ["web"], {"AutoScalingGroupName": "web", "MinSize": "0", "MaxSize": "0", "DesiredCapacity": "0"}, false, false)) == {"INC-04-2"}
	held(aws(dev_key, "autoscaling", "SetDesiredCapacity", ["web"], {"AutoScalingGroupName": "web", "DesiredCapacity": "0"}, false, false)) == {"INC-04-2"}
	held(aws(dev_key, "ec2", "ModifyFleet", ["fleet-1"], {"FleetId": "fleet-1", "TargetCapacitySpecification.TotalTargetCapacity": "0", "ExcessCapacityTerminationPolicy": "termination"}, false, false)) == {"INC-04-2"}
	held(aws(dev_key, "ec2", "ModifySpotFleetRequest", ["sfr-1"], {"SpotFleetRequestId": "sfr-1", "TargetCapacity": "0"}, false, false)) == {"INC-04-2"}
	allowed(aws(dev_key, "autoscaling", "SetDesiredCapacity", ["web"], {"AutoScalingGroupName": "web", "DesiredCapacity": "3"}, false, false))

	# Zero however written, and scheduled (found by review).
	held(aws(dev_key, "autoscaling", "SetDesiredCapacity", ["web"], {"AutoScalingGroupName": "web", "DesiredCapacity": "00"}, false, false)) == {"INC-04-2"}
	held(aws(dev_key, "autoscaling", "UpdateAutoScalingGroup", ["web"], {"AutoScalingGroupName": "web", "MaxSize": "+0"}, false, false)) == {"INC-04-2"}
	held(aws(dev_key, "autoscaling", "PutScheduledUpdateGroupAction", ["web"], {"AutoScalingGroupName": "web", "MaxSize": "0", "DesiredCapacity": "0"}, false, false)) == {"INC-04-2"}
}

test_incident_04_eks_nodegroup_to_zero_held if {
	inp := object.union(aws(dev_key, "eks", "UpdateNodegroupConfig", ["prod-ng"], {}, false, false), {"request": {"body": {"scalingConfig": {"minSize": 0, "maxSize": 3, "desiredSize": 0}}}})
	held(inp) == {"INC-04-2"}
	allowed(object.union(inp, {"request": {"body": {"scalingConfig": {"desiredSize": 2}}}}))
}

# Ending one's own Session Manager session is no termination.
test_incident_04_ssm_terminate_session_allowed if allowed(aws(dev_key, "ssm", "TerminateSession", ["alice-0abc"], {"SessionId": "alice-0abc"}, false, false))

# Found by review: the sizes past the inspection limit, lifecycle
# expiry, and writes countersign could not name.
test_incident_04_eks_unreadable_sizes_held if {
	inp := object.union(aws(dev_key, "eks", "UpdateNodegroupConfig", ["ng1"], {}, false, false), {"request": {"body_truncated": true}})
	held(inp) == {"INC-04-2"}
	allowed(object.union(inp, {"request": {"body_pending": true}}))
}

test_incident_04_lifecycle_expiry_held if {
	expire := object.union(aws(dev_key, "s3", "PutBucketLifecycleConfiguration", ["shop-dev"], {"Bucket": "shop-dev"}, false, false), {"request": {"body": "<LifecycleConfiguration><Rule><Status>Enabled</Status><Filter/><Expiration><Days>1</Days></Expiration></Rule></LifecycleConfiguration>"}})
	held(expire) == {"INC-04-2"}
	held(object.union(expire, {"request": {"body": null, "body_truncated": true}})) == {"INC-04-2"}
	allowed(object.union(expire, {"request": {"body": "<LifecycleConfiguration><Rule><Status>Enabled</Status><Filter/><Transition><Days>30</Days><StorageClass>GLACIER</StorageClass></Transition></Rule></LifecycleConfiguration>"}}))
}

test_incident_04_unread_writes_held if {
	held(object.union(aws(dev_key, "s3", "", [], {}, false, false), {"action": {"operation": ""}})) == {"INC-04-3"}
	held(object.union(aws(dev_key, "ec2", "RunInstances", [], {}, false, false), {"action": {"parse_error": "the form body is malformed"}})) == {"INC-04-3"}
	allowed(aws(dev_key, "ec2", "RunInstances", [], {}, false, false))
}
