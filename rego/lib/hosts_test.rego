package countersign.lib.hosts_test

import data.countersign.lib.hosts

test_metadata_ipv4 if hosts.is_metadata("169.254.169.254")

test_metadata_ipv6 if hosts.is_metadata("fd00:ec2::254")

test_not_metadata if not hosts.is_metadata("example.com")

test_aws_is_infrastructure if hosts.is_infrastructure("ec2.us-east-1.amazonaws.com")

test_github_is_infrastructure if hosts.is_infrastructure("api.github.com")

test_glob_does_not_cross_labels if not hosts.is_infrastructure("amazonaws.com.evil.example")

test_llm_api_is_not_infrastructure if not hosts.is_infrastructure("api.anthropic.com")

test_package_registries if {
	hosts.is_package_registry("registry.npmjs.org")
	hosts.is_package_registry("files.pythonhosted.org")
	hosts.is_package_registry("proxy.golang.org")
}

test_package_registry_lookalike if not hosts.is_package_registry("registry.npmjs.org.evil.test")

test_llm_apis if {
	hosts.is_llm_api("api.anthropic.com")
	hosts.is_llm_api("bedrock-runtime.eu-west-1.amazonaws.com")
	hosts.is_llm_api("myco.openai.azure.com")
}

test_llm_api_glob_stays_in_its_label if not hosts.is_llm_api("a.b.openai.azure.com")

test_github_is_not_an_llm_api if not hosts.is_llm_api("api.github.com")
