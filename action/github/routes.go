package github

import (
	"net/url"
	"strings"
	"sync"
)

// base says where a route is served; a request is matched only against the
// routes of the base its host and path prefix select.
type base uint8

const (
	baseDotcom        base = 1 << iota // api.github.com (github.com and GHEC)
	baseDotcomUploads                  // uploads.github.com
	baseGHES                           // GHES https://HOST/api/v3
	baseGHESUploads                    // GHES https://HOST/api/uploads
	baseGHESRoot                       // GHES https://HOST/ (the manage API)
)

// routeSpec is one row of the generated table (routes_gen.go).
type routeSpec struct {
	method, template, operationID string
	bases                         base
}

// greedyParams are path parameters whose values contain slashes as sent by
// clients (git refs such as heads/feature/x, file paths, branch and tag
// names, base...head ranges): they match one or more segments.
var greedyParams = map[string]bool{
	"ref": true, "path": true, "branch": true, "basehead": true, "dir": true, "tag": true,
}

// maxSegments bounds the work per request; no GitHub route comes close, but a
// deep contents path may, and matching stays linear in it.
const maxSegments = 512

// node is a trie over path segments. At each position, literal children are
// tried before a single-segment parameter, and that before a greedy one, so
// the first route found is the most specific ("literal beats {param}",
// earliest segment first).
type node struct {
	lit    map[string]*node // keyed by the lower-cased literal
	param  *node
	greedy *node
	leaves []*leaf
}

type leaf struct {
	spec   *routeSpec
	params []string // parameter names, in path order
}

var routes = sync.OnceValue(func() *node { return buildTrie(routeTable) })

func buildTrie(specs []routeSpec) *node {
	root := &node{}
	for i := range specs {
		s := &specs[i]
		n := root
		var params []string
		for _, seg := range splitTemplate(s.template) {
			if name, ok := paramName(seg); ok {
				params = append(params, name)
				next := &n.param
				if greedyParams[name] {
					next = &n.greedy
				}
				if *next == nil {
					*next = &node{}
				}
				n = *next
				continue
			}
			k := strings.ToLower(seg)
			if n.lit == nil {
				n.lit = map[string]*node{}
			}
			c := n.lit[k]
			if c == nil {
				c = &node{}
				n.lit[k] = c
			}
			n = c
		}
		n.leaves = append(n.leaves, &leaf{spec: s, params: params})
	}
	return root
}

func splitTemplate(t string) []string {
	var segs []string
	for s := range strings.SplitSeq(t, "/") {
		if s != "" {
			segs = append(segs, s)
		}
	}
	return segs
}

func paramName(seg string) (string, bool) {
	if len(seg) > 2 && seg[0] == '{' && seg[len(seg)-1] == '}' {
		return seg[1 : len(seg)-1], true
	}
	return "", false
}

// pathSegments splits an escaped request path into decoded segments. Empty
// segments are dropped and dot segments resolved, as a front end that
// normalises the path would, so `/repos/o/r/x/..` is classified as what it
// reaches (`/repos/o/r`), not as what it looks like. %2F inside a segment
// stays inside it. It reports false for paths longer than maxSegments.
func pathSegments(raw string) ([]string, bool) {
	if strings.Count(raw, "/") > maxSegments*2 {
		return nil, false
	}
	var segs []string
	for s := range strings.SplitSeq(raw, "/") {
		if s == "" {
			continue
		}
		if d, err := url.PathUnescape(s); err == nil {
			s = d
		}
		switch s {
		case ".":
			continue
		case "..":
			if len(segs) > 0 {
				segs = segs[:len(segs)-1]
			}
			continue
		}
		segs = append(segs, s)
	}
	if len(segs) > maxSegments {
		return nil, false
	}
	return segs, true
}

// routeMatch is a matched route with its parameter values by name.
type routeMatch struct {
	spec   *routeSpec
	params map[string]string
}

// lookup finds the most specific route for method and segs among the routes
// served at b. HEAD is matched as GET.
func lookup(method string, segs []string, b base) (routeMatch, bool) {
	if method == "HEAD" {
		method = "GET"
	}
	m := matcher{method: method, base: b, segs: segs}
	if !m.walk(routes(), 0) {
		return routeMatch{}, false
	}
	params := make(map[string]string, len(m.found.params))
	for i, name := range m.found.params {
		v := m.values[i]
		params[name] = strings.Join(segs[v.from:v.to], "/")
	}
	return routeMatch{spec: m.found.spec, params: params}, true
}

type matcher struct {
	method string
	base   base
	segs   []string
	values []span // parameter values on the current trie path
	found  *leaf
}

// span is a parameter's value: segs[from:to].
type span struct{ from, to int }

func (m *matcher) walk(n *node, i int) bool {
	if i == len(m.segs) {
		for _, l := range n.leaves {
			if l.spec.method == m.method && l.spec.bases&m.base != 0 {
				m.found = l
				return true
			}
		}
		return false
	}
	seg := m.segs[i]
	if c := n.lit[strings.ToLower(seg)]; c != nil && m.walk(c, i+1) {
		return true
	}
	if n.param != nil {
		m.values = append(m.values, span{i, i + 1})
		if m.walk(n.param, i+1) {
			return true
		}
		m.values = m.values[:len(m.values)-1]
	}
	if n.greedy != nil {
		// Shortest first, so literals after the parameter bind as early as
		// they can (branches/{branch}/protection over branches/{branch}).
		for j := i + 1; j <= len(m.segs); j++ {
			m.values = append(m.values, span{i, j})
			if m.walk(n.greedy, j) {
				return true
			}
			m.values = m.values[:len(m.values)-1]
		}
	}
	return false
}
