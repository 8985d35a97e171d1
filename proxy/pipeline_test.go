package proxy

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/countersign/countersign/action"
	"github.com/countersign/countersign/approval"
)

// readUpTo: a declared length is believed only after the first 64 KiB
// arrive, then in one allocation; an undeclared one doubles. With a pool,
// buffers past 64 KiB are pooled ones, of the pool's capacities, and the
// body handed back is cut to its length.
func TestReadUpTo(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	for _, tt := range []struct {
		name          string
		src           []byte
		limit         int64
		declared      bool
		wantLen       int
		wantCap       int
		wantPooledCap int // 0: not pooled
	}{
		{"declared, all sent", data, int64(len(data)), true, len(data), len(data), 1 << 20},
		{"declared, nothing sent", nil, int64(len(data)), true, 0, 64 << 10, 0},
		{"declared, stops after 100 KiB", data[:100<<10], int64(len(data)), true, 100 << 10, len(data), 1 << 20},
		{"declared, small", data[:1000], 1000, true, 1000, 1000, 0},
		{"undeclared, stops at the limit", data, 300 << 10, false, 300 << 10, 300 << 10, 320 << 10},
		{"undeclared, short", data[:70<<10], 1 << 20, false, 70 << 10, 128 << 10, 128 << 10},
		{"undeclared, past the pooled sizes", bytes.Repeat(data, 10), 9 << 20, false, 9 << 20, 9 << 20, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, pooled := range []bool{false, true} {
				var pool *bodyPool
				if pooled {
					pool = &bodyPool{}
				}
				got, bb, err := readUpTo(iotest.HalfReader(bytes.NewReader(tt.src)), tt.limit, tt.declared, pool, nil)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != tt.wantLen || !bytes.Equal(got, tt.src[:tt.wantLen]) {
					t.Errorf("pooled=%v: read %d bytes, want the first %d", pooled, len(got), tt.wantLen)
				}
				switch {
				case pooled && tt.wantPooledCap != 0:
					if bb == nil || cap(bb.b) != tt.wantPooledCap || (len(got) > 0 && &bb.b[:1][0] != &got[:1][0]) {
						t.Errorf("the buffer is not a pooled one of %d bytes (bodyBuf %v)", tt.wantPooledCap, bb)
					}
					if cap(got) != len(got) {
						t.Errorf("the body reaches %d bytes past its length into the pooled buffer", cap(got)-len(got))
					}
				case bb != nil:
					t.Errorf("pooled=%v: a pooled buffer for a %d-byte buffer", pooled, cap(got))
				default:
					if cap(got) < tt.wantCap || cap(got) > tt.wantCap+tt.wantCap/4 { // size classes round up
						t.Errorf("pooled=%v: buffer of %d bytes, want about %d", pooled, cap(got), tt.wantCap)
					}
				}
				bb.release()
			}
		})
	}
}

// A read that fails gives its pooled buffer back, and returns none.
func TestReadUpToErrorReleases(t *testing.T) {
	pool := &bodyPool{}
	src := io.MultiReader(bytes.NewReader(make([]byte, 200<<10)), iotest.ErrReader(errors.New("reset")))
	got, bb, err := readUpTo(src, 1<<20, true, pool, nil)
	if err == nil || got != nil || bb != nil {
		t.Fatalf("readUpTo = %d bytes, %v, %v; want an error and nothing else", len(got), bb, err)
	}
}

