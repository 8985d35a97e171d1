// Package git classifies git's smart HTTP protocol (info/refs,
// git-upload-pack, git-receive-pack) on any host — GitHub, GitLab, Gitea,
// Bitbucket, a plain git http-backend — parsing the ref updates of a push
// from its pkt-lines, and answers a denied push with a receive-pack
// report-status so git prints "! [remote rejected]" with the reason.
//
// # Actions
//
// Every git action has provider "git", service "upload-pack" or
// "receive-pack", and the fields host and repo: the repository's path on the
// host, cleaned, without the leading slash and ".git" — "acme/shop" on
// GitHub, Gitea or Bitbucket Cloud, "group/sub/project" for a GitLab
// subgroup, "scm/PROJ/repo" on Bitbucket Server. repo keeps the case the
// client sent; GitHub, GitLab and Gitea ignore case, so compare it with
// lower(). protocol_version is the Git-Protocol header's version when
// present. The operation is one of:
//
//   - advertise: GET …/info/refs?service=git-…, the ref (or, in protocol v2,
//     capability) advertisement git asks for before every fetch and push.
//     Read-only, for both services: `git push` starts with it too, and it
//     carries no ref updates, so policies that look at updates let it through
//     and decide on the POST that follows.
//   - fetch, ls-refs, or another protocol v2 command name (object-info,
//     bundle-uri): POST …/git-upload-pack. Read-only. Protocol v2 requests
//     also carry the field command.
//   - push: POST …/git-receive-pack. Fields: updates, a list of
//     {"ref", "old", "new", "kind"} with kind "create" (old all zeros),
//     "delete" (new all zeros) or "update"; capabilities (report-status,
//     side-band-64k, atomic, push-options, object-format=sha256, …);
//     push_options (git push -o) when present; object_format ("sha1" or
//     "sha256"); signed (true for git push --signed). resources lists the
//     refs. destructive is true when any update deletes a ref. A push with
//     no commands (git's probe before a large push) changes nothing and is
//     read-only.
//
// Whether an update is a force push cannot be told from the request: it
// depends on whether old is an ancestor of new, which only the repository
// knows. Policies that protect a branch therefore deny (or hold) every push
// to it, fast-forward or not (INCIDENTS #6), and let the host's branch
// protection judge the rest:
//
//	deny contains "main is protected; push a branch and open a pull request" if {
//		input.action.provider == "git"
//		some u in input.action.updates
//		u.ref == "refs/heads/main"
//	}
//
// # Parse errors
//
// The ref updates come first in the body, so they are read from the
// inspected prefix (gzip-compressed bodies are inflated, up to a bound).
// When the command list does not end inside that prefix, or the body is not
// a well-formed receive-pack request, the action carries parse_error and the
// updates read so far. Git's receive-pack rejects a malformed request
// itself, but a policy that protects refs must not trust a push whose
// updates it could not see in full: deny or hold receive-pack actions that
// have parse_error.
package git

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"

	"github.com/countersign/countersign/action"
)

// maxInflated bounds how much of a gzip-compressed body is inflated to find
// the commands. Git itself compresses only upload-pack requests, which need
// their first line alone; other clients may compress a push.
const maxInflated = 4 << 20

// Options configures the git provider.
type Options struct{}

// Provider is the git smart-HTTP classifier.
type Provider struct{ opts Options }

// New returns the git provider.
func New(opts Options) *Provider { return &Provider{opts: opts} }

// Name implements action.Provider.
func (*Provider) Name() string { return "git" }

// Service names, as in action.service.
const (
	serviceUploadPack  = "upload-pack"
	serviceReceivePack = "receive-pack"
)

// endpoint is where a request goes in git's smart HTTP protocol.
type endpoint struct {
	repo     string
	service  string // serviceUploadPack, serviceReceivePack, or "" (unknown)
	infoRefs bool
}

// route recognises the smart HTTP URLs (gitprotocol-http(5)). Suffixes are
// matched without regard to case, for the same reason.
func route(r *action.Request) (endpoint, bool) {
	// Match on the cleaned path: a server that resolves dot segments and
	// extra slashes must not see a push the classifier missed.
	p := path.Clean("/" + r.Path)
	switch {
	case hasSuffixFold(p, "/info/refs"):
		if _, ok := r.Query["service"]; !ok {
			// Without ?service= it is the dumb protocol, which cannot push
			// over plain HTTP; leave it to the http provider.
			return endpoint{}, false
		}
		e := endpoint{repo: repoPath(p[:len(p)-len("/info/refs")]), infoRefs: true}
		if vs := r.Query["service"]; len(vs) == 1 {
			switch vs[0] {
			case "git-upload-pack":
				e.service = serviceUploadPack
			case "git-receive-pack":
				e.service = serviceReceivePack
			}
		}
		return e, true
	case hasSuffixFold(p, "/git-upload-pack"):
		return endpoint{repo: repoPath(p[:len(p)-len("/git-upload-pack")]), service: serviceUploadPack}, true
	case hasSuffixFold(p, "/git-receive-pack"):
		return endpoint{repo: repoPath(p[:len(p)-len("/git-receive-pack")]), service: serviceReceivePack}, true
	}
	return endpoint{}, false
}

func hasSuffixFold(s, suffix string) bool {
	return len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix)
}

// repoPath turns "/acme//shop.git/" into "acme/shop".
func repoPath(p string) string {
	p = strings.Trim(path.Clean("/"+p), "/")
	if len(p) > 4 && strings.EqualFold(p[len(p)-4:], ".git") {
		p = p[:len(p)-4]
	}
	return p
}

