package aws

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// api is one AWS API from the generated table.
type api struct {
	id       string // model name: ec2, s3, elasticloadbalancingv2, bedrock-runtime
	service  string // IAM action prefix: ec2, s3, cloudwatch
	signing  string // SigV4 signing name: ec2, s3, monitoring
	endpoint string // endpoint prefix: ec2, s3, runtime.sagemaker
	protocol string // query, ec2, json, rest-json, rest-xml
	version  string
	target   string // X-Amz-Target prefix of the JSON protocols
	ops      map[string]bool
	routes   map[string][]*route // by HTTP method, most specific first
}

func (a *api) rest() bool { return a.protocol == "rest-json" || a.protocol == "rest-xml" }

// route is one REST operation's request line.
type route struct {
	op      string
	segs    []segment
	greedy  int // index of the {Label+} segment, or -1
	query   []queryCond
	headers []string // lower case; present when the route alone is ambiguous
	order   int
}

type segment struct {
	literal string
	label   string // set for {Label} and {Label+}
}

type queryCond struct {
	key, value string
	anyValue   bool
}

// models indexes the generated table.
type models struct {
	apis       []*api
	byID       map[string]*api
	bySigning  map[string][]*api
	byEndpoint map[string][]*api
	byTarget   map[string][]*api
	ops        int
}

// loadModels parses the table once, on the first AWS request, so that
// starting countersign for other traffic pays nothing.
var loadModels = sync.OnceValue(func() *models { return parseTable(table) })

func parseTable(t string) *models {
	m := &models{
		byID:       map[string]*api{},
		bySigning:  map[string][]*api{},
		byEndpoint: map[string][]*api{},
		byTarget:   map[string][]*api{},
	}
	var cur *api
	for line := range strings.SplitSeq(t, "\n") {
		if line == "" {
			continue
		}
		if line[0] == '@' {
			f := strings.Fields(line[1:])
			if len(f) != 7 {
				cur = nil
				continue
			}
			cur = &api{id: f[0], service: f[1], signing: f[2], endpoint: f[3], protocol: f[4],
				version: undash(f[5]), target: undash(f[6]), ops: map[string]bool{}}
			if cur.rest() {
				cur.routes = map[string][]*route{}
			}
			m.apis = append(m.apis, cur)
			m.byID[cur.id] = cur
			m.bySigning[cur.signing] = append(m.bySigning[cur.signing], cur)
			m.byEndpoint[cur.endpoint] = append(m.byEndpoint[cur.endpoint], cur)
			if cur.target != "" {
				m.byTarget[cur.target] = append(m.byTarget[cur.target], cur)
			}
			continue
		}
		if cur == nil {
			continue
		}
		f := strings.Fields(line)
		cur.ops[f[0]] = true
		m.ops++
		if len(f) >= 3 && cur.rest() {
			r := parseRoute(f[0], f[2], f[3:])
			r.order = len(cur.routes[f[1]])
			cur.routes[f[1]] = append(cur.routes[f[1]], r)
		}
	}
	for _, a := range m.apis {
		for _, rs := range a.routes {
			slices.SortStableFunc(rs, compareRoutes)
		}
	}
	// Prefer the API named like its signing name (rds before docdb and
	// neptune, which share it) when nothing else tells them apart.
	for _, as := range []map[string][]*api{m.bySigning, m.byEndpoint, m.byTarget} {
		for k, list := range as {
			slices.SortStableFunc(list, func(a, b *api) int {
				return boolCmp(a.id == k, b.id == k)
			})
		}
	}
	return m
}

func undash(s string) string {
	if s == "-" {
		return ""
	}
	return s
}

