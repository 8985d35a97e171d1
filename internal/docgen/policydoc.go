// Package docgen generates the documentation that is derived from code, so
// that it cannot drift: docs/policy.md shows real policy inputs computed
// from the providers' golden captures (action/*/testdata) and documents the
// built-in Rego library from the METADATA of rego/lib.
//
// Regenerate with `go test ./internal/docgen -update`; the test fails when
// the committed file is out of date.
package docgen

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/template"
	"time"
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/countersign/countersign/action"
	"github.com/countersign/countersign/action/aws"
	"github.com/countersign/countersign/action/git"
	"github.com/countersign/countersign/action/github"
	"github.com/countersign/countersign/action/graphql"
	"github.com/countersign/countersign/action/kubernetes"
	"github.com/countersign/countersign/action/mcp"
	"github.com/countersign/countersign/internal/golden"
	"github.com/countersign/countersign/policy"
	"github.com/countersign/countersign/session"
)

//go:embed policy.md.tmpl
var policyTemplate string

// captures picks one representative golden capture per provider.
var captures = []struct {
	provider, title, file string
}{
	{"aws", "AWS: `aws ec2 terminate-instances`", "action/aws/testdata/ec2-terminate-instances.txt"},
	{"kubernetes", "Kubernetes: `kubectl delete namespace`", "action/kubernetes/testdata/delete-namespace.txt"},
	{"github", "GitHub REST: `gh api` making a repository public", "action/github/testdata/gh-api-patch-visibility-public.txt"},
	{"graphql", "GraphQL: Railway's `volumeDelete` mutation with curl", "action/graphql/testdata/curl-railway-volume-delete.txt"},
	{"git", "git: `git push --force` to main", "action/git/testdata/push-force-main.txt"},
	{"mcp", "MCP: a `tools/call` from an MCP client", "action/mcp/testdata/2025-tools-call-drop-table.txt"},
}

// docSession and docTime stand in for the session and clock of a real run.
var (
	docSession = &session.Info{ID: "s-k3j5x9q2mfa4", Name: "alice/claude", User: "alice", Command: "claude",
		Cwd: "/home/alice/shop", Labels: map[string]string{"team": "payments"}}
	docTime = time.Date(2026, 11, 26, 13, 45, 0, 0, time.UTC)
)

// classifier is the provider chain of cmd/countersign (newClassifier).
func classifier() *action.Classifier {
	return action.NewClassifier(
		aws.New(aws.Options{}),
		git.New(git.Options{}),
		mcp.New(mcp.Options{}),
		graphql.New(graphql.Options{}),
		github.New(github.Options{}),
		kubernetes.New(kubernetes.Options{}),
	)
}

// Example is one provider's capture as the document shows it.
type Example struct {
	Provider, Title, File string
	// Request is the captured request: its head and a body preview.
	Request string
	// Action is the classified action; Input the policy input without the
	// action (shown above it) and with only a few headers.
	Action, Input string
}

// LibPackage documents one package of the built-in library.
type LibPackage struct {
	Path, Title, Description, File string
	Rules                          []LibRule
}

// LibRule is a documented rule or function of the library.
type LibRule struct {
	Signature, Description string
}

type docData struct {
	Examples []Example
	// Common is session and time, the same in every example.
	Common  string
	Library []LibPackage
}

// PolicyDoc renders docs/policy.md from the repository at root.
func PolicyDoc(root string) ([]byte, error) {
	var data docData
	c := classifier()
	for _, cp := range captures {
		ex, err := example(root, c, cp.provider, cp.title, cp.file)
		if err != nil {
			return nil, err
		}
		data.Examples = append(data.Examples, ex)
	}
	// The generic provider has no capture of its own: any request works.
	generic, err := exampleFrom(c, "http", "Anything else: `curl https://status.example.com/health`", "",
		[]byte("GET /health HTTP/1.1\r\nHost: status.example.com\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n"))
	if err != nil {
		return nil, err
	}
	data.Examples = append(data.Examples, generic)

	full := policy.NewInput(&action.Request{Method: "GET", Scheme: "https", Host: "example.com", Port: 443, Path: "/"}, action.Action{Provider: "http"}, docSession, docTime).Map()
	common, err := indentJSON(map[string]any{"session": full["session"], "time": full["time"]})
	if err != nil {
		return nil, err
	}
	data.Common = common

	data.Library, err = library(filepath.Join(root, "rego", "lib"))
	if err != nil {
		return nil, err
	}

	tmpl, err := template.New("policy.md").Parse(policyTemplate)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := tmpl.Execute(&out, data); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

func example(root string, c *action.Classifier, provider, title, file string) (Example, error) {
	b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(file)))
	if err != nil {
		return Example{}, err
	}
	raw, _ := golden.Split(b)
	ex, err := exampleFrom(c, provider, title, file, raw)
	if err != nil {
		return Example{}, fmt.Errorf("%s: %w", file, err)
	}
	return ex, nil
}

func exampleFrom(c *action.Classifier, provider, title, file string, raw []byte) (Example, error) {
	ar, err := golden.Request(raw, golden.Options{BodyLimit: golden.DefaultBodyLimit})
	if err != nil {
		return Example{}, err
	}
	act := c.Classify(ar)
	if act.Provider != provider {
		return Example{}, fmt.Errorf("classified as provider %q, want %q", act.Provider, provider)
	}
	in := policy.NewInput(ar, act, docSession, docTime).Map()
	actionJSON, err := indentJSON(in["action"])
	if err != nil {
		return Example{}, err
	}
	req, _ := in["request"].(map[string]any)
	if h, ok := req["headers"].(map[string][]string); ok {
		req["headers"] = keepHeaders(h)
	}
	if h, ok := req["headers"].(map[string]any); ok {
		req["headers"] = keepHeadersAny(h)
	}
	inputJSON, err := indentJSON(map[string]any{"request": req})
	if err != nil {
		return Example{}, err
	}
	return Example{
		Provider: provider, Title: title, File: file,
		Request: requestPreview(raw),
		Action:  actionJSON,
		Input:   inputJSON,
	}, nil
}

