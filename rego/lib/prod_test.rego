package countersign.lib.prod_test

import data.countersign.lib.prod

inventory := {
	"aws": {"accounts": ["111122223333", "shop-prod"], "access_key_ids": ["AKIA2PRODEXAMPLE0001"]},
	"kubernetes": {"hosts": ["k8s.prod.example.com", "*.eks.prod.example.com"], "namespaces": ["prod", "prod-*"]},
	"github": {"orgs": ["acme-prod"], "repos": ["acme/shop", "acme/billing-*"]},
	"hosts": ["*.prod.example.com"],
	"ids": ["e-prod", "3d2c42fb-0000-4c1e-9a7e-000000000000"],
}

access_keys := {
	"AKIA2PRODEXAMPLE0002": "shop-prod",
	"AKIAIOSFODNN7EXAMPLE": "shop-dev",
}

aws(key, resources) := {
	"request": {"method": "POST", "host": "ec2.us-east-1.amazonaws.com", "path": "/"},
	"action": {"provider": "aws", "service": "ec2", "operation": "TerminateInstances", "access_key_id": key, "resources": resources},
}

kube(host, namespace) := {
	"request": {"method": "DELETE", "host": host, "path": "/api/v1/namespaces/x"},
	"action": {"provider": "kubernetes", "verb": "delete", "resource": "namespaces", "namespace": namespace},
}

test_aws_key_listed_by_itself if {
	prod.is_prod with input as aws("AKIA2PRODEXAMPLE0001", ["i-0abc"])
		with data.countersign.production as inventory
		with data.countersign.aws.access_keys as {}
	prod.evidence == {"AWS access key AKIA2PRODEXAMPLE0001"} with input as aws("AKIA2PRODEXAMPLE0001", ["i-0abc"])
		with data.countersign.production as inventory
		with data.countersign.aws.access_keys as {}
}

test_aws_key_mapped_to_a_production_account if {
	prod.is_prod with input as aws("AKIA2PRODEXAMPLE0002", ["i-0abc"])
		with data.countersign.production as inventory
		with data.countersign.aws.access_keys as access_keys
	prod.summary == "AWS account shop-prod" with input as aws("AKIA2PRODEXAMPLE0002", ["i-0abc"])
		with data.countersign.production as inventory
		with data.countersign.aws.access_keys as access_keys
}

test_aws_key_of_another_account_is_not_prod if {
	not prod.is_prod with input as aws("AKIAIOSFODNN7EXAMPLE", ["i-0abc"])
		with data.countersign.production as inventory
		with data.countersign.aws.access_keys as access_keys
}

test_aws_unmapped_key_is_not_prod if {
	not prod.is_prod with input as aws("AKIAUNKNOWNEXAMPLE00", ["i-0abc"])
		with data.countersign.production as inventory
		with data.countersign.aws.access_keys as access_keys
}

test_aws_arn_names_a_production_account if {
	inp := aws("AKIAIOSFODNN7EXAMPLE", ["arn:aws:lambda:us-east-1:111122223333:function:billing"])
	prod.evidence == {"AWS account 111122223333 (arn:aws:lambda:us-east-1:111122223333:function:billing)"} with input as inp
		with data.countersign.production as inventory
		with data.countersign.aws.access_keys as access_keys
}

test_arn_account if {
	prod.arn_account("arn:aws:iam::111122223333:role/deploy") == "111122223333"
	not prod.arn_account("arn:aws:s3:::mybucket")
	not prod.arn_account("i-0abc")
}

test_aws_account_of_a_key if {
	prod.aws_account("AKIA2PRODEXAMPLE0002") == "shop-prod" with data.countersign.aws.access_keys as access_keys
	not prod.aws_account("AKIA2PRODEXAMPLE0001") with data.countersign.aws.access_keys as access_keys
}

