package proxy

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/countersign/countersign/action"
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
				got, bb, err := readUpTo(iotest.HalfReader(bytes.NewReader(tt.src)), tt.limit, tt.declared, pool)
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
	got, bb, err := readUpTo(src, 1<<20, true, pool)
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
		return credential(key, action.Action{}, http.Header{"Authorization": {auth}})
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
	differ := [][2]string{
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
	for _, auth := range []string{"Bearer sk_live_secretvalue", "Basic " + base64.StdEncoding.EncodeToString([]byte("sk_live_secretvalue:")), `OAuth oauth_consumer_key="sk_live_secretvalue"`} {
		if n := name(auth); strings.Contains(n, "sk_live") || strings.Contains(n, "secretvalue") {
			t.Errorf("%q is named %q, which shows the secret", auth, n)
		}
	}
}
