package policy

import (
	"context"
	"errors"
	"maps"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/open-policy-agent/opa/v1/topdown"
)

var notAllowed = Decision{Verdict: VerdictDeny, Reasons: []Reason{{Message: "not allowed by policy", ID: "NOT-ALLOWED"}}}

func TestDecideRules(t *testing.T) {
	tests := []struct {
		name   string
		policy string
		extra  map[string]string // more files
		give   map[string]any
		want   Decision
	}{
		{
			name:   "no rules allows",
			policy: "package countersign\n\nhelper := 1\n",
			give:   doc("POST", "example.com", "/"),
			want:   Decision{Verdict: VerdictAllow},
		},
		{
			name:   "empty deny and approve sets allow",
			policy: "package countersign\n\ndeny contains \"x\" if false\n\napprove contains \"y\" if false\n",
			give:   doc("POST", "example.com", "/"),
			want:   Decision{Verdict: VerdictAllow},
		},
		{
			name:   "allow true",
			policy: "package countersign\n\nallow := true\n",
			give:   doc("POST", "example.com", "/"),
			want:   Decision{Verdict: VerdictAllow},
		},
		{
			name:   "default allow false denies",
			policy: "package countersign\n\ndefault allow := false\n",
			give:   doc("GET", "example.com", "/"),
			want:   notAllowed,
		},
		{
			name:   "allow defined but undefined denies",
			policy: "package countersign\n\nallow if false\n",
			give:   doc("GET", "example.com", "/"),
			want:   notAllowed,
		},
		{
			name:   "conditional allow true",
			policy: "package countersign\n\nallow if input.request.method == \"GET\"\n",
			give:   doc("GET", "example.com", "/"),
			want:   Decision{Verdict: VerdictAllow},
		},
		{
			name:   "conditional allow not matched",
			policy: "package countersign\n\nallow if input.request.method == \"GET\"\n",
			give:   doc("POST", "example.com", "/"),
			want:   notAllowed,
		},
		{
			name:   "allow defined through a ref head",
			policy: "package countersign\n\nallow if input.request.method == \"GET\"\n\nallow if input.request.host == \"ok.example\"\n",
			give:   doc("POST", "example.com", "/"),
			want:   notAllowed,
		},
		{
			name:   "deny string member",
			policy: "package countersign\n\ndeny contains \"no deletes\" if input.request.method == \"DELETE\"\n",
			give:   doc("DELETE", "example.com", "/"),
			want:   Decision{Verdict: VerdictDeny, Reasons: []Reason{{Message: "no deletes"}}},
		},
		{
			name:   "deny rule not matching allows",
			policy: "package countersign\n\ndeny contains \"no deletes\" if input.request.method == \"DELETE\"\n",
			give:   doc("GET", "example.com", "/"),
			want:   Decision{Verdict: VerdictAllow},
		},
		{
			name: "deny beats approve and allow",
			policy: `package countersign

deny contains "denied"

approve contains "held"

allow := true
`,
			give: doc("GET", "example.com", "/"),
			want: Decision{Verdict: VerdictDeny, Reasons: []Reason{{Message: "denied"}}},
		},
		{
			name: "approve beats allow true",
			policy: `package countersign

approve contains "held"

allow := true
`,
			give: doc("GET", "example.com", "/"),
			want: Decision{Verdict: VerdictApprove, Reasons: []Reason{{Message: "held"}}},
		},
		{
			name: "approve beats allow false",
			policy: `package countersign

approve contains "held"

default allow := false
`,
			give: doc("GET", "example.com", "/"),
			want: Decision{Verdict: VerdictApprove, Reasons: []Reason{{Message: "held"}}},
		},
		{
			name: "several members in set order",
			policy: `package countersign

deny contains "b"

deny contains "a"
`,
			give: doc("GET", "example.com", "/"),
			want: Decision{Verdict: VerdictDeny, Reasons: []Reason{{Message: "a"}, {Message: "b"}}},
		},
		{
			name: "object member with every field and unknown fields",
			policy: `package countersign

approve contains {
	"msg": "prod change",
	"id": "AWS-003",
	"approvals": 2,
	"channel": "#prod-approvals",
	"hold": "5m",
	"severity": "high",
	"links": ["https://wiki.example/aws-003"],
	"meta": {"owner": "platform"},
}
`,
			give: doc("POST", "example.com", "/"),
			want: Decision{Verdict: VerdictApprove, Reasons: []Reason{{
				Message: "prod change", ID: "AWS-003", Approvals: 2, Channel: "#prod-approvals", Hold: 5 * time.Minute,
			}}},
		},
		{
			name:   "object member with only an id",
			policy: "package countersign\n\ndeny contains {\"id\": \"NET-7\"}\n",
			give:   doc("POST", "example.com", "/"),
			want:   Decision{Verdict: VerdictDeny, Reasons: []Reason{{Message: "matched policy rule NET-7", ID: "NET-7"}}},
		},
		{
			name:   "approvals at the upper bound",
			policy: "package countersign\n\napprove contains {\"msg\": \"m\", \"approvals\": 10}\n",
			give:   doc("POST", "example.com", "/"),
			want:   Decision{Verdict: VerdictApprove, Reasons: []Reason{{Message: "m", Approvals: 10}}},
		},
		{
			name:   "message built from input",
			policy: "package countersign\n\ndeny contains sprintf(\"%s is blocked\", [input.request.host]) if startswith(input.request.host, \"evil.\")\n",
			give:   doc("GET", "evil.example", "/"),
			want:   Decision{Verdict: VerdictDeny, Reasons: []Reason{{Message: "evil.example is blocked"}}},
		},
		{
			name:   "rules across modules of the package",
			policy: "package countersign\n\nimport data.countersign.extra\n\ndeny contains \"x\" if extra.flag\n",
			extra:  map[string]string{"extra.rego": "package countersign.extra\n\nflag := false\n"},
			give:   doc("GET", "example.com", "/"),
			want:   Decision{Verdict: VerdictAllow},
		},
		{
			name:   "tunnel without allow rule is denied",
			policy: "package countersign\n\nhelper := 1\n",
			give:   tunnelDoc("example.com", 443),
			want: Decision{Verdict: VerdictDeny, Reasons: []Reason{{
				Message: "tunnels to hosts that are not intercepted must be allowed explicitly by the policy", ID: "TUNNEL",
			}}},
		},
		{
			name:   "tunnel with allow not matching is denied",
			policy: "package countersign\n\nallow if not input.request.tunnel\n",
			give:   tunnelDoc("example.com", 443),
			want: Decision{Verdict: VerdictDeny, Reasons: []Reason{{
				Message: "tunnels to hosts that are not intercepted must be allowed explicitly by the policy", ID: "TUNNEL",
			}}},
		},
		{
			name:   "tunnel explicitly allowed",
			policy: "package countersign\n\nallow if input.request.host == \"example.com\"\n",
			give:   tunnelDoc("example.com", 443),
			want:   Decision{Verdict: VerdictAllow},
		},
		{
			name:   "tunnel allowed but denied",
			policy: "package countersign\n\nallow := true\n\ndeny contains \"no tunnels to 22\" if input.request.port == 22\n",
			give:   tunnelDoc("example.com", 22),
			want:   Decision{Verdict: VerdictDeny, Reasons: []Reason{{Message: "no tunnels to 22"}}},
		},
		{
			name:   "tunnel held for approval",
			policy: "package countersign\n\napprove contains \"tunnel\" if input.request.tunnel\n",
			give:   tunnelDoc("example.com", 443),
			want:   Decision{Verdict: VerdictApprove, Reasons: []Reason{{Message: "tunnel"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := mod(tt.policy)
			maps.Copy(files, tt.extra)
			e, _ := newEngine(t, Options{}, files)
			got := e.DecideDocument(t.Context(), tt.give)
			if got.Err != nil {
				t.Fatalf("DecideDocument: unexpected error %v", got.Err)
			}
			if got.Revision == "" || got.Revision != e.Revision() {
				t.Errorf("Revision = %q, want the engine's %q", got.Revision, e.Revision())
			}
			if diff := diffDecision(tt.want, got); diff != "" {
				t.Errorf("DecideDocument mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// failClosedCases are policies that must end in policy.on_error.
var failClosedCases = []struct {
	name   string
	policy string
}{
	{"deny is a boolean", "package countersign\n\ndeny := true\n"},
	{"deny is an object", "package countersign\n\ndeny[\"a\"] := 1\n"},
	{"approve is a string", "package countersign\n\napprove := \"x\"\n"},
	{"allow is a string", "package countersign\n\nallow := \"yes\"\n"},
	{"allow is a number", "package countersign\n\nallow := 1\n"},
	{"allow is a set", "package countersign\n\nallow contains \"x\"\n"},
	{"allow is an empty set", "package countersign\n\nallow contains \"x\" if false\n"},
	{"object member without msg or id", "package countersign\n\ndeny contains {\"severity\": \"high\"}\n"},
	{"object member with empty msg", "package countersign\n\ndeny contains {\"msg\": \"\", \"id\": \"X\"}\n"},
	{"object member with a numeric msg", "package countersign\n\ndeny contains {\"msg\": 7}\n"},
	{"object member with a numeric id", "package countersign\n\ndeny contains {\"msg\": \"m\", \"id\": 7}\n"},
	{"object member with a numeric channel", "package countersign\n\napprove contains {\"msg\": \"m\", \"channel\": 7}\n"},
	{"approvals zero", "package countersign\n\napprove contains {\"msg\": \"m\", \"approvals\": 0}\n"},
	{"approvals fractional", "package countersign\n\napprove contains {\"msg\": \"m\", \"approvals\": 1.5}\n"},
	{"approvals negative", "package countersign\n\napprove contains {\"msg\": \"m\", \"approvals\": -1}\n"},
	{"approvals too many", "package countersign\n\napprove contains {\"msg\": \"m\", \"approvals\": 11}\n"},
	{"approvals a string", "package countersign\n\napprove contains {\"msg\": \"m\", \"approvals\": \"2\"}\n"},
	{"hold not a duration", "package countersign\n\napprove contains {\"msg\": \"m\", \"hold\": \"soon\"}\n"},
	{"hold negative", "package countersign\n\napprove contains {\"msg\": \"m\", \"hold\": \"-5m\"}\n"},
	{"hold a number", "package countersign\n\napprove contains {\"msg\": \"m\", \"hold\": 300}\n"},
	{"number member", "package countersign\n\ndeny contains 5\n"},
	{"empty string member", "package countersign\n\ndeny contains \"\"\n"},
	{"array member", "package countersign\n\napprove contains [\"a\"]\n"},
	{"malformed approve next to a deny", "package countersign\n\ndeny contains \"d\"\n\napprove contains 5\n"},
	{
		"strict built-in error in a deny body",
		"package countersign\n\ndeny contains \"bad\" if {\n\tv := json.unmarshal(\"{not json\")\n\tv.a == 1\n}\n",
	},
	{
		"strict built-in error in an allow body",
		"package countersign\n\nallow if {\n\tto_number(\"not a number\") > 0\n}\n",
	},
	{
		"conflicting complete rule",
		"package countersign\n\nallow := true if input.request.method == \"GET\"\n\nallow := false if input.request.host == \"example.com\"\n",
	},
	{
		"conflicting helper rule",
		"package countersign\n\nlevel := 1 if true\n\nlevel := 2 if true\n\ndeny contains \"x\" if level > 5\n",
	},
}

func TestDecideFailsClosed(t *testing.T) {
	for _, tt := range failClosedCases {
		for _, onError := range []Verdict{VerdictUnknown, VerdictDeny, VerdictAllow} {
			want := onError
			if want == VerdictUnknown {
				want = VerdictDeny // the default
			}
			t.Run(tt.name+"/on_error="+onError.String(), func(t *testing.T) {
				e, _ := newEngine(t, Options{OnError: onError}, mod(tt.policy))
				got := e.DecideDocument(t.Context(), doc("GET", "example.com", "/"))
				checkPolicyError(t, got, want)
				if got.Revision != e.Revision() {
					t.Errorf("Revision = %q, want %q", got.Revision, e.Revision())
				}
			})
		}
	}
}

func failClosedPolicy(t *testing.T, name string) string {
	t.Helper()
	for _, c := range failClosedCases {
		if c.name == name {
			return c.policy
		}
	}
	t.Fatalf("no fail-closed case %q", name)
	return ""
}

func checkPolicyError(t *testing.T, got Decision, want Verdict) {
	t.Helper()
	if got.Err == nil {
		t.Fatalf("Decision.Err = nil, want an error (decision %+v)", got)
	}
	if got.Verdict != want {
		t.Errorf("Verdict = %v, want %v (err %v)", got.Verdict, want, got.Err)
	}
	if len(got.Reasons) != 1 || !strings.HasPrefix(got.Reasons[0].Message, "policy error") || got.Reasons[0].ID != "POLICY-ERROR" {
		t.Errorf("Reasons = %+v, want one POLICY-ERROR reason starting with \"policy error\"", got.Reasons)
	}
	// The agent sees the reason; internal error text must not leak into it.
	if len(got.Reasons) == 1 && strings.Contains(got.Reasons[0].Message, got.Err.Error()) {
		t.Errorf("reason %q carries the internal error text", got.Reasons[0].Message)
	}
}

func TestDecideStrictBuiltinErrorIsAnError(t *testing.T) {
	// Without strict built-in errors the deny body would be undefined and the
	// request allowed; with on_error=allow that would look the same, so Err
	// is what tells them apart.
	e, _ := newEngine(t, Options{OnError: VerdictAllow}, mod(failClosedPolicy(t, "strict built-in error in a deny body")))
	got := e.DecideDocument(t.Context(), doc("GET", "example.com", "/"))
	var te *topdown.Error
	if !errors.As(got.Err, &te) {
		t.Fatalf("Decision.Err = %v, want a *topdown.Error", got.Err)
	}
	if te.Code != topdown.BuiltinErr {
		t.Errorf("error code = %q, want %q", te.Code, topdown.BuiltinErr)
	}
}

func TestDecideTimeout(t *testing.T) {
	// About 25 million iterations: far longer than the 1ms budget, so
	// evaluation must be cancelled, not run to completion.
	const slow = `package countersign

deny contains "slow" if {
	n := count([x |
		some i in numbers.range(1, 5000)
		some j in numbers.range(1, 5000)
		x := i * j
	])
	n < 0
}
`
	for _, onError := range []Verdict{VerdictDeny, VerdictAllow} {
		t.Run("on_error="+onError.String(), func(t *testing.T) {
			e, _ := newEngine(t, Options{OnError: onError, EvalTimeout: time.Millisecond}, mod(slow))
			got := e.DecideDocument(t.Context(), doc("GET", "example.com", "/"))
			checkPolicyError(t, got, onError)
			var te *topdown.Error
			if !errors.As(got.Err, &te) || te.Code != topdown.CancelErr {
				t.Errorf("Decision.Err = %v, want a topdown cancellation", got.Err)
			}
			if !errors.Is(got.Err, context.DeadlineExceeded) {
				t.Errorf("Decision.Err = %v, want context.DeadlineExceeded", got.Err)
			}
		})
	}
}

func TestDecideTimeoutIsDeterministic(t *testing.T) {
	// OPA notices a deadline asynchronously, so a quick evaluation can finish
	// after it has passed. Past EvalTimeout is on_error all the same: with a
	// 1ns budget even a trivial allow must not allow.
	e, _ := newEngine(t, Options{EvalTimeout: time.Nanosecond}, mod("package countersign\n\nallow := true\n"))
	for range 20 {
		got := e.DecideDocument(t.Context(), doc("GET", "example.com", "/"))
		checkPolicyError(t, got, VerdictDeny)
		if !errors.Is(got.Err, context.DeadlineExceeded) {
			t.Errorf("Decision.Err = %v, want context.DeadlineExceeded", got.Err)
		}
	}
}

func TestDecideCancelledContext(t *testing.T) {
	e, _ := newEngine(t, Options{}, mod("package countersign\n\nallow := true\n"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for range 20 {
		got := e.DecideDocument(ctx, doc("GET", "example.com", "/"))
		checkPolicyError(t, got, VerdictDeny)
		if !errors.Is(got.Err, context.Canceled) {
			t.Errorf("Decision.Err = %v, want context.Canceled", got.Err)
		}
	}
}

// TestCancellationIsNotCarriedOver: evaluations reuse their cancellation
// (Engine.startCancel); one whose caller gave up, before, while or after
// it ran, must not cancel a later one.
func TestCancellationIsNotCarriedOver(t *testing.T) {
	e, _ := newEngine(t, Options{NoCache: true}, mod("package countersign\n\nallow := true\n"))
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := range 200 {
				ctx, cancel := context.WithCancel(t.Context())
				switch i % 3 {
				case 0:
					cancel()
				case 1:
					go cancel()
				}
				e.DecideDocument(ctx, doc("GET", "example.com", "/"))
				cancel()
				if got := e.DecideDocument(t.Context(), doc("GET", "example.com", "/")); got.Err != nil || got.Verdict != VerdictAllow {
					t.Errorf("after a cancelled evaluation: %v, %v; want allow", got.Verdict, got.Err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestDecideInputNotConvertible(t *testing.T) {
	e, _ := newEngine(t, Options{}, mod("package countersign\n\nallow := true\n"))
	d := doc("GET", "example.com", "/")
	d["weird"] = make(chan int)
	got := e.DecideDocument(t.Context(), d)
	checkPolicyError(t, got, VerdictDeny)
}

func TestDisabledBuiltins(t *testing.T) {
	tests := []struct {
		name    string
		builtin string
		policy  string
		extra   map[string]string // more files
	}{
		{name: "http.send", builtin: "http.send", policy: "package countersign\n\ndeny contains \"x\" if {\n\tr := http.send({\"method\": \"GET\", \"url\": \"http://127.0.0.1:1/\"})\n\tr.status_code == 200\n}\n"},
		{name: "net.lookup_ip_addr", builtin: "net.lookup_ip_addr", policy: "package countersign\n\ndeny contains \"x\" if {\n\t\"127.0.0.1\" in net.lookup_ip_addr(\"localhost\")\n}\n"},
		{name: "opa.runtime", builtin: "opa.runtime", policy: "package countersign\n\ndeny contains \"x\" if {\n\topa.runtime().env.HOME\n}\n"},
		// JSON Schema "$ref": "file:///…" would read local files.
		{name: "json.match_schema", builtin: "json.match_schema", policy: "package countersign\n\ndeny contains \"x\" if {\n\t[ok, _] := json.match_schema({}, {\"$ref\": \"file:///etc/passwd\"})\n\tok\n}\n"},
		{name: "json.verify_schema", builtin: "json.verify_schema", policy: "package countersign\n\ndeny contains \"x\" if {\n\t[ok, _] := json.verify_schema({\"$ref\": \"file:///etc/passwd\"})\n\tok\n}\n"},
		{
			name: "in a helper package", builtin: "http.send",
			policy: "package countersign\n\nimport data.helpers\n\ndeny contains \"x\" if helpers.fetch\n",
			extra:  map[string]string{"helpers.rego": "package helpers\n\nfetch if http.send({\"method\": \"GET\", \"url\": \"http://127.0.0.1:1/\"}).status_code == 200\n"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := mod(tt.policy)
			maps.Copy(files, tt.extra)
			dir := writePolicy(t, files)
			_, err := New(t.Context(), Options{Source: Source{Paths: []string{dir}}}, nil)
			if err == nil {
				t.Fatalf("New() = nil error, want a compile error naming %s", tt.builtin)
			}
			if !strings.Contains(err.Error(), tt.builtin) {
				t.Errorf("New() = %v, want an error naming %s", err, tt.builtin)
			}
		})
	}

	caps := Capabilities()
	for _, b := range caps.Builtins {
		for _, name := range []string{"http.send", "net.lookup_ip_addr", "opa.runtime", "json.match_schema", "json.verify_schema"} {
			if b.Name == name {
				t.Errorf("Capabilities() still lists %s", name)
			}
		}
	}
	if len(caps.AllowNet) != 0 || caps.AllowNet == nil {
		t.Errorf("Capabilities().AllowNet = %#v, want an empty, non-nil list (no network)", caps.AllowNet)
	}
}

func TestNewOptions(t *testing.T) {
	dir := writePolicy(t, mod("package countersign\n\nallow := true\n"))
	if _, err := New(t.Context(), Options{Source: Source{Paths: []string{dir}}, OnError: VerdictApprove}, nil); err == nil {
		t.Error("New(OnError: approve) = nil error, want an error")
	}
	if _, err := New(t.Context(), Options{OnError: VerdictAllow}, nil); err == nil {
		t.Error("New(no source) = nil error, want an error")
	}
	// Defaults: a nil logger and zero options are usable.
	e, err := New(t.Context(), Options{Source: Source{Paths: []string{dir}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if e.opts.OnError != VerdictDeny || e.opts.EvalTimeout != 250*time.Millisecond || e.opts.Now == nil {
		t.Errorf("defaults = {OnError: %v, EvalTimeout: %v}, want deny and 250ms", e.opts.OnError, e.opts.EvalTimeout)
	}
}

func TestDecideUsesClock(t *testing.T) {
	var calls int
	base := time.Date(2026, 11, 26, 13, 45, 0, 0, time.UTC)
	now := func() time.Time {
		calls++
		return base.Add(time.Duration(calls) * 3 * time.Millisecond)
	}
	e, _ := newEngine(t, Options{Now: now}, mod("package countersign\n\nallow := true\n"))
	got := e.DecideDocument(t.Context(), doc("GET", "example.com", "/"))
	if got.Eval != 3*time.Millisecond {
		t.Errorf("Eval = %v, want 3ms from the injected clock", got.Eval)
	}
}

func TestDecisionHelpers(t *testing.T) {
	d := Decision{Reasons: []Reason{
		{Message: "a", ID: "A-1", Approvals: 2},
		{Message: "b", Hold: 5 * time.Minute, Channel: "#ops"},
		{Message: "c", ID: "C-3", Approvals: 3, Hold: time.Minute, Channel: "#later"},
	}}
	if diff := cmp.Diff([]string{"a", "b", "c"}, d.Messages()); diff != "" {
		t.Errorf("Messages() mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"A-1", "C-3"}, d.RuleIDs()); diff != "" {
		t.Errorf("RuleIDs() mismatch (-want +got):\n%s", diff)
	}
	if got := d.RequiredApprovals(); got != 3 {
		t.Errorf("RequiredApprovals() = %d, want 3", got)
	}
	if got := d.Hold(); got != 5*time.Minute {
		t.Errorf("Hold() = %v, want 5m", got)
	}
	if got := d.Channel(); got != "#ops" {
		t.Errorf("Channel() = %q, want #ops", got)
	}

	var empty Decision
	if got := empty.RequiredApprovals(); got != 1 {
		t.Errorf("empty RequiredApprovals() = %d, want 1", got)
	}
	if got, want := empty.Hold(), time.Duration(0); got != want {
		t.Errorf("empty Hold() = %v, want %v", got, want)
	}
	if got := empty.Channel(); got != "" {
		t.Errorf("empty Channel() = %q, want \"\"", got)
	}
}

func TestVerdict(t *testing.T) {
	tests := []struct {
		give    string
		want    Verdict
		wantErr bool
	}{
		{give: "allow", want: VerdictAllow},
		{give: "deny", want: VerdictDeny},
		{give: "approve", want: VerdictApprove},
		{give: "Allow", want: VerdictUnknown, wantErr: true},
		{give: "", want: VerdictUnknown, wantErr: true},
		{give: "unknown", want: VerdictUnknown, wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseVerdict(tt.give)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("ParseVerdict(%q) = %v, %v; want %v, error %t", tt.give, got, err, tt.want, tt.wantErr)
		}
		if err == nil && got.String() != tt.give {
			t.Errorf("ParseVerdict(%q).String() = %q", tt.give, got.String())
		}
	}
	if got := VerdictUnknown.String(); got != "unknown" {
		t.Errorf("VerdictUnknown.String() = %q, want unknown", got)
	}
	if got := Verdict(42).String(); got != "unknown" {
		t.Errorf("Verdict(42).String() = %q, want unknown", got)
	}
}

// An archive among the policy files would be loaded by OPA's loader as an
// unsigned bundle, tests included.
func TestArchiveAmongPolicyFilesIsRefused(t *testing.T) {
	for _, name := range []string{"b.tar.gz", "sub/b.tgz"} {
		dir := writePolicy(t, map[string]string{"main.rego": "package countersign\n\nallow := true\n", name: "not really gzip"})
		_, err := New(t.Context(), Options{Source: Source{Paths: []string{dir}}}, nil)
		if err == nil || !strings.Contains(err.Error(), filepath.Base(name)) || !strings.Contains(err.Error(), "policy.bundle") {
			t.Errorf("New() with %s = %v, want an error naming the archive and policy.bundle", name, err)
		}
	}
}

func TestAllowNullIsTheWrongType(t *testing.T) {
	e, _ := newEngine(t, Options{}, map[string]string{"data.json": `{"countersign": {"allow": null}}`, "main.rego": "package countersign\n"})
	d := e.DecideDocument(t.Context(), doc("GET", "api.github.com", "/"))
	if d.Err == nil || d.Verdict != VerdictDeny || !strings.Contains(d.Err.Error(), "allow") {
		t.Errorf("allow: null decided %v, %v; want deny with an error about allow", d.Verdict, d.Err)
	}
}