// TestCredentialNames: what names a request's credentials for approvals.
// Fixed secrets by a keyed hash of the whole value; schemes that sign each
// request anew by the key they name, so that a retry matches; never any of
// the value itself.
func TestCredentialNames(t *testing.T) {
	key := []byte("test key")
	name := func(auth string) string {
		return credential(key, action.Action{}, http.Header{"Authorization": {auth}}, "", "")
	}
	same := [][2]string{
		{`OAuth oauth_consumer_key="ck", oauth_token="t1", oauth_nonce="a", oauth_signature="s1"`, `OAuth oauth_nonce="b", oauth_token="t1", oauth_consumer_key="ck", oauth_signature="s2"`},
		{`Digest username="alice", realm="api", nonce="n1", cnonce="c1", nc=00000001, response="r1"`, `Digest username="alice", realm="api", nonce="n2", cnonce="c2", nc=00000002, response="r2"`},
		{"SharedKey myaccount:c2lnbmF0dXJlMQ==", "SharedKey myaccount:c2lnbmF0dXJlMg=="},
		{"GOOG4-HMAC-SHA256 Credential=GOOGKEY1/20260301/auto/storage/goog4_request, SignedHeaders=host, Signature=aa", "GOOG4-HMAC-SHA256 Credential=GOOGKEY1/20260302/auto/storage/goog4_request, SignedHeaders=host, Signature=bb"},
	}
	for _, p := range same {
		if a, b := name(p[0]), name(p[1]); a != b || a == "" {
			t.Errorf("two attempts with one key: %q and %q, want one non-empty name", a, b)
		}
	}
	// Hawk and HTTP signatures name their key by parameters of their own.
	same = append(same, [][2]string{
		{`Hawk id="dh37fgj492je", ts="1353832234", nonce="j4h3g2", ext="app", mac="6R4rV5iE"`, `Hawk id="dh37fgj492je", ts="1353832299", nonce="k5j4h3", ext="app", mac="7S5sW6jF"`},
		{`Signature keyId="rsa-key-1",algorithm="hs2019",created=1402170695,headers="(request-target) host",signature="c2lnMQ=="`, `Signature keyId="rsa-key-1",algorithm="hs2019",created=1402170777,headers="(request-target) host",signature="c2lnMg=="`},
	}...)
	for _, p := range same[len(same)-2:] {
		if a, b := name(p[0]), name(p[1]); a != b || a == "" {
			t.Errorf("two attempts with one key: %q and %q, want one non-empty name", a, b)
		}
	}
	differ := [][2]string{
		// A comma inside a quoted value is not a separator (found by
		// review: realm="x,oauth_consumer_key=B" named consumer B).
		{`OAuth oauth_consumer_key="A", oauth_token="t", oauth_nonce="1", oauth_signature="s", realm="x,oauth_consumer_key=B"`, `OAuth oauth_consumer_key="B", oauth_token="t", oauth_nonce="1", oauth_signature="s", realm="x"`},
		{`OAuth oauth_consumer_key="a/b", oauth_token="c", oauth_signature="s"`, `OAuth oauth_consumer_key="a", oauth_token="b/c", oauth_signature="s"`},
		{`Hawk id="alice", ts="1", nonce="n", mac="m"`, `Hawk id="bob", ts="1", nonce="n", mac="m"`},
		{`Digest username="alice", realm="api", nonce="n", response="r", opaque="x,username=bob"`, `Digest username="bob", realm="api", nonce="n", response="r", opaque="x"`},
		// A fixed secret with a nonce appended still binds its secret.
		{"ApiKey key=secret-a, nonce=1", "ApiKey key=secret-b, nonce=1"},
		{"SSWS key-a, nonce=1", "SSWS key-b, nonce=1"},
		{`OAuth oauth_consumer_key="ck", oauth_token="t1", oauth_signature="s"`, `OAuth oauth_consumer_key="ck", oauth_token="t2", oauth_signature="s"`},
		{"SharedKey one:sig", "SharedKey two:sig"},
		{"Bearer tok-a", "Bearer tok-b"},
		{"Basic " + base64.StdEncoding.EncodeToString([]byte("u:pw1")), "Basic " + base64.StdEncoding.EncodeToString([]byte("u:pw2"))},
		// Parameters appended to a fixed secret do not make it a signature.
		{"Bearer tok-a, signature=1", "Bearer tok-b, signature=1"},
		{"SSWS key-a", "SSWS key-b"},
	}
	for _, p := range differ {
		if a, b := name(p[0]), name(p[1]); a == b {
			t.Errorf("%q and %q are both named %q", p[0], p[1], a)
		}
	}
	// "ID:signature" schemes signed with each request's date.
	for _, p := range [][2]string{{"GOOG1 GOOGKEY:sig1", "GOOG1 GOOGKEY:sig2"}, {"OSS LTAIkey:sig1", "OSS LTAIkey:sig2"}} {
		if a, b := name(p[0]), name(p[1]); a != b || a == "" {
			t.Errorf("two attempts with one key: %q and %q, want one name", a, b)
		}
	}
	// Found by review: a tab after the scheme made the whole value the
	// scheme, lower-cased; a token68 with padding read as a parameter
	// name, lower-cased too.
	for _, p := range [][2]string{
		{"Hawk\tid=\"dh37fgj492je\", ts=\"1\", nonce=\"n\", mac=\"m\"", "Hawk\tid=\"DH37FGJ492JE\", ts=\"1\", nonce=\"n\", mac=\"m\""},
		{"ApiKey c2VjcmV0QQ==, nonce=1", "ApiKey C2VJCMV0QQ==, nonce=1"},
	} {
		if a, b := name(p[0]), name(p[1]); a == b {
			t.Errorf("%q and %q are both named %q", p[0], p[1], a)
		}
	}
	// Cookies: in the order sent (servers read the first of two with one
	// name), and beside an Authorization header.
	withCookies := func(h http.Header) string { return credential(key, action.Action{}, h, "", "") }
	for _, p := range [2][2]http.Header{
		{{"Cookie": {"session=alice; session=mallory"}}, {"Cookie": {"session=mallory; session=alice"}}},
		{{"Authorization": {"Bearer unused"}, "Cookie": {"session=alice"}}, {"Authorization": {"Bearer unused"}, "Cookie": {"session=mallory"}}},
	} {
		if a, b := withCookies(p[0]), withCookies(p[1]); a == b {
			t.Errorf("%v and %v are both named %q", p[0], p[1], a)
		}
	}
	// A key from a presigned query does not hide a token or cookies sent
	// beside it (found by review); a SigV4 header names the key itself.
	presigned := action.Action{AccessKeyID: "AKIAEXAMPLE000000001"}
	for _, p := range [2][2]http.Header{
		{{"Authorization": {"Bearer ghp_approved"}}, {"Authorization": {"Bearer ghp_other"}}},
		{{"Cookie": {"session=alice"}}, {"Cookie": {"session=mallory"}}},
	} {
		if a, b := credential(key, presigned, p[0], "", ""), credential(key, presigned, p[1], "", ""); a == b {
			t.Errorf("presigned, %v and %v are both named %q", p[0], p[1], a)
		}
	}
	sigv4 := func(sig string) http.Header {
		return http.Header{"Authorization": {"AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE000000001/20260301/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=" + sig}}
	}
	if a, b := credential(key, presigned, sigv4("aa"), "", ""), credential(key, presigned, sigv4("bb"), "", ""); a != b {
		t.Errorf("two SigV4 attempts with one key: %q and %q", a, b)
	}
	// Other credential headers and credential query parameters name whom
	// a request acts as too (found by review: a scoped grant given with one
	// X-Api-Key admitted another); a presigned URL's re-signed parameters
	// do not, its key is named above.
	type call struct {
		a           action.Action
		h           http.Header
		query, form string
	}
	for _, p := range [][2]call{
		{{h: http.Header{"X-Api-Key": {"agent-key"}}}, {h: http.Header{"X-Api-Key": {"admin-key"}}}},
		{{h: http.Header{"Private-Token": {"a"}}}, {h: http.Header{"Private-Token": {"b"}}}},
		{{h: http.Header{"X-Vault-Token": {"a"}, "Cookie": {"s=1"}}}, {h: http.Header{"X-Vault-Token": {"b"}, "Cookie": {"s=1"}}}},
		{{query: "page=2&private_token=a"}, {query: "page=2&private_token=b"}},
		{{query: "key=AIza-a"}, {query: "key=AIza-b"}},
		{{query: "access%5Ftoken=a"}, {query: "access%5Ftoken=b"}},
		{{query: "sig=a&sv=2024"}, {query: "sig=b&sv=2024"}},
		{{form: "title=x&private_token=a"}, {form: "title=x&private_token=b"}},
		{{h: http.Header{"X-Auth-Key": {"a"}}}, {h: http.Header{"X-Auth-Key": {"b"}}}},
		{{a: presigned, query: "X-Amz-Credential=AKIAEXAMPLE000000001&X-Amz-Signature=aa&token=a"}, {a: presigned, query: "X-Amz-Credential=AKIAEXAMPLE000000001&X-Amz-Signature=aa&token=b"}},
	} {
		if a, b := credential(key, p[0].a, p[0].h, p[0].query, p[0].form), credential(key, p[1].a, p[1].h, p[1].query, p[1].form); a == b {
			t.Errorf("%+v and %+v are both named %q", p[0], p[1], a)
		}
	}
	for _, p := range [][2]call{
		{{a: presigned, query: "X-Amz-Signature=aa&X-Amz-Security-Token=t1&X-Amz-Date=1"}, {a: presigned, query: "X-Amz-Signature=bb&X-Amz-Security-Token=t2&X-Amz-Date=2"}},
		{{h: http.Header{"X-Api-Key": {"k"}, "Proxy-Authorization": {"Basic a"}}, query: "page=1"}, {h: http.Header{"X-Api-Key": {"k"}, "Proxy-Authorization": {"Basic b"}}, query: "page=2"}},
	} {
		if a, b := credential(key, p[0].a, p[0].h, p[0].query, p[0].form), credential(key, p[1].a, p[1].h, p[1].query, p[1].form); a != b {
			t.Errorf("%+v and %+v are named apart: %q and %q", p[0], p[1], a, b)
		}
	}
	if n := credential(key, action.Action{}, http.Header{"X-Api-Key": {"sk_live_secretvalue"}}, "token=sk_live_secretvalue", "token=sk_live_secretvalue"); strings.Contains(n, "secretvalue") {
		t.Errorf("named %q, which shows the secret", n)
	}
	for _, auth := range []string{"Bearer sk_live_secretvalue", "Basic " + base64.StdEncoding.EncodeToString([]byte("sk_live_secretvalue:")), `OAuth oauth_consumer_key="sk_live_secretvalue"`} {
		if n := name(auth); strings.Contains(n, "sk_live") || strings.Contains(n, "secretvalue") {
			t.Errorf("%q is named %q, which shows the secret", auth, n)
		}
	}
}

