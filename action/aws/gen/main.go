// Command gen writes table_gen.go, the compact AWS operation table the aws
// classifier routes requests with, from the published AWS API models.
//
// It reads either the aws-sdk npm package's apis/*.min.json files or
// botocore's data/<api>/<version>/service-2.json[.gz] tree, keeps the newest
// version of each API, and writes one line per API and one line per
// operation (REST operations with their method, URI template and the
// required query strings and headers that tell same-route operations apart).
// The output depends only on the models, so running it twice gives the same
// bytes. See ../generate.go for how to fetch the models.
package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"flag"
	"fmt"
	"go/format"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
)

func main() {
	models := flag.String("models", "", "aws-sdk apis/ directory or botocore data/ directory")
	out := flag.String("o", "table_gen.go", "output file")
	flag.Parse()
	if err := run(*models, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(models, out string) error {
	if models == "" {
		return fmt.Errorf("no -models directory: run `npm pack aws-sdk@2.1693.0 && tar xzf aws-sdk-2.1693.0.tgz` and pass -models package/apis (see action/aws/generate.go)")
	}
	apis, source, err := load(models)
	if err != nil {
		return err
	}
	if len(apis) == 0 {
		return fmt.Errorf("no API models found in %s", models)
	}
	src, err := render(apis, source)
	if err != nil {
		return err
	}
	return os.WriteFile(out, src, 0o644)
}

// model is the part of an AWS API model the table needs.
type model struct {
	Metadata struct {
		APIVersion     string `json:"apiVersion"`
		EndpointPrefix string `json:"endpointPrefix"`
		SigningName    string `json:"signingName"`
		Protocol       string `json:"protocol"`
		TargetPrefix   string `json:"targetPrefix"`
		ServiceID      string `json:"serviceId"`
	} `json:"metadata"`
	Operations map[string]struct {
		HTTP struct {
			Method     string `json:"method"`
			RequestURI string `json:"requestUri"`
		} `json:"http"`
		Input      *shape `json:"input"`
		Deprecated bool   `json:"deprecated"`
	} `json:"operations"`
	Shapes map[string]*shape `json:"shapes"`
}

type shape struct {
	Shape    string            `json:"shape"`
	Required []string          `json:"required"`
	Members  map[string]*shape `json:"members"`
	Location string            `json:"location"`
	LocName  string            `json:"locationName"`
}

type api struct {
	id string // the model's file name stem: ec2, s3, elasticloadbalancingv2
	m  *model
}

var sdkName = regexp.MustCompile(`^(.+)-(\d{4}-\d{2}-\d{2})\.min\.json$`)

// load reads the newest version of every API under dir.
func load(dir string) ([]api, string, error) {
	newest := map[string]string{} // id → file
	version := map[string]string{}
	source := "unknown"
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, "", err
	}
	for _, e := range entries {
		if m := sdkName.FindStringSubmatch(e.Name()); m != nil {
			if m[2] > version[m[1]] {
				version[m[1]], newest[m[1]] = m[2], filepath.Join(dir, e.Name())
			}
			continue
		}
		if !e.IsDir() {
			continue
		}
		// botocore: <id>/<version>/service-2.json[.gz]
		vs, err := os.ReadDir(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		for _, v := range vs {
			for _, f := range []string{"service-2.json", "service-2.json.gz"} {
				p := filepath.Join(dir, e.Name(), v.Name(), f)
				if _, err := os.Stat(p); err == nil && v.Name() > version[e.Name()] {
					version[e.Name()], newest[e.Name()] = v.Name(), p
				}
			}
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "..", "package.json")); err == nil {
		var pkg struct{ Name, Version string }
		if json.Unmarshal(b, &pkg) == nil && pkg.Name != "" {
			source = pkg.Name + "@" + pkg.Version
		}
	} else if b, err := os.ReadFile(filepath.Join(dir, "..", "__init__.py")); err == nil {
		if m := regexp.MustCompile(`__version__ = '([^']+)'`).FindSubmatch(b); m != nil {
			source = "botocore@" + string(m[1])
		}
	}
	ids := make([]string, 0, len(newest))
	for id := range newest {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var apis []api
	for _, id := range ids {
		m, err := readModel(newest[id])
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", newest[id], err)
		}
		apis = append(apis, api{id: id, m: m})
	}
	return apis, source, nil
}

func readModel(path string) (*model, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		gz, err := gzip.NewReader(f)
		if err != nil {
			return nil, err
		}
		r = gz
	}
	var m model
	if err := json.NewDecoder(r).Decode(&m); err != nil {
		return nil, err
	}
	return &m, nil
}

// iamPrefix maps the few signing names that differ from the IAM action
// prefix, so that operation pairs with IAM action names
// (cloudwatch:PutMetricData, not monitoring:PutMetricData). The models do not
// carry the IAM prefix; this list comes from the IAM service authorization
// reference.
var iamPrefix = map[string]string{
	"monitoring":          "cloudwatch",
	"iotdata":             "iot",
	"IoTSecuredTunneling": "iot",
	"iot-jobs-data":       "iotjobsdata",
	"ioteventsdata":       "iotevents",
	"mturk-requester":     "mechanicalturk",
}

type op struct {
	name, method, uri string
	query, headers    []string
	deprecated        bool
}

func render(apis []api, source string) ([]byte, error) {
	var t bytes.Buffer
	nops := 0
	for _, a := range apis {
		md := a.m.Metadata
		signing := md.SigningName
		if signing == "" {
			signing = md.EndpointPrefix
		}
		iam := signing
		if p, ok := iamPrefix[signing]; ok {
			iam = p
		}
		rest := md.Protocol == "rest-json" || md.Protocol == "rest-xml"
		fmt.Fprintf(&t, "@%s %s %s %s %s %s %s\n", a.id, iam, signing, md.EndpointPrefix, md.Protocol, orDash(md.APIVersion), orDash(md.TargetPrefix))
		names := make([]string, 0, len(a.m.Operations))
		for n := range a.m.Operations {
			names = append(names, n)
		}
		sort.Strings(names)
		var ops []op
		for _, n := range names {
			o := a.m.Operations[n]
			if !rest {
				ops = append(ops, op{name: n})
				continue
			}
			method := o.HTTP.Method
			if method == "" {
				method = "POST" // the minified models leave out the default
			}
			uri := o.HTTP.RequestURI
			if uri == "" {
				uri = "/"
			}
			path, q, _ := strings.Cut(uri, "?")
			var query []string
			for kv := range strings.SplitSeq(q, "&") {
				k, _, _ := strings.Cut(kv, "=")
				// x-id only names the operation for the SDK's own
				// logs; older clients leave it out.
				if kv != "" && k != "x-id" {
					query = append(query, kv)
				}
			}
			in := a.m.resolve(o.Input)
			var headers []string
			if in != nil {
				for _, r := range in.Required {
					mem := a.m.resolve(in.Members[r])
					if mem == nil || in.Members[r] == nil {
						continue
					}
					loc, name := in.Members[r].Location, in.Members[r].LocName
					if loc == "" {
						loc, name = mem.Location, mem.LocName
					}
					if name == "" {
						name = r
					}
					switch loc {
					case "querystring":
						if !slices.ContainsFunc(query, func(kv string) bool { k, _, _ := strings.Cut(kv, "="); return k == name }) {
							query = append(query, name)
						}
					case "header":
						headers = append(headers, strings.ToLower(name))
					}
				}
			}
			sort.Strings(query)
			sort.Strings(headers)
			ops = append(ops, op{name: n, method: method, uri: path, query: query, headers: headers, deprecated: o.Deprecated})
		}
		// Required headers only matter where they tell apart operations
		// that share a route (S3 CopyObject and PutObject); elsewhere they
		// would only make the table larger.
		route := func(o op) string { return o.method + " " + o.uri + "?" + strings.Join(o.query, "&") }
		count := map[string]int{}
		current := map[string]bool{}
		for _, o := range ops {
			count[route(o)]++
			current[route(o)] = current[route(o)] || !o.deprecated
		}
		// A deprecated operation that shares its route with a current
		// one (S3 GetBucketLifecycle and GetBucketLifecycleConfiguration)
		// goes last, so the route names the operation clients use today.
		late := func(o op) bool { return o.deprecated && current[route(o)] }
		sort.SliceStable(ops, func(i, j int) bool { return !late(ops[i]) && late(ops[j]) })
		for _, o := range ops {
			nops++
			if !rest {
				fmt.Fprintf(&t, "%s\n", o.name)
				continue
			}
			line := o.name + " " + o.method + " " + o.uri
			if len(o.query) > 0 {
				line += "?" + strings.Join(o.query, "&")
			}
			if count[route(o)] > 1 {
				for _, h := range o.headers {
					line += " !" + h
				}
			}
			t.WriteString(line + "\n")
		}
	}
	if bytes.ContainsRune(t.Bytes(), '`') {
		return nil, fmt.Errorf("a model contains a backquote")
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "// Code generated by go run ./gen; DO NOT EDIT.\n\n")
	fmt.Fprintf(&b, "package aws\n\n")
	fmt.Fprintf(&b, "// tableSource names the models the table was generated from.\n")
	fmt.Fprintf(&b, "const tableSource = %q\n\n", source)
	fmt.Fprintf(&b, "// table lists %d AWS APIs and their %d operations: a line\n", len(apis), nops)
	fmt.Fprintf(&b, "// \"@api iam-prefix signing-name endpoint-prefix protocol api-version target-prefix\"\n")
	fmt.Fprintf(&b, "// per API, then one line per operation: its name and, for the REST\n")
	fmt.Fprintf(&b, "// protocols, \"METHOD /uri/{Label}/{Greedy+}?required&query=value !required-header\".\n")
	fmt.Fprintf(&b, "const table = `%s`\n", t.String())
	return format.Source(b.Bytes())
}

func (m *model) resolve(s *shape) *shape {
	for range 8 {
		if s == nil || s.Shape == "" {
			return s
		}
		s = m.Shapes[s.Shape]
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