// Classify implements action.Provider.
func (p *Provider) Classify(r *action.Request) (action.Action, bool) {
	if r.Tunnel {
		return action.Action{}, false
	}
	e, ok := route(r)
	if !ok {
		return action.Action{}, false
	}
	a := action.Action{
		Provider: "git",
		Service:  e.service,
		ByPath:   true,
		Fields:   map[string]any{"repo": e.repo, "host": r.Host},
	}
	if v, ok := protocolVersion(r); ok {
		a.Fields["protocol_version"] = v
	}
	switch {
	case e.infoRefs:
		a.Operation = "advertise"
		a.ReadOnly = r.Method == "GET" || r.Method == "HEAD"
		switch {
		case e.service == "":
			a.ParseError = "info/refs asks for an unknown service " + strconv.Quote(strings.Join(r.Query["service"], ","))
		case !a.ReadOnly:
			a.ParseError = "info/refs with method " + r.Method
		}
	case r.Method != "POST":
		a.Operation = operationFor(e.service)
		a.ParseError = "git-" + e.service + " with method " + r.Method
	case e.service == serviceUploadPack:
		classifyUploadPack(r, &a)
	default:
		classifyReceivePack(r, &a)
	}
	return a, true
}

func operationFor(service string) string {
	if service == serviceReceivePack {
		return "push"
	}
	return "fetch"
}

func classifyUploadPack(r *action.Request, a *action.Action) {
	a.Operation = "fetch"
	a.ReadOnly = true
	body, cut, err := requestBody(r)
	if err != nil {
		a.ParseError = err.Error()
		return
	}
	cmd, err := parseUploadPack(body)
	switch {
	case errors.Is(err, errPktShort) && cut:
		a.ParseError = "the upload-pack request's first line is beyond the inspected part of the body"
	case errors.Is(err, errPktShort):
		a.ParseError = "upload-pack request: body ends inside a pkt-line"
	case err != nil:
		a.ParseError = "upload-pack request: " + err.Error()
	case cmd != "":
		a.Operation = cmd
		a.Fields["command"] = cmd
	}
}

func classifyReceivePack(r *action.Request, a *action.Action) {
	a.Operation = "push"
	body, cut, err := requestBody(r)
	if err != nil {
		a.ParseError = err.Error()
		return
	}
	p, err := parseCommands(body)
	switch {
	case errors.Is(err, errPktShort) && cut:
		a.ParseError = "the push's ref updates do not fit in the inspected part of the body (inspect.body_limit); only the first " +
			strconv.Itoa(len(p.Updates)) + " are listed"
	case errors.Is(err, errPktShort):
		a.ParseError = "receive-pack request: body ends inside the command list"
	case err != nil:
		a.ParseError = "receive-pack request: " + err.Error()
	}
	updates := make([]any, len(p.Updates))
	resources := make([]string, 0, len(p.Updates))
	for i, u := range p.Updates {
		updates[i] = map[string]any{"ref": u.Ref, "old": u.Old, "new": u.New, "kind": u.Kind}
		resources = append(resources, u.Ref)
		if u.Kind == "delete" {
			a.Destructive = true
		}
	}
	a.Fields["updates"] = updates
	a.Resources = resources
	if len(p.Capabilities) > 0 {
		a.Fields["capabilities"] = p.Capabilities
	}
	if len(p.PushOptions) > 0 {
		a.Fields["push_options"] = p.PushOptions
	}
	if len(p.Updates) > 0 {
		a.Fields["object_format"] = "sha1"
		if len(p.Updates[0].New) == 64 {
			a.Fields["object_format"] = "sha256"
		}
	}
	if p.Signed {
		a.Fields["signed"] = true
	}
	// An empty command list is git's probe before a large push (and a no-op
	// for receive-pack): it changes nothing.
	a.ReadOnly = a.ParseError == "" && len(p.Updates) == 0
}

// requestBody returns the inspected body, inflated when the client
// compressed it. cut reports that the data may end before the request does:
// the proxy truncated the body, or inflating stopped at maxInflated.
func requestBody(r *action.Request) (body []byte, cut bool, err error) {
	if r.Decoded {
		return r.Body, r.BodyTruncated, nil
	}
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
		return r.Body, r.BodyTruncated, nil
	case "gzip", "x-gzip":
		return inflate(r.Body, r.BodyTruncated)
	default:
		return nil, false, errors.New("unsupported Content-Encoding " + strconv.Quote(enc))
	}
}

func inflate(b []byte, truncated bool) ([]byte, bool, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		if truncated && errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, true, nil
		}
		return nil, false, fmt.Errorf("gzip body: %w", err)
	}
	out, err := io.ReadAll(io.LimitReader(zr, maxInflated+1))
	switch {
	case len(out) > maxInflated:
		return out[:maxInflated], true, nil
	case err == nil:
		return out, false, nil
	case truncated && errors.Is(err, io.ErrUnexpectedEOF):
		// The proxy kept only a prefix of the compressed stream.
		return out, true, nil
	default:
		return out, false, fmt.Errorf("gzip body: %w", err)
	}
}

// protocolVersion reads the Git-Protocol header ("version=2", possibly with
// more colon-separated keys).
func protocolVersion(r *action.Request) (int, bool) {
	for _, kv := range strings.Split(r.Header.Get("Git-Protocol"), ":") {
		if v, ok := strings.CutPrefix(kv, "version="); ok {
			if n, err := strconv.Atoi(v); err == nil && n >= 0 && n < 100 {
				return n, true
			}
		}
	}
	return 0, false
}
