package git

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/countersign/countersign/action"
	"github.com/countersign/countersign/internal/golden"
	"github.com/countersign/countersign/policy"
	"github.com/countersign/countersign/session"
)

var update = flag.Bool("update", false, "rewrite the expected actions in testdata/*.txt")

// goldenOptions build the captured requests as the proxy would with its
// default inspect.body_limit: a capture that ends early (a prefix of a large
// push) is a truncated body.
var goldenOptions = golden.Options{BodyLimit: golden.DefaultBodyLimit}

// TestGolden classifies requests captured from git 2.39 (see
// testdata/README.md) and compares the actions with the expected JSON.
func TestGolden(t *testing.T) {
	golden.Run(t, "testdata/*.txt", goldenOptions, golden.Claimed(New(Options{})), *update)
}

const (
	oidA   = "b8d94b104067d8a26a6b9773c0c5b7c9044dd60e"
	oidB   = "8ea3cd278e1907f7283f9a7b687dfb6babe5a527"
	zero   = "0000000000000000000000000000000000000000"
	oid256 = "4f2b6e0c5a0d1e9a3b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c"
)

// pkts builds a pkt-line stream; "0000", "0001" and "0002" stand for
// themselves.
func pkts(lines ...string) []byte {
	var b []byte
	for _, l := range lines {
		switch l {
		case "0000", "0001", "0002":
			b = append(b, l...)
		default:
			b = pktLine(b, l)
		}
	}
	return b
}

