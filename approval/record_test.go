package approval

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestStateText(t *testing.T) {
	tests := []struct {
		give State
		want string
	}{
		{StateUnknown, "unknown"},
		{StatePending, "pending"},
		{StateApproved, "approved"},
		{StateDenied, "denied"},
		{StateExpired, "expired"},
		{State(99), "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			b, err := tt.give.MarshalText()
			if err != nil || string(b) != tt.want {
				t.Fatalf("MarshalText(%d) = %q, %v; want %q", tt.give, b, err, tt.want)
			}
			var got State
			err = got.UnmarshalText(b)
			if tt.want == "unknown" {
				if err == nil {
					t.Errorf("UnmarshalText(%q) = %v, want an error: the zero state is never valid", b, got)
				}
				return
			}
			if err != nil || got != tt.give {
				t.Errorf("UnmarshalText(%q) = %v, %v; want %v", b, got, err, tt.give)
			}
		})
	}
}

func TestRecordJSONRoundTrip(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	want := &Record{
		ID: "ap-abcdefgh", SessionID: "s1", SessionName: "agent", RequestID: "req-1", Summary: "delete",
		Request:     Request{Method: "DELETE", URL: "https://example.com/x", Headers: map[string][]string{"Accept": {"*/*"}}, BodySize: 0},
		Fingerprint: "fp", Messages: []string{"m"}, Required: 2, Created: at, Expires: at.Add(time.Hour),
		State:     StateApproved,
		Decisions: []Decision{{Approve: true, Approver: "alice", Via: "cli", At: at}},
	}
	b, err := json.Marshal(want)
	if err != nil {
		t.Fatalf("Marshal() error = %v", err)
	}
	var got Record
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("Unmarshal(%s) error = %v", b, err)
	}
	if diff := cmp.Diff(want, &got); diff != "" {
		t.Errorf("JSON round trip (-want +got):\n%s", diff)
	}
}

func TestOutcomeKindString(t *testing.T) {
	tests := []struct {
		give OutcomeKind
		want string
	}{
		{OutcomeUnknown, "unknown"},
		{OutcomeApproved, "approved"},
		{OutcomeDenied, "denied"},
		{OutcomePending, "pending"},
		{OutcomeAbandoned, "abandoned"},
		{OutcomeExpired, "expired"},
		{OutcomeSuperseded, "superseded"},
		{OutcomeShutdown, "shutdown"},
		{OutcomeKind(99), "unknown"},
	}
	for _, tt := range tests {
		if got := tt.give.String(); got != tt.want {
			t.Errorf("OutcomeKind(%d).String() = %q, want %q", tt.give, got, tt.want)
		}
	}
}

func TestRecordApply(t *testing.T) {
	created := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	expires := created.Add(time.Hour)
	approve := func(who string) Decision { return Decision{Approve: true, Approver: who, Via: "cli", At: created} }
	deny := func(who string) Decision { return Decision{Approver: who, Via: "cli", At: created} }
	tests := []struct {
		name          string
		state         State
		required      int
		prior         []Decision
		give          Decision
		now           time.Time
		wantErr       error
		wantState     State
		wantApprovers []string
	}{
		{name: "one of one", state: StatePending, required: 1, give: approve("a"), now: created, wantState: StateApproved, wantApprovers: []string{"a"}},
		{name: "required zero means one", state: StatePending, required: 0, give: approve("a"), now: created, wantState: StateApproved, wantApprovers: []string{"a"}},
		{name: "one of two", state: StatePending, required: 2, give: approve("a"), now: created, wantState: StatePending, wantApprovers: []string{"a"}},
		{name: "two of two", state: StatePending, required: 2, prior: []Decision{approve("a")}, give: approve("b"), now: created, wantState: StateApproved, wantApprovers: []string{"a", "b"}},
		{name: "same approver twice", state: StatePending, required: 2, prior: []Decision{approve("a")}, give: approve("a"), now: created, wantErr: ErrDuplicateApprover, wantState: StatePending, wantApprovers: []string{"a"}},
		{name: "deny", state: StatePending, required: 2, prior: []Decision{approve("a")}, give: deny("b"), now: created, wantState: StateDenied, wantApprovers: []string{"a"}},
		{name: "already approved", state: StateApproved, required: 1, prior: []Decision{approve("a")}, give: deny("b"), now: created, wantErr: ErrDecided, wantState: StateApproved, wantApprovers: []string{"a"}},
		{name: "already denied", state: StateDenied, required: 1, prior: []Decision{deny("a")}, give: approve("b"), now: created, wantErr: ErrDecided, wantState: StateDenied},
		{name: "already expired", state: StateExpired, required: 1, give: approve("a"), now: created, wantErr: ErrExpired, wantState: StateExpired},
		// A late decision changes nothing; ExpirePending moves the record so
		// that the broker audits the expiry.
		{name: "at the expiry", state: StatePending, required: 1, give: approve("a"), now: expires, wantErr: ErrExpired, wantState: StatePending},
		{name: "just before the expiry", state: StatePending, required: 1, give: approve("a"), now: expires.Add(-time.Nanosecond), wantState: StateApproved, wantApprovers: []string{"a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Record{ID: "ap-x", State: tt.state, Required: tt.required, Created: created, Expires: expires, Decisions: tt.prior}
			err := r.apply(tt.give, tt.now)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("apply() error = %v, want %v", err, tt.wantErr)
			}
			if r.State != tt.wantState {
				t.Errorf("state = %v, want %v", r.State, tt.wantState)
			}
			if diff := cmp.Diff(tt.wantApprovers, r.Approvers()); diff != "" {
				t.Errorf("Approvers() (-want +got):\n%s", diff)
			}
			if err != nil && len(r.Decisions) != len(tt.prior) {
				t.Errorf("a refused decision was recorded: %d decisions, want %d", len(r.Decisions), len(tt.prior))
			}
		})
	}
}

