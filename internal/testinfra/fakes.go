package testinfra

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// FakeAPIs answers like the real APIs closely enough for clients and for the
// demo, routing by Host: EC2 (query protocol), GitHub REST, a Kubernetes API
// server (any host with /api or /apis paths), and anything else as an echo.
func FakeAPIs() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if i := strings.LastIndexByte(host, ':'); i > 0 && !strings.Contains(host[i:], "]") {
			host = host[:i]
		}
		switch {
		case strings.HasPrefix(host, "ec2.") && strings.HasSuffix(host, ".amazonaws.com"):
			fakeEC2(w, r)
		case host == "api.github.com":
			fakeGitHub(w, r)
		case strings.HasPrefix(r.URL.Path, "/api/") || strings.HasPrefix(r.URL.Path, "/apis/"):
			fakeKubernetes(w, r)
		default:
			echo(w, r)
		}
	})
}

func fakeEC2(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	switch action := r.Form.Get("Action"); action {
	case "DescribeInstances":
		fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?>
<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>fake-1</requestId><reservationSet><item><reservationId>r-0fake</reservationId><instancesSet><item><instanceId>i-0abc</instanceId><instanceType>t3.micro</instanceType><instanceState><code>16</code><name>running</name></instanceState></item></instancesSet></item></reservationSet></DescribeInstancesResponse>`)
	case "TerminateInstances":
		id := r.Form.Get("InstanceId.1")
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<TerminateInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>fake-2</requestId><instancesSet><item><instanceId>%s</instanceId><currentState><code>32</code><name>shutting-down</name></currentState><previousState><code>16</code><name>running</name></previousState></item></instancesSet></TerminateInstancesResponse>`, xmlEscape(id))
	default:
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>InvalidAction</Code><Message>fake EC2 does not implement %s</Message></Error></Errors><RequestID>fake</RequestID></Response>`, xmlEscape(action))
	}
}

func fakeGitHub(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) >= 3 && parts[0] == "repos" {
		owner, repo := parts[1], parts[2]
		switch r.Method {
		case http.MethodGet:
			_ = json.NewEncoder(w).Encode(map[string]any{"full_name": owner + "/" + repo, "private": true, "default_branch": "main"})
		case http.MethodDelete:
			w.WriteHeader(http.StatusNoContent)
		default:
			_ = json.NewEncoder(w).Encode(map[string]any{"full_name": owner + "/" + repo, "updated": true})
		}
		return
	}
	if r.URL.Path == "/user" {
		_ = json.NewEncoder(w).Encode(map[string]any{"login": "octocat"})
		return
	}
	w.WriteHeader(http.StatusNotFound)
	_ = json.NewEncoder(w).Encode(map[string]any{"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})
}

func fakeKubernetes(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if r.Method == http.MethodDelete {
		_ = json.NewEncoder(w).Encode(map[string]any{"kind": "Status", "apiVersion": "v1", "status": "Success"})
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"kind": "List", "apiVersion": "v1", "items": []any{}})
}

func echo(w http.ResponseWriter, r *http.Request) {
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