// shownHeaders are the headers the examples keep; the rest is noise (user
// agents, dates, SDK ids).
var shownHeaders = []string{"authorization", "content-type", "x-amz-target", "mcp-session-id"}

func keepHeaders(h map[string][]string) map[string][]string {
	out := map[string][]string{}
	for k, v := range h {
		if slices.Contains(shownHeaders, k) {
			out[k] = v
		}
	}
	return out
}

func keepHeadersAny(h map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range h {
		if slices.Contains(shownHeaders, k) {
			out[k] = v
		}
	}
	return out
}

func indentJSON(v any) (string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimRight(buf.String(), "\n"), nil
}

// requestPreview is the request line, Host and Content-Type of a capture and
// the start of its body, with credentials blanked.
func requestPreview(raw []byte) string {
	head, body, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	if len(body) == 0 && !bytes.Contains(raw, []byte("\r\n\r\n")) {
		head, body, _ = bytes.Cut(raw, []byte("\n\n"))
	}
	var lines []string
	for i, line := range strings.Split(strings.ReplaceAll(string(head), "\r\n", "\n"), "\n") {
		name, _, _ := strings.Cut(line, ":")
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "host", "content-type", "x-amz-target":
			lines = append(lines, line)
		case "authorization":
			lines = append(lines, name+": [redacted]")
		default:
			if i == 0 {
				lines = append(lines, line)
			}
		}
	}
	out := strings.Join(lines, "\n")
	switch {
	case len(body) == 0:
	case utf8.Valid(body) && !bytes.ContainsFunc(body, func(r rune) bool { return r < 0x20 && r != '\n' && r != '\r' && r != '\t' }):
		s := strings.TrimSpace(string(body))
		if r := []rune(s); len(r) > 400 {
			s = string(r[:400]) + " …"
		}
		out += "\n\n" + s
	default:
		out += fmt.Sprintf("\n\n(%d bytes of binary body)", len(body))
	}
	return out
}

// library documents the non-test modules of rego/lib from their METADATA.
func library(dir string) ([]LibPackage, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.rego"))
	if err != nil {
		return nil, err
	}
	slices.Sort(files)
	var out []LibPackage
	for _, f := range files {
		if strings.HasSuffix(f, "_test.rego") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		m, err := ast.ParseModuleWithOpts(f, string(b), ast.ParserOptions{RegoVersion: ast.RegoV1, ProcessAnnotation: true})
		if err != nil {
			return nil, err
		}
		pkg := LibPackage{Path: strings.TrimPrefix(m.Package.Path.String(), "data."), File: "rego/lib/" + filepath.Base(f)}
		seen := map[string]bool{}
		for _, a := range m.Annotations {
			switch a.Scope {
			case "package", "subpackages":
				pkg.Title, pkg.Description = a.Title, a.Description
			case "rule", "document":
				rule := ruleFor(m, a)
				if rule == nil {
					continue
				}
				sig := signature(rule)
				if seen[sig] || strings.HasPrefix(sig, "_") {
					continue
				}
				seen[sig] = true
				desc := a.Description
				if desc == "" {
					desc = a.Title
				}
				pkg.Rules = append(pkg.Rules, LibRule{Signature: sig, Description: oneParagraph(desc)})
			}
		}
		pkg.Description = markdownBlock(pkg.Description)
		out = append(out, pkg)
	}
	return out, nil
}

// ruleFor finds the rule a METADATA block annotates: the first rule
// after the block.
func ruleFor(m *ast.Module, a *ast.Annotations) *ast.Rule {
	if a.Location == nil {
		return nil
	}
	var best *ast.Rule
	for _, r := range m.Rules {
		if r.Location == nil || r.Location.Row <= a.Location.Row {
			continue
		}
		if best == nil || r.Location.Row < best.Location.Row {
			best = r
		}
	}
	return best
}

func signature(r *ast.Rule) string {
	name := r.Head.Ref().String()
	if len(r.Head.Args) == 0 {
		return name
	}
	args := make([]string, len(r.Head.Args))
	for i, a := range r.Head.Args {
		args[i] = a.String()
	}
	return name + "(" + strings.Join(args, ", ") + ")"
}

func oneParagraph(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// markdownBlock keeps a METADATA description's paragraphs and turns its
// indented blocks into code blocks.
func markdownBlock(s string) string {
	var out []string
	inCode := false
	for _, line := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		indented := strings.HasPrefix(line, "  ")
		switch {
		case indented && !inCode:
			out = append(out, "```yaml")
			inCode = true
		case !indented && inCode && strings.TrimSpace(line) != "":
			out = append(out, "```")
			inCode = false
		}
		if inCode {
			line = strings.TrimPrefix(line, "  ")
		}
		out = append(out, line)
	}
	if inCode {
		out = append(out, "```")
	}
	// A blank line just before a closing fence belongs outside it.
	for i := 1; i < len(out); i++ {
		if out[i] == "```" && strings.TrimSpace(out[i-1]) == "" {
			out[i-1], out[i] = out[i], out[i-1]
		}
	}
	return strings.Join(out, "\n")
}