test_kubernetes_cluster if {
	prod.evidence == {"Kubernetes cluster k8s.prod.example.com", "host k8s.prod.example.com"} with input as kube("k8s.prod.example.com", "default")
		with data.countersign.production as inventory
	prod.is_prod with input as kube("a.eks.prod.example.com", "")
		with data.countersign.production as inventory
}

test_kubernetes_namespace_in_any_cluster if {
	prod.evidence == {"Kubernetes namespace prod-eu"} with input as kube("k8s.dev.example.com", "prod-eu")
		with data.countersign.production as inventory
}

test_kubernetes_other_namespace_is_not_prod if {
	not prod.is_prod with input as kube("k8s.dev.example.com", "staging")
		with data.countersign.production as inventory
	not prod.is_prod with input as kube("k8s.dev.example.com", "")
		with data.countersign.production as inventory
}

test_kubernetes_namespace_glob_is_anchored if not prod.kubernetes_namespace("preprod") with data.countersign.production as inventory

github(owner, repo) := {
	"request": {"method": "DELETE", "host": "api.github.com", "path": "/repos/x/y"},
	"action": {"provider": "github", "operation": "repos/delete", "owner": owner, "repo": repo},
}

test_github_repository if {
	prod.evidence == {"repository acme/shop"} with input as github("acme", "shop")
		with data.countersign.production as inventory
	prod.is_prod with input as github("acme", "billing-api")
		with data.countersign.production as inventory
	not prod.is_prod with input as github("acme", "docs")
		with data.countersign.production as inventory
}

test_github_names_are_case_insensitive if {
	prod.is_prod with input as github("ACME", "Shop")
		with data.countersign.production as inventory
}

test_github_org if {
	prod.is_prod with input as github("acme-prod", "anything")
		with data.countersign.production as inventory
}

test_github_org_level_call if {
	inp := {"request": {"host": "api.github.com"}, "action": {"provider": "github", "operation": "orgs/update", "owner": "acme-prod"}}
	prod.evidence == {"repository acme-prod"} with input as inp
		with data.countersign.production as inventory
}

test_git_push_repository if {
	inp := {"request": {"host": "github.com"}, "action": {"provider": "git", "service": "receive-pack", "repo": "acme/shop"}}
	prod.is_prod with input as inp with data.countersign.production as inventory
}

test_host if {
	inp := {"request": {"host": "api.prod.example.com"}, "action": {"provider": "http"}}
	prod.evidence == {"host api.prod.example.com"} with input as inp with data.countersign.production as inventory
}

test_graphql_variable_names_a_production_id if {
	inp := {
		"request": {"host": "backboard.railway.com"},
		"action": {
			"provider": "graphql", "operation_type": "mutation", "fields": ["variableUpsert"],
			"variables": {"input": {"environmentId": "e-prod", "name": "DATABASE_URL"}},
		},
	}
	prod.evidence == {"production id e-prod"} with input as inp with data.countersign.production as inventory
}

test_graphql_inline_argument_names_a_production_id if {
	inp := {
		"request": {"host": "backboard.railway.com"},
		"action": {
			"provider": "graphql", "operation_type": "mutation", "fields": ["volumeDelete"],
			"selections": [{"field": "volumeDelete", "arguments": {"volumeId": "3d2c42fb-0000-4c1e-9a7e-000000000000"}}],
		},
	}
	prod.is_prod with input as inp with data.countersign.production as inventory
}

test_mcp_argument_names_a_production_id if {
	inp := {"request": {"host": "mcp.example.com"}, "action": {"provider": "mcp", "tool": "delete_env", "arguments": {"env": "e-prod"}}}
	prod.is_prod with input as inp with data.countersign.production as inventory
}

test_nothing_configured_is_not_prod if {
	not prod.is_prod with input as aws("AKIA2PRODEXAMPLE0001", ["i-0abc"])
		with data.countersign.production as {}
	not prod.configured with data.countersign.production as {}
	prod.configured with data.countersign.production as inventory
}