func TestParseCommands(t *testing.T) {
	caps := "\x00 report-status-v2 side-band-64k quiet object-format=sha1 agent=git/2.39.5"
	tests := []struct {
		name    string
		give    []byte
		want    push
		wantErr string // substring; "short" for errPktShort
	}{
		// GitHub's receive-pack reads a command up to a newline: a ref
		// name with one inside updates the ref before it (found by
		// review). Names git itself refuses are refused.
		{name: "a newline inside the ref", give: pkts(oidA+" "+oidB+" refs/heads/main\n\x00report-status\n", "0000"), wantErr: "invalid ref name"},
		{name: "a newline and more", give: pkts(oidA+" "+oidB+" refs/heads/main\nx", "0000"), wantErr: "invalid ref name"},
		{name: "a control character", give: pkts(oidA+" "+oidB+" refs/heads/ma\x01in", "0000"), wantErr: "invalid ref name"},
		{name: "a space", give: pkts(oidA+" "+oidB+" refs/heads/main extra", "0000"), wantErr: "invalid ref name"},
		{name: "dot dot", give: pkts(oidA+" "+oidB+" refs/heads/../main", "0000"), wantErr: "invalid ref name"},
		{name: "at brace", give: pkts(oidA+" "+oidB+" refs/heads/main@{1}", "0000"), wantErr: "invalid ref name"},
		{name: "a lock file", give: pkts(oidA+" "+oidB+" refs/heads/main.lock", "0000"), wantErr: "invalid ref name"},
		{name: "a double slash", give: pkts(oidA+" "+oidB+" refs/heads//main", "0000"), wantErr: "invalid ref name"},
		{name: "not under refs/", give: pkts(oidA+" "+oidB+" HEAD", "0000"), wantErr: "invalid ref name"},
		{name: "a trailing dot", give: pkts(oidA+" "+oidB+" refs/heads/main.", "0000"), wantErr: "invalid ref name"},
		{
			name: "a name git accepts",
			give: pkts(oidA+" "+oidB+" refs/heads/feature/ünïcode-1.2_x", "0000"),
			want: push{Updates: []refUpdate{{Ref: "refs/heads/feature/ünïcode-1.2_x", Old: oidA, New: oidB, Kind: "update"}}, Complete: true},
		},
		{
			name: "create",
			give: append(pkts(zero+" "+oidA+" refs/heads/feature"+caps, "0000"), "PACK\x00\x00\x00\x02"...),
			want: push{
				Updates:      []refUpdate{{Ref: "refs/heads/feature", Old: zero, New: oidA, Kind: "create"}},
				Capabilities: []string{"report-status-v2", "side-band-64k", "quiet", "object-format=sha1", "agent=git/2.39.5"},
				Complete:     true,
			},
		},
		{
			name: "update, delete and a trailing LF",
			give: pkts(oidA+" "+oidB+" refs/heads/main\x00report-status\n", oidB+" "+zero+" refs/heads/old\n", "0000"),
			want: push{
				Updates: []refUpdate{
					{Ref: "refs/heads/main", Old: oidA, New: oidB, Kind: "update"},
					{Ref: "refs/heads/old", Old: oidB, New: zero, Kind: "delete"},
				},
				Capabilities: []string{"report-status"},
				Complete:     true,
			},
		},
		{
			name: "upper-case ids are normalised",
			give: pkts(strings.ToUpper(oidA)+" "+strings.ToUpper(oidB)+" refs/heads/main", "0000"),
			want: push{Updates: []refUpdate{{Ref: "refs/heads/main", Old: oidA, New: oidB, Kind: "update"}}, Complete: true},
		},
		{
			name: "zero old and new deletes unconditionally",
			give: pkts(zero+" "+zero+" refs/heads/main", "0000"),
			want: push{Updates: []refUpdate{{Ref: "refs/heads/main", Old: zero, New: zero, Kind: "delete"}}, Complete: true},
		},
		{
			name: "sha256",
			give: pkts(strings.Repeat("0", 64)+" "+oid256+" refs/heads/main\x00object-format=sha256", "0000"),
			want: push{
				Updates:      []refUpdate{{Ref: "refs/heads/main", Old: strings.Repeat("0", 64), New: oid256, Kind: "create"}},
				Capabilities: []string{"object-format=sha256"},
				Complete:     true,
			},
		},
		{
			name: "push options",
			give: pkts(oidA+" "+oidB+" refs/heads/main\x00report-status push-options", "0000", "ci.skip", "merge_request.create\n", "0000", "PACK"),
			want: push{
				Updates:      []refUpdate{{Ref: "refs/heads/main", Old: oidA, New: oidB, Kind: "update"}},
				Capabilities: []string{"report-status", "push-options"},
				PushOptions:  []string{"ci.skip", "merge_request.create"},
				Complete:     true,
			},
		},
		{
			// git reads a capability by name, "=value" or not (found by
			// review).
			name: "push options asked for with a value",
			give: pkts(oidA+" "+oidB+" refs/heads/main\x00report-status push-options=1", "0000", "merge_request.merge_when_pipeline_succeeds", "0000", "PACK"),
			want: push{
				Updates:      []refUpdate{{Ref: "refs/heads/main", Old: oidA, New: oidB, Kind: "update"}},
				Capabilities: []string{"report-status", "push-options=1"},
				PushOptions:  []string{"merge_request.merge_when_pipeline_succeeds"},
				Complete:     true,
			},
		},
		{
			name: "shallow lines come first",
			give: pkts("shallow "+oidA, oidA+" "+oidB+" refs/heads/main", "0000"),
			want: push{Updates: []refUpdate{{Ref: "refs/heads/main", Old: oidA, New: oidB, Kind: "update"}}, Complete: true},
		},
		{
			name: "a delim-pkt ends the command list as it does in receive-pack",
			give: pkts(oidA+" "+oidB+" refs/heads/main", "0001", oidA+" "+zero+" refs/heads/hidden"),
			want: push{Updates: []refUpdate{{Ref: "refs/heads/main", Old: oidA, New: oidB, Kind: "update"}}, Complete: true},
		},
		{
			name: "capabilities on a later line count too",
			give: pkts(oidA+" "+oidB+" refs/heads/a", oidA+" "+oidB+" refs/heads/b\x00report-status side-band-64k", "0000"),
			want: push{
				Updates: []refUpdate{
					{Ref: "refs/heads/a", Old: oidA, New: oidB, Kind: "update"},
					{Ref: "refs/heads/b", Old: oidA, New: oidB, Kind: "update"},
				},
				Capabilities: []string{"report-status", "side-band-64k"},
				Complete:     true,
			},
		},
		{
			name: "push certificate",
			give: pkts("push-cert\x00report-status", "certificate version 0.1\n", "pusher Agent 1 +0000\n", "nonce 1-abc\n", "\n",
				oidA+" "+oidB+" refs/heads/main\n", zero+" "+oidA+" refs/heads/new\n",
				"-----BEGIN SSH SIGNATURE-----\n", oidA+" "+zero+" refs/heads/not-a-command\n", "-----END SSH SIGNATURE-----\n", "push-cert-end\n", "0000"),
			want: push{
				Updates: []refUpdate{
					{Ref: "refs/heads/main", Old: oidA, New: oidB, Kind: "update"},
					{Ref: "refs/heads/new", Old: zero, New: oidA, Kind: "create"},
				},
				Capabilities: []string{"report-status"},
				Signed:       true,
				Complete:     true,
			},
		},
		{
			name: "empty command list (git's probe)",
			give: []byte("0000"),
			want: push{Complete: true},
		},
		{
			name:    "cut off inside the command list",
			give:    pkts(oidA + " " + oidB + " refs/heads/main\x00report-status")[:50],
			wantErr: "short",
		},
		{
			name:    "no flush after the commands",
			give:    pkts(oidA + " " + oidB + " refs/heads/main\x00report-status"),
			want:    push{Updates: []refUpdate{{Ref: "refs/heads/main", Old: oidA, New: oidB, Kind: "update"}}, Capabilities: []string{"report-status"}},
			wantErr: "short",
		},
		{
			name:    "push options cut off",
			give:    pkts(oidA+" "+oidB+" refs/heads/main\x00push-options", "0000", "ci.skip"),
			want:    push{Updates: []refUpdate{{Ref: "refs/heads/main", Old: oidA, New: oidB, Kind: "update"}}, Capabilities: []string{"push-options"}, PushOptions: []string{"ci.skip"}},
			wantErr: "short",
		},
		{name: "bad length", give: []byte("00zz"), wantErr: "bad pkt-line length"},
		{name: "length 3", give: []byte("0003"), wantErr: "bad pkt-line length 3"},
		{name: "too long", give: []byte("fff1"), wantErr: "bad pkt-line length 65521"},
		{name: "empty line", give: []byte("00040000"), wantErr: "expected old/new/ref"},
		{name: "short id", give: pkts("abc " + oidB + " refs/heads/main"), wantErr: "expected old/new/ref"},
		{name: "mixed id lengths", give: pkts(oidA + " " + oid256 + " refs/heads/main"), wantErr: "expected old/new/ref"},
		{name: "no ref", give: pkts(oidA + " " + oidB), wantErr: "expected old/new/ref"},
		{name: "shallow without id", give: pkts("shallow xyz", "0000"), wantErr: "shallow line"},
		{name: "certificate without header end", give: pkts("push-cert", "certificate version 0.1\n", "push-cert-end\n", "0000"), wantErr: "blank line"},
		{name: "special packet in certificate", give: pkts("push-cert", "0001"), wantErr: "unexpected special packet"},
		{name: "packfile instead of commands", give: []byte("PACK\x00\x00\x00\x02"), wantErr: "bad pkt-line length"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseCommands(tt.give)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("parseCommands(%q) error %v", tt.give, err)
			case tt.wantErr == "short" && !errors.Is(err, errPktShort):
				t.Fatalf("parseCommands(%q) error %v, want errPktShort", tt.give, err)
			case tt.wantErr != "" && tt.wantErr != "short" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("parseCommands(%q) error %v, want one containing %q", tt.give, err, tt.wantErr)
			}
			if tt.wantErr != "" && tt.wantErr != "short" {
				return
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("parseCommands(%q) mismatch (-want +got):\n%s", tt.give, diff)
			}
		})
	}
}

