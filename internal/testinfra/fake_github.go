package testinfra

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
)

// fakeGitHub answers api.github.com well enough for curl and gh: repository
// reads, updates and deletes under /repos/{owner}/{repo}, /user, and
// GraphQL at /graphql (the viewer, and an empty data object for anything
// else). Errors use GitHub's JSON shape, as gh expects.
func fakeGitHub(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if r.URL.Path == "/graphql" {
		fakeGitHubGraphQL(w, r)
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) >= 3 && parts[0] == "repos" {
		owner, repo := parts[1], parts[2]
		switch r.Method {
		case http.MethodGet:
			_ = json.NewEncoder(w).Encode(map[string]any{"full_name": owner + "/" + repo, "name": repo,
				"owner": map[string]any{"login": owner}, "private": true, "visibility": "private", "default_branch": "main"})
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

func fakeGitHubGraphQL(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Query string `json:"query"`
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if r.Method != http.MethodPost || json.Unmarshal(body, &req) != nil || req.Query == "" {
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]any{"message": "Problems parsing JSON", "documentation_url": "https://docs.github.com/graphql"})
		return
	}
	data := map[string]any{}
	if strings.Contains(req.Query, "viewer") {
		data["viewer"] = map[string]any{"login": "octocat"}
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"data": data})
}
