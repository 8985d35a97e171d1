package countersign.incidents_test

# The inferred calls: a CloudFormation teardown and replace in production.

test_incident_07_delete_production_stack_needs_two_approvers if {
	inp := aws(prod_key, "cloudformation", "DeleteStack", ["cost-explorer"], {"StackName": "cost-explorer"}, false, true)
	"INC-07" in held(inp)
	denied(inp) == set()
	some r in data.countersign.approve with input as inp
	r.id == "INC-07"
	r.approvals == 2
}

test_incident_07_change_set_in_production_needs_two_approvers if {
	inp := aws(prod_key, "cloudformation", "ExecuteChangeSet", ["cost-explorer"], {"ChangeSetName": "replace", "StackName": "cost-explorer"}, false, false)
	"INC-07" in held(inp)
}

test_incident_07_create_stack_allowed if allowed(aws(prod_key, "cloudformation", "CreateStack", ["cost-explorer"], {"StackName": "cost-explorer"}, false, false))

test_incident_07_outside_production_allowed if allowed(aws(dev_key, "cloudformation", "DeleteStack", ["sandbox"], {"StackName": "sandbox"}, false, true))