// A name given twice is read differently by different servers: such a
// value is hashed whole, so it binds everything.
func TestAuthParams(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want map[string]string
	}{
		{`a=1, b="two, three", C="q\"uote"`, map[string]string{"a": "1", "b": "two, three", "c": `q"uote`}},
		{`a=1,b=2`, map[string]string{"a": "1", "b": "2"}},
		{`a=1, a=2`, nil},
		{`a="unterminated`, nil},
		{`token68value==`, nil},
		{`c2VjcmV0QQ==, nonce=1`, nil},
		{`a=, b=1`, nil},
		{`plain-token`, nil},
		{`a=1 junk`, nil},
		{``, nil},
	} {
		got, ok := authParams(tt.in)
		if ok != (tt.want != nil) || (ok && !maps.Equal(got, tt.want)) {
			t.Errorf("authParams(%q) = %v, %v; want %v", tt.in, got, ok, tt.want)
		}
	}
}

// Clouds other than AWS sign each attempt with a date header of their own:
// a retry is still the same request (found by review: every Azure SharedKey
// and GCS retry opened a new approval).
func TestSignedDatesAreNotPartOfTheFingerprint(t *testing.T) {
	fp := func(h http.Header) string {
		req := &http.Request{Method: "DELETE", URL: &url.URL{Path: "/container/blob"}, Header: h}
		return fingerprint([]byte("test key"), &exchange{req: req, scheme: "https", host: "acct.blob.core.windows.net", port: 443}, action.Action{Provider: "http"}, nil)
	}
	azure := func(account, sig, date string) http.Header {
		return http.Header{"Authorization": {"SharedKey " + account + ":" + sig}, "X-Ms-Date": {date}, "X-Ms-Version": {"2021-08-06"}}
	}
	first := fp(azure("acct", "c2lnMQ==", "Sun, 01 Mar 2026 12:00:01 GMT"))
	if retry := fp(azure("acct", "c2lnMg==", "Sun, 01 Mar 2026 12:00:02 GMT")); retry != first {
		t.Error("an Azure SharedKey retry has another fingerprint")
	}
	if other := fp(azure("other", "c2lnMg==", "Sun, 01 Mar 2026 12:00:02 GMT")); other == first {
		t.Error("another Azure account has the same fingerprint")
	}
	gcs := func(date, sig string) http.Header {
		return http.Header{"Authorization": {"GOOG4-HMAC-SHA256 Credential=GOOGKEY1/20260301/auto/storage/goog4_request, SignedHeaders=host;x-goog-date, Signature=" + sig}, "X-Goog-Date": {date}}
	}
	if fp(gcs("20260301T120001Z", "aa")) != fp(gcs("20260301T120002Z", "bb")) {
		t.Error("a GCS HMAC retry has another fingerprint")
	}
}

