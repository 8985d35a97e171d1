package redact

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// FuzzURL checks that a password in the userinfo and the value of a
// credential query parameter never survive URL, whatever else the URL holds.
func FuzzURL(f *testing.F) {
	f.Add("https://api.example/v1/x?a=b#c", "hunter2hunter2", "token")
	f.Add("http://h/p;q?X-Amz-Signature=1&x=%zz", "s3cr3t-s3cr3t", "X-Amz-Signature")
	f.Add("//h?", "pw-pw-pw-pw", "access_token")
	f.Fuzz(func(t *testing.T, raw, secret, param string) {
		u, err := url.Parse(raw)
		if err != nil || len(secret) < 8 || !IsCredentialParam(param) || strings.Contains(raw, secret) {
			return
		}
		u.User = url.UserPassword("alice", secret)
		q := u.Query()
		q.Set(param, secret)
		u.RawQuery = q.Encode()
		got := URL(u)
		for _, leak := range []string{secret, url.QueryEscape(secret), url.PathEscape(secret)} {
			if strings.Contains(got, leak) {
				t.Fatalf("URL(%q) = %q still holds the secret %q", u.String(), got, secret)
			}
		}
	})
}

// FuzzHeader checks that credential headers never survive Header.
func FuzzHeader(f *testing.F) {
	f.Add("Authorization", "Bearer abcdefghijkl", "X-Other", "v")
	f.Add("x-amz-security-token", "FwoGZXIvYXdzEJr", "Cookie", "a=b")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		h := http.Header{}
		h.Add(k1, v1)
		h.Add(k2, v2)
		out := Header(h)
		for k, vs := range out {
			if !IsCredentialHeader(k) {
				continue
			}
			for _, v := range vs {
				if v != Mask {
					t.Fatalf("Header(%v)[%q] = %q, want %q", h, k, v, Mask)
				}
			}
		}
	})
}

// FuzzValue checks that Value never panics on JSON, keeps the shape, and
// masks every string under a credential key.
func FuzzValue(f *testing.F) {
	f.Add([]byte(`{"password":"x","nested":{"api_key":["a","b"]},"max_tokens":10}`))
	f.Add([]byte(`[{"Authorization":"Bearer x"},"ghp_abcdefghijklmnopqrstuvwxyz0123456789"]`))
	// A file committed through GitHub's contents API, base64 of a line
	// that holds a token.
	f.Add([]byte(`{"message":"add .env","content":"R0lUSFVCX1RPS0VOPWdocF9hQmNEZUZnSGlKa0xtTm9QcVJzVHVWd1h5WjAxMjM0NTY3ODkK"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return
		}
		checkMasked(t, Value(v), plain)
	})
}

func checkMasked(t *testing.T, v any, sec secrecy) {
	t.Helper()
	switch v := v.(type) {
	case string:
		if masked(sec) && v != Mask {
			t.Fatalf("credential value %q not masked", v)
		}
	case map[string]any:
		for k, e := range v {
			checkMasked(t, e, childSecrecy(v, k, sec))
		}
	case []any:
		for _, e := range v {
			checkMasked(t, e, sec)
		}
	}
}