func TestParseUploadPack(t *testing.T) {
	tests := []struct {
		name    string
		give    []byte
		want    string
		wantErr bool
	}{
		{name: "v2 ls-refs", give: pkts("command=ls-refs\n", "agent=git/2.39.5", "0001", "peel\n", "0000"), want: "ls-refs"},
		{name: "v2 fetch", give: pkts("command=fetch", "0001", "want "+oidA+"\n", "done\n", "0000"), want: "fetch"},
		{name: "v2 object-info", give: pkts("command=object-info\n", "0000"), want: "object-info"},
		{name: "v0 want", give: pkts("want "+oidA+" multi_ack_detailed side-band-64k\n", "0000", "done\n")},
		{name: "probe", give: []byte("0000")},
		{name: "bad command", give: pkts("command=LS REFS\n"), wantErr: true},
		{name: "garbage", give: pkts("hello\n"), wantErr: true},
		{name: "delim first", give: []byte("0001"), wantErr: true},
		{name: "empty", give: nil, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseUploadPack(tt.give)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseUploadPack(%q) = %q, %v; want %q, error %v", tt.give, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func gzipped(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestClassify(t *testing.T) {
	pushBody := append(pkts(oidA+" "+oidB+" refs/heads/main\x00report-status side-band-64k", "0000"), "PACK"...)
	post := func(path string, body []byte, header ...string) *action.Request {
		h := http.Header{}
		for i := 0; i+1 < len(header); i += 2 {
			h.Set(header[i], header[i+1])
		}
		return &action.Request{Method: "POST", Scheme: "https", Host: "github.com", Port: 443, Path: path, Header: h, Body: body, BodySize: int64(len(body))}
	}
	get := func(path, service string) *action.Request {
		return &action.Request{Method: "GET", Scheme: "https", Host: "github.com", Port: 443, Path: path,
			Query: map[string][]string{"service": {service}}, Header: http.Header{}}
	}
	mainUpdate := []any{map[string]any{"ref": "refs/heads/main", "old": oidA, "new": oidB, "kind": "update"}}
	tests := []struct {
		name   string
		give   *action.Request
		want   action.Action
		wantOK bool
	}{
		{
			name:   "push",
			give:   post("/acme/shop.git/git-receive-pack", pushBody),
			wantOK: true,
			want: action.Action{Provider: "git", Service: "receive-pack", Operation: "push", Resources: []string{"refs/heads/main"},
				Fields: map[string]any{"repo": "acme/shop", "host": "github.com", "updates": mainUpdate,
					"capabilities": []string{"report-status", "side-band-64k"}, "object_format": "sha1"}},
		},
		{
			name:   "gzip push",
			give:   post("/acme/shop/git-receive-pack", gzipped(t, pushBody), "Content-Encoding", "gzip"),
			wantOK: true,
			want: action.Action{Provider: "git", Service: "receive-pack", Operation: "push", Resources: []string{"refs/heads/main"},
				Fields: map[string]any{"repo": "acme/shop", "host": "github.com", "updates": mainUpdate,
					"capabilities": []string{"report-status", "side-band-64k"}, "object_format": "sha1"}},
		},
		{
			name: "gzip push cut off by the inspection limit",
			give: func() *action.Request {
				r := post("/acme/shop.git/git-receive-pack", gzipped(t, pushBody)[:30], "Content-Encoding", "gzip")
				r.BodyTruncated = true
				return r
			}(),
			wantOK: true,
			want: action.Action{Provider: "git", Service: "receive-pack", Operation: "push", Resources: []string{},
				ParseError: "the push's ref updates do not fit in the inspected part of the body (inspect.body_limit); only the first 0 are listed",
				Fields:     map[string]any{"repo": "acme/shop", "host": "github.com", "updates": []any{}}},
		},
		{
			name:   "corrupt gzip",
			give:   post("/acme/shop.git/git-receive-pack", []byte("not gzip at all"), "Content-Encoding", "gzip"),
			wantOK: true,
			want: action.Action{Provider: "git", Service: "receive-pack", Operation: "push",
				ParseError: "gzip body: gzip: invalid header",
				Fields:     map[string]any{"repo": "acme/shop", "host": "github.com"}},
		},
		{
			name:   "unknown content encoding",
			give:   post("/acme/shop.git/git-receive-pack", pushBody, "Content-Encoding", "br"),
			wantOK: true,
			want: action.Action{Provider: "git", Service: "receive-pack", Operation: "push",
				ParseError: `unsupported Content-Encoding "br"`,
				Fields:     map[string]any{"repo": "acme/shop", "host": "github.com"}},
		},
		{
			name:   "empty push body",
			give:   post("/acme/shop.git/git-receive-pack", nil),
			wantOK: true,
			want: action.Action{Provider: "git", Service: "receive-pack", Operation: "push", Resources: []string{},
				ParseError: "receive-pack request: body ends inside the command list",
				Fields:     map[string]any{"repo": "acme/shop", "host": "github.com", "updates": []any{}}},
		},
		{
			name:   "delete is destructive",
			give:   post("/o/r.git/git-receive-pack", pkts(oidA+" "+zero+" refs/heads/main\x00report-status", "0000")),
			wantOK: true,
			want: action.Action{Provider: "git", Service: "receive-pack", Operation: "push", Destructive: true, Resources: []string{"refs/heads/main"},
				Fields: map[string]any{"repo": "o/r", "host": "github.com", "object_format": "sha1", "capabilities": []string{"report-status"},
					"updates": []any{map[string]any{"ref": "refs/heads/main", "old": oidA, "new": zero, "kind": "delete"}}}},
		},
		{
			name:   "suffix case and slashes",
			give:   post("//Acme//Shop.GIT/Git-Receive-Pack", pushBody),
			wantOK: true,
			want: action.Action{Provider: "git", Service: "receive-pack", Operation: "push", Resources: []string{"refs/heads/main"},
				Fields: map[string]any{"repo": "Acme/Shop", "host": "github.com", "updates": mainUpdate,
					"capabilities": []string{"report-status", "side-band-64k"}, "object_format": "sha1"}},
		},
		{
			name:   "dot segments and a trailing slash",
			give:   post("/x/../acme/shop.git/git-receive-pack/./", pushBody),
			wantOK: true,
			want: action.Action{Provider: "git", Service: "receive-pack", Operation: "push", Resources: []string{"refs/heads/main"},
				Fields: map[string]any{"repo": "acme/shop", "host": "github.com", "updates": mainUpdate,
					"capabilities": []string{"report-status", "side-band-64k"}, "object_format": "sha1"}},
		},
		{
			name:   "GET on receive-pack",
			give:   &action.Request{Method: "GET", Host: "github.com", Path: "/acme/shop.git/git-receive-pack", Header: http.Header{}},
			wantOK: true,
			want: action.Action{Provider: "git", Service: "receive-pack", Operation: "push", ParseError: "git-receive-pack with method GET",
				Fields: map[string]any{"repo": "acme/shop", "host": "github.com"}},
		},
		{
			name:   "info/refs for push",
			give:   get("/acme/shop.git/info/refs", "git-receive-pack"),
			wantOK: true,
			want: action.Action{Provider: "git", Service: "receive-pack", Operation: "advertise", ReadOnly: true,
				Fields: map[string]any{"repo": "acme/shop", "host": "github.com"}},
		},
		{
			name:   "info/refs for an unknown service",
			give:   get("/acme/shop.git/info/refs", "git-upload-archive"),
			wantOK: true,
			want: action.Action{Provider: "git", Operation: "advertise", ReadOnly: true, ParseError: `info/refs asks for an unknown service "git-upload-archive"`,
				Fields: map[string]any{"repo": "acme/shop", "host": "github.com"}},
		},
		{
			name:   "upload-pack v2 with the Git-Protocol header",
			give:   post("/group/sub/project.git/git-upload-pack", pkts("command=ls-refs\n", "0000"), "Git-Protocol", "version=2"),
			wantOK: true,
			want: action.Action{Provider: "git", Service: "upload-pack", Operation: "ls-refs", ReadOnly: true,
				Fields: map[string]any{"repo": "group/sub/project", "host": "github.com", "command": "ls-refs", "protocol_version": 2}},
		},
		{
			name:   "upload-pack garbage",
			give:   post("/acme/shop.git/git-upload-pack", []byte("hello")),
			wantOK: true,
			want: action.Action{Provider: "git", Service: "upload-pack", Operation: "fetch", ReadOnly: true,
				ParseError: `upload-pack request: bad pkt-line length "hell" at byte 0`,
				Fields:     map[string]any{"repo": "acme/shop", "host": "github.com"}},
		},
		{name: "dumb info/refs", give: &action.Request{Method: "GET", Host: "example.test", Path: "/repo.git/info/refs", Header: http.Header{}}},
		{name: "GitHub REST", give: &action.Request{Method: "DELETE", Host: "api.github.com", Path: "/repos/acme/shop", Header: http.Header{}}},
		{name: "tunnel", give: &action.Request{Method: "CONNECT", Host: "github.com", Port: 443, Tunnel: true}},
		{name: "suffix inside a name", give: post("/acme/shop.git/not-git-receive-pack.txt", pushBody)},
	}
	p := New(Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := p.Classify(tt.give)
			if ok != tt.wantOK {
				t.Fatalf("Classify(%s %s) ok = %v, want %v", tt.give.Method, tt.give.Path, ok, tt.wantOK)
			}
			if ok && !got.ByPath {
				t.Errorf("Classify(%s %s) did not say it recognised the request by its path", tt.give.Method, tt.give.Path)
			}
			got.ByPath = false
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Classify(%s %s) mismatch (-want +got):\n%s", tt.give.Method, tt.give.Path, diff)
			}
		})
	}
}

