package proxy

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/elazarl/goproxy"
)

// SPEC 10.7: goproxy's own transport, dialers and CA are never used. Its
// transport and dialers refuse to reach anything, and every CONNECT is
// either hijacked by countersign's own TLS termination (its CA, its
// upstream transport) or rejected: never goproxy's ConnectAccept (a blind
// tunnel) or ConnectMitm (its built-in CA).
func TestGoproxyDefaultsAreNeverUsed(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	var reached atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached.Add(1) }))
	defer up.Close()

	gp := h.srv.gp
	req, _ := http.NewRequestWithContext(t.Context(), "GET", up.URL, nil)
	if resp, err := gp.Tr.RoundTrip(req); err == nil {
		resp.Body.Close()
		t.Error("goproxy's transport reached a server")
	}
	if gp.ConnectDial != nil {
		t.Error("goproxy has a CONNECT dialer")
	}
	if c, err := gp.ConnectDialWithReq(req, "tcp", up.Listener.Addr().String()); err == nil {
		c.Close()
		t.Error("goproxy's CONNECT dialer reached a server")
	}
	if n := reached.Load(); n != 0 {
		t.Errorf("the server saw %d requests", n)
	}

	for _, tt := range []struct {
		name, target string
		auth         bool
		want         goproxy.ConnectActionLiteral
	}{
		{"intercepted", "api.github.com:443", true, goproxy.ConnectHijack},
		{"no credentials", "api.github.com:443", false, goproxy.ConnectReject},
		{"bad target", "api.github.com:x", true, goproxy.ConnectReject},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := (&http.Request{Method: "CONNECT", URL: &url.URL{Host: tt.target}, Host: tt.target, Header: http.Header{}}).WithContext(t.Context())
			if tt.auth {
				req.Header.Set("Proxy-Authorization", "Basic "+basic(h.sess.ID, h.password))
			}
			act, _ := h.srv.handleConnect(tt.target, &goproxy.ProxyCtx{Req: req})
			if act == nil || act.Action != tt.want {
				t.Fatalf("CONNECT %s: action %+v, want %v", tt.target, act, tt.want)
			}
			if act.TLSConfig != nil {
				t.Error("the action carries a goproxy TLS configuration")
			}
		})
	}
}