// parseRoute parses "/{Bucket}/{Key+}?uploads&list-type=2" and the
// "!header" conditions after it.
func parseRoute(op, uri string, rest []string) *route {
	r := &route{op: op, greedy: -1}
	path, q, _ := strings.Cut(uri, "?")
	path = strings.TrimPrefix(path, "/")
	if path != "" {
		for s := range strings.SplitSeq(path, "/") {
			if len(s) > 2 && s[0] == '{' && s[len(s)-1] == '}' {
				label := s[1 : len(s)-1]
				if strings.HasSuffix(label, "+") {
					label = strings.TrimSuffix(label, "+")
					r.greedy = len(r.segs)
				}
				r.segs = append(r.segs, segment{label: label})
				continue
			}
			r.segs = append(r.segs, segment{literal: s})
		}
	}
	for kv := range strings.SplitSeq(q, "&") {
		if kv == "" {
			continue
		}
		k, v, hasValue := strings.Cut(kv, "=")
		r.query = append(r.query, queryCond{key: k, value: v, anyValue: !hasValue || strings.HasPrefix(v, "{")})
	}
	for _, h := range rest {
		if strings.HasPrefix(h, "!") {
			r.headers = append(r.headers, h[1:])
		}
	}
	return r
}

// compareRoutes orders the most specific route first: segment by segment a
// literal beats a {Label}, which beats a greedy {Label+}; then more query
// conditions (?delete, ?policy, ?list-type=2), then more header conditions,
// then the table's order.
func compareRoutes(a, b *route) int {
	for i := 0; i < len(a.segs) && i < len(b.segs); i++ {
		if c := kind(b, i) - kind(a, i); c != 0 {
			return c
		}
	}
	if c := len(b.query) - len(a.query); c != 0 {
		return c
	}
	if c := len(b.headers) - len(a.headers); c != 0 {
		return c
	}
	return a.order - b.order
}

func kind(r *route, i int) int {
	switch {
	case r.segs[i].label == "":
		return 2
	case i == r.greedy:
		return 0
	default:
		return 1
	}
}

func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return -1
	default:
		return 1
	}
}

// match returns the most specific route of a for the request and the values
// of its path labels. segs are the request path's unescaped segments.
func (a *api) match(method string, segs []string, query url.Values, h http.Header) (*route, map[string]string) {
	for _, r := range a.routes[method] {
		if labels, ok := r.matchPath(segs); ok && r.matchQuery(query) && r.matchHeaders(h) {
			return r, labels
		}
	}
	return nil, nil
}

// ambiguous reports whether a route of a for another operation also
// matches the request and asks for a query key that rt does not: the
// request carries the marks of two operations (?uploadId and ?select on an
// S3 POST), and which one the service runs is not documented (found by
// review: CompleteMultipartUpload passed as SelectObjectContent, a read).
func (a *api) ambiguous(rt *route, method string, segs []string, query url.Values, h http.Header) bool {
	for _, r := range a.routes[method] {
		if r == rt || r.op == rt.op {
			continue
		}
		if _, ok := r.matchPath(segs); !ok || !r.matchQuery(query) || !r.matchHeaders(h) {
			continue
		}
		for _, c := range r.query {
			if !slices.ContainsFunc(rt.query, func(d queryCond) bool { return d.key == c.key }) {
				return true
			}
		}
	}
	return false
}

func (r *route) matchPath(segs []string) (map[string]string, bool) {
	n := len(r.segs)
	if r.greedy < 0 && len(segs) != n || r.greedy >= 0 && len(segs) < n {
		return nil, false
	}
	// The greedy label takes what the segments after it leave.
	extra := len(segs) - n
	var labels map[string]string
	j := 0
	for i, s := range r.segs {
		if s.label == "" {
			if segs[j] != s.literal {
				return nil, false
			}
			j++
			continue
		}
		v := segs[j]
		if i == r.greedy {
			v = strings.Join(segs[j:j+extra+1], "/")
			j += extra
		}
		j++
		if v == "" {
			return nil, false
		}
		if labels == nil {
			labels = make(map[string]string, 2)
		}
		labels[s.label] = v
	}
	return labels, true
}

func (r *route) matchQuery(q url.Values) bool {
	for _, c := range r.query {
		vs, ok := q[c.key]
		if !ok {
			return false
		}
		if !c.anyValue && !slices.Contains(vs, c.value) {
			return false
		}
	}
	return true
}

func (r *route) matchHeaders(h http.Header) bool {
	for _, k := range r.headers {
		if len(h.Values(k)) == 0 {
			return false
		}
	}
	return true
}