// A push that hides its update of main behind more commands than the
// inspection limit holds must not look complete.
func TestClassifyOverlongCommandList(t *testing.T) {
	var b []byte
	for i := range 2000 {
		b = pktLine(b, oidA+" "+oidB+" refs/heads/branch-"+strconv.Itoa(i))
	}
	b = pktLine(b, oidA+" "+zero+" refs/heads/main")
	b = append(b, "0000"...)
	limit := 64 << 10
	r := &action.Request{Method: "POST", Host: "github.com", Path: "/acme/shop.git/git-receive-pack", Header: http.Header{},
		Body: b[:limit], BodySize: int64(len(b)), BodyTruncated: true}
	a, ok := New(Options{}).Classify(r)
	if !ok || a.ParseError == "" || a.ReadOnly {
		t.Fatalf("Classify(a push whose main update is past the limit) = %+v, want a parse error and not read-only", a)
	}
	for _, res := range a.Resources {
		if res == "refs/heads/main" {
			t.Fatalf("the update past the limit was listed")
		}
	}
}

// The policy input is built through redaction, which masks any value whose
// type it does not know; the git fields must come through intact.
func TestPolicyInputKeepsFields(t *testing.T) {
	raw, _ := golden.Read(t, filepath.Join("testdata", "push-options.txt"))
	r := golden.Parse(t, raw, goldenOptions)
	a, _ := New(Options{}).Classify(r)
	in := policy.NewInput(r, a, &session.Info{ID: "s-test"}, time.Unix(0, 0))
	b, err := json.Marshal(in.Map()["action"])
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	wantJSON, err := golden.JSON(a)
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	if err := json.Unmarshal(wantJSON, &want); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("policy input action differs from the classified action (-want +got):\n%s", diff)
	}
}
