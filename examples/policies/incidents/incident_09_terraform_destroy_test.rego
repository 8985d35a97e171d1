package countersign.incidents_test

# terraform destroy's burst against production, as the AWS provider would
# send it.

test_incident_09_database_delete_dropping_backups_denied if {
	inp := aws(prod_key, "rds", "DeleteDBInstance", ["prod-db"], {"DBInstanceIdentifier": "prod-db", "SkipFinalSnapshot": "true"}, false, true)
	denied(inp) == {"INC-09-1"}
}

test_incident_09_database_delete_without_backup_choice_denied if {
	# A final snapshot, but RDS drops the automated backups by default.
	denied(aws(dev_key, "rds", "DeleteDBInstance", ["db"], {"DBInstanceIdentifier": "db", "FinalDBSnapshotIdentifier": "db-final"}, false, true)) == {"INC-09-1"}
}

test_incident_09_database_delete_keeping_backups_held_in_production if {
	inp := aws(prod_key, "rds", "DeleteDBInstance", ["prod-db"], {"DBInstanceIdentifier": "prod-db", "SkipFinalSnapshot": "false", "FinalDBSnapshotIdentifier": "prod-db-final", "DeleteAutomatedBackups": "false"}, false, true)
	denied(inp) == set()
	held(inp) == {"INC-09-2"}
}

test_incident_09_cluster_delete_with_final_snapshot_held if {
	inp := aws(prod_key, "rds", "DeleteDBCluster", ["prod"], {"DBClusterIdentifier": "prod", "FinalDBSnapshotIdentifier": "prod-final"}, false, true)
	held(inp) == {"INC-09-2"}
}

test_incident_09_the_rest_of_the_destroy_held if {
	held(aws(prod_key, "ecs", "DeleteService", ["web"], {"cluster": "prod", "service": "web"}, false, true)) == {"INC-09-2"}
	held(aws(prod_key, "ecs", "DeleteCluster", ["prod"], {"cluster": "prod"}, false, true)) == {"INC-09-2"}
	held(aws(prod_key, "elasticloadbalancing", "DeleteLoadBalancer", ["arn:aws:elasticloadbalancing:us-east-1:111122223333:loadbalancer/app/web/1"], {}, false, true)) == {"INC-09-2"}
	held(aws(prod_key, "ec2", "DeleteSubnet", ["subnet-1"], {"SubnetId": "subnet-1"}, false, true)) == {"INC-09-2"}
	held(aws(prod_key, "ec2", "DeleteVpc", ["vpc-1"], {"VpcId": "vpc-1"}, false, true)) == {"INC-09-2"}
}

test_incident_09_production_account_found_through_an_arn if {
	# Signed with the development key, but the ARN names the production account.
	held(aws(dev_key, "elasticloadbalancing", "DeleteLoadBalancer", ["arn:aws:elasticloadbalancing:us-east-1:111122223333:loadbalancer/app/web/1"], {}, false, true)) == {"INC-09-2"}
}

test_incident_09_deletes_outside_production_allowed if allowed(aws(dev_key, "ecs", "DeleteCluster", ["sandbox"], {"cluster": "sandbox"}, false, true))

test_incident_09_head_before_the_body_is_not_denied if {
	inp := aws(prod_key, "rds", "DeleteDBInstance", ["prod-db"], {}, false, true)
	denied(object.union(inp, {"request": {"body_pending": true}})) == set()
}

# Temporary credentials minted from a production key are in no inventory
# (found by review: the delete they signed was allowed).
test_incident_09_delete_with_unknown_key_held if {
	allowed(aws(prod_key, "sts", "GetSessionToken", [], {}, false, false))
	held(aws("ASIAXXXXXXXXXXXXXXXX", "ecs", "DeleteCluster", ["web"], {"cluster": "web"}, false, true)) == {"INC-09-3"}
	allowed(aws("ASIAXXXXXXXXXXXXXXXX", "ecs", "DescribeClusters", ["web"], {"clusters": ["web"]}, true, false))
	allowed(aws(dev_key, "ecs", "DeleteCluster", ["web"], {"cluster": "web"}, false, true))
}

# Found by review: backups dropped without a database delete, and a
# tenant database deleted without a final snapshot.
test_incident_09_backups_dropped_held if {
	held(aws(dev_key, "rds", "DeleteDBInstanceAutomatedBackup", ["db-ABC"], {"DbiResourceId": "db-ABC"}, false, true)) == {"INC-09-4"}
	held(aws(dev_key, "rds", "ModifyDBInstance", ["shop"], {"DBInstanceIdentifier": "shop", "BackupRetentionPeriod": "0", "ApplyImmediately": "true"}, false, false)) == {"INC-09-4"}
	allowed(aws(dev_key, "rds", "ModifyDBInstance", ["shop"], {"DBInstanceIdentifier": "shop", "BackupRetentionPeriod": "7"}, false, false))
	denied(aws(dev_key, "rds", "DeleteTenantDatabase", ["cdb"], {"DBInstanceIdentifier": "cdb", "TenantDBName": "t1", "SkipFinalSnapshot": "true"}, false, true)) == {"INC-09-1"}
}

# SQL over AWS's Data APIs is read as the SQL over other APIs is.
test_incident_09_aws_sql_apis_are_read if {
	drop := object.union(aws(prod_key, "rds-data", "ExecuteStatement", [], {}, false, false), {"request": {"body": {"resourceArn": "arn:aws:rds:us-east-1:111122223333:cluster:shop", "sql": "DROP TABLE users"}}})
	"INC-03-2" in held(drop)
	batch := object.union(aws(prod_key, "dynamodb", "BatchExecuteStatement", [], {}, false, false), {"request": {"body": {"Statements": [{"Statement": "SELECT * FROM t"}, {"Statement": "DELETE FROM t"}]}}})
	"INC-03-2" in held(batch)
	not "INC-03-2" in held(object.union(drop, {"request": {"body": {"sql": "SELECT 1"}}}))
}
