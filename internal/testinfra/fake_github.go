package testinfra

import (
	"encoding/json"
	"net/http"
	"strings"
)

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
