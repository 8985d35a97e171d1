# METADATA
# title: Host helpers
# description: |
#   Well-known hosts: cloud metadata endpoints and the public APIs that change
#   infrastructure. Import with `import data.countersign.lib.hosts`.
package countersign.lib.hosts

# Cloud instance metadata endpoints. They hand out the machine's credentials,
# so an agent has no business calling them.
metadata := {
	"169.254.169.254", # AWS, Azure, GCP, OpenStack, DigitalOcean
	"fd00:ec2::254", # AWS IMDS over IPv6
	"169.254.170.2", # AWS ECS task credentials
	"metadata.google.internal",
	"metadata",
	"100.100.100.200", # Alibaba Cloud
}

# Host patterns of APIs whose mutating calls change infrastructure, source
# control or published packages (glob syntax, "." as delimiter).
infrastructure := [
	"**.amazonaws.com",
	"**.amazonaws.com.cn",
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

# is_metadata(host) is true for a cloud metadata endpoint.
is_metadata(host) if host in metadata

# is_infrastructure(host) is true for a host in the infrastructure list.
is_infrastructure(host) if {
	some pattern in infrastructure
	glob.match(pattern, ["."], host)
}
