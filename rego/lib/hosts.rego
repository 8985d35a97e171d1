# METADATA
# title: Host helpers
# description: |
#   Well-known hosts: cloud metadata endpoints and the public APIs that change
#   infrastructure. Import with `import data.countersign.lib.hosts`.
package countersign.lib.hosts

# METADATA
# description: |
#   Cloud instance metadata endpoints. They hand out the machine's
#   credentials, so an agent has no business calling them.
metadata := {
	"169.254.169.254", # AWS, Azure, GCP, OpenStack, DigitalOcean
	"fd00:ec2::254", # AWS IMDS over IPv6
	"169.254.170.2", # AWS ECS task credentials
	"metadata.google.internal",
	"metadata",
	"100.100.100.200", # Alibaba Cloud
}

# METADATA
# description: |
#   Host patterns of APIs whose mutating calls change infrastructure, source
#   control or published packages (glob syntax, "." as delimiter).
infrastructure := [
	"**.amazonaws.com",
	"**.amazonaws.com.cn",
	"**.amazonaws.eu",
	"api.github.com",
	"github.com",
	"uploads.github.com",
	"gitlab.com",
	"bitbucket.org",
	"api.bitbucket.org",
	"**.googleapis.com",
	"management.azure.com",
	"graph.microsoft.com",
	"api.cloudflare.com",
	"api.digitalocean.com",
	"api.heroku.com",
	"api.vercel.com",
	"backboard.railway.com",
	"backboard.railway.app",
	"api.supabase.com",
	"**.supabase.co",
	"console.neon.tech",
	"api.fly.io",
	"api.machines.dev",
	"api.render.com",
	"api.netlify.com",
	"api.linode.com",
	"api.hetzner.cloud",
	"api.planetscale.com",
	"registry.npmjs.org",
	"upload.pypi.org",
	"hub.docker.com",
	"registry-1.docker.io",
	"ghcr.io",
]

# METADATA
# description: host is a cloud metadata endpoint.
is_metadata(host) if host in metadata

# METADATA
# description: host matches the infrastructure list.
is_infrastructure(host) if host in infrastructure

is_infrastructure(host) if {
	some pattern in infrastructure_patterns
	glob.match(pattern, ["."], host)
}

# The entries of infrastructure with glob characters. A name without them
# matches only itself, so the is_ functions compare names and run
# glob.match on these alone: for a host on no list, 7 glob.match calls
# instead of 62. hosts_test.rego keeps the lists in step.
infrastructure_patterns := [
	"**.amazonaws.com",
	"**.amazonaws.com.cn",
	"**.amazonaws.eu",
	"**.googleapis.com",
	"**.supabase.co",
]

# METADATA
# description: |
#   Host patterns of the public package registries that builds and agents
#   download from (npm, PyPI, Go modules, crates.io, RubyGems, Maven
#   Central, Docker Hub, Debian). Publishing to a registry goes through
#   some of the same hosts: an allowlist built on this list decides where
#   traffic may go, not what it may do there.
package_registries := [
	"registry.npmjs.org",
	"registry.yarnpkg.com",
	"pypi.org",
	"files.pythonhosted.org",
	"proxy.golang.org",
	"sum.golang.org",
	"index.golang.org",
	"crates.io",
	"index.crates.io",
	"static.crates.io",
	"rubygems.org",
	"index.rubygems.org",
	"repo.maven.apache.org",
	"repo1.maven.org",
	"plugins.gradle.org",
	"registry-1.docker.io",
	"auth.docker.io",
	"production.cloudflare.docker.com",
	"deb.debian.org",
	"security.debian.org",
]

# METADATA
# description: |
#   Host patterns of the hosted LLM APIs coding agents talk to.
llm_apis := [
	"api.anthropic.com",
	"api.openai.com",
	"generativelanguage.googleapis.com",
	"*.openai.azure.com",
	"api.mistral.ai",
	"api.groq.com",
	"api.deepseek.com",
	"openrouter.ai",
	"bedrock-runtime.REGION.amazonaws.com",
	"*-aiplatform.googleapis.com",
]

# The entries of package_registries with glob characters (see
# infrastructure_patterns).
package_registry_patterns := []

# METADATA
# description: host matches the package_registries list.
is_package_registry(host) if host in package_registries

is_package_registry(host) if {
	some pattern in package_registry_patterns
	glob.match(pattern, ["."], host)
}

# The entries of llm_apis with glob characters (see
# infrastructure_patterns).
llm_api_patterns := [
	"*.openai.azure.com",
	"*-aiplatform.googleapis.com",
]

# METADATA
# description: host matches the llm_apis list.
is_llm_api(host) if host in llm_apis

is_llm_api(host) if {
	some pattern in llm_api_patterns
	glob.match(pattern, ["."], host)
}

# Bedrock's runtime in a region (REGION in llm_apis), by a pattern that
# takes region names only: bedrock-runtime.*.amazonaws.com matched S3's
# endpoints for a bucket named bedrock-runtime (bedrock-runtime.s3…,
# found by review), whoever owns it.
is_llm_api(host) if regex.match(`^bedrock-runtime(-fips)?\.[a-z]{2,4}(-[a-z]+){1,3}-[0-9]{1,2}\.amazonaws\.com$`, host)