func TestDenyReason(t *testing.T) {
	tests := []struct {
		name             string
		give             []Decision
		wantWho, wantWhy string
	}{
		{name: "none", give: nil},
		{name: "approvals only", give: []Decision{{Approve: true, Approver: "a", Reason: "ok"}}},
		{name: "deny after approval", give: []Decision{{Approve: true, Approver: "a", Reason: "ok"}, {Approver: "b", Reason: "no"}}, wantWho: "b", wantWhy: "no"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			who, why := (&Record{Decisions: tt.give}).DenyReason()
			if who != tt.wantWho || why != tt.wantWhy {
				t.Errorf("DenyReason() = %q, %q; want %q, %q", who, why, tt.wantWho, tt.wantWhy)
			}
		})
	}
}

func TestRecordClone(t *testing.T) {
	r := &Record{ID: "ap-x", Messages: []string{"m"}, RuleIDs: []string{"r"}, Decisions: []Decision{{Approver: "a"}}}
	c := r.Clone()
	c.Messages[0], c.RuleIDs[0], c.Decisions[0].Approver = "changed", "changed", "changed"
	c.Decisions = append(c.Decisions, Decision{Approver: "b"})
	want := &Record{ID: "ap-x", Messages: []string{"m"}, RuleIDs: []string{"r"}, Decisions: []Decision{{Approver: "a"}}}
	if diff := cmp.Diff(want, r); diff != "" {
		t.Errorf("original after changing the clone (-want +got):\n%s", diff)
	}
}

func TestNewID(t *testing.T) {
	re := regexp.MustCompile(`^ap-[a-km-np-z2-9]{8}$`)
	seen := map[string]bool{}
	for range 1000 {
		id := NewID()
		if !re.MatchString(id) {
			t.Fatalf("NewID() = %q, want %v", id, re)
		}
		if seen[id] {
			t.Fatalf("NewID() repeated %q", id)
		}
		seen[id] = true
	}
}

// fpInput is one call of Fingerprint with a raw query string.
type fpInput struct {
	method, host string
	port         int
	path, query  string
	body         string
}

func (in fpInput) fingerprint(t testing.TB) string {
	t.Helper()
	q, err := url.ParseQuery(in.query)
	if err != nil {
		t.Fatalf("ParseQuery(%q): %v", in.query, err)
	}
	sum := sha256.Sum256([]byte(in.body))
	return Fingerprint(in.method, in.host, in.port, in.path, q, hex.EncodeToString(sum[:]))
}

const presigned = "X-Amz-Algorithm=AWS4-HMAC-SHA256" +
	"&X-Amz-Credential=AKIAEXAMPLE%2F20260301%2Fus-east-1%2Fs3%2Faws4_request" +
	"&X-Amz-Date=20260301T120000Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host" +
	"&X-Amz-Security-Token=token-one&X-Amz-Signature=aaaa&versionId=3"

