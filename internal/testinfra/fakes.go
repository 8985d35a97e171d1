package testinfra

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// FakeAPIs answers like the real APIs closely enough for real clients and for
// the demo, routing by Host and path: AWS (*.amazonaws.com, fake_aws.go),
// GitHub REST and GraphQL (api.github.com, fake_github.go), a Kubernetes API
// server (any host, /api and /apis paths, fake_kubernetes.go), an MCP server
// (POST /mcp, fake_mcp.go), and anything else as an echo.
func FakeAPIs() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if i := strings.LastIndexByte(host, ':'); i > 0 && !strings.Contains(host[i:], "]") {
			host = host[:i]
		}
		switch {
		case strings.HasSuffix(host, ".amazonaws.com"):
			fakeAWS(w, r)
		case host == "api.github.com":
			fakeGitHub(w, r)
		case strings.HasPrefix(r.URL.Path, "/api/") || strings.HasPrefix(r.URL.Path, "/apis/") || r.URL.Path == "/api" || r.URL.Path == "/apis" || r.URL.Path == "/version":
			fakeKubernetes(w, r)
		case r.URL.Path == "/mcp", host == "mcp-root.example.test":
			// mcp-root: an MCP server mounted at /, as the Go SDK's
			// examples mount it.
			fakeMCP(w, r)
		default:
			echo(w, r)
		}
	})
}

func echo(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/ws" {
		echoUpgrade(w, r)
		return
	}
	if r.URL.Path == "/trailers" {
		// A chunked response with a trailer, for tests that check trailers
		// are never forwarded.
		w.Header().Set("Trailer", "X-Upstream-Trailer")
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, "body with a trailer\n")
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		w.Header().Set("X-Upstream-Trailer", "secret-trailer")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"method": r.Method, "host": r.Host, "path": r.URL.Path, "ok": true})
}

func xmlEscape(s string) string {
	r := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;")
	return r.Replace(s)
}

// echoUpgrade accepts any Upgrade request with 101 and then echoes every
// byte back, standing in for a WebSocket or SPDY server.
func echoUpgrade(w http.ResponseWriter, r *http.Request) {
	proto := r.Header.Get("Upgrade")
	if proto == "" {
		http.Error(w, "upgrade required", http.StatusUpgradeRequired)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "cannot hijack", http.StatusInternalServerError)
		return
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: %s\r\n\r\n", proto)
	if err := brw.Flush(); err != nil {
		return
	}
	buf := make([]byte, 4096)
	for {
		n, err := brw.Read(buf)
		if n > 0 {
			if _, werr := conn.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