// A token in a JSON body's top-level members binds a scoped grant as one
// in a form does (found by review: only forms, the query and headers
// counted).
// jsonExchange is an exchange whose body is a JSON body.
func jsonExchange(body string) *exchange {
	h := http.Header{"Content-Type": {"application/json"}}
	return &exchange{req: &http.Request{Header: h}, ar: &action.Request{Header: h, Body: []byte(body)}}
}

func TestFormBodyCredentials(t *testing.T) {
	tests := []struct{ contentType, body, want string }{
		{"application/json", `{"title":"x","private_token":"glpat-a","nested":{"token":"b"}}`, "private_token=glpat-a"},
		{"application/json; charset=utf-8", `{"access_token":"a b","token":7}`, "access_token=a+b"},
		// Per-call tokens are not credentials; a client's secret is.
		{"application/json", `{"title":"x","NextToken":"n","pageToken":"p","ClientRequestToken":"c1","client_secret":"s"}`, "client_secret=s"},
		{"application/x-www-form-urlencoded", "title=x&private_token=a", "title=x&private_token=a"},
		{"application/json", `[{"token":"a"}]`, ""},
		{"text/plain", "token=a", ""},
	}
	for _, tt := range tests {
		h := http.Header{"Content-Type": {tt.contentType}}
		ex := &exchange{req: &http.Request{Header: h}, ar: &action.Request{Header: h, Body: []byte(tt.body)}}
		if got := formBody(ex, action.Action{}); got != tt.want {
			t.Errorf("formBody(%s %s) = %q, want %q", tt.contentType, tt.body, got, tt.want)
		}
	}
	// GitHub reads a body that looks like JSON as JSON whatever its label
	// (policy.BodyType), so the token in it binds the grant as the policy
	// read it; another API's form label is taken at its word.
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	body := []byte(`{"access_token":"a","ref":"main"}`)
	gh := &exchange{req: &http.Request{Header: h}, ar: &action.Request{Header: h, Body: body}}
	if got := formBody(gh, action.Action{Provider: "github"}); got != "access_token=a" {
		t.Errorf("formBody(GitHub JSON labelled a form) = %q, want access_token=a", got)
	}
	if got := formBody(gh, action.Action{Provider: "http"}); got != string(body) {
		t.Errorf("formBody(other JSON labelled a form) = %q, want the body as a form", got)
	}
	key := []byte("k")
	a := credential(key, action.Action{}, http.Header{}, "", formBody(jsonExchange(`{"private_token":"a"}`), action.Action{}))
	b := credential(key, action.Action{}, http.Header{}, "", formBody(jsonExchange(`{"private_token":"b"}`), action.Action{}))
	if a == b || a == "" {
		t.Errorf("two JSON tokens named %q and %q", a, b)
	}
	// An AWS signature header names the caller: a form's per-call
	// ClientToken must not make two calls two callers (found by review).
	aws := action.Action{AccessKeyID: "AKIAEXAMPLE000000001"}
	signed := http.Header{"Authorization": {"AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE000000001/20260301/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=aa"}}
	if x, y := credential(key, aws, signed, "", "Action=RunInstances&ClientToken=c1"), credential(key, aws, signed, "", "Action=RunInstances&ClientToken=c2"); x != y {
		t.Errorf("two AWS calls with the same key named %q and %q", x, y)
	}
	// A presigned query on another host does not hide a body's token.
	if x, y := credential(key, aws, http.Header{}, "X-Amz-Credential=AKIAEXAMPLE000000001", "token=xoxb-a"), credential(key, aws, http.Header{}, "X-Amz-Credential=AKIAEXAMPLE000000001", "token=xoxb-b"); x == y {
		t.Errorf("two form tokens under a presigned query are both named %q", x)
	}
}

