package git

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/countersign/countersign/action"
	"github.com/countersign/countersign/internal/testinfra"
)

const denyMsg = "countersign: denied by policy GIT-001: pushing to main is not allowed. The request was not sent; if it is really needed, ask a human to do it."

func TestRespondReportStatus(t *testing.T) {
	ng := "ng refs/heads/main " + denyMsg + "\n"
	report := string(pktLine(nil, "unpack ok\n")) + string(pktLine(nil, ng)) + "0000"
	tests := []struct {
		name     string
		give     *action.Request
		wantType string
		want     string
	}{
		{
			name:     "side-band-64k",
			give:     receivePack(pkts(oidA+" "+oidB+" refs/heads/main\x00report-status-v2 side-band-64k", "0000")),
			wantType: "application/x-git-receive-pack-result",
			want:     string(pktLine(nil, "\x01"+report)) + "0000",
		},
		{
			name:     "no side-band",
			give:     receivePack(pkts(oidA+" "+oidB+" refs/heads/main\x00report-status", "0000")),
			wantType: "application/x-git-receive-pack-result",
			want:     report,
		},
		{
			name:     "every ref is rejected",
			give:     receivePack(pkts(zero+" "+oidA+" refs/heads/feature\x00report-status", oidA+" "+zero+" refs/heads/main", "0000")),
			wantType: "application/x-git-receive-pack-result",
			want: string(pktLine(nil, "unpack ok\n")) + string(pktLine(nil, "ng refs/heads/feature "+denyMsg+"\n")) +
				string(pktLine(nil, ng)) + "0000",
		},
		{
			name: "commands cut off: the unpack status fails the rest",
			give: func() *action.Request {
				r := receivePack(pkts(oidA+" "+oidB+" refs/heads/main\x00report-status", oidA+" "+oidB+" refs/heads/other")[:150])
				r.BodyTruncated = true
				return r
			}(),
			wantType: "application/x-git-receive-pack-result",
			want:     string(pktLine(nil, "unpack "+denyMsg+"\n")) + string(pktLine(nil, ng)) + "0000",
		},
		{
			name:     "gzip",
			give:     receivePack(gzipped(t, pkts(oidA+" "+oidB+" refs/heads/main\x00report-status", "0000")), "Content-Encoding", "gzip"),
			wantType: "application/x-git-receive-pack-result",
			want:     report,
		},
		{
			name:     "no report-status asked for: plain text",
			give:     receivePack(pkts(oidA+" "+oidB+" refs/heads/main\x00side-band-64k", "0000")),
			wantType: "text/plain; charset=utf-8",
			want:     denyMsg + "\n",
		},
		{
			name:     "unparseable push: plain text",
			give:     receivePack([]byte("garbage")),
			wantType: "text/plain; charset=utf-8",
			want:     denyMsg + "\n",
		},
		{
			name:     "info/refs",
			give:     &action.Request{Method: "GET", Host: "github.com", Path: "/acme/shop.git/info/refs", Query: map[string][]string{"service": {"git-receive-pack"}}, Header: http.Header{}},
			wantType: "application/x-git-receive-pack-advertisement",
			want:     string(pktLine(nil, "ERR "+denyMsg+"\n")),
		},
		{
			name:     "upload-pack",
			give:     &action.Request{Method: "POST", Host: "github.com", Path: "/acme/shop.git/git-upload-pack", Header: http.Header{}, Body: pkts("command=ls-refs\n", "0000")},
			wantType: "application/x-git-upload-pack-result",
			want:     string(pktLine(nil, "ERR "+denyMsg+"\n")),
		},
	}
	c := action.NewClassifier(New(Options{}))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := c.Classify(tt.give)
			got := c.Respond(tt.give, a, action.Denial{Status: http.StatusForbidden, Decision: "deny", Message: denyMsg})
			wantStatus := http.StatusOK
			if strings.HasPrefix(tt.wantType, "text/plain") {
				wantStatus = http.StatusForbidden
			}
			if got.Status != wantStatus || got.Header.Get("Content-Type") != tt.wantType {
				t.Errorf("Respond status %d, type %q; want %d, %q", got.Status, got.Header.Get("Content-Type"), wantStatus, tt.wantType)
			}
			if diff := cmp.Diff(tt.want, string(got.Body)); diff != "" {
				t.Errorf("Respond body mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func receivePack(body []byte, header ...string) *action.Request {
	h := http.Header{}
	for i := 0; i+1 < len(header); i += 2 {
		h.Set(header[i], header[i+1])
	}
	return &action.Request{Method: "POST", Scheme: "https", Host: "github.com", Port: 443, Path: "/acme/shop.git/git-receive-pack",
		Header: h, Body: body, BodySize: int64(len(body))}
}

func TestRespondSideBandChunks(t *testing.T) {
	// Enough refs that the report outgrows one side-band packet.
	body := pkts(zero + " " + oidA + " refs/heads/b0\x00report-status side-band")
	for i := 1; i < 40; i++ {
		body = pktLine(body, zero+" "+oidA+" refs/heads/b"+string(rune('0'+i%10))+strings.Repeat("x", i))
	}
	body = append(body, "0000"...)
	r := receivePack(body)
	p := New(Options{})
	a, _ := p.Classify(r)
	got := p.Respond(r, a, action.Denial{Status: http.StatusForbidden, Message: denyMsg})
	// Undo the side-band framing and check every packet's size.
	var inner []byte
	pr := pktReader{b: got.Body}
	for {
		kind, payload, err := pr.next()
		if err != nil {
			t.Fatalf("side-band stream: %v", err)
		}
		if kind == pktFlush {
			break
		}
		if len(payload)+4 > 1000 || payload[0] != 1 {
			t.Fatalf("side-band packet of %d bytes on band %d", len(payload)+4, payload[0])
		}
		inner = append(inner, payload[1:]...)
	}
	if pr.off != len(got.Body) {
		t.Fatalf("%d bytes after the final flush", len(got.Body)-pr.off)
	}
	ir := pktReader{b: inner}
	n := 0
	for {
		kind, payload, err := ir.next()
		if err != nil {
			t.Fatalf("report: %v", err)
		}
		if kind == pktFlush {
			break
		}
		if n > 0 && !bytes.HasPrefix(payload, []byte("ng refs/heads/b")) {
			t.Fatalf("report line %q", payload)
		}
		n++
	}
	if n != 41 {
		t.Errorf("report has %d lines, want unpack + 40 ng", n)
	}
}

func TestOneLine(t *testing.T) {
	tests := []struct{ give, want string }{
		{"countersign: denied", "countersign: denied"},
		{"countersign: two\nlines\x00and\ttabs\x1b[31m", "countersign: two lines and tabs [31m"},
		{"", "countersign: denied"},
		{"countersign: bad utf-8 \xff here", "countersign: bad utf-8   here"},
		{"countersign: " + strings.Repeat("é", 1000), "countersign: " + strings.Repeat("é", (maxMessage-len("countersign: ")-len("…"))/2) + "…"},
	}
	for _, tt := range tests {
		if got := oneLine(tt.give); got != tt.want {
			t.Errorf("oneLine(%q) = %q, want %q", tt.give, got, tt.want)
		}
	}
}

// gitServer serves bare repositories with git http-backend, the way the
// proxy would: each request is classified, and those deny() picks are
// answered with Respond and never reach the backend.
type gitServer struct {
	backend http.Handler
	c       *action.Classifier
	limit   int
	// dropCaps are removed from receive-pack's capability advertisement,
	// to make git push without side-band or with report-status v1.
	dropCaps []string

	mu        sync.Mutex
	deny      func(action.Action) bool // what the "policy" denies
	forwarded []string
}

func (s *gitServer) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	prefix, truncated := body, false
	if s.limit > 0 && len(body) > s.limit {
		prefix, truncated = body[:s.limit], true
	}
	r := &action.Request{
		Method: req.Method, Scheme: "http", Host: "git.example.test", Port: 80,
		Path: req.URL.Path, RawPath: req.URL.EscapedPath(), Query: req.URL.Query(), Header: req.Header,
		Body: prefix, BodySize: int64(len(body)), BodyTruncated: truncated,
	}
	a := s.c.Classify(r)
	s.mu.Lock()
	deny := s.deny(a)
	s.mu.Unlock()
	if deny {
		resp := s.c.Respond(r, a, action.Denial{Status: http.StatusForbidden, Decision: "deny", Message: denyMsg})
		for k, vs := range resp.Header {
			w.Header()[k] = vs
		}
		w.WriteHeader(resp.Status)
		w.Write(resp.Body)
		return
	}
	s.mu.Lock()
	s.forwarded = append(s.forwarded, req.Method+" "+req.URL.Path)
	s.mu.Unlock()
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	req.TransferEncoding = nil
	if len(s.dropCaps) == 0 || req.URL.Query().Get("service") != "git-receive-pack" {
		s.backend.ServeHTTP(w, req)
		return
	}
	rec := httptest.NewRecorder()
	s.backend.ServeHTTP(rec, req)
	for k, vs := range rec.Header() {
		w.Header()[k] = vs
	}
	w.WriteHeader(rec.Code)
	w.Write(s.filterAdvertisement(rec.Body.Bytes()))
}

// filterAdvertisement drops capabilities from the first ref line of a
// receive-pack advertisement ("# service" line, flush, refs…).
func (s *gitServer) filterAdvertisement(b []byte) []byte {
	r := pktReader{b: b}
	var out []byte
	for i := 0; ; i++ {
		start := r.off
		kind, payload, err := r.next()
		if err != nil {
			return append(out, b[start:]...)
		}
		if kind != pktData || !bytes.Contains(payload, []byte{0}) {
			out = append(out, b[start:r.off]...)
			continue
		}
		line := string(payload)
		for _, c := range s.dropCaps {
			line = strings.Replace(line, " "+c, "", 1)
		}
		out = pktLine(out, line)
		return append(out, b[r.off:]...)
	}
}

func (s *gitServer) count(prefix string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, f := range s.forwarded {
		if strings.HasPrefix(f, prefix) {
			n++
		}
	}
	return n
}

// gitRun runs git with a clean configuration and returns its combined
// output.
func gitRun(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "git", args...)
	cmd.Dir = dir
	cmd.Env = append([]string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH"), "LANG=C"}, testinfra.GitIdentity()...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestRealGitPrintsTheReason pushes and fetches with the real git client
// against git http-backend behind Respond, and checks that git shows the
// denial's reason in each of the shapes it can take.
func TestRealGitPrintsTheReason(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("git is not installed; run `make deps`")
	}
	isPushTo := func(ref string) func(action.Action) bool {
		return func(a action.Action) bool {
			us, _ := a.Fields["updates"].([]any)
			for _, u := range us {
				if u.(map[string]any)["ref"] == ref {
					return true
				}
			}
			return false
		}
	}
	tests := []struct {
		name     string
		deny     func(action.Action) bool
		limit    int
		dropCaps []string
		// push is the git push arguments after the remote; empty means clone.
		push []string
		// config is passed to the denied git command as -c options.
		config    []string
		want      []string // substrings of git's output
		wantPosts int      // receive-pack POSTs that reach the server
	}{
		{
			name: "push to main, side-band-64k and report-status-v2",
			deny: isPushTo("refs/heads/main"),
			push: []string{"HEAD:main"},
			want: []string{" ! [remote rejected] HEAD -> main (" + denyMsg + ")"},
		},
		{
			name:     "push to main, report-status v1 without side-band",
			deny:     isPushTo("refs/heads/main"),
			dropCaps: []string{"side-band-64k", "report-status-v2"},
			push:     []string{"HEAD:main"},
			want:     []string{" ! [remote rejected] HEAD -> main (" + denyMsg + ")"},
		},
		{
			name: "delete main",
			deny: isPushTo("refs/heads/main"),
			push: []string{":main"},
			want: []string{" ! [remote rejected] main (" + denyMsg + ")"},
		},
		{
			name: "a push with main among other refs fails whole",
			deny: isPushTo("refs/heads/main"),
			push: []string{"HEAD:main", "HEAD:refs/heads/feature"},
			want: []string{
				" ! [remote rejected] HEAD -> main (" + denyMsg + ")",
				" ! [remote rejected] HEAD -> feature (" + denyMsg + ")",
			},
		},
		{
			name:  "commands past the inspection limit",
			deny:  func(a action.Action) bool { return a.Service == "receive-pack" && a.ParseError != "" },
			limit: 300,
			push:  []string{"HEAD:refs/heads/a", "HEAD:refs/heads/b", "HEAD:refs/heads/c", "HEAD:main"},
			want: []string{
				"remote unpack failed: " + denyMsg,
				" ! [remote rejected] HEAD -> a (",
			},
		},
		{
			name: "info/refs for receive-pack",
			deny: func(a action.Action) bool { return a.Service == "receive-pack" },
			push: []string{"HEAD:main"},
			want: []string{"fatal: remote error: " + denyMsg},
		},
		{
			name: "info/refs for upload-pack",
			deny: func(a action.Action) bool { return a.Service == "upload-pack" && a.Operation == "advertise" },
			want: []string{"fatal: remote error: " + denyMsg},
		},
		{
			name: "upload-pack ls-refs",
			deny: func(a action.Action) bool { return a.Operation == "ls-refs" },
			want: []string{"fatal: remote error: " + denyMsg},
		},
		{
			name: "upload-pack fetch",
			deny: func(a action.Action) bool { return a.Operation == "fetch" },
			want: []string{"fatal: remote error: " + denyMsg},
		},
		{
			name:   "upload-pack fetch, protocol v0",
			deny:   func(a action.Action) bool { return a.Operation == "fetch" && a.Fields["protocol_version"] == nil },
			config: []string{"protocol.version=0"},
			want:   []string{"fatal: remote error: " + denyMsg},
		},
		{
			name:      "allowed push reaches the repository",
			deny:      isPushTo("refs/heads/main"),
			push:      []string{"HEAD:refs/heads/feature"},
			want:      []string{" * [new branch]      HEAD -> feature"},
			wantPosts: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			bare, err := testinfra.NewBareRepo(root, "repo.git")
			if err != nil {
				t.Fatal(err)
			}
			backend, err := testinfra.GitHTTP(root)
			if err != nil {
				t.Fatal(err)
			}
			s := &gitServer{backend: backend, c: action.NewClassifier(New(Options{})), limit: tt.limit, dropCaps: tt.dropCaps,
				deny: func(action.Action) bool { return false }}
			srv := httptest.NewServer(s)
			defer srv.Close()
			url := srv.URL + "/repo.git"
			work := filepath.Join(t.TempDir(), "work")
			if out, err := gitRun(t, "", "clone", "-q", url, work); err != nil {
				t.Fatalf("clone: %v\n%s", err, out)
			}
			before, _ := gitRun(t, "", "--git-dir", bare, "show-ref")
			s.mu.Lock()
			s.deny = tt.deny
			s.mu.Unlock()
			var args []string
			for _, c := range tt.config {
				args = append(args, "-c", c)
			}
			var out string
			if len(tt.push) == 0 {
				out, err = gitRun(t, "", append(args, "clone", url, filepath.Join(t.TempDir(), "again"))...)
			} else {
				if o, err := gitRun(t, work, "commit", "-q", "--allow-empty", "-m", "agent change"); err != nil {
					t.Fatalf("commit: %v\n%s", err, o)
				}
				out, err = gitRun(t, work, append(append(args, "push", "origin"), tt.push...)...)
			}
			t.Logf("git output:\n%s", out)
			if (err == nil) != (tt.wantPosts > 0) {
				t.Errorf("git exit error %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("git output lacks %q", w)
				}
			}
			if n := s.count("POST /repo.git/git-receive-pack"); n != tt.wantPosts {
				t.Errorf("%d receive-pack POSTs reached the server, want %d", n, tt.wantPosts)
			}
			after, _ := gitRun(t, "", "--git-dir", bare, "show-ref")
			if changed := before != after; changed != (tt.wantPosts > 0) {
				t.Errorf("refs changed = %v:\nbefore %s\nafter %s", changed, before, after)
			}
		})
	}
}