var fpBase = fpInput{method: "DELETE", host: "prod-logs.s3.amazonaws.com", port: 443, path: "/2026/app.log", query: presigned, body: ""}

func TestFingerprint(t *testing.T) {
	with := func(f func(*fpInput)) fpInput {
		in := fpBase
		f(&in)
		return in
	}
	tests := []struct {
		name     string
		a, b     fpInput
		wantSame bool
	}{
		{name: "identical", a: fpBase, b: fpBase, wantSame: true},
		{
			name: "re-signed presigned query", a: fpBase, wantSame: true,
			b: with(func(in *fpInput) {
				in.query = "X-Amz-Algorithm=AWS4-HMAC-SHA256" +
					"&X-Amz-Credential=AKIAEXAMPLE%2F20260301%2Fus-east-1%2Fs3%2Faws4_request" +
					"&X-Amz-Date=20260301T120500Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host" +
					"&X-Amz-Security-Token=token-two&X-Amz-Signature=bbbb&versionId=3"
			}),
		},
		{
			name: "re-signed without a session token", a: fpBase, wantSame: true,
			b: with(func(in *fpInput) {
				in.query = "X-Amz-Algorithm=AWS4-HMAC-SHA256" +
					"&X-Amz-Credential=AKIAEXAMPLE%2F20260301%2Fus-east-1%2Fs3%2Faws4_request" +
					"&X-Amz-Date=20260301T120500Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host" +
					"&X-Amz-Signature=cccc&versionId=3"
			}),
		},
		{
			name: "volatile parameters in another case", wantSame: true,
			a: with(func(in *fpInput) { in.query = "X-Amz-Date=1&X-Amz-Signature=2&a=b" }),
			b: with(func(in *fpInput) { in.query = "x-amz-date=3&x-amz-signature=4&a=b" }),
		},
		{
			name: "query key order", wantSame: true,
			a: with(func(in *fpInput) { in.query = "a=1&b=2&c=3&a=4" }),
			b: with(func(in *fpInput) { in.query = "c=3&a=1&b=2&a=4" }),
		},
		{name: "method case", a: fpBase, b: with(func(in *fpInput) { in.method = "delete" }), wantSame: true},
		{name: "host case", a: fpBase, b: with(func(in *fpInput) { in.host = "Prod-Logs.S3.amazonaws.com" }), wantSame: true},

		{name: "body", a: fpBase, b: with(func(in *fpInput) { in.body = "x" })},
		{name: "method", a: fpBase, b: with(func(in *fpInput) { in.method = "GET" })},
		{name: "host", a: fpBase, b: with(func(in *fpInput) { in.host = "other-logs.s3.amazonaws.com" })},
		{name: "port", a: fpBase, b: with(func(in *fpInput) { in.port = 8443 })},
		{name: "path", a: fpBase, b: with(func(in *fpInput) { in.path = "/2026/other.log" })},
		{name: "path case", a: fpBase, b: with(func(in *fpInput) { in.path = "/2026/App.log" })},
		{name: "path escaping", a: fpBase, b: with(func(in *fpInput) { in.path = "/2026%2Fapp.log" })},
		{name: "trailing slash", a: fpBase, b: with(func(in *fpInput) { in.path = "/2026/app.log/" })},
		{name: "other query value", a: fpBase, b: with(func(in *fpInput) { in.query = replaceParam(presigned, "versionId=3", "versionId=4") })},
		{name: "expiry parameter", a: fpBase, b: with(func(in *fpInput) { in.query = replaceParam(presigned, "X-Amz-Expires=300", "X-Amz-Expires=604800") })},
		{name: "credential parameter", a: fpBase, b: with(func(in *fpInput) { in.query = replaceParam(presigned, "AKIAEXAMPLE", "AKIAOTHER") })},
		{name: "added parameter", a: fpBase, b: with(func(in *fpInput) { in.query = presigned + "&force=true" })},
		{name: "removed parameter", a: fpBase, b: with(func(in *fpInput) { in.query = replaceParam(presigned, "&versionId=3", "") })},
		{name: "empty value against no parameter", a: with(func(in *fpInput) { in.query = "a=1" }), b: with(func(in *fpInput) { in.query = "a=1&b=" })},
		// A server may take the first or the last of repeated values.
		{name: "repeated values in another order", a: with(func(in *fpInput) { in.query = "force=true&force=false" }), b: with(func(in *fpInput) { in.query = "force=false&force=true" })},
		{name: "repeated value", a: with(func(in *fpInput) { in.query = "a=1" }), b: with(func(in *fpInput) { in.query = "a=1&a=1" })},
		{name: "key and value boundary", a: with(func(in *fpInput) { in.query = "ab=c" }), b: with(func(in *fpInput) { in.query = "a=bc" })},
		// Values of one key and the next key must not run together.
		{name: "values against keys", a: with(func(in *fpInput) { in.query = "a=&b=c" }), b: with(func(in *fpInput) { in.query = "a=&a=b&a=c" })},
		{name: "value against body hash", a: with(func(in *fpInput) { in.query = "a=" }), b: with(func(in *fpInput) { in.query = "a=&a=" })},
		{name: "empty key", a: with(func(in *fpInput) { in.query = "" }), b: with(func(in *fpInput) { in.query = "=" })},
		{name: "path against query", a: with(func(in *fpInput) { in.path, in.query = "/a", "b=c" }), b: with(func(in *fpInput) { in.path, in.query = "/ab", "=c" })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fa, fb := tt.a.fingerprint(t), tt.b.fingerprint(t)
			if same := fa == fb; same != tt.wantSame {
				t.Errorf("Fingerprint(%+v) == Fingerprint(%+v) is %v, want %v", tt.a, tt.b, same, tt.wantSame)
			}
			if again := tt.a.fingerprint(t); again != fa {
				t.Errorf("Fingerprint(%+v) = %s, then %s: not deterministic", tt.a, fa, again)
			}
		})
	}
}

