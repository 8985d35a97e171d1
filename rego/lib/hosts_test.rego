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

# The is_ functions compare names and glob the *_patterns lists alone:
# those lists must hold exactly the entries with glob characters, and the
# functions must answer as a glob over the whole list would.

globby(p) if regex.match(`[*?\[\]{}\\]`, p)

test_infrastructure_patterns_in_step if {
	{p | some p in hosts.infrastructure; globby(p)} == {p | some p in hosts.infrastructure_patterns}
}

test_package_registry_patterns_in_step if {
	{p | some p in hosts.package_registries; globby(p)} == {p | some p in hosts.package_registry_patterns}
}

test_llm_api_patterns_in_step if {
	{p | some p in hosts.llm_apis; globby(p)} == {p | some p in hosts.llm_api_patterns}
}

glob_any(list, host) if {
	some p in list
	glob.match(p, ["."], host)
}

as_glob(list, host) if glob_any(list, host)

else := false

infra(h) if hosts.is_infrastructure(h)

else := false

registry(h) if hosts.is_package_registry(h)

else := false

llm(h) if hosts.is_llm_api(h)

else := false

sample_hosts := [
	"ec2.us-east-1.amazonaws.com", "amazonaws.com", "s3.cn-north-1.amazonaws.com.cn",
	"api.github.com", "github.com", "github.com.evil.test", "a.github.com",
	"registry.npmjs.org", "registry.npmjs.org.evil.test", "proxy.golang.org",
	"x.openai.azure.com", "openai.azure.com", "bedrock-runtime.eu-west-1.amazonaws.com",
	"us-central1-aiplatform.googleapis.com", "db.abc.supabase.co", "api.anthropic.com",
	"example.com", "localhost", "",
]

test_is_functions_answer_as_a_glob_over_the_list if {
	every h in sample_hosts {
		infra(h) == as_glob(hosts.infrastructure, h)
		registry(h) == as_glob(hosts.package_registries, h)
		llm(h) == llm_as_listed(h)
	}
}

# The llm_apis list, Bedrock's REGION read as a region name.
llm_as_listed(h) if glob_any([e | some e in hosts.llm_apis; not contains(e, "REGION")], h)

else if regex.match("^bedrock-runtime\\.[a-z]{2}-[a-z]+-[0-9]\\.amazonaws\\.com$", h)

else := false

# Found by review: S3's endpoints for a bucket named bedrock-runtime are
# not Bedrock.
test_bedrock_bucket_lookalikes_are_not_llm_apis if {
	every h in [
		"bedrock-runtime.s3.amazonaws.com", "bedrock-runtime.s3-accelerate.amazonaws.com",
		"bedrock-runtime.s3-us-west-2.amazonaws.com", "bedrock-runtime.s3-external-1.amazonaws.com",
		"bedrock-runtime.s3-website-us-east-1.amazonaws.com", "bedrock-runtime.evil.amazonaws.com",
	] {
		not hosts.is_llm_api(h)
	}
	hosts.is_llm_api("bedrock-runtime.us-gov-west-1.amazonaws.com")
	hosts.is_llm_api("bedrock-runtime-fips.us-east-1.amazonaws.com")
}

# Every entry of every list is matched by its own function.
test_every_entry_matches_itself if {
	every h in hosts.infrastructure {
		infra(h)
	}
	every h in hosts.package_registries {
		registry(h)
	}
	every h in hosts.llm_apis {
		llm(replace(h, "REGION", "eu-west-1"))
	}
}
