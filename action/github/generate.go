package github

// The route table is generated from GitHub's OpenAPI descriptions; run
// `go generate ./action/github/` (needs npm and the npm registry) to refresh
// it, or pass -tgz to use a tarball fetched by hand.
//go:generate go run ./internal/routegen -version 23.0.2 -out routes_gen.go
