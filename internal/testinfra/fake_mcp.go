package testinfra

import "net/http"

// fakeMCP is an MCP server on the streamable HTTP transport.
func fakeMCP(w http.ResponseWriter, r *http.Request) {
	echo(w, r)
}