// countersign's own hosts are matched as requests name them: lower case,
// without a trailing dot (found by review: a state database written
// DB.Example.COM was not refused as countersign's).
func TestSelfTargetCanonicalHosts(t *testing.T) {
	for _, dsn := range []string{"postgres://cs@DB.Example.COM:5432/countersign", "postgres://cs@db.example.com.:5432/countersign"} {
		s := &Server{ownHosts: canonicalHosts(approval.PostgresAddrs(dsn))}
		if _, ok := s.selfTarget("db.example.com", 5432); !ok {
			t.Errorf("state %s: a request to db.example.com:5432 is not refused as countersign's own", dsn)
		}
	}
	s := &Server{ownHosts: canonicalHosts([]string{"Approvals.Example.com"})}
	if _, ok := s.selfTarget("approvals.example.com", 443); !ok {
		t.Error("the approval page's host in capitals is not refused as countersign's own")
	}
	if _, ok := s.selfTarget("api.github.com", 443); ok {
		t.Error("another host is refused as countersign's own")
	}
}

func TestEncodedBackslash(t *testing.T) {
	for path, want := range map[string]bool{
		`/repos/acme\shop`: true, "/repos/acme%5Cshop": true, "/repos/acme%5cshop": true, "/a%255Cb": true, "/a%5C": true, "/a%25": false,
		"/repos/acme/shop": false, "/a%5": false, "/a%5d": false, "/100%25": false, "%": false, "": false,
	} {
		if got := encodedBackslash(path); got != want {
			t.Errorf("encodedBackslash(%q) = %v, want %v", path, got, want)
		}
	}
}