func replaceParam(q, old, new string) string {
	if !strings.Contains(q, old) {
		panic("replaceParam: " + old + " not in " + q)
	}
	return strings.Replace(q, old, new, 1)
}

func FuzzFingerprint(f *testing.F) {
	f.Add(fpBase.method, fpBase.host, fpBase.port, fpBase.path, fpBase.query, []byte(fpBase.body))
	f.Add("GET", "example.com", 80, "/", "", []byte{})
	f.Add("post", "EXAMPLE.com", 0, "", "a=&b=c", []byte("body"))
	f.Add("PUT", "[::1]", 65535, "/%2F", "a=&a=b&a=c&X-Amz-Date=1", []byte{0xff, 0})
	f.Add("", "", -1, "/\x00", "=&&;%zz", []byte(nil))
	f.Fuzz(func(t *testing.T, method, host string, port int, path, rawQuery string, body []byte) {
		q, _ := url.ParseQuery(rawQuery) // a malformed query still yields what parsed
		sum := sha256.Sum256(body)
		bodyHash := hex.EncodeToString(sum[:])
		fp := Fingerprint(method, host, port, path, q, bodyHash)
		if len(fp) != 64 {
			t.Fatalf("Fingerprint() = %q, want 64 hex characters", fp)
		}
		if _, err := hex.DecodeString(fp); err != nil {
			t.Fatalf("Fingerprint() = %q is not hex", fp)
		}
		if again := Fingerprint(method, host, port, path, q, bodyHash); again != fp {
			t.Fatalf("Fingerprint() = %s, then %s", fp, again)
		}
		// Re-encoding the query (another key order) changes nothing.
		q2, err := url.ParseQuery(q.Encode())
		if err != nil {
			t.Fatalf("ParseQuery(%q) error = %v", q.Encode(), err)
		}
		if got := Fingerprint(method, host, port, path, q2, bodyHash); got != fp {
			t.Fatalf("Fingerprint() of the re-encoded query %q = %s, want %s", q.Encode(), got, fp)
		}
		// Re-signing changes nothing.
		q3 := url.Values{}
		for k, vs := range q {
			q3[k] = vs
		}
		q3.Set("X-Amz-Date", "20260301T000000Z")
		q3.Set("X-Amz-Signature", "fuzz")
		q3.Set("X-Amz-Security-Token", "fuzz")
		q4 := url.Values{}
		for k, vs := range q3 {
			q4[k] = vs
		}
		q4.Set("X-Amz-Signature", "other")
		if Fingerprint(method, host, port, path, q3, bodyHash) != Fingerprint(method, host, port, path, q4, bodyHash) {
			t.Fatal("a re-signed query changed the fingerprint")
		}
		// Another body does.
		other := sha256.Sum256(append(body, 'x'))
		if Fingerprint(method, host, port, path, q, hex.EncodeToString(other[:])) == fp {
			t.Fatal("another body hash left the fingerprint unchanged")
		}
	})
}
